"""Working a case: each form post calls the same use case the API route calls, and a
refusal is shown on the case page with the domain's own words and the API's status.

Each form carries a one-time key (`form_key`), used as the request's idempotency key: a form
sent twice (a double click, a reload that re-posts) records one entry, not two.
"""

from __future__ import annotations

import hashlib
from typing import Annotated
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import UploadFile

from indelible import domain
from indelible.console import security
from indelible.console.errors import ConsoleError, refusal
from indelible.console.pages.cases import CaseId, case_page, load_case
from indelible.console.sessions import Viewer
from indelible.store import evidence
from indelible.usecases import discrepancies

router = APIRouter()
Posting = Annotated[Viewer, Depends(security.posting_viewer)]


def _text(form, name: str, limit: int) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, UploadFile):
        return None
    value = value.strip()
    if len(value) > limit:
        raise domain.InvalidCommandError(name, f"at most {limit} characters")
    return value or None


def _key(viewer: Viewer, request: Request, form, payload: dict) -> discrepancies.ClientKey | None:
    """The form's one-time key, namespaced by the signed-in key, bound to what was sent."""
    form_key = _text(form, "form_key", 100)
    if form_key is None:
        return None
    fingerprint = hashlib.sha256(orjson.dumps([request.url.path, payload],
                                              option=orjson.OPT_SORT_KEYS)).hexdigest()
    return discrepancies.ClientKey(f"console:{viewer.principal.key_id}:{form_key}", fingerprint)


async def _record(request: Request, viewer: Viewer, case_id: str, done: str, use_case, build,
                  extra=None):
    """Build the command from the form, run the use case, and redirect to the case page
    (or show it again with the refusal)."""
    form = await request.form()
    case_id = case_id.lower()
    try:
        command, payload = build(form)
        await use_case(request.app.state.indelible.ledger, viewer.asking(), case_id, command,
                       *extra(command) if extra else (),
                       key=_key(viewer, request, form, payload))
    except domain.DomainError as e:
        status, title = refusal(e)
        if status == 404:
            raise ConsoleError(404, title, str(e), viewer=viewer) from e
        loaded = await load_case(request, viewer, case_id)
        return case_page(request, viewer, loaded, status_code=status, error=(title, str(e)))
    except discrepancies.KeyReusedError as e:
        raise ConsoleError(422, "Form sent twice with different contents", str(e),
                           viewer=viewer) from e
    return RedirectResponse(f"/console/discrepancies/{case_id}?done={quote(done)}#timeline",
                            status_code=303)


@router.post("/discrepancies/{case_id}/transitions")
async def move(request: Request, viewer: Posting, case_id: CaseId):
    def build(form):
        fields = {"to": _text(form, "to", 40) or "", "reason": _text(form, "reason", 1000),
                  "resolution_code": _text(form, "resolution_code", 64),
                  "note": _text(form, "note", 4000)}
        return domain.Transition(**fields), fields
    return await _record(request, viewer, case_id, "Moved.", discrepancies.move, build)


@router.post("/discrepancies/{case_id}/comments")
async def comment(request: Request, viewer: Posting, case_id: CaseId):
    def build(form):
        text = _text(form, "text", 4000) or ""
        return domain.Comment(text=text), {"text": text}
    return await _record(request, viewer, case_id, "Comment recorded.", discrepancies.comment,
                         build)


@router.post("/discrepancies/{case_id}/assignment")
async def assign(request: Request, viewer: Posting, case_id: CaseId):
    def build(form):
        assignee = _text(form, "assignee", 200)
        return domain.Assign(assignee=assignee), {"assignee": assignee}
    return await _record(request, viewer, case_id, "Assignment recorded.", discrepancies.assign,
                         build)


@router.post("/discrepancies/{case_id}/severity")
async def severity(request: Request, viewer: Posting, case_id: CaseId):
    def build(form):
        fields = {"severity": _text(form, "severity", 20) or "",
                  "reason": _text(form, "reason", 1000) or ""}
        return domain.ChangeSeverity(**fields), fields
    return await _record(request, viewer, case_id, "Severity changed.",
                         discrepancies.change_severity, build)


@router.post("/discrepancies/{case_id}/evidence")
async def attach(request: Request, viewer: Posting, case_id: CaseId):
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise ConsoleError(422, "No file", "file: choose a file to attach", viewer=viewer)
    content = await upload.read(evidence.MAX_FILE + 1)
    if len(content) > evidence.MAX_FILE:
        raise ConsoleError(413, "File too large", f"evidence files are limited to "
                           f"{evidence.MAX_FILE} bytes", viewer=viewer)
    media_type = (upload.content_type or "application/octet-stream").split(";")[0].strip()
    sha256 = hashlib.sha256(content).hexdigest()

    def build(form):
        command = domain.AttachEvidence(sha256=sha256, name=upload.filename, size=len(content),
                                        media_type=media_type)
        return command, {"name": upload.filename, "sha256": sha256, "media_type": media_type}
    return await _record(request, viewer, case_id, "Evidence attached.",
                         discrepancies.attach_evidence, build, extra=lambda command: (content,))
