"""Discrepancies walked through their lifecycle for report tests, and a reader of PDF text."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

from indelible import domain
from indelible.bootstrap import projections
from indelible.store import discrepancies as store
from indelible.store.appender import Appended, append_batch

ANALYST = domain.Actor("key:ana", "analyst")
SOURCES = ("stripe", "paypal", "bank")
AMOUNTS = (("EUR", "9850.00", "10000.00"), ("JPY", "1000", "1500"), ("KWD", "1.250", "1.000"))


def seed(conn, tenant: str, count: int, *, comments: int = 0, prefix: str = "po") -> list[str]:
    """`count` discrepancies: every third resolved, every third acknowledged, the rest open,
    each with `comments` comments. Returns their ids in the order they were opened."""
    ids = []
    opens = []
    for i in range(count):
        currency, expected, actual = AMOUNTS[i % 3]
        command = domain.OpenDiscrepancy(
            external_ref=f"{prefix}-{i}", source=SOURCES[i % 3], kind="amount_mismatch",
            expected_amount=expected, actual_amount=actual, currency=currency,
            detected_at="2026-11-23T05:00:00Z")
        ids.append(store.new_id())
        opens.append(store.decision(ids[-1], command, ANALYST,
                                    store.open_key(SOURCES[i % 3], f"{prefix}-{i}")))
    _append(conn, tenant, opens)
    moves = []
    for i, d in enumerate(ids):
        moves += [store.decision(d, domain.Comment(text=f"note {n} on {d}"), ANALYST)
                  for n in range(comments)]
        if i % 3 in (0, 1):
            moves.append(store.decision(d, domain.Transition(to="acknowledged"), ANALYST))
        if i % 3 == 0:
            moves.append(store.decision(d, domain.Transition(to="investigating"), ANALYST))
            moves.append(store.decision(d, domain.Transition(
                to="resolved", resolution_code="corrected_in_ledger", note="fee booked"), ANALYST))
    _append(conn, tenant, moves)
    return ids


def _append(conn, tenant, commands) -> None:
    for i in range(0, len(commands), 2000):
        for out in append_batch(conn, tenant, commands[i:i + 2000], model=projections()):
            assert isinstance(out, Appended), out


def around_now() -> dict:
    """A period holding everything appended in this test (and not ten years)."""
    now = datetime.now(timezone.utc)
    return {"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(days=1)).isoformat()}


def pdf_text(content: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
