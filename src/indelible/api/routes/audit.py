"""Auditor endpoints: the signed checkpoint, entries with proofs, consistency, the key.

Readable by every role of the tenant (auditors above all); a key of another tenant gets the
404 a tenant that does not exist gets, the same body word for word, so existence does not
leak (and neither suggests the tenant has no log).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse

from indelible import audit
from indelible.api.context import Caller, State
from indelible.api.problems import problem_responses, unknown_log
from indelible.api.witness_policy import (
    Quorum,
    Witnesses,
    require_quorum,
    witness_policy,
    witnessed,
)
from indelible.entry import b64, decode_entry
from indelible.store.logs import TENANT_PATTERN

router = APIRouter(tags=["auditor"])
NOT_FOUND = problem_responses(404)
Tenant = Annotated[str, Path(min_length=1, max_length=63, pattern=TENANT_PATTERN)]
TEXT = "text/plain; charset=utf-8"


def _own(tenant: str, caller) -> str:
    if tenant != caller.tenant:
        raise unknown_log(tenant)
    return tenant


@router.get("/v1/verifier-key", response_class=PlainTextResponse)
async def verifier_key(state: State) -> str:
    """The public key that verifies every checkpoint (public by nature)."""
    return state.signer.verifier_key_text() + "\n"


@router.get("/v1/logs/{tenant}/checkpoint", response_class=PlainTextResponse,
            responses={**NOT_FOUND, **problem_responses(409, 422)})
async def checkpoint(tenant: Tenant, caller: Caller, state: State, witness: Witnesses = None,
                     quorum: Quorum = None) -> PlainTextResponse:
    """The latest signed checkpoint (C2SP signed note, tlog-checkpoint body) with the
    witnesses' cosignatures; with `quorum`, the latest one that K of the witnesses cosigned."""
    policy = witness_policy(state, witness, quorum)
    if policy is None:
        cp = await state.read(_own(tenant, caller), audit.current_checkpoint, tenant)
    else:
        cp = await witnessed(state, _own(tenant, caller), policy)
    return PlainTextResponse(cp.note, media_type=TEXT)


@router.get("/v1/logs/{tenant}/entries/{seq}", responses={**NOT_FOUND, **problem_responses(
        409, 422), 200: {
    "description": "JSON by default; with format=tlog-proof, a C2SP tlog-proof text",
    "content": {"application/json": {}, "text/plain": {"schema": {"type": "string"}}}}})
async def entry(tenant: Tenant, seq: Annotated[int, Path(ge=0, le=2**62)], caller: Caller,
                state: State, format: Literal["json", "tlog-proof"] = "json",
                tree_size: Annotated[int | None, Query(ge=1, le=2**62)] = None,
                witness: Witnesses = None, quorum: Quorum = None):
    """The entry with its inclusion proof (against the latest checkpoint by default; with
    `quorum`, against the latest checkpoint K of the witnesses cosigned)."""
    policy = witness_policy(state, witness, quorum)
    if policy is not None and tree_size is None:
        cp = await witnessed(state, _own(tenant, caller), policy, seq + 1)
        tree_size = cp.size
    found = await state.read(_own(tenant, caller), audit.entry_proof, tenant, seq, tree_size,
                             cache=state.subtrees)
    if policy is not None:
        require_quorum(found.checkpoint.note, policy)
    if format == "tlog-proof":
        return PlainTextResponse(found.tlog_proof(), media_type=TEXT)
    return {"tenant": tenant, "seq": seq, "entry": decode_entry(found.entry),
            "entry_b64": b64(found.entry), "leaf_hash": b64(found.leaf_hash),
            "tree_size": found.checkpoint.size, "root_hash": b64(found.checkpoint.root_hash),
            "inclusion_proof": [b64(h) for h in found.proof], "checkpoint": found.checkpoint.note}


@router.get("/v1/logs/{tenant}/consistency", responses=NOT_FOUND)
async def consistency(tenant: Tenant, caller: Caller, state: State,
                      size1: Annotated[int, Query(ge=1, le=2**62)],
                      size2: Annotated[int, Query(ge=1, le=2**62)]) -> dict:
    """An RFC 9162 consistency proof between two sizes of the log."""
    proof = await state.read(_own(tenant, caller), audit.consistency, tenant, size1, size2,
                             cache=state.subtrees)
    return {"tenant": tenant, "size1": size1, "size2": size2, "proof": [b64(h) for h in proof]}
