"""`indelible bench append`: how fast entries become committed, hashed and Merkle-indexed.

1. Batched throughput. Ours: the real append path, `GroupCommitAppender.submit_batch` from a
   few producer threads in slices of 100, as the stream consumer submits (headline), and
   `append_batch` called directly in fixed batches. The clock runs from the first submit
   until every command has its committed `Appended`.
   Baseline: the same entry bytes (encoded before the clock starts) binary-COPYed into a
   scratch table with the ledger's columns and indexes, one commit per batch of the
   service's `batch_max` rows. It is fair because it is the floor of what any design storing
   these rows with these indexes pays; ours adds encoding, hashing, idempotency and stream
   lookups, Merkle nodes and the log-head update, all inside the measured time.
2. Single-append latency: `GroupCommitAppender.append` one at a time (configured batch_wait
   included, as a lone API call sees it) vs a one-row INSERT + COMMIT of the same row.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psycopg

from indelible.bench import baseline, workload
from indelible.bench.common import BenchError, Measurement, frozen_heap, latency_ms, rate
from indelible.bootstrap import Database
from indelible.store.appender import Appended, append_batch
from indelible.store.group_commit import GroupCommitAppender
from indelible.store.known_streams import KnownStreams
from indelible.store.logs import read_head

# Ours / raw binary COPY in the same run (issue 17). The first issue's 100,000 entries/s is
# above what raw COPY itself reaches on 2 cores (benchmarks/README.md), so the ratio decides.
TARGET_RATIO = 0.5  # group commit
TARGET_BATCH_RATIO = 0.6  # append_batch
PRODUCER_SLICE = 100  # commands per submit_batch call


@dataclass(frozen=True)
class AppendOptions:
    entries: int = 200_000  # per throughput measurement
    producers: int = 4  # threads submitting to the group-commit appender
    batch: int = 2_000  # entries per commit for append_batch and the baseline
    batch_wait: float = 0.0  # seconds; the appender's group-commit window (service default)
    latency_samples: int = 2_000  # sequential single appends
    verifier_key: str | None = None  # set: also measure with the continuous verifier on (A/B)


def run(db: Database, tenant: str, options: AppendOptions) -> tuple[list[Measurement], dict]:
    """Both measurements; returns them and facts about the workload."""
    n = options.entries
    ab = 2 * n if options.verifier_key else 0
    cmds = workload.commands(2 * n + options.latency_samples + ab)
    with psycopg.connect(db.app_url, autocommit=True) as conn:
        origin = read_head(conn, tenant).origin
    rows = list(workload.baseline_rows(tenant, origin, cmds[:n]))
    entry_bytes = sum(len(r[2]) for r in rows) / len(rows)
    with frozen_heap():
        measurements = _throughput(db, tenant, cmds[:n], cmds[n:2 * n], rows, options, entry_bytes)
        measurements.append(_latency(db, tenant, origin, cmds[2 * n:len(cmds) - ab], options))
        if ab:
            measurements.append(_with_verifier(db, tenant, cmds[len(cmds) - ab:], options))
    return measurements, {"entry_bytes_mean": round(entry_bytes, 1)}


def _throughput(db: Database, tenant: str, grouped: list, direct: list, rows: list,
                options: AppendOptions, entry_bytes: float) -> list[Measurement]:
    baseline.recreate_scratch_table(db.owner_url)
    base_rate = rate(len(rows), baseline.copy_in_batches(db.owner_url, rows, options.batch))
    group_rate, commits = _group_commit(db.app_url, tenant, grouped, options)
    direct_rate = _direct(db.app_url, tenant, direct, options.batch)
    base_what = f"binary COPY, commit per {options.batch:,}"
    return [
        Measurement(
            "append_group_commit", f"append throughput, group commit ({options.producers} "
            f"producer threads, {len(grouped):,} entries of {entry_bytes:.0f} B)", "entries/s",
            {"rate": base_rate}, {"rate": group_rate}, base_what,
            f"GroupCommitAppender.submit_batch, {commits:,} commits",
            f"ratio ≥ {TARGET_RATIO}", group_rate >= TARGET_RATIO * base_rate,
            {"entries": len(grouped), "commits": commits,
             "mean_batch": round(len(grouped) / commits)}),
        Measurement(
            "append_batch", f"append throughput, append_batch ({len(direct):,} entries)",
            "entries/s", {"rate": base_rate}, {"rate": direct_rate}, base_what,
            f"append_batch, {options.batch:,} per call", f"ratio ≥ {TARGET_BATCH_RATIO}",
            direct_rate >= TARGET_BATCH_RATIO * base_rate, {"entries": len(direct)}),
    ]


def _latency(db: Database, tenant: str, origin: str, cmds: list,
             options: AppendOptions) -> Measurement:
    baseline.recreate_scratch_table(db.owner_url)
    rows = list(workload.baseline_rows(tenant, origin, cmds))  # the very entries we append
    base = baseline.single_insert_latencies(db.owner_url, rows)
    ours = _single(db.app_url, tenant, cmds, options)
    return Measurement(
        "append_latency", f"single append commit latency ({len(cmds):,} sequential)", "ms",
        latency_ms(base), latency_ms(ours), "one-row INSERT + COMMIT",
        f"GroupCommitAppender.append (batch_wait {options.batch_wait * 1000:g} ms)",
        details={"samples": len(cmds)})


def _group_commit(app_url: str, tenant: str, cmds: list,
                  options: AppendOptions) -> tuple[float, int]:
    """(entries/s, number of commits) for `cmds` submitted from `options.producers` threads."""
    appender = GroupCommitAppender(conninfo=app_url, batch_max=options.batch,
                                   batch_wait=options.batch_wait)
    shares = [cmds[i::options.producers] for i in range(options.producers)]
    futures: list[list] = [[] for _ in shares]

    def produce(i: int) -> None:
        # Bulk producers hand over slices as the stream consumer does (submit_batch: one
        # future per slice); a lone API request uses submit(), measured by the latency
        # benchmark.
        share = shares[i]
        futures[i] = [appender.submit_batch(tenant, share[lo:lo + PRODUCER_SLICE])
                      for lo in range(0, len(share), PRODUCER_SLICE)]

    try:
        started = time.perf_counter()
        threads = [threading.Thread(target=produce, args=(i,)) for i in range(len(shares))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results = [o for share in futures for f in share for o in f.result(timeout=600)]
        seconds = time.perf_counter() - started
    finally:
        appender.close()
    _check_fresh(results, len(cmds))
    # Every entry of one commit carries that transaction's timestamp.
    return rate(len(results), seconds), len({r.recorded_at for r in results})


def _with_verifier(db: Database, tenant: str, cmds: list, options: AppendOptions,
                   rounds: int = 3) -> Measurement:
    """A/B: group commit with the verifier off, then on, `rounds` times back to back on the
    same log (the machine's other load drifts; the medians of the interleaved runs compare
    like with like). The verifier is started and has read everything before each "on" run."""
    from statistics import median

    from indelible.bench.verifier_ab import FollowingVerifier, comparison

    size = len(cmds) // (2 * rounds)
    off, on, lags, cleared, catch_up = [], [], [], [], []
    for r in range(rounds):
        chunk = cmds[2 * r * size:2 * (r + 1) * size]
        off.append(_group_commit(db.app_url, tenant, chunk[:size], options)[0])
        with FollowingVerifier(db.app_url, options.verifier_key, tenant) as verifier:
            on.append(_group_commit(db.app_url, tenant, chunk[size:], options)[0])
            cleared.append(verifier.drain_seconds())
        lags.append(verifier.max_lag)
        catch_up.append(verifier.catch_up_seconds)
    return comparison(
        "append_with_verifier", f"append throughput with continuous verification (median of "
        f"{rounds} interleaved runs of {size:,} entries each way)", "entries/s",
        {"rate": median(off)}, {"rate": median(on)}, "GroupCommitAppender.submit",
        {"entries_per_run": size, "rates_off": [round(x) for x in off],
         "rates_on": [round(x) for x in on], "verifier_max_lag_entries": max(lags),
         "verifier_lag_cleared_seconds_after_run": round(max(cleared), 2),
         "verifier_catch_up_seconds_before_run": round(max(catch_up), 2)})


def _direct(app_url: str, tenant: str, cmds: list, batch: int) -> float:
    known = KnownStreams()  # as an appender keeps it (GroupCommitAppender does)
    with psycopg.connect(app_url, autocommit=True) as conn:
        started = time.perf_counter()
        outcomes = [o for lo in range(0, len(cmds), batch)
                    for o in append_batch(conn, tenant, cmds[lo:lo + batch], known=known)]
        seconds = time.perf_counter() - started
    _check_fresh(outcomes, len(cmds))
    return rate(len(outcomes), seconds)


def _single(app_url: str, tenant: str, cmds: list, options: AppendOptions) -> list[float]:
    appender = GroupCommitAppender(conninfo=app_url, batch_max=options.batch,
                                   batch_wait=options.batch_wait)
    samples, results = [], []
    try:
        for command in cmds:
            started = time.perf_counter()
            results.append(appender.append(tenant, command))
            samples.append(time.perf_counter() - started)
    finally:
        appender.close()
    _check_fresh(results, len(cmds))
    return samples


def _check_fresh(outcomes: list, expected: int) -> None:
    """Every command became a new entry: a refusal or replay would flatter the figure."""
    fresh = sum(1 for o in outcomes if isinstance(o, Appended) and not o.replayed)
    if fresh != expected:
        raise BenchError(f"only {fresh} of {expected} commands became new entries")
