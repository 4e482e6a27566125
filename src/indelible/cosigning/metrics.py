"""Prometheus figures per witness, from the feeders' in-memory status."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class WitnessCollector:
    def __init__(self, statuses):
        self._statuses = statuses

    def collect(self):
        up = GaugeMetricFamily("indelible_witness_up", "1 when the witness answered the last "
                               "request", labels=["witness"])
        behind = GaugeMetricFamily("indelible_witness_checkpoints_uncosigned",
                                   "Tenants whose latest checkpoint the witness has not "
                                   "cosigned (at the last pass)", labels=["witness"])
        cosigned = CounterMetricFamily("indelible_witness_cosignatures",
                                       "Cosignatures received and stored", labels=["witness"])
        failures = CounterMetricFamily("indelible_witness_failures",
                                       "Submissions refused or failed", labels=["witness"])
        last = GaugeMetricFamily("indelible_witness_last_cosigned_timestamp_seconds",
                                 "When the last cosignature was stored (0: never)",
                                 labels=["witness"])
        latency = GaugeMetricFamily("indelible_witness_cosign_latency_seconds",
                                    "Submission to stored cosignature, over the last 1000 "
                                    "cosignatures", labels=["witness", "quantile"])
        for s in self._statuses:
            name = [s.witness.name]
            up.add_metric(name, 1 if s.up else 0)
            behind.add_metric(name, s.behind)
            cosigned.add_metric(name, s.cosigned)
            failures.add_metric(name, s.failures)
            last.add_metric(name, s.last_success or 0)
            samples = sorted(s.latencies)
            for q in (0.5, 0.99) if samples else ():
                latency.add_metric(name + [str(q)], samples[min(len(samples) - 1,
                                                                int(q * len(samples)))])
        yield from (up, behind, cosigned, failures, last, latency)
