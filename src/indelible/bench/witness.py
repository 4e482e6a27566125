"""`indelible bench witness`: cosigning latency per checkpoint and witness requests/s.

A real `indelible witness serve` runs as a subprocess on 127.0.0.1 (its own process, as an
audit firm would run it), with a fresh key and state directory. Logs are simulated in memory
with the pure proofs module: each checkpoint grows its log by `step` entries, is signed with
a log key, and is submitted with the consistency proof from the previous size.

1. Cosigning latency per checkpoint. Ours: one add-checkpoint round trip on a kept-alive
   connection — the witness parses, verifies the log signature and the consistency proof,
   signs, persists its state (fsync, rename) and answers; the client then verifies the
   cosignature. Baseline: the least any witness does per checkpoint, one raw Ed25519
   verify (the log's signature) plus one sign (the cosignature), in this process.
2. Witness requests/s. Ours: `clients` threads, each feeding its own log (origin) through its
   own connection, for `requests` requests in all. Baseline: the same raw Ed25519
   verify+sign pairs per second on one core of this process.
Request building (tree roots, proofs, log signatures) happens before the clock starts.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from indelible import proofs
from indelible.bench.common import BenchError, Measurement, latency_ms, rate
from indelible.cosigning.client import WitnessClient
from indelible.proofs import AddCheckpoint, Checkpoint, Cosigner, NoteSigner, NoteVerifier
from indelible.proofs.cosignature import split_note, verify_cosignature_line
from indelible.runtime import free_port
from indelible.witness.state import WitnessState


@dataclass(frozen=True)
class WitnessOptions:
    checkpoints: int = 500  # sequential checkpoints timed one by one
    requests: int = 4_000  # requests for the throughput figure
    clients: int = 8  # concurrent connections (one log each)
    step: int = 7  # entries each checkpoint adds


class _Log:
    """A log held in memory: leaves, and add-checkpoint requests as it grows."""

    def __init__(self, signer: NoteSigner, origin: str, step: int):
        self._signer, self._origin, self._step = signer, origin, step
        self._leaves: list[bytes] = []

    def _subtree(self, level: int, index: int) -> bytes:
        span = self._leaves[index << level:(index + 1) << level]
        return proofs.fold_perfect(span) if level else span[0]

    def requests(self, count: int) -> list[tuple[AddCheckpoint, str]]:
        out, old = [], 0
        for _ in range(count):
            self._leaves += [proofs.leaf_hash(b"entry %d" % (len(self._leaves) + i))
                             for i in range(self._step)]
            size = len(self._leaves)
            note = proofs.sign_checkpoint(Checkpoint(self._origin, size, proofs.tree_root(
                size, self._subtree)), self._signer)
            proof = proofs.consistency_proof(old, size, self._subtree) if old else []
            out.append((AddCheckpoint(old, tuple(proof), note), split_note(note)[0]))
            old = size
        return out


def _serve(directory: Path, log_key: str) -> tuple[subprocess.Popen, str, Cosigner]:
    cosigner = Cosigner.generate("bench.witness/w")
    key_file = directory / "witness.key"
    key_file.write_text(cosigner.private_key_text() + "\n")
    key_file.chmod(0o600)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "indelible", "witness", "serve", "--key",
                                str(key_file), "--state", str(directory / "state"), "--log",
                                log_key, "--listen", f"127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/")
            if conn.getresponse().status == 200:
                conn.close()
                return process, f"http://127.0.0.1:{port}", cosigner
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise BenchError("the witness did not start")


def _submit(client: WitnessClient, cosigner: Cosigner, request: AddCheckpoint, body: str):
    reply = client.add_checkpoint(request)
    if reply.status != 200:
        raise BenchError(f"the witness answered {reply.status}: {reply.body.strip()}")
    if verify_cosignature_line(reply.body.splitlines()[0], cosigner.key, body) is None:
        raise BenchError("the witness's answer carries no cosignature from its key")


def _raw_pairs(count: int) -> list[float]:
    """Seconds per raw Ed25519 verify + sign over checkpoint-sized messages."""
    log, witness = NoteSigner.generate("bench.log"), Cosigner.generate("bench.raw")
    note = proofs.sign_checkpoint(Checkpoint("bench.log/raw", 1, bytes(32)), log)
    verifier = NoteVerifier.from_key_text(log.verifier_key_text())
    body = split_note(note)[0]
    samples = []
    for i in range(count):
        started = time.perf_counter()
        proofs.open_note(note, verifier)
        witness.cosign(body, i)
        samples.append(time.perf_counter() - started)
    return samples


def _durable_writes(directory: Path, count: int = 50) -> list[float]:
    """Seconds per state write as the witness does it (write, fsync, rename, fsync dir)."""
    state, samples = WitnessState(directory), []
    for i in range(count):
        started = time.perf_counter()
        state.put(Checkpoint("bench.log/fsync", i, bytes(32)))
        samples.append(time.perf_counter() - started)
    return samples


def run(options: WitnessOptions) -> tuple[list[Measurement], dict]:
    log = NoteSigner.generate("bench.log")
    with tempfile.TemporaryDirectory(prefix="indelible-bench-witness-") as tmp:
        process, url, cosigner = _serve(Path(tmp), log.verifier_key_text())
        try:
            latency = _latency(url, cosigner, log, options)
            throughput, seconds = _throughput(url, cosigner, log, options)
        finally:
            process.terminate()
            process.wait(10)
        durable = latency_ms(_durable_writes(Path(tmp) / "fsync"))
    raw = _raw_pairs(max(options.checkpoints, 2_000))
    raw_rate = rate(len(raw), sum(raw))
    return [
        Measurement("witness_cosign_latency", "Cosigning latency per checkpoint (one "
                    "add-checkpoint round trip)", "ms", latency_ms(raw), latency_ms(latency),
                    "raw Ed25519 verify (log) + sign (cosignature), in process",
                    "HTTP keep-alive request: parse, verify signature and consistency proof, "
                    "sign, fsync state, answer; client verifies the cosignature",
                    details={"checkpoints": len(latency), "entries_per_checkpoint": options.step,
                             "state_write_ms": {k: round(v, 3) for k, v in durable.items()}}),
        Measurement("witness_requests_per_second", "Witness add-checkpoint requests/s",
                    "requests/s", {"rate": raw_rate}, {"rate": throughput},
                    "raw Ed25519 verify + sign pairs/s on one core",
                    f"{options.clients} concurrent clients, one log each, keep-alive",
                    details={"requests": options.requests, "seconds": round(seconds, 3),
                             "clients": options.clients}),
    ], {"witness": url, "state_write_p50_ms": round(durable["p50"], 3)}


def _latency(url: str, cosigner: Cosigner, log: NoteSigner, options: WitnessOptions):
    requests = _Log(log, "bench.log/latency", options.step).requests(options.checkpoints)
    client, samples = WitnessClient(url), []
    try:
        for request, body in requests:
            started = time.perf_counter()
            _submit(client, cosigner, request, body)
            samples.append(time.perf_counter() - started)
    finally:
        client.close()
    return samples


def _throughput(url: str, cosigner: Cosigner, log: NoteSigner,
                options: WitnessOptions) -> tuple[float, float]:
    per_client = max(1, options.requests // options.clients)
    work = [_Log(log, f"bench.log/rate-{i}", options.step).requests(per_client)
            for i in range(options.clients)]
    errors: list[BaseException] = []

    def feed(requests):
        client = WitnessClient(url)
        try:
            for request, body in requests:
                _submit(client, cosigner, request, body)
        except BaseException as e:  # noqa: BLE001 - reported after the run
            errors.append(e)
        finally:
            client.close()

    threads = [threading.Thread(target=feed, args=(w,)) for w in work]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    if errors:
        raise BenchError(f"a client failed: {errors[0]}")
    return rate(per_client * options.clients, seconds), seconds
