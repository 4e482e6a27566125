"""The outbox over HTTP, for the tenant's admins: counts by state and the newest events.

The request role sees only its tenant's rows (row-level security, migration 14)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from indelible.api.context import State, require
from indelible.api.problems import problem_responses
from indelible.entry import format_time
from indelible.store import outbox
from indelible.store.api_keys import Principal

router = APIRouter(tags=["outbox"], responses=problem_responses(403))  # admins only
Admin = Annotated[Principal, Depends(require("admin"))]


def _time(at):
    return format_time(at) if at is not None else None


@router.get("/v1/outbox")
async def get_outbox(admin: Admin, state: State,
                     status: Annotated[Literal["pending", "sending", "delivered", "parked"] | None,
                                       Query(alias="state")] = None,
                     integration: Literal["hub", "rag"] | None = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100,
                     before: Annotated[int | None, Query(ge=1, description="id cursor")] = None
                     ) -> dict:
    """Events owed to the Notification Hub and the RAG feed: counts by integration and
    state, integrations a 410 disabled, and the newest events (page with `before`)."""
    def read(conn):
        return (outbox.counts(conn, admin.tenant), outbox.disabled(conn, admin.tenant),
                outbox.rows(conn, admin.tenant, state=status, integration=integration,
                            limit=limit, before_id=before))
    counts, disabled, rows = await state.read(admin.tenant, read)
    return {
        "counts": counts,
        "disabled": [{"integration": d["integration"], "seq": d["seq"], "reason": d["reason"],
                      "disabled_at": _time(d["disabled_at"])} for d in disabled],
        "events": [{"id": r.id, "integration": r.integration, "event": r.event,
                    "source_seq": r.source_seq, "stream": r.stream, "webhook_id": r.webhook_id,
                    "state": r.state, "round": r.round, "attempts": r.attempts,
                    "next_attempt_at": _time(r.next_attempt_at), "last_status": r.last_status,
                    "last_error": r.last_error, "created_at": _time(r.created_at),
                    "delivered_at": _time(r.delivered_at)} for r in rows],
        "next_before": rows[-1].id if len(rows) == limit else None,
    }
