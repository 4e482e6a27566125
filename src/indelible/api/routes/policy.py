"""The tenant's severity policy: read by anyone with a key, changed by managers and admins.

Each change is a ledger entry carrying the whole policy and the reason; the change names
the version it replaces, so a concurrent change is refused (409) instead of overwritten.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from indelible import domain
from indelible.api.context import State, asking, require
from indelible.api.problems import ProblemError, invalid_command, problem_responses
from indelible.store import severity_policy
from indelible.store.api_keys import Principal
from indelible.store.errors import VersionConflictError
from indelible.usecases import policy

router = APIRouter(tags=["severity policy"])
Reader = Annotated[Principal, Depends(require("analyst", "compliance_manager", "auditor", "admin", "system"))]
Manager = Annotated[Principal, Depends(require(*policy.SETTERS))]


class PolicyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    thresholds: dict[str, Any] = Field(description="per ISO 4217 currency: "
                                       "{\"medium\", \"high\", \"critical\"} decimal strings")
    reason: str = Field(min_length=1, max_length=1000, pattern=r"^[^\x00]*$")
    expected_version: int = Field(ge=0, description="the `version` this change replaces "
                                  "(0 when no policy was ever set)")


@router.get("/v1/severity-policy")
async def get_policy(who: Reader, state: State) -> dict:
    """The policy in force: per-currency thresholds on |difference|, and the entry that set
    them. Currencies it does not list follow the built-in rule shown."""
    found = await state.read(who.tenant, severity_policy.current, who.tenant)
    return found.to_dict()


@router.put("/v1/severity-policy", responses=problem_responses(403, 409))
async def put_policy(body: PolicyRequest, who: Manager, state: State) -> dict:
    """Replace the policy. It decides the severity of discrepancies opened from now on that
    were reported without one; earlier discrepancies keep theirs."""
    try:
        record = await policy.set_severity_policy(
            state.ledger, asking(who), domain.parse_policy({"thresholds": body.thresholds}),
            reason=body.reason, expected_version=body.expected_version)
    except domain.InvalidCommandError as e:
        raise invalid_command(e) from e
    except VersionConflictError as e:
        raise ProblemError(409, "Policy changed meanwhile",
                           f"the policy is at version {e.actual}, not {e.expected}; read it "
                           "again and resend with that expected_version",
                           current_version=e.actual) from e
    return record.to_dict()
