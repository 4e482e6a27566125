"""A witness policy from query parameters: `witness=<verifier key>` (repeatable) and
`quorum=K`. Without `witness`, the witnesses this service is configured with are the list."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from indelible.api.context import AppState
from indelible.api.problems import ProblemError, invalid
from indelible.cosigning.reads import NotWitnessedError, witnessed_checkpoint
from indelible.proofs import CosignerKey, ProofError, WitnessPolicy, check_witness_quorum

Witnesses = Annotated[list[str] | None, Query(
    description="A witness verifier key (type 0x04) the quorum counts; repeatable. "
                "Default: the witnesses this service submits to.")]
Quorum = Annotated[int | None, Query(ge=1, le=100, description=(
    "Serve only a checkpoint cosigned by at least this many of the witnesses."))]


def witness_policy(state: AppState, witness: list[str] | None,
                   quorum: int | None) -> WitnessPolicy | None:
    if quorum is None:
        if witness:
            raise invalid(("query.quorum", "witness keys were given without a quorum"))
        return None
    try:
        keys = [CosignerKey.from_key_text(w) for w in witness] if witness else \
            [s.witness.key for s in state.witnesses]
    except ProofError as e:
        raise invalid(("query.witness", str(e))) from e
    if not keys:
        raise invalid(("query.witness", "this service has no witnesses configured: name them "
                       "with witness=<verifier key>"))
    try:
        return WitnessPolicy(tuple(dict.fromkeys(keys)), quorum)
    except ValueError as e:
        raise invalid(("query.quorum", str(e))) from e


def require_quorum(note: str, policy: WitnessPolicy) -> None:
    try:
        check_witness_quorum(note, policy)
    except ProofError as e:
        raise ProblemError(409, "Not witnessed", str(e)) from e


async def witnessed(state: AppState, tenant: str, policy: WitnessPolicy, covering: int = 0):
    """The latest checkpoint the policy accepts; 409 naming the missing witnesses otherwise."""
    try:
        return await state.read(tenant, witnessed_checkpoint, tenant, policy, covering)
    except NotWitnessedError as e:
        raise ProblemError(409, "Not witnessed", str(e)) from e
