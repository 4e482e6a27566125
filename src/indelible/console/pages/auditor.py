"""The auditor's page: the latest signed checkpoint, the verifier key, the service's recorded
verification runs, and the proof of any entry (shown, and downloadable as a C2SP tlog-proof file for `indelible verify-proof`).
Everything here is what the auditor endpoints of the API serve, from the same functions."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from indelible import audit
from indelible.console import security
from indelible.console.errors import ConsoleError
from indelible.console.render import render
from indelible.console.sessions import Viewer
from indelible.entry import b64, decode_entry
from indelible.store import cosignatures, verification_runs

router = APIRouter()
SignedIn = Annotated[Viewer, Depends(security.viewer)]
Seq = Annotated[int | None, Query(ge=0, le=2**62)]


@router.get("/auditor")
async def auditor_page(request: Request, viewer: SignedIn, seq: Seq = None):
    state = request.app.state.indelible
    def latest(conn, tenant):
        """The latest checkpoint, its note carrying the witnesses' cosignatures, and those."""
        try:
            found = audit.current_checkpoint(conn, tenant)
        except audit.NotFoundError:
            return None, []
        return (cosignatures.with_cosignatures(conn, found),
                cosignatures.cosignatures(conn, tenant, found.size))
    checkpoint, cosigned = await state.read(viewer.tenant, latest, viewer.tenant)
    runs = await state.read(viewer.tenant, verification_runs.latest, viewer.tenant)
    proof, problem = None, None
    if seq is not None:
        try:
            found = await state.read(viewer.tenant, audit.entry_proof, viewer.tenant, seq)
            proof = {"seq": seq, "entry": orjson.dumps(decode_entry(found.entry),
                                                        option=orjson.OPT_INDENT_2).decode(),
                     "leaf_hash": b64(found.leaf_hash), "tree_size": found.checkpoint.size,
                     "root_hash": b64(found.checkpoint.root_hash),
                     "hashes": [b64(h) for h in found.proof]}
        except audit.NotFoundError as e:
            problem = str(e)
    return render(request, "auditor.html", status_code=404 if problem else 200, viewer=viewer,
                  checkpoint=checkpoint, cosigned=cosigned, runs=runs,
                  verifier_key=state.signer.verifier_key_text(),
                  seq=seq, proof=proof, problem=problem)


@router.get("/auditor/proof")
async def proof_download(request: Request, viewer: SignedIn,
                         seq: Annotated[int, Query(ge=0, le=2**62)]):
    state = request.app.state.indelible
    try:
        found = await state.read(viewer.tenant, audit.entry_proof, viewer.tenant, seq)
    except audit.NotFoundError as e:
        raise ConsoleError(404, "No proof", str(e), viewer=viewer) from e
    return Response(found.tlog_proof(), media_type="text/plain; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{viewer.tenant}-{seq}.proof"'})


@router.get("/auditor/checkpoint")
async def checkpoint_download(request: Request, viewer: SignedIn):
    state = request.app.state.indelible
    try:
        checkpoint = await state.read(viewer.tenant, audit.current_checkpoint, viewer.tenant)
    except audit.NotFoundError as e:
        raise ConsoleError(404, "No checkpoint", str(e), viewer=viewer) from e
    return Response(checkpoint.note, media_type="text/plain; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{viewer.tenant}-{checkpoint.size}.checkpoint"'})
