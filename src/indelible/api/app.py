"""App factory: wires the request pool, appender and signer (built by bootstrap.py) into the routers."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from psycopg_pool import ConnectionPool

from indelible.api import docs, openapi, problems
from indelible.api.context import AppState
from indelible.api.direct import DirectLane
from indelible.api.guard import RequestGuard
from indelible.api.observe import RequestObserver
from indelible.api.routes import audit, discrepancies, escalation, health, keys, policy
from indelible.api.routes import outbox as outbox_routes
from indelible.api.routes import reports
from indelible.api.routes import witnesses as witnessing
from indelible.api.routes import bundles
from indelible.console.app import create_console
from indelible.console.sessions import Timeouts
from indelible.ingest.status import IngestStatus
from indelible.proofs import NoteSigner
from indelible.store.group_commit import GroupCommitAppender
from indelible.store.key_cache import KeyCache


def create_app(*, pool: ConnectionPool, signer: NoteSigner, appender: GroupCommitAppender,
               ingest_status: IngestStatus | None = None,
               key_cache: KeyCache | None = None, witnesses: tuple = (),
               metrics_public: bool = False, readiness: tuple = (),
               console_timeouts: Timeouts | None = None) -> FastAPI:
    """The HTTP API over what the composition root built (bootstrap.py owns the pool)."""
    app = FastAPI(title="Indelible", version="0.1.0",
                  description="A compliance ledger nobody can edit.",
                  docs_url=None, redoc_url=None,  # served offline by api/docs.py
                  dependencies=[Depends(problems.json_body)])  # 415, after the guard's 401
    app.state.indelible = AppState(pool=pool, appender=appender, signer=signer,
                                   ingest_status=ingest_status, key_cache=key_cache,
                                   witnesses=witnesses, metrics_public=metrics_public,
                                   readiness=readiness)
    if witnesses:  # cosigning metrics, on /metrics and the metrics port alike
        from indelible import metrics
        from indelible.cosigning.metrics import WitnessCollector

        metrics.provide("witnesses", WitnessCollector(witnesses).collect)
    problems.install(app)
    docs.install(app)
    openapi.install(app)
    # The usual transition past FastAPI's per-request work (api/direct.py), once the guard let
    # it through.
    app.add_middleware(DirectLane, routes=discrepancies.router.routes)
    app.add_middleware(RequestGuard)  # the key, then the body size, before any body is read
    app.add_middleware(RequestObserver)  # outermost: request id and latency for everything
    for module in (health, audit, keys, discrepancies, policy, escalation, reports,
                   witnessing):
        app.include_router(module.router)
    app.include_router(outbox_routes.router)
    app.include_router(bundles.router)
    # The web console: its own pages and cookie sessions over the same state and use cases.
    app.mount("/console", create_console(app.state.indelible, console_timeouts))
    return app
