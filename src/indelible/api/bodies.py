"""msgspec decoders of the hot request bodies, for the direct lane (api/direct.py).

Each struct admits exactly what the route's pydantic model (strict, no extra fields) admits
from the usual path's `json.loads`, with the same values: tests/unit/test_api_bodies.py
proves it with hypothesis against the pydantic model as the oracle. A body one of these
refuses (or that msgspec cannot read, such as a UTF-16 or BOM-prefixed one that
`json.loads` would take) goes the usual path, which accepts it or names the field.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Status = Literal["open", "acknowledged", "investigating", "resolved", "escalated", "auto_closed"]


class TransitionBody(msgspec.Struct, forbid_unknown_fields=True):
    """routes/discrepancies.py TransitionRequest."""

    to: Status
    reason: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    resolution_code: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    note: Annotated[str, msgspec.Meta(max_length=4000)] | None = None


TRANSITION = msgspec.json.Decoder(TransitionBody)
