"""The dashboard: what is open and ageing, and whether intake and the log are healthy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from indelible.console import security
from indelible.console.render import render
from indelible.console.sessions import Viewer
from indelible.store import dashboard

router = APIRouter()
SignedIn = Annotated[Viewer, Depends(security.viewer)]


@router.get("/")
async def home(viewer: SignedIn):
    return RedirectResponse("/console/dashboard", status_code=303)


@router.get("/dashboard")
async def dashboard_page(request: Request, viewer: SignedIn):
    state = request.app.state.indelible

    def read(conn, tenant):
        return (dashboard.overview(conn, tenant), dashboard.integrity(conn, tenant),
                dashboard.escalated(conn, tenant), dashboard.due_next(conn, tenant))
    overview, integrity, escalated, due = await state.read(viewer.tenant, read, viewer.tenant)
    ingest = state.ingest_status
    return render(request, "dashboard.html", viewer=viewer, matrix=overview.matrix,
                  ageing=overview.ageing,
                  bands=[name for name, _ in dashboard.AGE_BANDS], integrity=integrity,
                  ingest_problem=ingest.problem() if ingest else None,
                  ingest_running=ingest is not None, escalated=escalated,
                  due=due)
