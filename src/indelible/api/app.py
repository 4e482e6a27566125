"""App factory: health, the latest checkpoint, entries with proofs, consistency, the key."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import FastAPI, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from psycopg_pool import ConnectionPool

from indelible import audit
from indelible.api import problems
from indelible.entry import b64, decode_entry
from indelible.proofs import NoteSigner
from indelible.store.logs import check_tenant

Tenant = Annotated[str, Path(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
TEXT = "text/plain; charset=utf-8"


def create_app(*, conninfo: str, signer: NoteSigner) -> FastAPI:
    pool = ConnectionPool(conninfo, min_size=1, max_size=8, open=False,
                          kwargs={"autocommit": True})

    async def lifespan(_app):
        pool.open()
        yield
        pool.close()

    app = FastAPI(title="Indelible", version="0.1.0", lifespan=lifespan,
                  description="A compliance ledger nobody can edit.")
    problems.install(app)

    def with_conn(fn, *args):
        def run():
            with pool.connection() as conn:
                return fn(conn, *args)
        return run_in_threadpool(run)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/v1/verifier-key", response_class=PlainTextResponse)
    async def verifier_key() -> str:
        return signer.verifier_key_text() + "\n"

    @app.get("/v1/logs/{tenant}/checkpoint", response_class=PlainTextResponse)
    async def checkpoint(tenant: Tenant) -> PlainTextResponse:
        cp = await with_conn(audit.current_checkpoint, check_tenant(tenant))
        return PlainTextResponse(cp.note, media_type=TEXT)

    @app.get("/v1/logs/{tenant}/entries/{seq}")
    async def entry(tenant: Tenant, seq: Annotated[int, Path(ge=0)],
                    format: Literal["json", "tlog-proof"] = "json",
                    tree_size: Annotated[int | None, Query(ge=1)] = None):
        """The entry with its inclusion proof (against the latest checkpoint by default)."""
        found = await with_conn(audit.entry_proof, check_tenant(tenant), seq, tree_size)
        if format == "tlog-proof":
            return PlainTextResponse(found.tlog_proof(), media_type=TEXT)
        return {"tenant": tenant, "seq": seq, "entry": decode_entry(found.entry),
                "entry_b64": b64(found.entry), "leaf_hash": b64(found.leaf_hash),
                "tree_size": found.checkpoint.size, "root_hash": b64(found.checkpoint.root_hash),
                "inclusion_proof": [b64(h) for h in found.proof],
                "checkpoint": found.checkpoint.note}

    @app.get("/v1/logs/{tenant}/consistency")
    async def consistency(tenant: Tenant, size1: Annotated[int, Query(ge=1)],
                          size2: Annotated[int, Query(ge=1)]) -> dict:
        proof = await with_conn(audit.consistency, check_tenant(tenant), size1, size2)
        return {"tenant": tenant, "size1": size1, "size2": size2,
                "proof": [b64(h) for h in proof]}

    return app


