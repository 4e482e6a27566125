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
idempotency key.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field

import nats
import orjson
import psycopg
from nats.js.api import ConsumerConfig, DiscardPolicy, StorageType, StreamConfig

from indelible import domain
from indelible.entry import Actor, NewEntry
from indelible.ingest.contract import ContractError, Detected, Matched, parse_message
from indelible.nats_auth import NatsAccess
from indelible.store import discrepancies as store
from indelible.store.appender import Appended, GroupCommitAppender
from indelible.store.errors import AppendRefusedError, StoreUnavailableError

log = logging.getLogger(__name__)

STREAM, DLQ_STREAM, DURABLE = "RECON", "RECON_DLQ", "indelible-ingest"
DLQ_PREFIX = "indelible.dlq"
MAX_FAILED_DELIVERIES = 3
MATCH_WAIT_DELIVERIES = 30  # a `matched` waits this many redeliveries for its `detected`
RETRY_DELAY = 1.0  # seconds before a NAKed message comes back
DAY = 24 * 3600


@dataclass
class IngestConfig:
    broker: NatsAccess
    prefix: str = "recon.discrepancies"  # subjects are "<prefix>.<tenant>"
    batch: int = 500  # messages per fetch
    known_tenants: set[str] = field(default_factory=set)


async def ensure_streams(js, prefix: str) -> None:
    """Create the streams if missing. Limits: a week of messages (the engines can replay
    further back), 1 MiB per message (the contract allows 64 KiB; bigger ones still arrive, to
    be dead-lettered with a reason), two minutes of publish de-duplication by Nats-Msg-Id."""
    await js.add_stream(StreamConfig(
        name=STREAM, subjects=[f"{prefix}.*"], storage=StorageType.FILE, max_age=7 * DAY,
        max_msg_size=1024 * 1024, discard=DiscardPolicy.OLD, duplicate_window=120))
    await js.add_stream(StreamConfig(
        name=DLQ_STREAM, subjects=[f"{DLQ_PREFIX}.>"], storage=StorageType.FILE,
        max_age=90 * DAY, max_msg_size=2 * 1024 * 1024))


class Consumer:
    def __init__(self, *, config: IngestConfig, appender: GroupCommitAppender, conninfo: str):
        self._config = config
        self._appender = appender
        self._conninfo = conninfo
        self._lookups: psycopg.Connection | None = None

    async def run(self, stop: asyncio.Event) -> None:
        nc = await self._config.broker.connect(max_reconnect_attempts=-1,
                                               reconnect_time_wait=0.5, name="indelible-ingest")
        try:
            js = nc.jetstream()
            await ensure_streams(js, self._config.prefix)
            sub = await js.pull_subscribe(
                f"{self._config.prefix}.*", durable=DURABLE, stream=STREAM,
                config=ConsumerConfig(ack_wait=60, max_ack_pending=50_000))
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(self._config.batch, timeout=0.5)
                except TimeoutError:  # nothing to fetch (nats' own TimeoutError is a subclass)
                    continue
                except (nats.errors.ConnectionClosedError, nats.errors.NoRespondersError,
                        nats.js.errors.ServiceUnavailableError) as e:
                    log.warning("fetch failed (%s); retrying", e)
                    await asyncio.sleep(RETRY_DELAY)
                    continue
                try:
                    await self._handle(js, msgs)
                except Exception as e:  # noqa: BLE001 - e.g. the database is away
                    # Whatever was not acknowledged comes back; the loop must go on.
                    log.warning("batch failed (%r); %d messages will be redelivered", e, len(msgs))
                    for msg in msgs:
                        await _nak_quietly(msg)
                    await asyncio.sleep(RETRY_DELAY)
        finally:
            await nc.close()
            if self._lookups is not None:
                self._lookups.close()

    async def _handle(self, js, msgs) -> None:
        by_tenant: dict[str, list] = {}
        for msg in msgs:
            tenant = msg.subject.rsplit(".", 1)[-1]
            try:
                message = parse_message(msg.data, subject_tenant=tenant)
            except ContractError as e:
                await self._dead_letter(js, msg, str(e), tenant if self._known(tenant) else None)
                continue
            if not self._known(tenant):
                await self._dead_letter(js, msg, f"unknown tenant {tenant!r}", None)
                continue
            by_tenant.setdefault(tenant, []).append((msg, message))
        for tenant, items in by_tenant.items():
            await self._append(js, tenant, items)

    def _known(self, tenant: str) -> bool:
        known = self._config.known_tenants
        if tenant not in known:
            with psycopg.connect(self._conninfo) as conn:
                if conn.execute("SELECT 1 FROM tenants WHERE tenant_id = %s", (tenant,)).fetchone():
                    known.add(tenant)
        return tenant in known

    async def _append(self, js, tenant: str, items: list) -> None:
        ids = await asyncio.to_thread(self._look_up, tenant, items)
        submitted, waiting = [], []
        for (msg, message), discrepancy_id in zip(items, ids):
            if discrepancy_id is None:
                waiting.append(msg)
                continue
            try:
                submitted.append((msg, _decision(message, discrepancy_id)))
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
        conn = self._lookup_connection()
        try:
            for _, message in items:
                if isinstance(message, Detected):
                    in_batch.setdefault(message.ref, store.new_id())
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

    async def _dead_letter(self, js, msg, reason: str, tenant: str | None) -> None:
        """Keep the original bytes and headers with the reason; then acknowledge."""
        attempts = msg.metadata.num_delivered
        headers = {**(msg.headers or {}), "Indelible-Reason": reason[:2000],
                   "Indelible-Attempts": str(attempts), "Indelible-Subject": msg.subject,
                   "Indelible-Stream-Seq": str(msg.metadata.sequence.stream)}
        headers["Nats-Msg-Id"] = f"dlq-{msg.metadata.sequence.stream}"
        ack = await js.publish(f"{DLQ_PREFIX}.{tenant or '_unknown'}", msg.data, headers=headers)
        if tenant is not None:
            entry = NewEntry(
                stream="ingest/dead-letters", type="ingest.dead_lettered",
                actor=Actor("ingest:nats", "system", "engine"),
                idempotency_key=f"dlq:{msg.metadata.sequence.stream}",
                data={"subject": msg.subject, "stream_seq": msg.metadata.sequence.stream,
                      "reason": reason[:2000], "attempts": attempts, "dlq_seq": ack.seq,
                      "payload_sha256": hashlib.sha256(msg.data).hexdigest()})
            await asyncio.wrap_future(self._appender.submit(tenant, entry))
        await msg.ack()
        log.info("dead-lettered stream seq %s: %s", msg.metadata.sequence.stream, reason)


async def _nak_quietly(msg) -> None:
    try:
        await msg.nak(delay=RETRY_DELAY)
    except Exception:  # noqa: BLE001 - not acknowledged either way: it will be redelivered
        log.debug("NAK failed", exc_info=True)


def _decision(message: Detected | Matched, discrepancy_id: str):
    if isinstance(message, Detected):
        actor = domain.Actor(f"engine:{message.command.source}", domain.Role.SYSTEM)
        return store.decision(discrepancy_id, message.command, actor,
                              store.open_key(*message.ref))
    actor = domain.Actor(f"engine:{message.source}", domain.Role.SYSTEM)
    close = domain.Transition(to=domain.Status.AUTO_CLOSED,
                              reason=f"matched at {message.matched_at}: {message.reason}"[:1000])
    key = "matched:" + hashlib.sha256(orjson.dumps(list(message.ref))).hexdigest()
    return store.decision(discrepancy_id, close, actor, key)
