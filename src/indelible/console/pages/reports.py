"""Compliance reports: ask for one, watch it (the page refreshes itself while it runs), and
download its files; the same use cases and role rule as `/v1/reports`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response

from indelible.api.routes.reports import READERS  # the API's own rule: one copy
from indelible.console import security
from indelible.console.errors import ConsoleError
from indelible.console.render import TEMPLATES, render
from indelible.console.sessions import Viewer
from indelible.reports.request import InvalidReportError
from indelible.store import reports as store
from indelible.usecases import reports

router = APIRouter()
TEMPLATES.env.globals["report_readers"] = READERS  # the nav shows Reports to these roles
FORMATS = ("pdf", "html", "json")
ReportId = Annotated[str, Path(min_length=1, max_length=64)]


async def _reader(viewer: Annotated[Viewer, Depends(security.viewer)]) -> Viewer:
    if viewer.role not in READERS:
        raise ConsoleError(403, "Forbidden", f"role {viewer.role!r} may not read reports; "
                           f"allowed: {', '.join(READERS)}", viewer=viewer)
    return viewer


async def _asker(viewer: Annotated[Viewer, Depends(security.posting_viewer)]) -> Viewer:
    return await _reader(viewer)


Reader = Annotated[Viewer, Depends(_reader)]
Asker = Annotated[Viewer, Depends(_asker)]


@router.get("/reports")
async def reports_page(request: Request, viewer: Reader, error: str | None = None):
    jobs = await request.app.state.indelible.read(viewer.tenant, store.list_jobs, viewer.tenant)
    return render(request, "reports.html", viewer=viewer, jobs=jobs, formats=FORMATS,
                  error=error)


@router.post("/reports")
async def ask(request: Request, viewer: Asker):
    form = await request.form()
    body = {"from": str(form.get("from", "")), "to": str(form.get("to", "")),
            "formats": [f for f in FORMATS if form.get(f"format_{f}")] or list(FORMATS)}
    state = request.app.state.indelible
    try:
        job = await state.read(viewer.tenant, reports.request_report, state.ledger_append,
                               viewer.asking(), body)
    except InvalidReportError as e:
        jobs = await state.read(viewer.tenant, store.list_jobs, viewer.tenant)
        return render(request, "reports.html", status_code=422, viewer=viewer, jobs=jobs,
                      formats=FORMATS, error="; ".join(f"{field}: {rule}"
                                                       for field, rule in e.errors))
    return RedirectResponse(f"/console/reports/{job.report_id}", status_code=303)


@router.get("/reports/{report_id}")
async def report_page(request: Request, viewer: Reader, report_id: ReportId):
    try:
        job, files = await request.app.state.indelible.read(
            viewer.tenant, reports.report_status, viewer.tenant, report_id)
    except reports.UnknownReportError as e:
        raise ConsoleError(404, "Unknown report", str(e), viewer=viewer) from e
    return render(request, "report.html", viewer=viewer, job=job, files=files,
                  watching=job.status in ("queued", "running"))


@router.get("/reports/{report_id}/files/{name}")
async def report_file(request: Request, viewer: Reader, report_id: ReportId,
                      name: Annotated[str, Path(min_length=1, max_length=64)]):
    try:
        found, content = await request.app.state.indelible.read(
            viewer.tenant, reports.report_file, viewer.tenant, report_id, name)
    except reports.UnknownReportError as e:
        raise ConsoleError(404, "Unknown report file", str(e), viewer=viewer) from e
    return Response(content, media_type=found.media_type, headers={
        "Content-Disposition": f'attachment; filename="{viewer.tenant}-{report_id}-{found.name}"',
        "Digest": f"sha-256={found.sha256}"})
