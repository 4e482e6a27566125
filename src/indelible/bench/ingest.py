"""`indelible bench ingest`: messages/s from publish to committed ledger entry.

Ours: the real consumer (on its own thread and event loop, as in the service) and the
group-commit appender with the read models, fed by a publisher in its own process (as the
engines are); the clock starts as the publisher is told to go and stops when the last
discrepancy's opening entry is committed. Baseline in the same run: the
same client library draining an equal number of equally sized messages from a scratch
stream with a pull consumer, acknowledging each: what JetStream consumption alone costs.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from dataclasses import dataclass

import nats
import orjson
import psycopg
from nats.js.api import ConsumerConfig, StreamConfig

from indelible.bench.common import BenchError, Measurement, rate
from indelible.bootstrap import Database, projections
from indelible.config import Settings
from indelible.ingest.consumer import Consumer, IngestConfig
from indelible.ingest.simulate import messages, publish
from indelible.nats_auth import NatsAccess
from indelible.store.group_commit import GroupCommitAppender
from indelible.store.tenants import create_tenant

TARGET_RATIO = 0.5  # of raw consume + ack (issue 17)
RAW_STREAM, RAW_SUBJECT = "BENCH_RAW", "bench.raw"


@dataclass(frozen=True)
class IngestOptions:
    messages: int = 20_000
    workers: int = 1  # consumer processes (each with its own appender) sharing the stream


def run(db: Database, settings: Settings, broker: NatsAccess, tenant: str,
        options: IngestOptions) -> tuple[list[Measurement], dict]:
    with psycopg.connect(db.app_url, autocommit=True) as conn:
        create_tenant(conn, tenant, base_origin=settings.base_origin)
    bodies = messages(tenant, options.messages, matched_share=0)
    size = sum(len(orjson.dumps(b)) for b in bodies) / len(bodies)
    raw_rate = asyncio.run(_raw_consume(broker, [orjson.dumps(b) for b in bodies]))
    ours = _end_to_end(db, settings, broker, tenant, bodies, options.workers)
    return [Measurement(
        "ingest_end_to_end", f"ingestion, publish to committed entry ({options.messages:,} "
        f"messages of {size:.0f} B)", "messages/s", {"rate": raw_rate}, {"rate": ours},
        "raw JetStream pull consume + ack, same client",
        f"NATS -> consumer -> ledger, committed; {options.workers} consumer process(es)",
        f"ratio ≥ {TARGET_RATIO}", ours >= TARGET_RATIO * raw_rate,
        {"messages": options.messages, "workers": options.workers})], {}


async def _raw_consume(broker: NatsAccess, payloads: list[bytes]) -> float:
    nc = await broker.connect()
    try:
        js = nc.jetstream()
        try:
            await js.delete_stream(RAW_STREAM)
        except nats.js.errors.NotFoundError:
            pass
        await js.add_stream(StreamConfig(name=RAW_STREAM, subjects=[RAW_SUBJECT]))
        for lo in range(0, len(payloads), 256):
            await asyncio.gather(*(js.publish(RAW_SUBJECT, p) for p in payloads[lo:lo + 256]))
        sub = await js.pull_subscribe(RAW_SUBJECT, durable="bench-raw", stream=RAW_STREAM,
                                      config=ConsumerConfig(max_ack_pending=50_000))
        started, done = time.perf_counter(), 0
        while done < len(payloads):
            for msg in await sub.fetch(500, timeout=5):
                await msg.ack()
                done += 1
        seconds = time.perf_counter() - started
        await js.delete_stream(RAW_STREAM)
        return rate(done, seconds)
    finally:
        await nc.close()


def _end_to_end(db: Database, settings: Settings, broker: NatsAccess, tenant: str,
                bodies: list, workers: int = 1) -> float:
    consumers = (_InProcess if workers == 1 else _Processes)(db.app_url, settings, broker,
                                                             workers)
    publisher = _Publisher(broker, settings.subject_prefix, bodies)
    try:
        before = _opened(db.app_url, tenant)
        started = publisher.go()
        deadline = time.monotonic() + 600
        while _opened(db.app_url, tenant) < before + len(bodies):
            if time.monotonic() > deadline:
                raise BenchError("ingestion did not finish within 10 minutes")
            time.sleep(0.05)
        return rate(len(bodies), time.perf_counter() - started)
    finally:
        publisher.join()
        consumers.stop()


class _InProcess:
    """One consumer on its own thread and event loop, as inside `indelible up`."""

    def __init__(self, app_url: str, settings: Settings, broker: NatsAccess, _workers: int):
        self._appender = GroupCommitAppender(conninfo=app_url, batch_max=settings.batch_max,
                                             model=projections())
        consumer = Consumer(config=IngestConfig(broker=broker, prefix=settings.subject_prefix),
                            appender=self._appender, conninfo=app_url)
        self._loop, self._stop = asyncio.new_event_loop(), asyncio.Event()
        self._thread = threading.Thread(
            target=lambda: self._loop.run_until_complete(consumer.run(self._stop)))
        self._thread.start()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        self._loop.close()
        self._appender.close()


class _Processes:
    """N consumer processes on the one durable consumer, as `indelible up --workers N` runs
    them: the broker hands each message to one of them."""

    def __init__(self, app_url: str, settings: Settings, broker: NatsAccess, workers: int):
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._processes = [context.Process(target=_consume_until, daemon=True, args=(
            app_url, settings.batch_max, broker, settings.subject_prefix, self._stop))
            for _ in range(workers)]
        for process in self._processes:
            process.start()

    def stop(self) -> None:
        self._stop.set()
        for process in self._processes:
            process.join(60)


def _consume_until(app_url: str, batch_max: int, broker: NatsAccess, prefix: str, stop) -> None:
    appender = GroupCommitAppender(conninfo=app_url, batch_max=batch_max, model=projections())
    consumer = Consumer(config=IngestConfig(broker=broker, prefix=prefix), appender=appender,
                        conninfo=app_url)

    async def until_told() -> None:
        stopping = asyncio.Event()
        task = asyncio.ensure_future(consumer.run(stopping))
        while not stop.is_set():
            await asyncio.sleep(0.05)
        stopping.set()
        await task

    try:
        asyncio.run(until_told())
    finally:
        appender.close()


class _Publisher:
    """The engines publish from their own process, as in production: a publisher sharing the
    consumer's interpreter (and GIL) would be measured as part of the ingestion."""

    def __init__(self, broker: NatsAccess, prefix: str, bodies: list):
        context = multiprocessing.get_context("spawn")
        self._ready, self._start = context.Event(), context.Event()
        self._process = context.Process(target=_publish_when_told, daemon=True,
                                        args=(broker, prefix, bodies, self._ready, self._start))
        self._process.start()
        if not self._ready.wait(60):
            raise BenchError("the publisher process did not start")

    def go(self) -> float:
        """Start publishing; the clock starts now."""
        started = time.perf_counter()
        self._start.set()
        return started

    def join(self) -> None:
        self._process.join(60)
        if self._process.exitcode != 0:
            raise BenchError(f"the publisher process failed (exit {self._process.exitcode})")


def _publish_when_told(broker: NatsAccess, prefix: str, bodies: list, ready, start) -> None:
    ready.set()  # imports done; connecting is part of what the engines do, so it is timed
    start.wait()
    asyncio.run(publish(broker, prefix, bodies))


def _opened(app_url: str, tenant: str) -> int:
    with psycopg.connect(app_url) as conn, conn.transaction():
        conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))
        return conn.execute("SELECT count(*) FROM discrepancies WHERE tenant_id = %s",
                            (tenant,)).fetchone()[0]
