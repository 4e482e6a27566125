"""The dead-letter stream, for operators: list what was set aside, and replay one after a fix.

A replay publishes the original bytes and headers to the original subject again; the dead
letter stays where it is, as the record of what happened.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
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


def readable_reason(reason: str) -> str:
    """The reason as a person reads it. This consumer writes sentences, but a dead letter may
    carry a JSON reason (another producer of the stream, a tool that republished one, an
    engine's own error document): an object, a problem document (RFC 9457) or a list of field
    errors is told as `field: rule` phrases, not shown as escaped JSON. A JSON tail after a
    sentence ("failed 3 deliveries: {...}") is told the same way."""
    start = min((i for i in (reason.find("{"), reason.find("[")) if i >= 0), default=-1)
    if start < 0:
        return reason
    try:
        value = orjson.loads(reason[start:])
    except orjson.JSONDecodeError:
        return reason
    told = _phrase(value) if isinstance(value, (dict, list)) else ""
    return reason[:start] + told if told else reason


_MESSAGE_KEYS = ("detail", "title", "message", "msg", "error", "reason", "description")
_FIELD_KEYS = ("field", "loc", "path", "pointer", "name")
_RULE_KEYS = ("rule", "msg", "message", "detail", "reason", "error")


def _phrase(value, prefix: str = "") -> str:
    """`field: rule` phrases joined by "; "; nested objects name their fields with dots."""
    if isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value):
            return prefix + ", ".join(map(str, value))
        return "; ".join(_phrase(v, prefix) for v in value)
    if not isinstance(value, dict):
        return prefix + str(value)
    field = next((value[k] for k in _FIELD_KEYS if k in value), None)
    rule = next((value[k] for k in _RULE_KEYS if k in value), None)
    if field is not None and rule is not None:
        where = ".".join(map(str, field)) if isinstance(field, list) else str(field)
        return _phrase(rule, f"{prefix}{where}: ")
    said = next((value[k] for k in _MESSAGE_KEYS if isinstance(value.get(k), str)), None)
    errors = value.get("errors")
    if isinstance(errors, list) and errors:
        listed = _phrase(errors)
        return f"{prefix}{said} ({listed})" if said else prefix + listed
    if said:
        return prefix + said
    return "; ".join(_phrase(v, f"{prefix.removesuffix(': ')}{'.' if prefix else ''}{k}: ")
                     for k, v in value.items())


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
