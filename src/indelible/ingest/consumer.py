"""The JetStream consumer: messages in, ledger entries out, nothing lost.

For each fetched batch:
  1. parse every message (contract.py); a broken one is dead-lettered with its reason;
  2. an unknown tenant is dead-lettered too;
  3. each tenant's messages become Decisions, in message order, handed to the appender in one
     submit, so a `matched` is judged after a `detected` of the same batch;
  4. a message is acknowledged only after its entry is committed, or after it is safely in the
     dead-letter stream. A `matched` whose `detected` has not arrived yet is redelivered later
     (NAK with delay), never dropped; a failure the store reports is retried, and a message
     that fails MAX_FAILED_DELIVERIES times is dead-lettered.
Redeliveries and republished messages add nothing: a detection is decided against the
discrepancy its (source, external_ref) opened, so an identical one adds nothing and one with
different amounts, currency or kind is recorded as an amendment; closes replay by their own
idempotency key, dead letters by the message's stream sequence.

The consumer never stops by itself: a session that fails (broker unreachable at start, the
durable consumer or stream deleted, a bug) is logged and started again with a growing
backoff, and `status` (read by /readyz and /metrics) says it is down meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import nats
import psycopg
from nats.js.api import ConsumerConfig
from nats.js.errors import NotFoundError

from indelible import domain
from indelible.entry import Actor, NewEntry
from indelible.ingest.contract import ContractError, Detected, Matched, parse_message
from indelible.ingest.status import PROGRESS_LOGGER, IngestStatus, ProgressReport
from indelible.ingest.streams import (  # noqa: F401
    DLQ_PREFIX,
    DLQ_STREAM,
    DURABLE,
    STREAM,
    ensure_streams,
    replicas_for,
)
from indelible.nats_auth import NatsAccess
from indelible.store import discrepancies as store
from indelible.store.appender import Appended
from indelible.store.group_commit import GroupCommitAppender
from indelible.store.errors import (
    AppendRefusedError,
    IdempotencyConflictError,
    StoreUnavailableError,
)
from indelible.usecases import discrepancies
from indelible.usecases.principal import Principal

log = logging.getLogger(__name__)
progress_log = logging.getLogger(PROGRESS_LOGGER)

MAX_FAILED_DELIVERIES = 3
MATCH_WAIT_DELIVERIES = 30  # a `matched` waits this many redeliveries for its `detected`
RETRY_DELAY = 1.0  # seconds before a NAKed message comes back
BACKOFF = (0.5, 30.0)  # seconds: first and longest wait before restarting a failed consumer
HEALTHY_AFTER = 60.0  # seconds a session must last for the backoff to start over
MONITOR_EVERY = 2.0  # seconds between looks at the stream's backlog


@dataclass
class IngestConfig:
    broker: NatsAccess
    prefix: str = "recon.discrepancies"  # subjects are "<prefix>.<tenant>"
    batch: int = 500  # messages per fetch
    known_tenants: set[str] = field(default_factory=set)


class ConsumerLostError(RuntimeError):
    """The durable consumer or its stream vanished under us: start over."""


class Consumer:
    def __init__(self, *, config: IngestConfig, appender: GroupCommitAppender, conninfo: str,
                 status: IngestStatus | None = None):
        self._config = config
        self._appender = appender
        self._conninfo = conninfo
        self._lookups: psycopg.Connection | None = None
        self.stream_tag = STREAM
        self.status = status or IngestStatus()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop`; whatever breaks a session (the broker refuses us, the
        consumer is deleted, a bug) is logged and the session starts over after a backoff."""
        wait = BACKOFF[0]
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    await self._session(stop)
                except Exception as e:  # noqa: BLE001 - the consumer must not die quietly
                    log.exception("ingestion failed; restarting in %.1f s", wait)
                    self.status.set_state("restarting", f"{type(e).__name__}: {e}")
                    if time.monotonic() - started > HEALTHY_AFTER:
                        wait = BACKOFF[0]
                    await _sleep_unless(stop, wait)
                    wait = min(wait * 2, BACKOFF[1])
                    self.status.count(restarts=1)
        finally:
            if self._lookups is not None:
                self._lookups.close()

    async def _session(self, stop: asyncio.Event) -> None:
        nc = await self._config.broker.connect(max_reconnect_attempts=-1,
                                               reconnect_time_wait=0.5, name="indelible-ingest")
        monitor = None
        try:
            js = nc.jetstream()
            await ensure_streams(js, self._config.prefix, replicas=replicas_for(nc))
            self.stream_tag = await stream_tag(js)
            sub = await js.pull_subscribe(
                f"{self._config.prefix}.*", durable=DURABLE, stream=STREAM,
                config=ConsumerConfig(ack_wait=60, max_ack_pending=50_000))
            monitor = asyncio.create_task(self._monitor(js))
            while not stop.is_set():
                if monitor.done():
                    monitor.result()  # raises what stopped it
                await self._fetch_and_handle(js, sub)
        finally:
            if monitor is not None:
                monitor.cancel()
            await nc.close()

    async def _fetch_and_handle(self, js, sub) -> None:
        try:
            msgs = await sub.fetch(self._config.batch, timeout=0.5)
        except TimeoutError:  # nothing to fetch (nats' own TimeoutError is a subclass)
            return
        except (nats.errors.ConnectionClosedError, nats.errors.NoRespondersError,
                nats.js.errors.ServiceUnavailableError) as e:
            log.warning("fetch failed (%s); retrying", e)
            await asyncio.sleep(RETRY_DELAY)
            return
        try:
            await self._handle(js, msgs)
        except (psycopg.OperationalError, StoreUnavailableError) as e:
            # The database is away: not the messages' fault, and they all come back.
            log.warning("batch failed (%r); %d messages will be redelivered", e, len(msgs))
            for msg in msgs:
                await _nak_quietly(msg)
            await asyncio.sleep(RETRY_DELAY)
        except Exception:  # noqa: BLE001 - one bad message must not hold back the others
            log.exception("batch of %d failed; taking its messages one at a time", len(msgs))
            for msg in msgs:
                await self._handle_alone(js, msg)

    async def _handle_alone(self, js, msg) -> None:
        """One message of a failed batch: a message that keeps failing on its own is the
        poison, and is dead-lettered after MAX_FAILED_DELIVERIES, never retried forever."""
        try:
            await self._handle(js, [msg])
        except (psycopg.OperationalError, StoreUnavailableError):
            await _nak_quietly(msg)
        except Exception as e:  # noqa: BLE001 - see above
            attempts = msg.metadata.num_delivered
            if attempts < MAX_FAILED_DELIVERIES:
                await _nak_quietly(msg)
                return
            tenant = msg.subject.rsplit(".", 1)[-1]
            known = tenant if tenant in self._config.known_tenants else None
            await self._dead_letter(js, msg, f"failed {attempts} deliveries: {e!r}"[:2000], known)

    async def _monitor(self, js) -> None:
        """Report the backlog, and progress to the log. A fetch cannot tell a deleted consumer
        from an idle one (it just times out), so a consumer or stream gone missing is noticed
        here."""
        progress = ProgressReport(self.status)
        while True:
            try:
                await js.consumer_info(STREAM, DURABLE)
                info = await js.stream_info(STREAM)
                self.status.set_backlog(info.state.messages, await _oldest_age(js, info))
                line = progress.line(time.monotonic())
                if line:
                    progress_log.info(line)
            except NotFoundError as e:
                raise ConsumerLostError(f"stream {STREAM} or its consumer {DURABLE} is gone: "
                                        f"{e}") from e
            except (TimeoutError, nats.errors.Error) as e:
                self.status.set_state("reconnecting", f"the broker does not answer: {e!r}")
            await asyncio.sleep(MONITOR_EVERY)

    async def _handle(self, js, msgs) -> None:
        subject_tenants = {msg.subject.rsplit(".", 1)[-1] for msg in msgs}
        known = await self._known(subject_tenants)
        by_tenant: dict[str, list] = {}
        for msg in msgs:
            tenant = msg.subject.rsplit(".", 1)[-1]
            try:
                message = parse_message(msg.data, subject_tenant=tenant)
            except ContractError as e:
                await self._dead_letter(js, msg, str(e), tenant if tenant in known else None)
                continue
            if tenant not in known:
                await self._dead_letter(js, msg, f"unknown tenant {tenant!r}", None)
                continue
            by_tenant.setdefault(tenant, []).append((msg, message))
        for tenant, items in by_tenant.items():
            await self._append(js, tenant, items)

    async def _known(self, tenants: set[str]) -> set[str]:
        """Which of `tenants` exist. Known ones are remembered; the rest are asked about in
        one query per batch on the kept lookup connection, off the event loop: a flood for a
        tenant that does not exist costs a query per batch, not a connection per message.
        Unknown answers are not remembered, so a tenant created a moment ago is found."""
        known = self._config.known_tenants
        ask = sorted(tenants - known)
        if ask:
            known.update(await asyncio.to_thread(self._existing_tenants, ask))
        return tenants & known

    def _existing_tenants(self, tenants: list[str]) -> set[str]:
        conn = self._lookup_connection()
        try:
            rows = conn.execute("SELECT tenant_id FROM tenants WHERE tenant_id = ANY(%s)",
                                (tenants,)).fetchall()
        except psycopg.Error:
            self._lookups = None  # reconnect next time; the batch is redelivered
            conn.close()
            raise
        return {r[0] for r in rows}

    async def _append(self, js, tenant: str, items: list) -> None:
        ids = await asyncio.to_thread(self._look_up, tenant, items)
        submitted, waiting = [], []
        for (msg, message), discrepancy_id in zip(items, ids):
            if discrepancy_id is None:
                waiting.append(msg)
                continue
            try:
                submitted.append((msg, _decision(tenant, message, discrepancy_id)))
            except domain.InvalidCommandError as e:
                await self._dead_letter(js, msg, str(e), tenant)
        for msg in waiting:  # a `matched` before its `detected`
            attempts = msg.metadata.num_delivered
            if attempts >= MATCH_WAIT_DELIVERIES:
                await self._dead_letter(js, msg, "no discrepancy was detected for this source "
                                        f"and external_ref after {attempts} deliveries", tenant)
            else:
                await msg.nak(delay=RETRY_DELAY)
        # One future for the batch: the loop wakes once when it commits, not per message.
        outcomes = await asyncio.wrap_future(
            self._appender.submit_batch(tenant, [d for _, d in submitted]))
        for (msg, _), outcome in zip(submitted, outcomes):
            await self._settle(js, tenant, msg, outcome)

    def _look_up(self, tenant: str, items: list) -> list[str | None]:
        """The discrepancy each message is about: a new id for a detection (the appender
        decides a known one against what its open key opened), the recorded one for a
        match (None: not detected yet). The severity policy is read by the appender, under
        the log-head lock."""
        in_batch: dict[tuple[str, str], str] = {}
        ids: list[str | None] = []
        fresh = iter(store.new_ids(sum(isinstance(message, Detected) for _, message in items)))
        conn = self._lookup_connection()
        try:
            for _, message in items:
                if isinstance(message, Detected):
                    if message.ref not in in_batch:
                        in_batch[message.ref] = next(fresh)
                    ids.append(in_batch[message.ref])
                else:
                    found = store.find_by_ref(conn, tenant, *message.ref)
                    ids.append(found or in_batch.get(message.ref))
        except psycopg.Error:
            self._lookups = None  # reconnect next time; the batch is redelivered
            conn.close()
            raise
        return ids

    def _lookup_connection(self) -> psycopg.Connection:
        """One connection for the batch lookups, kept: connecting per batch cost more than
        the lookups. The consumer awaits each lookup, so it serves one batch at a time."""
        if self._lookups is None or self._lookups.closed:
            self._lookups = psycopg.connect(self._conninfo, autocommit=True)
        return self._lookups

    async def _settle(self, js, tenant: str, msg, outcome) -> None:
        try:
            if isinstance(outcome, BaseException):
                raise outcome
        except store.DomainRefusedError as e:
            await self._dead_letter(js, msg, str(e.error), tenant)
            return
        except AppendRefusedError as e:
            await self._dead_letter(js, msg, str(e), tenant)
            return
        except StoreUnavailableError as e:
            # Not the message's fault: retry until the database is back, never dead-letter.
            log.warning("store unavailable, delivery %d will be retried: %s",
                        msg.metadata.num_delivered, e)
            await msg.nak(delay=RETRY_DELAY)
            return
        except Exception as e:  # noqa: BLE001 - this message fails: retry, then dead-letter
            attempts = msg.metadata.num_delivered
            if attempts >= MAX_FAILED_DELIVERIES:
                await self._dead_letter(js, msg, f"failed {attempts} deliveries: {e}", tenant)
            else:
                log.warning("append failed (delivery %d), will retry: %s", attempts, e)
                await msg.nak(delay=RETRY_DELAY)
            return
        if isinstance(outcome, Appended):
            await msg.ack()
            self.status.count(processed=1)

    async def _dead_letter(self, js, msg, reason: str, tenant: str | None) -> None:
        """Keep the original bytes and headers with the reason; then acknowledge."""
        await self.record_dead_letter(js, msg, reason, tenant)
        await msg.ack()
        self.status.count(dead_lettered=1)
        log.info("dead-lettered stream seq %s: %s", msg.metadata.sequence.stream, reason)

    async def record_dead_letter(self, js, msg, reason: str, tenant: str | None) -> None:
        """Publish to the dead-letter stream and record the ledger entry, both keyed by the
        message (stream incarnation and sequence): a redelivery of a message whose dead
        letter was already recorded (the acknowledgement was lost: a crash, a broker
        restart) finds its entry and moves on, whatever attempt count or reason it carries
        now. Refusing it as a conflict would fail, and redeliver, its whole batch forever."""
        attempts, seq = msg.metadata.num_delivered, msg.metadata.sequence.stream
        key = f"dlq:{self.stream_tag}:{seq}"
        headers = {**(msg.headers or {}), "Indelible-Reason": reason[:2000],
                   "Indelible-Attempts": str(attempts), "Indelible-Subject": msg.subject,
                   "Indelible-Stream-Seq": str(seq), "Nats-Msg-Id": key}
        ack = await js.publish(f"{DLQ_PREFIX}.{tenant or '_unknown'}", msg.data, headers=headers)
        if tenant is None:
            return
        entry = NewEntry(
            stream="ingest/dead-letters", type="ingest.dead_lettered",
            actor=Actor("ingest:nats", "system", "engine"), idempotency_key=key,
            data={"subject": msg.subject, "stream_seq": seq, "reason": reason[:2000],
                  "attempts": attempts, "dlq_seq": ack.seq,
                  "payload_sha256": hashlib.sha256(msg.data).hexdigest()})
        try:
            await asyncio.wrap_future(self._appender.submit(tenant, entry))
        except IdempotencyConflictError as e:
            if e.key != key:
                raise
            log.info("stream seq %s was already dead-lettered (ledger seq %s)", seq, e.seq)


async def _nak_quietly(msg) -> None:
    try:
        await msg.nak(delay=RETRY_DELAY)
    except Exception:  # noqa: BLE001 - not acknowledged either way: it will be redelivered
        log.debug("NAK failed", exc_info=True)


def _decision(tenant: str, message: Detected | Matched, discrepancy_id: str):
    """The use case a message asks for, as the engine that sent it."""
    if isinstance(message, Detected):
        engine = Principal(tenant, f"engine:{message.command.source}", "system", "system")
        return discrepancies.report_decision(engine, message.command, new_id=discrepancy_id)
    engine = Principal(tenant, f"engine:{message.source}", "system", "system")
    return discrepancies.close_as_matched_decision(
        engine, discrepancy_id, source=message.source, external_ref=message.external_ref,
        matched_at=message.matched_at, reason=message.reason)


async def stream_tag(js) -> str:
    """The stream and its creation time: sequences restart if the stream is ever recreated,
    and dead-letter keys from two incarnations must not collide."""
    return f"{STREAM}@{(await js.stream_info(STREAM)).created}"


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


async def _oldest_age(js, info) -> float:
    """Seconds the oldest message in the work queue has waited: every message still in it is
    unacknowledged, so the first one is the oldest."""
    if not info.state.messages:
        return 0.0
    try:
        raw = await js.get_msg(STREAM, info.state.first_seq)
    except NotFoundError:  # acknowledged meanwhile
        return 0.0
    if raw.time is None:
        return 0.0
    return max(0.0, (datetime.now(timezone.utc) - raw.time).total_seconds())
