"""`indelible bench verify`: full verification throughput and inclusion-proof latency.

The bench tenant's log is first grown (with `append_batch`, the real path) to the requested
size and a checkpoint is signed with the service key, so both measurements run against a
real, signed log of that size.

1. Verification throughput. Ours: `verify_log` on every core, entries/s, and its report must
   be OK. Baseline: one binary `COPY (SELECT <the scan's columns> ...) TO STDOUT` of the
   same rows, read fully by the client: the cost of just getting the bytes out of
   PostgreSQL, which any verifier must pay before checking anything. A warm-up copy runs
   first so neither side pays for first-touch page hint bits after the seeding.
2. Inclusion-proof latency. Ours: `audit.entry_proof` (checkpoint, entry, fresh StoredTree,
   proof) per random seq on one connection, as the API serves it; every proof is then
   checked with `proofs.verify_inclusion` outside the clock. Baseline: the primary-key
   SELECT of the same entry row, the least any proof endpoint must read.
"""

from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import dataclass

import psycopg

from indelible import audit, proofs
from indelible.bench import baseline, workload
from indelible.bench.common import BenchError, Measurement, latency_ms, rate
from indelible.bootstrap import Database
from indelible.kept import KeptCheckpoints
from indelible.proofs import NoteSigner, NoteVerifier
from indelible.store.appender import Appended, append_batch
from indelible.store.logs import read_head
from indelible.store.signing import sign_checkpoint
from indelible.verifier import verify_log

TARGET_RATE = 1_000_000  # entries/s
TARGET_P99_MS = 5.0


@dataclass(frozen=True)
class VerifyOptions:
    size: int = 1_000_000  # entries the log must hold
    proofs: int = 2_000  # random inclusion proofs
    workers: int | None = None  # verifier processes; None: every core
    seed_batch: int = 10_000  # entries per append_batch while growing the log


def run(db: Database, tenant: str, signer: NoteSigner, kept: KeptCheckpoints,
        options: VerifyOptions) -> tuple[list[Measurement], dict]:
    with psycopg.connect(db.app_url, autocommit=True) as conn:
        grown = grow_log(conn, tenant, options.size, options.seed_batch)
        sign_checkpoint(conn, tenant, signer, kept)
        size = audit.current_checkpoint(conn, tenant).size
    verifier = NoteVerifier.from_key_text(signer.verifier_key_text())
    measurements = [_verification(db.app_url, tenant, verifier, options.workers),
                    _proof_latency(db.app_url, tenant, options.proofs)]
    return measurements, {"log_size": size, "entries_seeded_now": grown}


def grow_log(conn: psycopg.Connection, tenant: str, size: int, batch: int) -> int:
    """Append realistic entries until the log holds `size`; returns how many were added."""
    have = read_head(conn, tenant).size
    missing = max(0, size - have)
    added, started = 0, time.monotonic()
    while added < missing:
        cmds = workload.commands(min(batch, missing - added))
        outcomes = append_batch(conn, tenant, cmds)
        if not all(isinstance(o, Appended) and not o.replayed for o in outcomes):
            raise BenchError(f"seeding {tenant!r}: a command was refused or replayed")
        added += len(outcomes)
        print(f"\rseeding {tenant}: {have + added:,}/{size:,} entries "
              f"({added / (time.monotonic() - started):,.0f}/s)", end="", file=sys.stderr,
              flush=True)
    if missing:
        print(file=sys.stderr)
    return added


def _verification(app_url: str, tenant: str, verifier: NoteVerifier,
                  workers: int | None) -> Measurement:
    baseline.copy_out(app_url, tenant)  # warm-up, untimed
    rows, seconds = baseline.copy_out(app_url, tenant)
    report = verify_log(app_url, tenant, verifier, workers=workers)
    if not report.ok:
        raise BenchError("verification of the bench log FAILED:\n" + report.to_text())
    ours = rate(report.entries_checked, report.seconds)
    return Measurement(
        "verify_throughput", f"full verification ({report.entries_checked:,} entries)",
        "entries/s", {"rate": rate(rows, seconds)}, {"rate": ours},
        "binary COPY out of the same rows, read by the client",
        f"verify_log, up to {workers or os.cpu_count()} processes (itself and helpers), report OK",
        f"≥ {TARGET_RATE:,} entries/s", ours >= TARGET_RATE,
        {"entries": report.entries_checked, "seconds": round(report.seconds, 3),
         "baseline_rows": rows, "baseline_seconds": round(seconds, 3),
         "checkpoints_checked": report.checkpoints_checked})


def _proof_latency(app_url: str, tenant: str, count: int) -> Measurement:
    with psycopg.connect(app_url, autocommit=True) as conn:
        checkpoint = audit.current_checkpoint(conn, tenant)
        rng = random.Random(0)
        seqs = [rng.randrange(checkpoint.size) for _ in range(count)]
        warm = seqs[:min(50, count)]
        baseline.point_select_latencies(conn, tenant, warm)
        base = baseline.point_select_latencies(conn, tenant, seqs)
        for seq in warm:
            audit.entry_proof(conn, tenant, seq)
        samples, answers = [], []
        for seq in seqs:
            started = time.perf_counter()
            answers.append(audit.entry_proof(conn, tenant, seq))
            samples.append(time.perf_counter() - started)
    _check_proofs(answers)
    ours = latency_ms(samples)
    return Measurement(
        "proof_latency", f"inclusion proof latency ({count:,} random seqs, log size "
        f"{checkpoint.size:,})", "ms", latency_ms(base), ours,
        "primary-key SELECT of the entry row", "audit.entry_proof, every proof verified",
        f"p99 ≤ {TARGET_P99_MS:g} ms", ours["p99"] <= TARGET_P99_MS,
        {"proofs": count, "log_size": checkpoint.size})


def _check_proofs(answers: list[audit.EntryProof]) -> None:
    """Every timed proof must verify, or its latency means nothing."""
    for answer in answers:
        try:
            proofs.verify_inclusion(answer.seq, answer.checkpoint.size,
                                    proofs.leaf_hash(answer.entry), answer.proof,
                                    answer.checkpoint.root_hash)
        except proofs.ProofError as e:
            raise BenchError(f"the inclusion proof of seq {answer.seq} does not verify: {e}") from e
