"""Escalation over HTTP: the rules and the business calendar (each change a ledger entry
naming the version it replaces: 409 when stale), a preview that writes nothing, each
discrepancy's escalation view, pauses, and a pass on demand."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from indelible import domain
from indelible.api.context import State, asking, require
from indelible.api.params import Uuid
from indelible.api.problems import ProblemError, invalid, invalid_command, problem_responses
from indelible.escalation.calendar import parse_calendar
from indelible.escalation.rules import parse_rules
from indelible.store import escalation as store
from indelible.store.api_keys import Principal
from indelible.store.errors import AppendRefusedError, VersionConflictError
from indelible.usecases import escalation

router = APIRouter(tags=["escalation"])
Reader = Annotated[Principal, Depends(require("analyst", "compliance_manager", "auditor", "admin",
                                              "system"))]
Manager = Annotated[Principal, Depends(require(*escalation.SETTERS))]
ComplianceManager = Annotated[Principal, Depends(require("compliance_manager"))]
Runner = Annotated[Principal, Depends(require("compliance_manager", "admin", "system"))]
Reason = Field(min_length=1, max_length=1000, pattern=r"^[^\x00]*$")
MAX_SEQ = 2**62
AsOf = Annotated[str | None, Query(max_length=40, description="the set in force once the log "
                                   "held this entry (a seq), or at this RFC 3339 time")]


class RulesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    rules: list[Any] = Field(description="the whole rule set (see the README)")
    reason: str = Reason
    expected_version: int = Field(ge=0, description="the `version` this change replaces")


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    rules: list[Any]


class CalendarRequest(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    reason: str = Reason
    expected_version: int = Field(ge=0)


class PauseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    reason: str = Reason
    until: str = Field(max_length=40, description="RFC 3339 time with an offset")


class ResumeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    reason: str = Reason


def _as_of(value: str | None) -> dict:
    if value is None:
        return {}
    if value.isascii() and value.isdigit():
        if int(value) > MAX_SEQ:
            raise invalid(("query.as_of", f"seq {value} is beyond any log (at most {MAX_SEQ})"))
        return {"seq": int(value)}
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise invalid(("query.as_of", f"{value!r} is neither a seq nor an RFC 3339 time")) from e
    if moment.tzinfo is None:
        raise invalid(("query.as_of", "the time needs a UTC offset, e.g. 2026-11-23T05:00:00Z"))
    return {"at": moment}


def _conflict(e: VersionConflictError, what: str) -> ProblemError:
    return ProblemError(409, f"{what} changed meanwhile",
                        f"the {what.lower()} is at version {e.actual}, not {e.expected}; read it "
                        "again and resend with that expected_version", current_version=e.actual)


def _rules(items: list) -> Any:
    try:
        return parse_rules({"rules": items})
    except domain.InvalidCommandError as e:
        raise invalid_command(e) from e


@router.get("/v1/escalation-rules")
async def get_rules(who: Reader, state: State, as_of: AsOf = None) -> dict:
    """The rule set in force (now, or as of a seq or time), with its version and the entry
    that set it; `default: true` is the built-in set a tenant starts with."""
    found = await state.read(who.tenant, store.current_rules, who.tenant, **_as_of(as_of))
    return found.to_dict()


@router.put("/v1/escalation-rules", responses=problem_responses(403, 409))
async def put_rules(body: RulesRequest, who: Manager, state: State) -> dict:
    """Replace the rule set. What already fired stays as it fired."""
    rules = _rules(body.rules)
    try:
        record = await escalation.set_rules(
            state.ledger, asking(who),
            lambda fn: state.read(who.tenant, fn, who.tenant), rules, reason=body.reason,
            expected_version=body.expected_version)
    except domain.InvalidCommandError as e:
        raise invalid_command(e) from e
    except VersionConflictError as e:
        raise _conflict(e, "Rule set") from e
    return record.to_dict()


@router.post("/v1/escalation-rules/preview")
async def preview_rules(body: PreviewRequest, who: Reader, state: State) -> dict:
    """What a proposed rule set would fire against the current discrepancies, when and
    why. Writes nothing."""
    rules = _rules(body.rules)
    return await state.read(who.tenant, escalation.preview, who.tenant, rules)


@router.get("/v1/business-calendar")
async def get_calendar(who: Reader, state: State, as_of: AsOf = None) -> dict:
    found = await state.read(who.tenant, store.current_calendar, who.tenant, **_as_of(as_of))
    return found.to_dict()


@router.put("/v1/business-calendar", responses=problem_responses(403, 409))
async def put_calendar(body: CalendarRequest, who: Manager, state: State) -> dict:
    """Replace the business calendar (time zone, working days and hours, holidays)."""
    try:
        calendar = parse_calendar(body.model_extra or {})
        record = await escalation.set_calendar(state.ledger, asking(who), calendar,
                                               reason=body.reason,
                                               expected_version=body.expected_version)
    except domain.InvalidCommandError as e:
        raise invalid_command(e) from e
    except VersionConflictError as e:
        raise _conflict(e, "Calendar") from e
    return record.to_dict()


@router.get("/v1/discrepancies/{discrepancy_id}/escalation", responses=problem_responses(404))
async def get_escalation(discrepancy_id: Uuid, who: Reader, state: State) -> dict:
    """Which rules watch the discrepancy, when each is next due, and what already fired."""
    view = await state.read(who.tenant, escalation.escalation_view, who.tenant, discrepancy_id)
    if view is None:
        raise ProblemError(404, "Unknown discrepancy", f"no discrepancy {discrepancy_id}")
    return view


@router.post("/v1/discrepancies/{discrepancy_id}/escalation/pause",
             responses=problem_responses(403, 404, 409))
async def pause(discrepancy_id: Uuid, body: PauseRequest, who: ComplianceManager,
                state: State) -> dict:
    """Hold every escalation rule of this discrepancy until `until` (it ends by itself);
    what fell due meanwhile fires when it ends."""
    try:
        until = datetime.fromisoformat(body.until.replace("Z", "+00:00"))
    except ValueError as e:
        raise invalid(("body.until", f"{body.until!r} is not an RFC 3339 time")) from e
    return await _pausing(escalation.pause(state.ledger, asking(who), discrepancy_id,
                                           reason=body.reason, until=until))


@router.post("/v1/discrepancies/{discrepancy_id}/escalation/resume",
             responses=problem_responses(403, 404, 409))
async def resume(discrepancy_id: Uuid, body: ResumeRequest, who: ComplianceManager,
                 state: State) -> dict:
    return await _pausing(escalation.resume(state.ledger, asking(who), discrepancy_id,
                                            reason=body.reason))


async def _pausing(call) -> dict:
    try:
        appended = await call
    except domain.InvalidCommandError as e:
        raise invalid_command(e) from e
    except domain.UnknownDiscrepancyError as e:
        raise ProblemError(404, "Unknown discrepancy", str(e)) from e
    except AppendRefusedError as e:
        raise ProblemError(409, "Not changed", str(e)) from e
    return {"seq": appended.seq, "type": _type(appended.entry)}


def _type(entry: bytes) -> str:
    import orjson

    return orjson.loads(entry)["type"]


@router.post("/v1/escalations/run")
async def run_escalations(who: Runner, state: State) -> dict:
    """Run one escalation pass for the caller's tenant now; answers what fired."""
    async def read(fn, *args):
        return await state.read(who.tenant, fn, who.tenant, *args)
    result = await escalation.run_pass(state.ledger, read, who.tenant,
                                       now=datetime.now(timezone.utc))
    return result.to_dict()
