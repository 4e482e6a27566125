"""The message contract (schemas/recon-message.schema.json), parsed onto domain commands.

Pure: bytes in, a typed message or a ContractError naming the field and the rule out. The
domain's own validation judges the values, so a message and an HTTP request obey one rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from indelible import domain
from indelible.domain.commands import MAX_EXTERNAL_REF, MAX_REASON, check_source
from indelible.domain.validation import check_line, check_text, check_time

MAX_MESSAGE = 64 * 1024  # bytes; larger messages are dead-lettered, not parsed
_DETECTED = {"type", "tenant", "source", "external_ref", "kind", "expected_amount", "actual_amount",
             "currency", "detected_at", "transaction_refs", "severity", "metadata"}
_MATCHED = {"type", "tenant", "source", "external_ref", "matched_at", "reason"}


class ContractError(ValueError):
    """The message breaks the contract; the text says which field and which rule."""


@dataclass(frozen=True)
class Detected:
    tenant: str
    command: domain.OpenDiscrepancy

    @property
    def ref(self) -> tuple[str, str]:
        return self.command.source, self.command.external_ref


@dataclass(frozen=True)
class Matched:
    tenant: str
    source: str
    external_ref: str
    matched_at: str
    reason: str

    @property
    def ref(self) -> tuple[str, str]:
        return self.source, self.external_ref


def parse_message(data: bytes, *, subject_tenant: str) -> Detected | Matched:
    # 1. Size and syntax.
    if len(data) > MAX_MESSAGE:
        raise ContractError(f"message is {len(data)} bytes; the limit is {MAX_MESSAGE}")
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ContractError(f"not JSON: {e}") from e
    if not isinstance(body, dict):
        raise ContractError("the message must be a JSON object")
    # 2. Type, shape and tenant.
    kind = body.get("type")
    allowed = {"discrepancy.detected": _DETECTED, "discrepancy.matched": _MATCHED}.get(kind)
    if allowed is None:
        raise ContractError(f"type: must be discrepancy.detected or discrepancy.matched, got {kind!r}")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ContractError(f"{unknown[0]}: not a field of {kind}")
    if body.get("tenant") != subject_tenant:
        raise ContractError(f"tenant: {body.get('tenant')!r} does not match the subject's tenant "
                            f"{subject_tenant!r}")
    # 3. Values, by the domain's rules.
    try:
        return _detected(body) if kind == "discrepancy.detected" else _matched(body)
    except domain.InvalidCommandError as e:
        raise ContractError(str(e)) from e
    except TypeError as e:  # a required field missing
        raise ContractError(f"missing field: {e}") from e


def _detected(body: dict) -> Detected:
    fields = {k: v for k, v in body.items() if k not in ("type", "tenant")}
    if "transaction_refs" in fields and isinstance(fields["transaction_refs"], list):
        fields["transaction_refs"] = tuple(fields["transaction_refs"])
    missing = sorted({"source", "external_ref", "kind", "expected_amount", "actual_amount",
                      "currency", "detected_at"} - set(fields))
    if missing:
        raise ContractError(f"{missing[0]}: required")
    return Detected(body["tenant"], domain.OpenDiscrepancy(**fields))


def _matched(body: dict) -> Matched:
    missing = sorted({"source", "external_ref", "matched_at"} - set(body))
    if missing:
        raise ContractError(f"{missing[0]}: required")
    # The same rules as the detection it closes: a NUL or a control character must be
    # refused here, with its reason, not fail the lookup of a whole batch later.
    check_source(body["source"])
    check_line(body["external_ref"], "external_ref", max_len=MAX_EXTERNAL_REF)
    matched_at = check_time(body["matched_at"], "matched_at")
    reason = body.get("reason") or "matched by the reconciliation engine"
    check_text(reason, "reason", max_len=MAX_REASON)
    return Matched(body["tenant"], body["source"], body["external_ref"], matched_at, reason)
