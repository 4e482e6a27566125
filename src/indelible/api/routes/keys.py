"""API keys over HTTP, for the tenant's admins. Issuing and revoking are ledger entries."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from indelible.api.context import State, asking, require
from indelible.api.params import Uuid
from indelible.api.problems import ProblemError, problem_responses
from indelible.entry import format_time
from indelible.store.api_keys import (
    KeyAlreadyRevokedError,
    Principal,
    UnknownKeyError,
    list_keys,
)
from indelible.usecases import keys

router = APIRouter(tags=["api keys"], responses=problem_responses(403))  # admins only
Admin = Annotated[Principal, Depends(require("admin"))]
Role = Literal["analyst", "compliance_manager", "auditor", "admin", "system"]


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]*$")


@router.post("/v1/api-keys", status_code=201)
async def create_key(body: KeyRequest, admin: Admin, state: State) -> dict:
    """Issue a key; the token is in this response only (it is stored as a hash)."""
    issued = await keys.issue_key(state.ledger, asking(admin), role=body.role, name=body.name)
    return {"key_id": issued.key_id, "role": issued.role, "name": issued.name,
            "token": issued.token, "issued_seq": issued.seq}


@router.get("/v1/api-keys")
async def get_keys(admin: Admin, state: State) -> dict:
    keys = await state.read(admin.tenant, list_keys, admin.tenant)
    return {"keys": [{"key_id": k.key_id, "name": k.name, "role": k.role,
                      "issued_seq": k.issued_seq, "issued_at": format_time(k.issued_at),
                      "revoked_seq": k.revoked_seq,
                      "revoked_at": format_time(k.revoked_at) if k.revoked_at else None}
                     for k in keys]}


@router.delete("/v1/api-keys/{key_id}", responses=problem_responses(404, 409))
async def revoke_key(key_id: Uuid, admin: Admin,
                     state: State) -> dict:
    """Revoke a key of this tenant; it stops authenticating at once."""
    try:
        revoked = await keys.revoke_key(state.ledger, asking(admin), key_id)
    except UnknownKeyError as e:
        raise ProblemError(404, "Unknown API key", str(e)) from e
    except KeyAlreadyRevokedError as e:
        raise ProblemError(409, "Already revoked", str(e)) from e
    if state.key_cache is not None:  # this process at once; the others when NOTIFY arrives
        state.key_cache.forget()
    return {"key_id": key_id, "revoked_seq": revoked.seq}
