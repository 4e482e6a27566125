"""msgspec decoders of the hot request bodies, for the direct lane (api/direct.py).

Each struct admits exactly what the route's pydantic model (strict, no extra fields) admits
from the usual path's `json.loads`, with the same values: tests/unit/test_api_bodies.py
proves it with hypothesis against the pydantic model as the oracle. A body one of these
refuses (or that msgspec cannot read, such as a UTF-16 or BOM-prefixed one that
`json.loads` would take) goes the usual path, which accepts it or names the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

Status = Literal["open", "acknowledged", "investigating", "resolved", "escalated", "auto_closed"]


class TransitionBody(msgspec.Struct, forbid_unknown_fields=True):
    """routes/discrepancies.py TransitionRequest."""

    to: Status
    reason: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    resolution_code: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    note: Annotated[str, msgspec.Meta(max_length=4000)] | None = None


# msgspec matches a pattern with re.search, where `$` also admits a trailing newline; `\Z`
# ends the text, as `$` does in pydantic's (Rust) regex.
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}\Z")]
Decimal = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class OpenBody(msgspec.Struct, forbid_unknown_fields=True):
    """routes/discrepancies.py OpenRequest."""

    external_ref: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    kind: Literal["amount_mismatch", "missing_transaction", "timing_gap", "duplicate", "other"]
    expected_amount: Decimal
    actual_amount: Decimal
    currency: Currency
    detected_at: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    severity: Literal["low", "medium", "high", "critical"] | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    transaction_refs: Annotated[list[str], msgspec.Meta(max_length=100)] = \
        msgspec.field(default_factory=list)


TRANSITION = msgspec.json.Decoder(TransitionBody)
OPEN = msgspec.json.Decoder(OpenBody)
