"""Reading discrepancies: the list (the API's filters, keyset pages, two orders) and the case
page (fields, timeline with leaf hashes, evidence, frozen snapshot, and the forms this
viewer's role may use from here)."""

from __future__ import annotations

import base64
import re
import tempfile
import uuid
from datetime import datetime, time, timezone
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from indelible import domain
from indelible.audit import NotFoundError
from indelible.bundles.export import BundleQuery, NotYetSignedError
from indelible.console import security, timeline
from indelible.console.errors import ConsoleError
from indelible.console.render import render
from indelible.console.sessions import Viewer
from indelible.store import discrepancies as store
from indelible.store import api_keys, evidence
from indelible.usecases import escalation
from indelible.usecases.bundles import export_bundle

router = APIRouter()
SignedIn = Annotated[Viewer, Depends(security.viewer)]
PAGE = 50  # discrepancies per list page
TIMELINE_PAGE = 500  # entries per timeline page
CaseId = Annotated[str, Path(pattern=r"^[0-9a-fA-F-]{36}$")]
SORTS = {"newest": False, "oldest": True}  # sort name -> oldest_first


def _filters(params) -> store.Filters:
    """The API's filters from the list form; a bad value is a 422 page naming the field."""
    def pick(name: str, allowed: list[str] | None = None, limit: int = 200) -> str | None:
        value = (params.get(name) or "").strip() or None
        if value is not None and (len(value) > limit or "\x00" in value
                                  or (allowed is not None and value not in allowed)):
            raise ConsoleError(422, "Invalid filter", f"{name}: {value[:40]!r} is not "
                               + (f"one of {', '.join(allowed)}" if allowed else "allowed"))
        return value
    return store.Filters(
        status=pick("status", [s.value for s in domain.Status]),
        severity=pick("severity", [s.value for s in domain.Severity]),
        source=pick("source", limit=64), assignee=pick("assignee"), ref_contains=pick("q"),
        opened_after=_day(pick("opened_after"), "opened_after"),
        opened_before=_day(pick("opened_before"), "opened_before", end=True))


def _day(value: str | None, name: str, *, end: bool = False) -> datetime | None:
    """A date from the form (YYYY-MM-DD, UTC) as the start of that day (or the end of it)."""
    if value is None:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError as e:
        raise ConsoleError(422, "Invalid filter", f"{name}: {value!r} is not a date "
                           "(YYYY-MM-DD)") from e
    moment = datetime.combine(day, time.max if end else time.min, tzinfo=timezone.utc)
    return moment


def _cursor(item: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([item["opened_at"], item["id"]])).decode()


def _after(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        opened_at, case = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(opened_at.replace("Z", "+00:00")), str(uuid.UUID(case))
    except (ValueError, TypeError, orjson.JSONDecodeError) as e:
        raise ConsoleError(422, "Invalid page", "cursor: not a page this console made") from e


@router.get("/discrepancies")
async def list_page(request: Request, viewer: SignedIn,
                    cursor: Annotated[str | None, Query(max_length=400)] = None,
                    sort: str = "newest"):
    if sort not in SORTS:
        raise ConsoleError(422, "Invalid sort", f"sort: one of {', '.join(SORTS)}",
                           viewer=viewer)
    filters = _filters(request.query_params)
    state = request.app.state.indelible
    items = await state.read(viewer.tenant, store.list_page, viewer.tenant, filters,
                             limit=PAGE + 1, after=_after(cursor), oldest_first=SORTS[sort])
    more = len(items) > PAGE
    items = items[:PAGE]
    kept = {k: v for k, v in request.query_params.items() if k != "cursor" and v}
    next_query = {**kept, "cursor": _cursor(items[-1])} if more else None
    return render(request, "list.html", viewer=viewer, items=items, params=kept, sort=sort,
                  next_query=next_query, paged=cursor is not None)


async def load_case(request: Request, viewer: Viewer, case_id: str, *,
                    after_seq: int = -1) -> dict:
    """Everything the case page shows, read in one tenant-scoped transaction; 404 when the
    tenant has no such case (another tenant's case looks exactly like none)."""
    state = request.app.state.indelible

    def read(conn, tenant, case_id):
        current = store.current(conn, tenant, case_id)
        if current is None:
            return None
        _, entries = store.history(conn, tenant, case_id, after_seq=after_seq,
                                   limit=TIMELINE_PAGE + 1)
        frozen = store.snapshot(conn, tenant, case_id) if current["status"] in \
            {s.value for s in domain.TERMINAL} else None
        names = api_keys.key_names(conn, tenant, sorted(
            {e.actor_id.removeprefix("key:") for e in entries if e.actor_id.startswith("key:")}))
        return current, entries, frozen, names, escalation.escalation_view(conn, tenant, case_id)
    found = await state.read(viewer.tenant, read, viewer.tenant, case_id.lower())
    if found is None:
        raise ConsoleError(404, "Unknown discrepancy",
                           f"no discrepancy {case_id} in this tenant", viewer=viewer)
    current, entries, frozen, names, escalation_view = found
    more = len(entries) > TIMELINE_PAGE
    entries = entries[:TIMELINE_PAGE]
    return {"case": current, "entries": entries, "frozen": frozen,
            "next_after_seq": entries[-1].seq if more else None,
            "actor_names": {f"key:{k}": v for k, v in names.items()},
            "escalation": escalation_view,
            "may": _may(viewer, current)}


def _may(viewer: Viewer, case: dict) -> dict:
    """What this viewer's role may do from the case's status, read from the domain's own
    tables (lifecycle.TRANSITIONS, decisions.PERMISSIONS). Only offered here: the server
    decides again when a form is sent."""
    role = domain.Role(viewer.role) if viewer.role in {r.value for r in domain.Role} else None
    if role is None:
        return {"moves": [], "comment": False, "assign": False, "attach": False, "severity": False}
    status, terminal = domain.Status(case["status"]), case["status"] in {s.value for s in domain.TERMINAL}
    allowed = lambda command: role in domain.PERMISSIONS[command]  # noqa: E731
    return {"moves": [s.value for s in domain.allowed_moves(status, role,
                                                             investigated=case["investigated"])],
            "comment": allowed(domain.Comment),
            "assign": allowed(domain.Assign) and not terminal,
            "attach": allowed(domain.AttachEvidence) and not terminal,
            "severity": allowed(domain.ChangeSeverity) and not terminal}


def case_page(request: Request, viewer: Viewer, loaded: dict, *, status_code: int = 200,
              error: tuple[str, str] | None = None, done: str | None = None):
    return render(request, "case.html", status_code=status_code, viewer=viewer, error=error,
                  done=done, resolution_codes=[c.value for c in domain.ResolutionCode],
                  timeline_rows=timeline.rows(loaded["entries"], loaded["actor_names"]), **loaded)


@router.get("/discrepancies/{case_id}")
async def case(request: Request, viewer: SignedIn, case_id: CaseId,
               after_seq: Annotated[int, Query(ge=-1, le=2**62)] = -1,
               done: Annotated[str | None, Query(max_length=200)] = None):
    return case_page(request, viewer, await load_case(request, viewer, case_id,
                                                      after_seq=after_seq), done=done)


@router.get("/discrepancies/{case_id}/snapshot.json")
async def snapshot_download(request: Request, viewer: SignedIn, case_id: CaseId):
    state = request.app.state.indelible
    frozen = await state.read(viewer.tenant, store.snapshot, viewer.tenant, case_id.lower())
    if frozen is None:
        raise ConsoleError(404, "No snapshot", f"discrepancy {case_id} has no resolution "
                           "snapshot in this tenant (it is not resolved or auto-closed)",
                           viewer=viewer)
    return Response(orjson.dumps(frozen, option=orjson.OPT_INDENT_2),
                    media_type="application/json", headers=_attachment(f"snapshot-{case_id}.json"))


@router.get("/evidence/{sha256}")
async def evidence_download(request: Request, viewer: SignedIn,
                            sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
                            name: Annotated[str, Query(max_length=255)] = "evidence"):
    state = request.app.state.indelible
    content = await state.read(viewer.tenant, evidence.load_file, viewer.tenant, sha256)
    if content is None:
        raise ConsoleError(404, "Unknown evidence", f"no evidence file {sha256} in this tenant",
                           viewer=viewer)
    digest = base64.b64encode(bytes.fromhex(sha256)).decode()
    return Response(content, media_type="application/octet-stream",
                    headers={**_attachment(name), "Digest": f"sha-256={digest}"})


def _attachment(name: str) -> dict[str, str]:
    """A download, never rendered in the console's origin; the name made header-safe."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:120] or "download"
    return {"Content-Disposition": f'attachment; filename="{safe}"'}


@router.get("/discrepancies/{case_id}/bundle")
async def bundle_download(request: Request, viewer: SignedIn, case_id: CaseId):
    """The case's evidence bundle (zip), exported through the same use case as
    `GET /v1/discrepancies/{id}/evidence`, so the export is a ledger entry here too."""
    state, case_id = request.app.state.indelible, case_id.lower()
    out = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # bytes in memory before a file

    async def read(fn, *args, **kwargs):
        return await state.read(viewer.tenant, fn, *args, **kwargs)
    try:
        await export_bundle(state.ledger, viewer.asking(), read,
                            BundleQuery(viewer.tenant, discrepancies=(case_id,)), out,
                            verifier_key=state.signer.verifier_key_text())
    except NotYetSignedError as e:
        out.close()
        raise ConsoleError(409, "Not yet signed", str(e), viewer=viewer) from e
    except NotFoundError as e:
        out.close()
        raise ConsoleError(404, "Unknown discrepancy", str(e), viewer=viewer) from e
    except BaseException:
        out.close()
        raise
    out.seek(0)

    def chunks():
        with out:
            while piece := out.read(1 << 16):
                yield piece
    return StreamingResponse(chunks(), media_type="application/zip",
                             headers=_attachment(f"evidence-{case_id}.zip"))
