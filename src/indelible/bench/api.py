"""`indelible bench api`: lifecycle transitions over real HTTP with many concurrent clients.

Ours: the service runs as its own `indelible up` process (as in production); `clients`
asyncio clients each take discrepancies from a shared queue and walk them
acknowledged → investigating → resolved, one request at a time; every transition is a
bearer-authenticated request, decided under the log-head lock, appended, projected and
answered. The clock covers the transitions only (the discrepancies are opened before it).
Baseline: the bare ledger in the same run: `clients` threads each appending single entries
through the group-commit appender (no HTTP, no domain, no read model), the rate the ledger
itself sustains at that concurrency.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

from indelible.bench.common import BenchError, Measurement, latency_ms, rate
from indelible.bench.http_client import Connection
from indelible.bootstrap import Database
from indelible.config import Settings
from indelible.entry import Actor, NewEntry
from indelible.runtime import free_port
from indelible.store.api_keys import ApiKeys, issue_command
from indelible.store.appender import append_batch
from indelible.store.group_commit import GroupCommitAppender
from indelible.store.tenants import create_tenant

TARGET_RATIO = 0.5  # of the bare ledger at the same concurrency (issue 17)
TARGET_P99 = 25.0  # ms
WALK = ("acknowledged", "investigating", "resolved")


@dataclass(frozen=True)
class ApiOptions:
    clients: int = 64
    discrepancies: int = 2_000  # each gets len(WALK) transitions
    workers: int = 1  # `indelible up --workers`: service processes sharing the requests
    verifier_ab: bool = False  # also walk with continuous verification off, then on


def run(db: Database, settings: Settings, tenant: str,
        options: ApiOptions) -> tuple[list[Measurement], dict]:
    token = _setup(db, settings, tenant)
    transitions = options.discrepancies * len(WALK)
    base_rate, base_lat = _bare_appends(db.app_url, tenant, transitions, options.clients)
    service = _service(db, settings, options.workers)
    with service as url:
        opened, open_seconds = asyncio.run(_open_all(url, token, options))
        cpu_before = service.cpu_seconds()
        ours_rate, ours_lat = asyncio.run(_walk_all(url, token, opened, options.clients))
        cpu = service.cpu_seconds() - cpu_before
    # The service's CPU per transition moves less with the machine's other load than the
    # rate does: the figure to compare changes by on a shared machine.
    details = {"clients": options.clients, "transitions": transitions,
               "workers": options.workers,
               "service_cpu_ms_per_transition": round(cpu * 1000 / transitions, 3)}
    return [
        Measurement("api_transitions_rate", f"HTTP lifecycle transitions ({options.clients} "
                    f"clients, {transitions:,} transitions)", "transitions/s",
                    {"rate": base_rate}, {"rate": ours_rate},
                    f"bare ledger: single appends from {options.clients} threads",
                    f"POST /v1/discrepancies/{{id}}/transitions, {options.workers} worker(s)",
                    f"ratio ≥ {TARGET_RATIO}", ours_rate >= TARGET_RATIO * base_rate, details),
        Measurement("api_transitions_latency", "HTTP lifecycle transition latency", "ms",
                    base_lat, ours_lat, "one bare ledger append (same concurrency)",
                    "one transition request, end to end", f"p99 ≤ {TARGET_P99:g} ms",
                    ours_lat["p99"] <= TARGET_P99, details),
    ] + (_verifier_ab(db, settings, tenant, token, options) if options.verifier_ab else []), {
        "discrepancies_opened_per_second": round(options.discrepancies / open_seconds)}


def _verifier_ab(db: Database, settings: Settings, tenant: str, token: str,
                 options: ApiOptions) -> list[Measurement]:
    """The same walk against `indelible up` with continuous verification off, then on."""
    from indelible.bench.verifier_ab import comparison

    figures = {}
    for verify in (False, True):
        with _service(db, settings, verify=verify) as url:
            opened, _ = asyncio.run(_open_all(url, token, options))
            if verify:
                _wait_caught_up(url)
            lag = _LagSampler(url, tenant) if verify else None
            figures[verify] = asyncio.run(_walk_all(url, token, opened, options.clients))
            if lag is not None:
                lag.stop()
                cleared = _wait_caught_up(url)
    (off_rate, off_lat), (on_rate, on_lat) = figures[False], figures[True]
    details = {"clients": options.clients, "transitions": options.discrepancies * len(WALK),
               "verifier_max_lag_entries": lag.max_lag,
               "verifier_lag_cleared_seconds_after_run": round(cleared, 2)}
    return [comparison("api_with_verifier", "HTTP lifecycle transitions with continuous "
                       "verification", "transitions/s", {"rate": off_rate}, {"rate": on_rate},
                       "POST /v1/discrepancies/{id}/transitions", details),
            comparison("api_latency_with_verifier", "HTTP transition latency with continuous "
                       "verification", "ms", off_lat, on_lat, "one transition request", details)]


def _lags(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return {line.split('"')[1]: float(line.split()[-1]) for line in text.splitlines()
            if line.startswith("indelible_verifier_lag_entries{")}


def _wait_caught_up(url: str, timeout: float = 1800) -> float:
    started = time.monotonic()
    time.sleep(0.5)  # a progress report from after the last commit
    while True:
        lags = _lags(url)
        if lags and not any(lags.values()):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise BenchError(f"the verifier did not catch up in {timeout:g} s: {lags}")
        time.sleep(0.1)


class _LagSampler:
    def __init__(self, url: str, tenant: str):
        self.max_lag, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, tenant), daemon=True)
        self._thread.start()

    def _run(self, url: str, tenant: str) -> None:
        while not self._stop.wait(0.25):
            self.max_lag = max(self.max_lag, _lags(url).get(tenant, 0.0))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _setup(db: Database, settings: Settings, tenant: str) -> str:
    with psycopg.connect(db.app_url, autocommit=True) as conn:
        create_tenant(conn, tenant, base_origin=settings.base_origin)
        token, entry = issue_command(role="compliance_manager", name="bench api",
                                     by=Actor("bench", "admin", "operator"))
        append_batch(conn, tenant, [entry], model=ApiKeys())
    return token


def _bare_appends(app_url: str, tenant: str, count: int, clients: int) -> tuple[float, dict]:
    appender = GroupCommitAppender(conninfo=app_url)
    samples: list[float] = []
    lock = threading.Lock()
    per_client = count // clients

    def client(worker: int) -> None:
        for i in range(per_client):
            started = time.perf_counter()
            appender.append(tenant, NewEntry(stream=f"bench-bare/{worker}", type="bench.bare",
                                             actor=Actor("bench", "system", "engine"),
                                             data={"i": i}))
            with lock:
                samples.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    appender.close()
    return rate(len(samples), seconds), latency_ms(samples)


class _service:
    """`indelible up` as its own process, on the bench's database and data directory."""

    def __init__(self, db: Database, settings: Settings, workers: int = 1,
                 verify: bool | None = None):
        self.port = free_port()
        env = {**os.environ, "INDELIBLE_DATABASE_URL": db.owner_url,
               "INDELIBLE_DATA_DIR": str(settings.data_dir)}
        if verify is not None:  # A/B: the verifier as asked, its lag readable on /metrics
            env |= {"INDELIBLE_CONTINUOUS_VERIFY": str(verify).lower(),
                    "INDELIBLE_METRICS_PUBLIC": "true"}
        # Output to a file: an unread pipe could fill up and block the server mid-run.
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.log = settings.data_dir / "bench-api-service.log"
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "indelible", "up", "--port", str(self.port),
                 "--workers", str(workers)], env=env,
                stdout=out, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """CPU time used so far by the service and its worker processes (0 without /proc)."""
        pids = [self.process.pid] + [int(p.name) for p in _proc.glob("[0-9]*")
                                     if _stat(p.name)[1] == self.process.pid]
        ticks = os.sysconf("SC_CLK_TCK")
        return sum(sum(_stat(str(pid))[11:13]) / ticks for pid in pids)

    def __enter__(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"indelible up exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self.url
            except httpx.TransportError:
                time.sleep(0.2)
        self.__exit__()
        raise BenchError("indelible up did not become ready within 60 s")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        finally:
            self.process.kill()


_proc = Path("/proc")


def _stat(pid: str) -> list[int]:
    """A process's /proc stat fields from its state on, as numbers ([1]: parent pid,
    [11:13]: user and system CPU ticks); zeros when it is gone or there is no /proc."""
    try:
        text = (_proc / pid / "stat").read_text()
    except OSError:
        return [0] * 13
    return [int(f) if f.lstrip("-").isdigit() else 0 for f in text.rpartition(")")[2].split()]


async def _open_all(url: str, token: str, options: ApiOptions) -> tuple[list[str], float]:
    run_id = os.urandom(4).hex()
    pending = list(range(options.discrepancies))
    opened: list[str] = []

    async def opener(conn: Connection) -> None:
        while pending:
            i = pending.pop()
            status, body = await conn.post("/v1/discrepancies", {
                "external_ref": f"bench-{run_id}-{i}", "source": "bench", "kind": "amount_mismatch",
                "expected_amount": "100.00", "actual_amount": f"{100 + i % 900}.50",
                "currency": "EUR", "detected_at": "2026-11-23T00:00:00Z"})
            _check("open", status, 201, body)
            opened.append(body["id"])

    started = time.perf_counter()
    await _clients(url, token, options.clients, opener)
    return opened, time.perf_counter() - started


async def _walk_all(url: str, token: str, ids: list[str], clients: int) -> tuple[float, dict]:
    pending = list(ids)
    samples: list[float] = []

    async def walker(conn: Connection) -> None:
        while pending:
            discrepancy_id = pending.pop()
            for to in WALK:
                body = {"to": to}
                if to == "resolved":
                    body |= {"resolution_code": "corrected_in_ledger", "note": "benchmark"}
                started = time.perf_counter()
                status, answer = await conn.post(f"/v1/discrepancies/{discrepancy_id}/transitions", body)
                samples.append(time.perf_counter() - started)
                _check(to, status, 200, answer)

    started = time.perf_counter()
    await _clients(url, token, clients, walker)
    return rate(len(samples), time.perf_counter() - started), latency_ms(samples)


async def _clients(url: str, token: str, count: int, work) -> None:
    host, port = url.removeprefix("http://").split(":")
    headers = {"Authorization": f"Bearer {token}"}

    async def one() -> None:
        async with Connection(host, int(port), headers) as conn:
            await work(conn)

    await asyncio.gather(*(one() for _ in range(count)))


def _check(what: str, status: int, expected: int, body: dict) -> None:
    if status != expected:
        raise BenchError(f"{what} answered {status}: {str(body)[:300]}")
