"""Compliance reports over HTTP: ask (202 + Location), follow, download; recurring schedules.

Compliance managers, auditors and admins may ask for and read reports. A report of another
tenant is a 404 like one that does not exist: every query runs under the caller's tenant.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from indelible.api.context import State, asking, require
from indelible.api.problems import ProblemError, invalid, problem_responses
from indelible.reports.request import InvalidReportError
from indelible.store import reports as store
from indelible.store.api_keys import Principal
from indelible.usecases import reports

router = APIRouter(tags=["reports"])
READERS = ("compliance_manager", "auditor", "admin")
Reader = Annotated[Principal, Depends(require(*READERS))]
ReportId = Annotated[str, Path(min_length=1, max_length=64)]
FileName = Annotated[str, Path(min_length=1, max_length=64)]


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: list[str] = Field(default=[], description="statuses at the end of the period")
    severity: list[str] = []
    source: list[str] = []
    currency: list[str] = Field(default=[], description="ISO 4217 codes")
    discrepancy_ids: list[str] = Field(default=[], description="only these discrepancies")


class ReportBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: str = Field(alias="from", description="a date (midnight UTC) or an RFC 3339 time; "
                       "inclusive", examples=["2026-10-01"])
    to: str = Field(description="exclusive; at most 366 days after `from`",
                    examples=["2027-01-01"])
    formats: list[str] = Field(default=["pdf", "html", "json"])
    filters: Filters = Filters()


class ScheduleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    every: str = Field(description="weekly, monthly or quarterly", examples=["monthly"])
    formats: list[str] = Field(default=["pdf", "html", "json"])
    filters: Filters = Filters()


class FileLink(BaseModel):
    name: str
    media_type: str
    sha256: str
    size: int
    href: str


class ReportStatus(BaseModel):
    id: str
    status: str = Field(description="queued, running, done or failed")
    progress: str | None
    parameters: dict[str, Any]
    requested_by: str
    requested_at: str
    finished_at: str | None
    failure: str | None = Field(description="why it failed, in words")
    entry_seq: int | None = Field(description="the report.generated ledger entry")
    schedule_id: str | None
    files: list[FileLink]


def _refused(e: InvalidReportError) -> ProblemError:
    return invalid(*((f"body.{field}", rule) for field, rule in e.errors))


def _status(job: store.Job, files: list[store.StoredFile]) -> dict:
    base = f"/v1/reports/{job.report_id}"
    return ReportStatus(
        id=job.report_id, status=job.status, progress=job.progress,
        parameters=job.parameters["request"], requested_by=job.requested_by,
        requested_at=job.requested_at.isoformat(),
        finished_at=job.finished_at.isoformat() if job.finished_at else None,
        failure=job.failure, entry_seq=job.entry_seq, schedule_id=job.schedule_id,
        files=[FileLink(**f.to_json(), href=f"{base}/files/{f.name}") for f in files]).model_dump()


def _not_found(e: reports.UnknownReportError) -> ProblemError:
    return ProblemError(404, "Unknown report", str(e))


@router.post("/v1/reports", status_code=202, response_model=ReportStatus,
             responses=problem_responses(403, 422))
async def ask_for_report(body: ReportBody, who: Reader, state: State) -> JSONResponse:
    """Queue a report over a period; follow `Location` until `status` is `done`."""
    try:
        job = await state.read(who.tenant, reports.request_report, state.ledger_append,
                               asking(who), body.model_dump(by_alias=True))
    except InvalidReportError as e:
        raise _refused(e) from e
    return JSONResponse(_status(job, []), status_code=202,
                        headers={"Location": f"/v1/reports/{job.report_id}"})


@router.get("/v1/reports", response_model=list[ReportStatus], responses=problem_responses(403))
async def list_reports(who: Reader, state: State) -> list[dict]:
    """The tenant's 50 most recent reports, newest first."""
    jobs = await state.read(who.tenant, store.list_jobs, who.tenant)
    return [_status(job, []) for job in jobs]


@router.get("/v1/reports/{report_id}", response_model=ReportStatus,
            responses=problem_responses(403, 404))
async def report_status(report_id: ReportId, who: Reader, state: State) -> dict:
    """Where the report is: queued, running (with progress), done (with its files) or failed
    (with the reason)."""
    try:
        job, files = await state.read(who.tenant, reports.report_status, who.tenant, report_id)
    except reports.UnknownReportError as e:
        raise _not_found(e) from e
    return _status(job, files)


@router.get("/v1/reports/{report_id}/files/{name}", responses={
    **problem_responses(403, 404), 200: {"description": "the file, as recorded in the ledger",
                                         "content": {"application/pdf": {}, "text/html": {},
                                                     "application/json": {}}}})
async def report_file(report_id: ReportId, name: FileName, who: Reader, state: State) -> Response:
    """One file of a finished report; its SHA-256 is in the report.generated entry."""
    try:
        found, content = await state.read(who.tenant, reports.report_file, who.tenant,
                                          report_id, name)
    except reports.UnknownReportError as e:
        raise _not_found(e) from e
    except reports.ReportIntegrityError as e:
        raise ProblemError(500, "Report file altered", str(e)) from e
    return Response(content, media_type=found.media_type, headers={
        "Content-Disposition": f'attachment; filename="{who.tenant}-{report_id}-{found.name}"',
        "Digest": f"sha-256={found.sha256}"})


@router.post("/v1/report-schedules", status_code=201, responses=problem_responses(403, 422))
async def schedule_report(body: ScheduleBody, who: Reader, state: State) -> dict:
    """A recurring report: each week, month or quarter, the period that just ended."""
    def append(tenant, command):
        return state.appender.submit(tenant, command).result(timeout=30)
    from fastapi.concurrency import run_in_threadpool
    try:
        made = await run_in_threadpool(reports.set_schedule, append, asking(who),
                                       body.model_dump())
    except InvalidReportError as e:
        raise _refused(e) from e
    return made.to_json()


@router.get("/v1/report-schedules", responses=problem_responses(403))
async def list_schedules(who: Reader, state: State) -> list[dict]:
    found = await state.read(who.tenant, store.list_schedules, who.tenant)
    return [s.to_json() for s in found]


@router.delete("/v1/report-schedules/{schedule_id}", status_code=204,
               responses=problem_responses(403, 404))
async def cancel_schedule(schedule_id: ReportId, who: Reader, state: State) -> Response:
    def append(tenant, command):
        return state.appender.submit(tenant, command).result(timeout=30)
    try:
        await state.read(who.tenant, lambda conn: reports.cancel_schedule(append, conn, asking(who),
                                                                          schedule_id))
    except reports.UnknownReportError as e:
        raise _not_found(e) from e
    return Response(status_code=204)
