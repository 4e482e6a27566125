"""Liveness, readiness and metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from indelible.api.context import State
from indelible.api.problems import ProblemError, problem_responses
from indelible.ingest.status import IngestStatus

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
    return {"status": "ready"}


@router.get("/metrics", response_class=Response, include_in_schema=False)
async def metrics(state: State) -> Response:
    """Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    if state.ingest_status is not None:
        registry.register(_IngestCollector(state.ingest_status))
    if state.witnesses:
        from indelible.cosigning.metrics import WitnessCollector

        registry.register(WitnessCollector(state.witnesses))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class _IngestCollector:
    def __init__(self, status: IngestStatus):
        self._status = status

    def collect(self):
        s = self._status
        yield GaugeMetricFamily("indelible_ingest_up", "1 when the NATS consumer is running",
                                value=1 if s.up() else 0)
        yield GaugeMetricFamily("indelible_ingest_ready",
                                "1 when the consumer runs and keeps up (see /readyz)",
                                value=1 if s.problem() is None else 0)
        yield GaugeMetricFamily("indelible_ingest_pending_messages",
                                "Messages in the stream not yet acknowledged",
                                value=s.pending or 0)
        yield GaugeMetricFamily("indelible_ingest_oldest_pending_seconds",
                                "Age of the oldest unacknowledged message", value=s.oldest_age)
        yield CounterMetricFamily("indelible_ingest_processed",
                                  "Messages acknowledged after their entry committed",
                                  value=s.processed)
        yield CounterMetricFamily("indelible_ingest_dead_lettered",
                                  "Messages set aside in the dead-letter stream",
                                  value=s.dead_lettered)
        yield CounterMetricFamily("indelible_ingest_restarts",
                                  "Times the consumer restarted after a failure", value=s.restarts)
