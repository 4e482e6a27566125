"""The severity policy: everyone reads it; compliance managers and admins change it, through
the same use case as `PUT /v1/severity-policy` (same validation, same role rule, same
optimistic concurrency)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from indelible import domain
from indelible.console import security
from indelible.console.render import render
from indelible.console.sessions import Viewer
from indelible.store import severity_policy
from indelible.store.errors import VersionConflictError
from indelible.usecases import policy

router = APIRouter()
SignedIn = Annotated[Viewer, Depends(security.viewer)]
Posting = Annotated[Viewer, Depends(security.posting_viewer)]
EXTRA_ROWS = 2  # empty rows offered for new currencies


async def _page(request: Request, viewer: Viewer, *, status_code: int = 200,
                error: str | None = None, done: str | None = None):
    state = request.app.state.indelible

    def read(conn, tenant):
        return severity_policy.current(conn, tenant), severity_policy.versions(conn, tenant)
    record, versions = await state.read(viewer.tenant, read, viewer.tenant)
    return render(request, "policy.html", status_code=status_code, viewer=viewer,
                  record=record.to_dict(), versions=versions, error=error, done=done,
                  may_set=viewer.role in policy.SETTERS, extra_rows=range(EXTRA_ROWS))


@router.get("/severity-policy")
async def policy_page(request: Request, viewer: SignedIn, done: str | None = None):
    return await _page(request, viewer, done=done)


def _thresholds(form) -> dict:
    """Rows of (currency, medium, high, critical) from the form; empty rows are skipped."""
    thresholds = {}
    for index in range(int(form.get("rows", "0") or 0) if str(form.get("rows", "0")).isdigit() else 0):
        currency = str(form.get(f"currency_{index}", "")).strip().upper()
        if currency:
            thresholds[currency] = {level: str(form.get(f"{level}_{index}", "")).strip()
                                    for level in domain.severity.LEVELS}
    return thresholds


@router.post("/severity-policy")
async def set_policy(request: Request, viewer: Posting):
    form = await request.form()
    try:
        new = domain.parse_policy({"thresholds": _thresholds(form)})
        expected = str(form.get("expected_version", ""))
        await policy.set_severity_policy(
            request.app.state.indelible.ledger, viewer.asking(), new,
            reason=str(form.get("reason", "")).strip(),
            expected_version=int(expected) if expected.isdigit() else 0)
    except domain.PermissionRefusedError as e:
        return await _page(request, viewer, status_code=403, error=str(e))
    except domain.InvalidCommandError as e:
        return await _page(request, viewer, status_code=422, error=str(e))
    except VersionConflictError as e:
        return await _page(request, viewer, status_code=409, error=(
            f"the policy is at version {e.actual}, not {e.expected}: someone changed it "
            "meanwhile. The form now shows theirs; make your change again."))
    return RedirectResponse("/console/severity-policy?done=Policy+changed.", status_code=303)
