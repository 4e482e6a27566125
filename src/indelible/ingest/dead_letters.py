"""The dead-letter stream, for operators: list what was set aside, and replay one after a fix.

A replay publishes the original bytes and headers to the original subject again; the dead
letter stays where it is, as the record of what happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js.errors import NotFoundError

from indelible.ingest.streams import DLQ_PREFIX, DLQ_STREAM
from indelible.nats_auth import NatsAccess

OUR_HEADERS = ("Indelible-Reason", "Indelible-Attempts", "Indelible-Subject",
               "Indelible-Stream-Seq", "Nats-Msg-Id")


class DeadLetterError(LookupError):
    pass


@dataclass(frozen=True)
class DeadLetter:
    seq: int
    time: str
    subject: str
    reason: str
    attempts: int
    size: int


async def list_dead_letters(broker: NatsAccess, tenant: str | None = None) -> list[DeadLetter]:
    nc = await broker.connect()
    try:
        js = nc.jetstream()
        try:
            info = await js.stream_info(DLQ_STREAM)
        except NotFoundError:
            return []
        if info.state.messages == 0:
            return []  # an empty stream reports first_seq 0, which no message has
        subject = f"{DLQ_PREFIX}.{tenant}" if tenant else f"{DLQ_PREFIX}.>"
        found = []
        for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
            try:
                raw = await js.get_msg(DLQ_STREAM, seq)
            except NotFoundError:
                continue
            if tenant and raw.subject != subject:
                continue
            headers = raw.headers or {}
            found.append(DeadLetter(seq, str(raw.time or ""),
                                    headers.get("Indelible-Subject", ""),
                                    headers.get("Indelible-Reason", ""),
                                    int(headers.get("Indelible-Attempts", "0")), len(raw.data or b"")))
        return found
    finally:
        await nc.close()


async def replay(broker: NatsAccess, seq: int) -> str:
    """Publish dead letter `seq` to its original subject again; returns that subject."""
    nc = await broker.connect()
    try:
        js = nc.jetstream()
        try:
            raw = await js.get_msg(DLQ_STREAM, seq)
        except NotFoundError as e:
            raise DeadLetterError(f"no dead letter with sequence {seq}") from e
        headers = dict(raw.headers or {})
        subject = headers.get("Indelible-Subject")
        if not subject:
            raise DeadLetterError(f"dead letter {seq} does not record its original subject")
        original = {k: v for k, v in headers.items() if k not in OUR_HEADERS}
        original["Nats-Msg-Id"] = f"replay-of-dlq-{seq}"
        await js.publish(subject, raw.data or b"", headers=original)
        return subject
    finally:
        await nc.close()
