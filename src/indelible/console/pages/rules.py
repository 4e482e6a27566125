"""Escalation rules: the set in force, an editor with a preview of what the proposed set
would fire (written nowhere), and every earlier version. Reading is for every role; putting
a set in force is for compliance managers and admins, through the same use case as
`PUT /v1/escalation-rules` (same parsing, role rule and optimistic concurrency)."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from indelible import domain
from indelible.console import security
from indelible.console.render import render
from indelible.console.sessions import Viewer
from indelible.escalation.rules import parse_rules
from indelible.store import escalation as store
from indelible.store.errors import VersionConflictError
from indelible.usecases import escalation

router = APIRouter()
SignedIn = Annotated[Viewer, Depends(security.viewer)]
Posting = Annotated[Viewer, Depends(security.posting_viewer)]
MAX_TEXT = 200_000  # characters of rule-set JSON the editor accepts


async def _page(request: Request, viewer: Viewer, *, status_code: int = 200, text: str | None = None,
                error: str | None = None, done: str | None = None, preview: dict | None = None):
    state = request.app.state.indelible

    def read(conn, tenant):
        return store.current_rules(conn, tenant), store.rules_history(conn, tenant)
    record, versions = await state.read(viewer.tenant, read, viewer.tenant)
    current = record.to_dict()
    if text is None:
        text = orjson.dumps(current["rules"], option=orjson.OPT_INDENT_2).decode()
    return render(request, "rules.html", status_code=status_code, viewer=viewer, record=current,
                  versions=[v.to_dict() for v in versions], text=text, error=error, done=done,
                  preview=preview, may_set=viewer.role in escalation.SETTERS)


@router.get("/escalation-rules")
async def rules_page(request: Request, viewer: SignedIn, done: str | None = None):
    return await _page(request, viewer, done=done)


def _parse(text: str):
    if len(text) > MAX_TEXT:
        raise domain.InvalidCommandError("rules", f"at most {MAX_TEXT} characters")
    try:
        items = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise domain.InvalidCommandError("rules", f"not JSON: {e}") from e
    if not isinstance(items, list):
        raise domain.InvalidCommandError("rules", "a JSON list of rules")
    return parse_rules({"rules": items})


@router.post("/escalation-rules")
async def rules_post(request: Request, viewer: Posting):
    form = await request.form()
    text = str(form.get("rules", ""))
    state = request.app.state.indelible
    try:
        rules = _parse(text)
        if form.get("action") == "preview":
            found = await state.read(viewer.tenant, escalation.preview, viewer.tenant, rules)
            return await _page(request, viewer, text=text, preview=found)
        expected = str(form.get("expected_version", ""))
        await escalation.set_rules(
            state.ledger, viewer.asking(), lambda fn: state.read(viewer.tenant, fn, viewer.tenant),
            rules, reason=str(form.get("reason", "")).strip(),
            expected_version=int(expected) if expected.isdigit() else 0)
    except domain.PermissionRefusedError as e:
        return await _page(request, viewer, status_code=403, text=text, error=str(e))
    except domain.InvalidCommandError as e:
        return await _page(request, viewer, status_code=422, text=text, error=str(e))
    except VersionConflictError as e:
        return await _page(request, viewer, status_code=409, text=text, error=(
            f"the rule set is at version {e.actual}, not {e.expected}: someone changed it "
            "meanwhile. Your text is kept below; the version in force is shown above."))
    return RedirectResponse("/console/escalation-rules?done=Rules+put+in+force.", status_code=303)
