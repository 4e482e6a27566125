"""Evidence bundles and trusted time over HTTP.

`GET /v1/discrepancies/{id}/evidence` exports one discrepancy's bundle (recorded in the
ledger as `evidence.exported`); the timestamp routes serve the RFC 3161 tokens stored beside
checkpoints and say which checkpoints have none yet.
"""

from __future__ import annotations

import tempfile
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response, StreamingResponse

from indelible.api.context import Caller, State, asking
from indelible.api.params import Uuid
from indelible.api.problems import ProblemError, problem_responses
from indelible.api.routes.audit import Tenant, _own
from indelible.bundles.export import BundleQuery, NotYetSignedError
from indelible.proofs.timestamp import MEDIA_REPLY
from indelible.store import timestamps
from indelible.usecases.bundles import export_bundle

router = APIRouter(tags=["auditor"])
CHUNK = 1 << 16  # bytes per streamed piece of a bundle
SPOOL = 8 << 20  # bytes of a bundle kept in memory before it spills to a temporary file


@router.get("/v1/discrepancies/{discrepancy_id}/evidence", responses={
    **problem_responses(404, 409),
    200: {"description": "the evidence bundle (zip); check it with `indelible verify-bundle`",
          "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}})
async def evidence_bundle(discrepancy_id: Uuid, caller: Caller, state: State) -> Response:
    """One discrepancy's evidence bundle: its entries with inclusion proofs, checkpoints and
    consistency proofs, timestamp tokens, resolution snapshot, evidence files, verifier key,
    manifest and README. Refused (409) until a checkpoint covers its latest entry."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL)

    async def read(fn, *args, **kwargs):
        return await state.read(caller.tenant, fn, *args, **kwargs)

    try:
        summary, entry = await export_bundle(
            state.ledger, asking(caller), read,
            BundleQuery(caller.tenant, discrepancies=(discrepancy_id,)), out,
            verifier_key=state.signer.verifier_key_text())
    except NotYetSignedError as e:
        out.close()
        raise ProblemError(409, "Not yet signed", str(e)) from e
    except BaseException:
        out.close()
        raise
    out.seek(0)

    def chunks():
        with out:
            while piece := out.read(CHUNK):
                yield piece

    return StreamingResponse(chunks(), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="evidence-{discrepancy_id}.zip"',
        "Indelible-Manifest-SHA256": summary.manifest_sha256,
        "Indelible-Export-Seq": str(entry.seq)})


@router.get("/v1/logs/{tenant}/timestamps", responses=problem_responses(404))
async def timestamp_status(tenant: Tenant, caller: Caller, state: State) -> dict:
    """How far RFC 3161 timestamping has reached: the latest checkpoint, the latest one with
    a token, and how many checkpoints have none (the TSA was down, or none is configured)."""
    found = await state.read(_own(tenant, caller), timestamps.status, tenant)
    return {"tenant": tenant, **found.to_json()}


@router.get("/v1/logs/{tenant}/checkpoints/{size}/timestamp", responses={
    **problem_responses(404),
    200: {"description": "RFC 3161 TimeStampResp (DER) over the checkpoint's signed note",
          "content": {MEDIA_REPLY: {"schema": {"type": "string", "format": "binary"}}}}})
async def checkpoint_timestamp(tenant: Tenant, size: Annotated[int, Path(ge=1, le=2**62)],
                               caller: Caller, state: State) -> Response:
    """The token over the checkpoint of this size (`openssl ts -verify -data <note>` reads it)."""
    token = await state.read(_own(tenant, caller), timestamps.token, tenant, size)
    if token is None:
        raise ProblemError(404, "No timestamp", f"the checkpoint of size {size} of {tenant!r} "
                           "has no RFC 3161 token (yet): see /v1/logs/{tenant}/timestamps")
    return Response(token, media_type=MEDIA_REPLY)
