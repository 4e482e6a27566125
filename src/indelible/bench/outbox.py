"""`indelible bench outbox`: what the transactional outbox costs and how fast it delivers.

1. Delivery throughput: `events` entries that each owe a hub event (`verification.failed`
   on a bench stream) are appended through the group-commit appender with the outbox hook;
   the clock runs from the first submit until a local receiver on 127.0.0.1 has
   acknowledged every event, so it covers the commit, the NOTIFY, claiming, rendering,
   signing, the POST and the answer (recording the outcome entries overlaps it and is
   awaited afterwards). Baseline: the same HTTP client, with the same concurrency, posting
   the same bodies with the same signed headers straight to the same receiver.
2. Append latency the outbox adds: single appends of such entries, one at a time, with the
   hook on (the row and a NOTIFY in the appending transaction) and no dispatcher, then with
   a dispatcher delivering each event and recording its outcome in the same process (it
   shares the appender and the cores), vs with the flags off (baseline: an appender without
   the hook, its appends alternating with ours, so drifting load weighs on both alike).
3. Append latency with the receiver hanging (every request held past the timeout, all
   senders busy) vs the flags off: the ledger must not notice. The receiver then answers
   again and the bench waits until every event is delivered, leaving nothing queued.

The bench's rows are queued for the integration `bench`, which no service dispatcher
claims: a benchmark never sends anything to a configured hub or feed.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import psycopg

from indelible.bench.common import BenchError, Measurement, latency_ms, rate
from indelible.bootstrap import Database, projections
from indelible.config import Integration, OutboundSettings
from indelible.entry import Actor, NewEntry
from indelible.outbound import webhooks
from indelible.outbound.dispatcher import Dispatcher
from indelible.outbound.hook import OutboxHook
from indelible.runtime import free_port
from indelible.store.appender import Appended
from indelible.store.group_commit import GroupCommitAppender

BENCH = "bench"
ACTOR = Actor("bench:outbox", "system", "system")
WAIT = 600.0  # seconds the bench waits for deliveries before it gives up


@dataclass(frozen=True)
class OutboxOptions:
    events: int = 2_000
    latency_samples: int = 300
    concurrency: int = 4  # requests in flight (the service's default)
    hang_timeout: float = 2.0  # seconds: the request timeout while the receiver hangs


class _BenchHook(OutboxHook):
    """The service's hook, queuing the hub's events for the bench's own lane."""

    def rows(self, tenant, written):
        for row in super().rows(tenant, written):
            yield row.__class__(row.tenant, BENCH, row.event, row.source_seq, row.stream,
                                row.webhook_id.replace("msg_hub_", "msg_bench_"))


class _Receiver:
    """A local receiver: acknowledges each request (200), or holds it `hang` seconds."""

    def __init__(self):
        self.port, self.ids, self.hang = free_port(), set(), 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as any hub would serve

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length", 0)))
                if receiver.hang:
                    time.sleep(receiver.hang)
                with receiver.lock:
                    receiver.ids.add(self.headers.get("webhook-id"))
                try:
                    self.send_response(200)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hub"

    def count(self) -> int:
        with self.lock:
            return len(self.ids)

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + WAIT
        while self.count() < count:
            if time.monotonic() > deadline:
                raise BenchError(f"only {self.count()} of {count} events arrived in {WAIT:.0f} s")
            time.sleep(0.002)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _entry(i: int, run: str) -> NewEntry:
    return NewEntry(stream=f"bench/outbox-{run}", type="verification.failed", actor=ACTOR,
                    data={"message": f"benchmark event {i}", "first_bad_seq": i})


def run(db: Database, tenant: str, options: OutboxOptions) -> tuple[list[Measurement], dict]:
    receiver, secret = _Receiver(), webhooks.new_secret()
    run_id = str(int(time.time() * 1000))
    config = OutboundSettings(hub=Integration(BENCH, receiver.url, (secret,)),
                              concurrency=options.concurrency, poll=0.5)
    samples = options.latency_samples
    try:
        ours_rate, delivered = _through_outbox(db, tenant, receiver, config, options, run_id)
        bodies = _bodies(db, tenant, run_id)
        base_rate = _direct(receiver, secret, bodies, options.concurrency)
        hook = _interleaved(db, tenant, config, samples, f"{run_id}-hook", deliver=False)
        on = _interleaved(db, tenant, config, samples, f"{run_id}-on")
        hanging = _hanging(db, tenant, config, receiver, options, run_id)
    finally:
        receiver.close()
    n = options.events
    return [
        Measurement("outbox_delivery", f"events/s from committed entry to acknowledged delivery "
                    f"({n:,} events, {options.concurrency} in flight)", "events/s",
                    {"rate": base_rate}, {"rate": ours_rate},
                    "the same client posting the same signed bodies directly",
                    "append → outbox row → dispatcher → receiver's 200",
                    details={"events": n, "outcome_entries": delivered}),
        _latency("outbox_append_latency", "single append of an entry that owes an event: the "
                 "outbox row written in its transaction", hook,
                 "hook on (row + NOTIFY in the transaction), no dispatcher"),
        _latency("outbox_append_latency_delivering", "single append while the dispatcher "
                 "delivers each event and records its outcome (same process)", on,
                 "hook on, dispatcher delivering"),
        _latency("outbox_append_latency_hub_hanging", "single append while every request to "
                 "the receiver hangs past the timeout", hanging, "hook on, receiver hanging",
                 "within noise of the flags off"),
    ], {"concurrency": options.concurrency}


def _latency(name: str, title: str, pair: tuple[list[float], list[float]], ours_what: str,
             target: str | None = None) -> Measurement:
    off, on = pair
    return Measurement(name, title, "ms", latency_ms(off), latency_ms(on),
                       "flags off: nothing queued (interleaved with ours)", ours_what, target,
                       details={"samples": len(on)})


def _hanging(db, tenant, config, receiver, options, run_id) -> tuple[list[float], list[float]]:
    receiver.hang = options.hang_timeout * 3
    hanging = OutboundSettings(hub=config.hub, concurrency=options.concurrency,
                               timeout=options.hang_timeout, poll=0.5,
                               schedule=(0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5))
    quiet = logging.getLogger("indelible.outbound.dispatcher")
    level, _ = quiet.level, quiet.setLevel(logging.ERROR)  # timeouts are the point here
    try:
        return _interleaved(db, tenant, hanging, options.latency_samples, f"{run_id}-hang",
                            receiver=receiver)
    finally:
        quiet.setLevel(level)


def _through_outbox(db, tenant, receiver, config, options, run_id) -> tuple[float, int]:
    appender = GroupCommitAppender(conninfo=db.app_url, model=projections(),
                                   hooks=[_BenchHook(["hub"])])
    dispatcher = Dispatcher(conninfo=db.app_url, appender=appender, settings=config).start()
    try:
        before = receiver.count()
        started = time.perf_counter()
        outcomes = appender.submit_batch(tenant, [_entry(i, run_id)
                                                  for i in range(options.events)]).result(WAIT)
        if not all(isinstance(o, Appended) for o in outcomes):
            raise BenchError(f"an append failed: {next(o for o in outcomes if not isinstance(o, Appended))}")
        receiver.wait_for(before + options.events)
        elapsed = time.perf_counter() - started
        delivered = _wait_recorded(db, tenant, options.events, run_id)
    finally:
        dispatcher.stop()
        appender.close()
    return rate(options.events, elapsed), delivered


def _wait_recorded(db, tenant: str, count: int, run_id: str) -> int:
    """Every event's row delivered (its outcome entry committed with it)."""
    deadline = time.monotonic() + WAIT
    with psycopg.connect(db.app_url, autocommit=True) as conn:
        while True:
            (done,) = conn.execute(
                "SELECT count(*) FROM outbox WHERE tenant_id = %s AND integration = %s AND "
                "state = 'delivered' AND stream_id = %s", (tenant, BENCH, f"bench/outbox-{run_id}")
            ).fetchone()
            if done >= count:
                return done
            if time.monotonic() > deadline:
                raise BenchError(f"{done} of {count} deliveries recorded in {WAIT:.0f} s")
            time.sleep(0.05)


def _bodies(db, tenant: str, run_id: str) -> list[tuple[str, bytes]]:
    with psycopg.connect(db.app_url, autocommit=True) as conn:
        rows = conn.execute("SELECT webhook_id, body FROM outbox WHERE tenant_id = %s AND "
                            "integration = %s AND stream_id = %s ORDER BY id",
                            (tenant, BENCH, f"bench/outbox-{run_id}")).fetchall()
    return [(f"{w}-direct", bytes(b)) for w, b in rows]


def _direct(receiver: _Receiver, secret: str, bodies: list, concurrency: int) -> float:
    """The baseline: the dispatcher's HTTP client setup, posting straight to the receiver."""
    client = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=concurrency))
    before = receiver.count()

    def post(item):
        webhook_id, body = item
        headers = webhooks.headers([secret], webhook_id, int(time.time()), body)
        if client.post(receiver.url, content=body, headers=headers).status_code != 200:
            raise BenchError("the receiver refused a direct post")
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(post, bodies))
        receiver.wait_for(before + len(bodies))
        return rate(len(bodies), time.perf_counter() - started)
    finally:
        client.close()


def _interleaved(db, tenant: str, config: OutboundSettings, samples: int, run_id: str,
                 receiver: _Receiver | None = None, deliver: bool = True
                 ) -> tuple[list[float], list[float]]:
    """Single appends timed one by one, alternately through an appender with the flags off
    and one with the hook (and, if `deliver`, a dispatcher): a machine whose load drifts
    weighs on both alike. Afterwards every event queued is delivered, so the bench leaves
    nothing in the queue. Returns (flags off, ours)."""
    plain = GroupCommitAppender(conninfo=db.app_url, model=projections())
    hooked = GroupCommitAppender(conninfo=db.app_url, model=projections(),
                                 hooks=[_BenchHook(["hub"])])
    dispatcher = None
    try:
        if deliver:
            dispatcher = Dispatcher(conninfo=db.app_url, appender=hooked,
                                    settings=config).start()
        hang = receiver is not None and receiver.hang
        if hang:
            hooked.append(tenant, _entry(-1, run_id))  # occupy the senders first
            time.sleep(0.5)
        off, on = [], []
        for i in range(2 * samples):
            appender, timings = (plain, off) if i % 2 else (hooked, on)
            started = time.perf_counter()
            appender.append(tenant, _entry(i, run_id))
            timings.append(time.perf_counter() - started)
        if hang:
            receiver.hang = 0.0  # answer again
        if dispatcher is None:
            dispatcher = Dispatcher(conninfo=db.app_url, appender=hooked, settings=config).start()
        _wait_recorded(db, tenant, samples + (1 if hang else 0), run_id)
        return off, on
    finally:
        if dispatcher is not None:
            dispatcher.stop()
        plain.close()
        hooked.close()
