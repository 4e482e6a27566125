"""Liveness, readiness and metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool

from indelible import metrics as service_metrics
from indelible.api.context import State
from indelible.api.problems import ProblemError, problem_responses

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz")
async def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses=problem_responses(503))
async def readyz(state: State) -> dict:
    """The database answers and, where this process ingests, the consumer runs and keeps up:
    503 naming what is wrong otherwise, so a load balancer or probe sees it."""
    def ping():
        with state.pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")
    try:
        await run_in_threadpool(ping)
    except Exception as e:  # any failure to reach the database means not ready
        # The endpoint is public: the cause (host, port, role) goes to the log, not the body.
        log.warning("readiness: database unreachable: %s", e)
        raise ProblemError(503, "Not ready", "database unreachable", component="database") from e
    if state.ingest_status is not None:
        problem = state.ingest_status.problem()
        if problem is not None:
            raise ProblemError(503, "Not ready", f"ingestion: {problem}", component="ingestion")
    # The other components that can make the service unfit to serve (checkpointer lagging,
    # integrity): each check returns (component, what is wrong) or None.
    for check in state.readiness:
        found = await run_in_threadpool(check)
        if found is not None:
            component, detail = found
            raise ProblemError(503, "Not ready", f"{component}: {detail}", component=component)
    return {"status": "ready"}


@router.get("/metrics", response_class=Response, include_in_schema=False)
async def metrics(state: State) -> Response:
    """Prometheus text format, when explicitly enabled on this port (INDELIBLE_METRICS_PUBLIC);
    the usual place is the metrics port of its own (INDELIBLE_METRICS_LISTEN)."""
    if not state.metrics_public:
        raise ProblemError(404, "Not found", "metrics are not served on the API port; set "
                           "INDELIBLE_METRICS_LISTEN=host:port for a port of their own, or "
                           "INDELIBLE_METRICS_PUBLIC=true to serve them here without "
                           "authentication")
    return Response(await run_in_threadpool(service_metrics.render),
                    media_type=service_metrics.CONTENT_TYPE_LATEST)
