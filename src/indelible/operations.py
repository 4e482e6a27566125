"""What an operator watches, composed for `indelible up` (bootstrap.py calls `operated`):
the continuous verifier, the scrape-time metrics (checkpoint age per tenant, database and
embedded servers), the metrics port, and the readiness checks /readyz runs beyond the
database and ingestion."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from psycopg_pool import ConnectionPool

from indelible import metrics
from indelible.config import Settings
from indelible.monitor.service import ContinuousVerification, VerificationConfig
from indelible.store import queues
from indelible.store.signing_health import signing_lag

log = logging.getLogger(__name__)

LAG_INTERVALS = 12  # checkpoint intervals an entry may wait unsigned before "lagging"
MIN_LAG_LIMIT = 60.0  # seconds, whatever the interval


@dataclass(frozen=True)
class Operations:
    readiness: tuple  # checks for /readyz: () -> (component, problem) | None
    verification: ContinuousVerification | None  # None: continuous verification is off


@contextmanager
def operated(settings: Settings, *, app_url: str, appender, key_text: str,
             checkpointer=None) -> Iterator[Operations]:
    """`checkpointer`: the running Checkpointer, whose passes /readyz watches (None: off)."""
    pool = ConnectionPool(app_url, min_size=0, max_size=2, open=True,
                          kwargs={"autocommit": True})
    limit = max(MIN_LAG_LIMIT, LAG_INTERVALS * settings.checkpoint_interval)

    def checkpointer_ready():
        # Lagging: the checkpointer's passes stalled (a database that does not answer it, a
        # pass stuck on a huge log). A tenant it refuses to sign is an integrity alarm of its
        # own (logged CRITICAL where it is found), and its age is in the metrics.
        if checkpointer is None:
            return None
        silent = time.monotonic() - checkpointer.passed_at
        if silent <= limit:
            return None
        return "checkpointer", (f"lagging: no signing pass completed for {silent:.0f} s "
                                f"(limit {limit:g} s)")

    embedded = None
    if not settings.database_url:
        from indelible.runtime import EmbeddedPostgres

        embedded = EmbeddedPostgres(settings.data_dir / "postgres")
    verification = None
    if settings.continuous_verify:
        verification = ContinuousVerification(VerificationConfig(
            conninfo=app_url, key_text=key_text, alarm_file=settings.alarm_file,
            window=settings.verify_recent_entries,
            full_interval=settings.full_verify_interval), appender=appender).start()
    metrics.provide("service", lambda: _service_metrics(pool, settings, embedded, verification))
    server = metrics.serve(settings.metrics_listen) if settings.metrics_listen else None
    if server is not None:
        log.info("metrics on http://%s/metrics", settings.metrics_listen)
    checks = (checkpointer_ready,) + ((verification.readiness,) if verification else ())
    try:
        yield Operations(checks, verification)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        if verification is not None:
            verification.stop()
        metrics.provide("service", None)
        pool.close()


def _service_metrics(pool: ConnectionPool, settings: Settings, embedded_postgres,
                     verification: ContinuousVerification | None):
    up = GaugeMetricFamily("indelible_database_up", "1 when the service's database answers")
    age = GaugeMetricFamily("indelible_checkpoint_age_seconds",
                            "Seconds since the tenant's latest signed checkpoint", labels=["tenant"])
    unsigned = GaugeMetricFamily("indelible_unsigned_entries",
                                 "Entries no signed checkpoint covers yet", labels=["tenant"])
    outbox = GaugeMetricFamily("indelible_outbox_events",
                               "Outbox events by integration and state (pending, sending, "
                               "delivered, parked)", labels=["tenant", "integration", "state"])
    reports = GaugeMetricFamily("indelible_report_jobs",
                                "Report jobs queued or running", labels=["tenant", "status"])
    try:
        with pool.connection(timeout=2) as conn:
            lags = signing_lag(conn)
            for tenant, integration, state, count in queues.outbox_counts(conn):
                outbox.add_metric([tenant, integration, state], count)
            for tenant, status, count in queues.report_job_counts(conn):
                reports.add_metric([tenant, status], count)
        up.add_metric([], 1)
    except Exception:  # noqa: BLE001 - the metric says it; the scrape still answers
        lags = []
        up.add_metric([], 0)
    yield from (outbox, reports)
    behind = GaugeMetricFamily("indelible_verifier_lag_entries",
                               "Entries committed but not yet re-read by the continuous verifier",
                               labels=["tenant"])
    progress = verification.progress() if verification else {}
    for lag in lags:
        if lag.checkpoint_age is not None:
            age.add_metric([lag.tenant], lag.checkpoint_age)
        unsigned.add_metric([lag.tenant], lag.size - lag.signed)
        if lag.tenant in progress:
            behind.add_metric([lag.tenant], max(0, lag.size - progress[lag.tenant]["verified"]))
    yield from (up, age, unsigned, behind)
    servers = GaugeMetricFamily("indelible_embedded_server_up",
                                "1 while an embedded server this service started runs",
                                labels=["server"])
    if embedded_postgres is not None:
        servers.add_metric(["postgresql"], 1 if embedded_postgres.running_port() else 0)
    if settings.ingest_enabled and not settings.nats_url:
        from indelible.ingest.service import nats_dir
        from indelible.runtime import EmbeddedNats

        servers.add_metric(["nats"], 1 if EmbeddedNats.running_access(nats_dir(settings)) else 0)
    yield servers
