"""Discrepancies over HTTP: open, move through the lifecycle, assign, comment, read.

Every change is one ledger entry, decided against the state replayed under the log-head
lock. Refusals are RFC 9457 problems that name what was refused and what is allowed.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

import msgspec
import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from indelible import domain
from indelible.api import bodies, direct
from indelible.api.context import State, asking, require
from indelible.api.params import UUID, Uuid
from indelible.api.problems import (
    ProblemError,
    invalid,
    invalid_command,
    problem_responses,
)
from indelible.domain.validation import MAX_DEPTH
from indelible.entry import b64, format_time
from indelible.store import discrepancies as store
from indelible.store import evidence
from indelible.store.api_keys import Principal
from indelible.store.logs import LogEnd, log_end
from indelible.usecases import discrepancies

router = APIRouter(tags=["discrepancies"])
# Each route's own refusals; api/openapi.py adds the ones every route of its kind can give.
FOUND = problem_responses(404)
CHANGE = problem_responses(403, 404, 409)
Reader = Annotated[Principal, Depends(require("analyst", "compliance_manager", "auditor", "admin", "system"))]
WORKERS = ("analyst", "compliance_manager", "system")
Worker = Annotated[Principal, Depends(require(*WORKERS))]
DiscrepancyId = Uuid
KEY_MAX = 200  # characters of an Idempotency-Key
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=KEY_MAX)]
Decimal = Annotated[str, Field(min_length=1, max_length=40, description="decimal string, e.g. \"10.50\"")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class OpenRequest(Strict):
    external_ref: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=64)
    kind: Literal["amount_mismatch", "missing_transaction", "timing_gap", "duplicate", "other"]
    expected_amount: Decimal
    actual_amount: Decimal
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    detected_at: str = Field(min_length=1, max_length=40, description="RFC 3339 with offset")
    severity: Literal["low", "medium", "high", "critical"] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    transaction_refs: list[str] = Field(default_factory=list, max_length=100)


class TransitionRequest(Strict):
    to: Literal["open", "acknowledged", "investigating", "resolved", "escalated", "auto_closed"]
    reason: str | None = Field(default=None, max_length=1000)
    resolution_code: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=4000)


class AssignRequest(Strict):
    assignee: str | None = Field(max_length=200)


class CommentRequest(Strict):
    text: str = Field(min_length=1, max_length=4000)


class SeverityRequest(Strict):
    severity: Literal["low", "medium", "high", "critical"]
    reason: str = Field(min_length=1, max_length=1000)


def _command(build, *, where: dict[str, str] | None = None, **kwargs):
    """Build a domain command; its validation errors become 422 naming field and rule, the
    field under the request location it came from (`where`; default the body)."""
    try:
        return build(**kwargs)
    except domain.InvalidCommandError as e:
        raise invalid_command(e, where) from e


def _fingerprint(request: Request, payload: Any) -> str:
    """SHA-256 of what makes a request this request: method, path and the parsed body in a
    canonical form (sorted keys, so whitespace or key order do not make it another)."""
    return hashlib.sha256(orjson.dumps([request.method, request.url.path, payload],
                                       option=orjson.OPT_SORT_KEYS)).hexdigest()


async def _record(use_case, state: State, who: Principal, discrepancy_id: str | None, *args,
                  request: Request, payload: Any, key: str | None = None):
    """Run a use case (usecases/discrepancies.py) for this request and translate its refusal.
    A client's Idempotency-Key is namespaced by its API key, so it can never collide with
    another client's; it is bound to the fingerprint of this request, and a reuse for any
    other request is refused (422) naming the entry the key already produced (the IETF
    httpapi Idempotency-Key draft's behaviour)."""
    client_key = None if key is None else discrepancies.ClientKey(
        f"req:{who.key_id}:{key}", _fingerprint(request, payload))
    args = args if discrepancy_id is None else (discrepancy_id, *args)
    try:
        return await use_case(state.ledger, asking(who), *args, key=client_key)
    except domain.DomainError as e:
        raise _refusal(e, discrepancy_id) from e
    except discrepancies.KeyReusedError as e:
        raise ProblemError(422, "Idempotency-Key reused",
                           f"Idempotency-Key {key!r} was already used for a different request: "
                           f"it produced the entry at seq {e.seq} (discrepancy "
                           f"{e.discrepancy_id}). Send a new key for a new request.",
                           idempotency_key=key, seq=e.seq,
                           discrepancy_id=e.discrepancy_id) from e


def _answers_this_key(appended, who: Principal, key: str | None) -> bool:
    """Whether a replayed entry is the one this request key produced (not a re-report)."""
    meta = orjson.loads(appended.entry)["meta"]
    return key is not None and meta.get("request_key") == f"req:{who.key_id}:{key}"


def _refusal(error: domain.DomainError, discrepancy_id: str) -> ProblemError:
    if isinstance(error, domain.TransitionRefusedError):
        return ProblemError(409, "Transition refused", str(error), discrepancy_id=discrepancy_id,
                            current_status=str(error.status), requested=str(error.requested),
                            role=str(error.role), allowed=[str(s) for s in error.allowed])
    if isinstance(error, domain.PermissionRefusedError):
        return ProblemError(403, "Forbidden", str(error), discrepancy_id=discrepancy_id)
    if isinstance(error, domain.UnknownDiscrepancyError):
        return ProblemError(404, "Unknown discrepancy", str(error), discrepancy_id=discrepancy_id)
    if isinstance(error, domain.InvalidCommandError):
        return invalid_command(error)
    return ProblemError(409, "Refused", str(error), discrepancy_id=discrepancy_id)


async def _after(state: State, who: Principal, discrepancy_id: str, appended) -> dict:
    """The discrepancy right after `appended` (a replayed request re-reads the current one)."""
    current = appended.state.to_dict() if appended.state is not None else \
        await _current(state, who, discrepancy_id)
    return {**current, "seq": appended.seq}


async def _current(state: State, who: Principal, discrepancy_id: str) -> dict:
    found = await state.read(who.tenant, store.current, who.tenant, discrepancy_id)
    if found is None:
        raise ProblemError(404, "Unknown discrepancy",
                           f"no discrepancy {discrepancy_id} in this tenant")
    return found


async def _report(state: State, who: Principal, request: Request, body: dict,
                  key: str | None) -> JSONResponse:
    """The open endpoint's work, on values either lane admitted (api/direct.py)."""
    command = _command(domain.OpenDiscrepancy,
                       **{**body, "transaction_refs": tuple(body["transaction_refs"])})
    recorded = await _record(discrepancies.report, state, who, None, command, request=request,
                             payload=body, key=key)
    appended, discrepancy_id = recorded.appended, recorded.discrepancy_id
    if appended.replayed:
        created = appended.version == 1 and _answers_this_key(appended, who, key)
        return JSONResponse(await _current(state, who, discrepancy_id),
                            status_code=201 if created else 200)
    return JSONResponse(appended.state.to_dict(), status_code=201 if appended.version == 1 else 200)


async def _open_directly(request: Request) -> Response | None:
    who = direct.caller(request, WORKERS)
    usual_key, key = direct.optional_header(request, "idempotency-key", KEY_MAX)
    if who is None or not usual_key or not direct.sent_as_json(request):
        return None
    body = await direct.decoded(request, bodies.OPEN)
    if body is None or not direct.nested_within(body.metadata, MAX_DEPTH):
        return None
    return await _report(request.app.state.indelible, who, request,
                         msgspec.structs.asdict(body), key)


@router.post("/v1/discrepancies", status_code=201, response_description="Recorded",
             responses={**problem_responses(403, 409), 200: {
                 "description": "Reported before: the discrepancy, unchanged or amended",
                 "content": {"application/json": {"schema": {"type": "object"}}}}})
@direct.direct(_open_directly)
async def open_discrepancy(body: OpenRequest, who: Worker, state: State, request: Request,
                           key: IdempotencyKey = None):
    """Record a discrepancy (201). Reporting the same (source, external_ref) again returns
    it (200): unchanged when the report is identical, so engines can retry safely; amended
    when kind, amounts or currency differ (a `discrepancy.amended` entry in its history
    names each changed field before and after; severity and status stay)."""
    # The fields as json.loads read them, for the domain to judge: model_dump(mode="json")
    # would turn NaN and infinities into null (accepting a float the domain refuses) and
    # fails past 255 levels (a 500 where the domain names the depth).
    return await _report(state, who, request, dict(body), key)


NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL; refuse it at the edge
Status = Literal["open", "acknowledged", "investigating", "resolved", "escalated", "auto_closed"]
Severity = Literal["low", "medium", "high", "critical"]


def _filters(status: Status | None = None, severity: Severity | None = None,
             source: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
             assignee: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
             q: Annotated[str | None, Query(max_length=200, pattern=NO_NUL,
                                            description="text in external_ref")] = None,
             opened_after: datetime | None = None,
             opened_before: datetime | None = None) -> store.Filters:
    for name, moment in (("opened_after", opened_after), ("opened_before", opened_before)):
        if moment is not None and moment.tzinfo is None:
            raise invalid((f"query.{name}", "the time needs a UTC offset, e.g. "
                           "2026-11-23T05:00:00Z"))
    return store.Filters(status, severity, source, assignee, q, opened_after, opened_before)


Filters = Annotated[store.Filters, Depends(_filters)]


@router.get("/v1/discrepancies")
async def list_discrepancies(who: Reader, state: State, filters: Filters,
                             limit: Annotated[int, Query(ge=1, le=200)] = 50,
                             cursor: Annotated[str | None, Query(max_length=200)] = None) -> dict:
    """Newest first. Pass `next_cursor` back as `cursor` for the next page."""
    items = await state.read(who.tenant, store.list_page, who.tenant, filters, limit=limit,
                             after=_decode_cursor(cursor) if cursor else None)
    last = items[-1] if len(items) == limit else None
    return {"items": items, "next_cursor": _encode_cursor(last) if last else None}


@router.get("/v1/discrepancy-counts")
async def discrepancy_counts(who: Reader, state: State, filters: Filters) -> dict:
    """How many discrepancies by status and by severity (for a dashboard)."""
    return await state.read(who.tenant, store.counts, who.tenant, filters)


def _encode_cursor(item: dict) -> str:
    raw = orjson.dumps([item["opened_at"], item["id"]])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        opened_at, discrepancy_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(opened_at, str) and isinstance(discrepancy_id, str)):
            raise TypeError("cursor members must be strings")
        return datetime.fromisoformat(opened_at.replace("Z", "+00:00")), str(uuid.UUID(discrepancy_id))
    except (ValueError, TypeError, orjson.JSONDecodeError) as e:
        raise invalid(("query.cursor", "not a cursor this API returned")) from e


@router.get("/v1/discrepancies/{discrepancy_id}", responses=FOUND)
async def get_discrepancy(discrepancy_id: DiscrepancyId, who: Reader, state: State,
                          as_of: Annotated[str | None, Query(max_length=40, description=
                              "the discrepancy as it was once the log held this entry (a seq) "
                              "or at this RFC 3339 time (when the ledger recorded its entries); "
                              "neither may lie beyond the end of the log")] = None):
    if as_of is None:
        return await _current(state, who, discrepancy_id)
    point, asked = _as_of(as_of), datetime.now(timezone.utc)
    _within_log(as_of, point, await state.read(who.tenant, log_end, who.tenant), asked)
    then, _ = await state.read(who.tenant, store.history, who.tenant, discrepancy_id, **point)
    if then is None:
        raise ProblemError(404, "Unknown discrepancy",
                           f"discrepancy {discrepancy_id} did not exist as of {as_of}")
    return then.to_dict()


def _as_of(value: str) -> dict:
    if value.isascii() and value.isdigit():
        return {"until_seq": int(value)}
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise invalid(("query.as_of", f"{value!r} is neither a seq nor an RFC 3339 time")) from e
    if moment.tzinfo is None:
        raise invalid(("query.as_of", "the time needs a UTC offset, e.g. 2026-11-23T05:00:00Z"))
    return {"until_time": moment}


def _within_log(as_of: str, point: dict, end: LogEnd, asked: datetime) -> None:
    """Refuse an `as_of` past what the log knows: a seq it does not hold yet, or a time
    after the request (the log is complete only up to the moment it is read). Answering
    with the present instead would pass a guess off as history."""
    latest = format_time(end.latest_at) if end.latest_at else None
    reach = (f"the log holds seqs 0..{end.size - 1}, the latest recorded at {latest}"
             if end.size else "the log is empty")
    if point.get("until_seq", -1) >= end.size:
        rule = f"seq {point['until_seq']} is beyond the end of the log: {reach}"
    elif point.get("until_time", asked) > asked:
        rule = f"{as_of} is later than now ({format_time(asked)}): {reach}"
    else:
        return
    raise invalid(("query.as_of", rule), title="Beyond the end of the log", log_size=end.size,
                  latest_at=latest)


@router.get("/v1/discrepancies/{discrepancy_id}/history", responses=FOUND)
async def get_history(discrepancy_id: DiscrepancyId, who: Reader, state: State,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 500,
                      after_seq: Annotated[int, Query(ge=0, le=2**62)] | None = None) -> dict:
    """The ledger entries about the discrepancy, in order, a page at a time: pass
    `next_after_seq` back as `after_seq` for the next page (null: this was the last)."""
    _, items = await state.read(who.tenant, store.history, who.tenant, discrepancy_id,
                                after_seq=-1 if after_seq is None else after_seq, limit=limit + 1)
    if not items and after_seq is None:
        raise ProblemError(404, "Unknown discrepancy", f"no discrepancy {discrepancy_id} in this tenant")
    more = len(items) > limit
    items = items[:limit]
    return {"discrepancy_id": discrepancy_id, "entries": [
        {"seq": i.seq, "at": i.at, "type": i.type, "actor": i.actor_id, "role": i.role,
         "status_before": i.status_before, "status_after": i.status_after,
         "leaf_hash": b64(i.leaf_hash), "data": i.data} for i in items],
        "next_after_seq": items[-1].seq if more else None}


@router.get("/v1/discrepancies/{discrepancy_id}/snapshot", responses=FOUND)
async def get_snapshot(discrepancy_id: DiscrepancyId, who: Reader, state: State) -> dict:
    """The discrepancy frozen when it was resolved or auto-closed, with its history digest."""
    found = await state.read(who.tenant, store.snapshot, who.tenant, discrepancy_id)
    if found is None:
        raise ProblemError(404, "No snapshot", f"discrepancy {discrepancy_id} has no resolution "
                           "snapshot in this tenant (it is not resolved or auto-closed)")
    return found


@router.post("/v1/discrepancies/{discrepancy_id}/evidence", status_code=201, responses=CHANGE,
             openapi_extra={"requestBody": {"required": True, "description": "the file; its "
                            "Content-Type, any media type, is recorded as the file's type",
                            "content": {"application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}}}}})
async def attach_evidence(discrepancy_id: DiscrepancyId, request: Request, who: Worker,
                          state: State,
                          name: Annotated[str, Query(min_length=1, max_length=255)],
                          key: IdempotencyKey = None) -> dict:
    """Attach a file: the raw request body, its Content-Type as media type. The bytes are
    stored content-addressed; the ledger entry records hash, name, size and type. They are
    held in memory (bounded by the route's body limit) until the attach is decided, and
    stored in the entry's own transaction: a refused attach stores nothing."""
    content = await _body(request)
    media_type = request.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
    sha256 = hashlib.sha256(content).hexdigest()
    command = _command(domain.AttachEvidence, where=EVIDENCE_FIELDS, sha256=sha256, name=name,
                       size=len(content), media_type=media_type)
    recorded = await _record(discrepancies.attach_evidence, state, who, discrepancy_id, command,
                             content, request=request, key=key,
                             payload={"name": name, "media_type": command.media_type,
                                      "sha256": sha256})
    appended = recorded.appended
    return {"discrepancy_id": discrepancy_id, "sha256": sha256, "size": len(content),
            "name": name, "media_type": command.media_type, "seq": appended.seq}


# Where each field of an evidence command came from in the request.
EVIDENCE_FIELDS = {"name": "query.name", "media_type": "header.Content-Type", "size": "body",
                   "sha256": "body"}


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > evidence.MAX_FILE:
        raise ProblemError(413, "File too large", f"evidence files are limited to "
                           f"{evidence.MAX_FILE} bytes; this one declares {declared}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > evidence.MAX_FILE:
            raise ProblemError(413, "File too large",
                               f"evidence files are limited to {evidence.MAX_FILE} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.get("/v1/evidence/{sha256}", responses=FOUND)
async def download_evidence(sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")], who: Reader,
                            state: State) -> Response:
    """The bytes of an evidence file of this tenant, by its SHA-256."""
    content = await state.read(who.tenant, evidence.load_file, who.tenant, sha256)
    if content is None:
        raise ProblemError(404, "Unknown evidence", f"no evidence file {sha256} in this tenant")
    return Response(content, media_type="application/octet-stream",
                    headers={"Digest": f"sha-256={base64.b64encode(bytes.fromhex(sha256)).decode()}"})


async def _move(state: State, who: Principal, request: Request, discrepancy_id: str,
                body: dict, key: str | None) -> dict:
    """The transition endpoint's work, on values either lane admitted (api/direct.py)."""
    command = _command(domain.Transition, **body)
    recorded = await _record(discrepancies.move, state, who, discrepancy_id, command,
                             request=request, payload=body, key=key)
    return await _after(state, who, discrepancy_id, recorded.appended)


async def _transition_directly(request: Request) -> Response | None:
    who = direct.caller(request, WORKERS)
    discrepancy_id = request.path_params["discrepancy_id"]
    usual_key, key = direct.optional_header(request, "idempotency-key", KEY_MAX)
    if who is None or not usual_key or not direct.sent_as_json(request) \
            or not UUID.fullmatch(discrepancy_id):
        return None
    body = await direct.decoded(request, bodies.TRANSITION)
    if body is None:
        return None
    return direct.answer(await _move(request.app.state.indelible, who, request,
                                     discrepancy_id.lower(), msgspec.structs.asdict(body), key))


@router.post("/v1/discrepancies/{discrepancy_id}/transitions", responses=CHANGE)
@direct.direct(_transition_directly)
async def transition(discrepancy_id: DiscrepancyId, body: TransitionRequest, who: Worker,
                     state: State, request: Request, key: IdempotencyKey = None) -> dict:
    """Move the discrepancy; refused (409) unless the lifecycle allows it for this role now."""
    return await _move(state, who, request, discrepancy_id, body.model_dump(mode="json"), key)


@router.post("/v1/discrepancies/{discrepancy_id}/assignment", responses=CHANGE)
async def assign(discrepancy_id: DiscrepancyId, body: AssignRequest, who: Worker, state: State,
                 request: Request, key: IdempotencyKey = None) -> dict:
    recorded = await _record(discrepancies.assign, state, who, discrepancy_id,
                             _command(domain.Assign, assignee=body.assignee), request=request,
                             payload=body.model_dump(mode="json"), key=key)
    return await _after(state, who, discrepancy_id, recorded.appended)


@router.post("/v1/discrepancies/{discrepancy_id}/comments", status_code=201, responses=CHANGE)
async def comment(discrepancy_id: DiscrepancyId, body: CommentRequest, who: Worker, state: State,
                  request: Request, key: IdempotencyKey = None) -> dict:
    recorded = await _record(discrepancies.comment, state, who, discrepancy_id,
                             _command(domain.Comment, text=body.text), request=request,
                             payload=body.model_dump(mode="json"), key=key)
    return {"discrepancy_id": discrepancy_id, "seq": recorded.appended.seq}


@router.post("/v1/discrepancies/{discrepancy_id}/severity", responses=CHANGE)
async def change_severity(discrepancy_id: DiscrepancyId, body: SeverityRequest, who: Worker,
                          state: State, request: Request, key: IdempotencyKey = None) -> dict:
    command = _command(domain.ChangeSeverity, severity=body.severity, reason=body.reason)
    recorded = await _record(discrepancies.change_severity, state, who, discrepancy_id, command,
                             request=request, payload=body.model_dump(mode="json"), key=key)
    return await _after(state, who, discrepancy_id, recorded.appended)
