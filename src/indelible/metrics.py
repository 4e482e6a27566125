"""The service's Prometheus metrics: one registry, and every metric the service exports.

Adding a metric is one line where it is used, e.g. in an outbox module:

    SENT = metrics.counter("indelible_outbox_delivered", "Webhooks delivered", ["tenant"])

and `SENT.labels(tenant).inc()` where it happens. Values that are cheaper to read at scrape
time than to keep up to date (a queue length in the database) are a *provider*: a function
returning metric families, registered under a name with `provide(name, fn)` (a later call
with the same name replaces it, so a service built twice in one process does not clash).

Labels never carry tenant data beyond the tenant's name: no ids, amounts, references or
actors. Served by `/metrics` (api/routes/health.py) when enabled there, and on its own port
(`serve`) for Prometheus.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST, start_http_server
from prometheus_client.metrics_core import Metric

__all__ = ["REGISTRY", "CONTENT_TYPE_LATEST", "counter", "gauge", "histogram", "provide",
           "render", "serve"]

log = logging.getLogger(__name__)
REGISTRY = CollectorRegistry(auto_describe=False)

# Seconds; from a sub-millisecond commit to a request stuck behind a slow disk.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000)  # entries


def counter(name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
    return Counter(name, documentation, labels, registry=REGISTRY)


def gauge(name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
    return Gauge(name, documentation, labels, registry=REGISTRY)


def histogram(name: str, documentation: str, labels: Sequence[str] = (),
              buckets: Sequence[float] = LATENCY_BUCKETS) -> Histogram:
    return Histogram(name, documentation, labels, registry=REGISTRY, buckets=buckets)


Provider = Callable[[], Iterable[Metric]]


class _Providers:
    """Scrape-time metrics from whoever registered a provider; one failing provider costs
    only its own metrics (logged), never the whole scrape."""

    def __init__(self):
        self._lock = threading.Lock()
        self._providers: dict[str, Provider] = {}

    def set(self, name: str, provider: Provider | None) -> None:
        with self._lock:
            if provider is None:
                self._providers.pop(name, None)
            else:
                self._providers[name] = provider

    def collect(self):
        with self._lock:
            providers = list(self._providers.items())
        for name, provider in providers:
            try:
                yield from list(provider())
            except Exception:  # noqa: BLE001 - a scrape must still answer
                log.warning("metrics provider %r failed", name, exc_info=True)


_PROVIDERS = _Providers()
REGISTRY.register(_PROVIDERS)


def provide(name: str, provider: Provider | None) -> None:
    """Register (or with None remove) a scrape-time provider of metric families."""
    _PROVIDERS.set(name, provider)


def render() -> bytes:
    return generate_latest(REGISTRY)


def serve(listen: str):
    """Serve /metrics, without authentication, on `host:port`; returns the server (call
    `.shutdown()` to stop it). A port of its own lets an operator expose it to Prometheus
    alone, never to API clients."""
    host, _, port = listen.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host or "127.0.0.1", registry=REGISTRY)
    return server


# --- the service's own metrics --------------------------------------------------------------
APPENDS = counter("indelible_appends", "Entries committed, by tenant and entry type",
                  ["tenant", "type"])
REFUSALS = counter("indelible_append_refusals",
                   "Commands refused by the appender, by tenant and kind of refusal",
                   ["tenant", "reason"])
BATCH_SIZE = histogram("indelible_append_batch_entries", "Commands per group commit",
                       buckets=BATCH_BUCKETS)
APPEND_SECONDS = histogram("indelible_append_commit_seconds",
                           "Time to decide, write and commit one group-commit batch")
REQUEST_SECONDS = histogram("indelible_http_request_seconds",
                            "HTTP request latency, by method, route template and status class",
                            ["method", "route", "status"])
VERIFICATION_RUNS = counter("indelible_verification_runs",
                            "Completed full verification runs, by tenant and result",
                            ["tenant", "result"])
VERIFICATION_FINDINGS = counter("indelible_verification_findings",
                                "Integrity findings raised as alarms, by tenant and check",
                                ["tenant", "check"])
INTEGRITY_OK = gauge("indelible_integrity_ok",
                     "1 while no integrity finding stands for the tenant, 0 after an alarm",
                     ["tenant"])
VERIFIER_UP = gauge("indelible_verifier_up", "1 while the continuous verifier process runs")
