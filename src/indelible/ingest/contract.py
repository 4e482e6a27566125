"""The message contract (schemas/recon-message.schema.json), parsed onto domain commands.

Pure: bytes in, a typed message or a ContractError naming the field and the rule out. The
domain's own validation judges the values, so a message and an HTTP request obey one rule.

Two readings of one contract, because a consumer reads thousands of messages a second:
  1. the usual reading decodes and checks a message in C (msgspec), against structs that
     spell the domain's rules as types, lengths and patterns taken from the domain's own
     constants; the few rules no type can say (decimal places per currency, two equal
     amounts in an amount_mismatch, a real calendar date, distinct transaction refs, the
     tenant) are checked after, and the command is built pre-checked;
  2. any message the usual reading does not vouch for (every broken one, and some odd but
     valid ones: a `reason` of false, large metadata) is read again by the explaining
     reading: orjson and the domain's constructors, whose refusal names field and rule.
So what is accepted, and what each refusal says, is the explaining reading's; the usual one
must accept nothing it refuses and build the same values, which
tests/unit/test_ingest_contract_fast.py checks against it with hypothesis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Union

import msgspec
import orjson

from indelible import domain
from indelible.domain.commands import (MAX_EXTERNAL_REF, MAX_METADATA, MAX_REASON, MAX_REF,
                                       MAX_SOURCE, MAX_TRANSACTION_REFS, SLUG_PATTERN,
                                       check_source)
from indelible.domain.money import format_amount, parse_amount
from indelible.domain.validation import (LINE_PATTERN, MAX_DEPTH, check_json, check_line,
                                         check_text, check_time)
from indelible.proofs.canonical import MAX_SAFE_INTEGER

MAX_MESSAGE = 64 * 1024  # bytes; larger messages are dead-lettered, not parsed
MATCHED_REASON = "matched by the reconciliation engine"  # when a match gives none
_DETECTED = {"type", "tenant", "source", "external_ref", "kind", "expected_amount", "actual_amount",
             "currency", "detected_at", "transaction_refs", "severity", "metadata"}
_MATCHED = {"type", "tenant", "source", "external_ref", "matched_at", "reason"}
_FIELDS = {"discrepancy.detected": _DETECTED, "discrepancy.matched": _MATCHED}


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
    message = _read_usual(data, subject_tenant) if len(data) <= MAX_MESSAGE else None
    if message is None:
        message = read_explaining(data, subject_tenant=subject_tenant)
    return message


# 1. The usual reading. msgspec applies a pattern with re.search, hence the anchors; `\Z`,
#    not `$`, which would also match before a final newline.
def _whole(pattern: str, **limits: int) -> msgspec.Meta:
    return msgspec.Meta(pattern=f"^(?:{pattern})\\Z", **limits)


_Source = Annotated[str, _whole(SLUG_PATTERN, max_length=MAX_SOURCE)]
_ExternalRef = Annotated[str, _whole(LINE_PATTERN, max_length=MAX_EXTERNAL_REF)]
_TransactionRef = Annotated[str, _whole(LINE_PATTERN, max_length=MAX_REF)]


def _free_json() -> type:
    """check_json's rules as a type: strings and keys without NUL or lone surrogates, keys
    also without characters above U+FFFF, integers within ±(2**53 - 1), no floats, and
    containers nested at most MAX_DEPTH deep (one Union per level: the depth is a type)."""
    text = Annotated[str, _whole("[^\x00\ud800-\udfff]*")]
    key = Annotated[str, _whole("[^\x00\ud800-\udfff\U00010000-\U0010ffff]*")]
    integer = Annotated[int, msgspec.Meta(ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]
    value = Union[text, integer, bool, None]
    for _ in range(MAX_DEPTH - 1):  # the metadata object itself is the first level
        value = Union[text, integer, bool, None, list[value], dict[key, value]]
    return dict[key, value]


_Metadata = _free_json()
# json.dumps (ASCII, as check_json measures) writes each character of a decoded message in
# at most 6 times the bytes it took there (a raw DEL, one byte, becomes a 6-byte \u007f; 2
# UTF-8 bytes become a 6-byte \uXXXX, 4 become 12): the metadata of a smaller message
# cannot exceed MAX_METADATA serialized.
_SMALL_MESSAGE = MAX_METADATA // 6  # bytes


class _DetectedBody(msgspec.Struct, tag_field="type", tag="discrepancy.detected",
                    forbid_unknown_fields=True):
    tenant: str
    source: _Source
    external_ref: _ExternalRef
    kind: domain.Kind
    expected_amount: str
    actual_amount: str
    currency: str
    detected_at: str
    transaction_refs: Annotated[list[_TransactionRef],
                                msgspec.Meta(max_length=MAX_TRANSACTION_REFS)] = []
    severity: domain.Severity | None = None
    metadata: _Metadata = {}


class _MatchedBody(msgspec.Struct, tag_field="type", tag="discrepancy.matched",
                   forbid_unknown_fields=True):
    tenant: str
    source: _Source
    external_ref: _ExternalRef
    matched_at: str
    reason: str | None = None


_decode = msgspec.json.Decoder(_DetectedBody | _MatchedBody).decode


def _read_usual(data: bytes, subject_tenant: str) -> Detected | Matched | None:
    """The message, or None when this reading does not vouch for it."""
    try:
        body = _decode(data)
        if body.tenant != subject_tenant:
            return None
        if type(body) is _MatchedBody:
            reason = check_text(body.reason or MATCHED_REASON, "reason", max_len=MAX_REASON)
            return Matched(body.tenant, body.source, body.external_ref,
                           check_time(body.matched_at, "matched_at"), reason)
        return _usual_detected(body, len(data))
    # RecursionError: msgspec skips the values before a late `type` tag by recursion, so a
    # deeply nested one is for the explaining reading to refuse (orjson's depth limit).
    except (msgspec.DecodeError, domain.InvalidCommandError, RecursionError):
        return None


def _usual_detected(body: _DetectedBody, size: int) -> Detected | None:
    currency = body.currency  # the amounts' own rules, and the currency's, are the domain's:
    expected = format_amount(parse_amount(body.expected_amount, currency, "expected_amount"),
                             currency)
    actual = format_amount(parse_amount(body.actual_amount, currency, "actual_amount"), currency)
    refs = body.transaction_refs
    if ((body.kind is domain.Kind.AMOUNT_MISMATCH and expected == actual)
            or len(set(refs)) != len(refs)):
        return None
    metadata = body.metadata
    if size > _SMALL_MESSAGE:
        metadata = check_json(metadata, "metadata", max_bytes=MAX_METADATA)
    return Detected(body.tenant, domain.OpenDiscrepancy.prechecked(
        external_ref=body.external_ref, source=body.source, kind=body.kind,
        expected_amount=expected, actual_amount=actual, currency=currency,
        detected_at=check_time(body.detected_at, "detected_at"), severity=body.severity,
        metadata=metadata, transaction_refs=tuple(refs)))


# 2. The explaining reading: the reference, and the reason for every refusal.
def read_explaining(data: bytes, *, subject_tenant: str) -> Detected | Matched:
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
    allowed = _FIELDS.get(kind) if isinstance(kind, str) else None  # [] or {}: unhashable
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
    reason = body.get("reason") or MATCHED_REASON
    check_text(reason, "reason", max_len=MAX_REASON)
    return Matched(body["tenant"], body["source"], body["external_ref"], matched_at, reason)
