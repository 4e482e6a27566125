"""The JetStream streams ingestion reads and writes, and the one-time move off the old one.

RECON_QUEUE keeps every report until the consumer acknowledges it (work-queue retention:
a message leaves the stream only when it is committed to the ledger or safely dead-lettered).
Nothing expires by age. When the stream reaches its size bound, the server REFUSES new
publishes (discard policy NEW): the engine gets an error and must retry later, instead of the
oldest unconsumed reports being dropped, which is what the old stream did after 7 days.

The old stream (RECON: limits retention, 7 days, discard old) cannot be changed in place
(JetStream refuses to change a stream's retention), so `ensure_streams` moves it, in steps
that are each safe to crash after and repeat:
  1. stop expiry and intake on RECON: no max age, and its subjects moved aside, so engines'
     publishes land nowhere but in an error they see and retry;
  2. create RECON_QUEUE on the engines' subjects: intake resumes;
  3. copy every message of RECON above the old consumer's acknowledged floor into
     RECON_QUEUE (a message copied twice is harmless: opens replay by source and reference,
     closes by their key);
  4. delete RECON, only once everything it held that might be unconsumed is copied.
"""

from __future__ import annotations

import logging

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

log = logging.getLogger(__name__)

STREAM, LEGACY_STREAM, DLQ_STREAM = "RECON_QUEUE", "RECON", "RECON_DLQ"
DURABLE = "indelible-ingest"
DLQ_PREFIX = "indelible.dlq"
RETIRED_SUBJECT = "indelible.retired.recon"
MAX_BYTES = 8 * 1024**3  # bytes of unconsumed reports kept before publishes are refused
DAY = 24 * 3600
REPLICAS = 3  # copies of each stream on a cluster: one node may be lost without losing a report


def replicas_for(nc) -> int:
    """How many copies the streams keep on the broker `nc` is connected to: REPLICAS on a
    cluster of at least that many servers (the servers it gossips are in the client's pool),
    else 1 (a single server, as the embedded one)."""
    known = {(u.hostname, u.port) for u in nc.servers}
    return REPLICAS if len(known) >= REPLICAS else 1


def queue_config(prefix: str, max_bytes: int = MAX_BYTES, replicas: int = 1) -> StreamConfig:
    """Work queue, no age limit, refuse new when full; 1 MiB per message (the contract
    allows 64 KiB; bigger ones still arrive, to be dead-lettered with a reason); two minutes
    of publish de-duplication by Nats-Msg-Id."""
    return StreamConfig(
        name=STREAM, subjects=[f"{prefix}.*"], storage=StorageType.FILE,
        retention=RetentionPolicy.WORK_QUEUE, discard=DiscardPolicy.NEW, max_age=0,
        max_bytes=max_bytes, max_msg_size=1024 * 1024, duplicate_window=120,
        num_replicas=replicas)


async def ensure_streams(js, prefix: str, *, max_bytes: int = MAX_BYTES,
                         replicas: int = 1) -> None:
    """Create the streams if missing, and move an old RECON stream over (see above).
    `replicas` (see replicas_for): a stream with fewer copies is raised to it in place."""
    legacy = await _info(js, LEGACY_STREAM)
    if legacy is not None:
        await _retire(js, legacy)
    for existing in (await _info(js, STREAM), await _info(js, DLQ_STREAM)):
        if existing is not None and (existing.config.num_replicas or 1) < replicas:
            existing.config.num_replicas = replicas
            await js.update_stream(existing.config)
            log.warning("stream %s now keeps %d copies", existing.config.name, replicas)
    if await _info(js, STREAM) is None:
        await js.add_stream(queue_config(prefix, max_bytes, replicas))
        log.info("stream %s created: unconsumed reports are kept until acknowledged; when it "
                 "holds %d bytes, new publishes are refused, never old reports dropped",
                 STREAM, max_bytes)
    if legacy is not None:
        await _copy_unconsumed(js, legacy)
        await js.delete_stream(LEGACY_STREAM)
        log.warning("old stream %s moved to %s and deleted", LEGACY_STREAM, STREAM)
    if await _info(js, DLQ_STREAM) is None:
        await js.add_stream(StreamConfig(
            name=DLQ_STREAM, subjects=[f"{DLQ_PREFIX}.>"], storage=StorageType.FILE,
            max_age=90 * DAY, max_msg_size=2 * 1024 * 1024, num_replicas=replicas))


async def _info(js, name: str):
    try:
        return await js.stream_info(name)
    except NotFoundError:
        return None


async def _retire(js, legacy) -> None:
    """Step 1: nothing expires from RECON any more, and nothing new enters it."""
    config = legacy.config
    if config.subjects == [RETIRED_SUBJECT] and not config.max_age:
        return
    config.subjects, config.max_age, config.discard = [RETIRED_SUBJECT], 0, DiscardPolicy.NEW
    await js.update_stream(config)
    log.warning("moving old stream %s (limits retention, expiring by age) to %s",
                LEGACY_STREAM, STREAM)


async def _copy_unconsumed(js, legacy) -> None:
    """Step 3: from above the old consumer's acknowledged floor (all of it, if that consumer
    is gone) to the last message; the original subject, bytes and headers."""
    floor = 0
    try:
        floor = (await js.consumer_info(LEGACY_STREAM, DURABLE)).ack_floor.stream_seq
    except NotFoundError:
        pass
    first = max(floor + 1, legacy.state.first_seq)
    copied = 0
    for seq in range(first, legacy.state.last_seq + 1):
        try:
            raw = await js.get_msg(LEGACY_STREAM, seq)
        except NotFoundError:
            continue
        headers = {**(raw.headers or {}), "Nats-Msg-Id": f"legacy-{LEGACY_STREAM}-{seq}"}
        await js.publish(raw.subject, raw.data or b"", stream=STREAM, headers=headers)
        copied += 1
    log.warning("copied %d possibly unconsumed messages from %s to %s", copied, LEGACY_STREAM,
                STREAM)
