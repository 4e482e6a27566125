"""What the ingestion is doing, for /readyz and /metrics: written by the consumer's thread,
read by the HTTP threads (plain attribute writes under one lock)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


@dataclass(frozen=True)
class LagLimits:
    max_pending: int = 100_000  # messages waiting in the stream before ingestion is "lagging"
    max_age: float = 300.0  # seconds the oldest unacknowledged message may wait
    max_silence: float = 30.0  # seconds without a report from the consumer before "stalled"


class IngestStatus:
    def __init__(self, limits: LagLimits = LagLimits()):
        self.limits = limits
        self._lock = threading.Lock()
        self.state = "starting"  # starting | running | reconnecting | restarting
        self.detail = ""
        self.pending: int | None = None  # messages in the stream not yet acknowledged
        self.oldest_age: float = 0.0  # seconds, of the oldest of them
        self.reported_at = time.monotonic()
        self.processed = 0  # messages acknowledged after their entry committed
        self.dead_lettered = 0
        self.restarts = 0

    def set_state(self, state: str, detail: str = "") -> None:
        with self._lock:
            self.state, self.detail, self.reported_at = state, detail, time.monotonic()

    def set_backlog(self, pending: int, oldest_age: float) -> None:
        with self._lock:
            self.pending, self.oldest_age = pending, oldest_age
            self.state, self.detail, self.reported_at = "running", "", time.monotonic()

    def count(self, *, processed: int = 0, dead_lettered: int = 0, restarts: int = 0) -> None:
        with self._lock:
            self.processed += processed
            self.dead_lettered += dead_lettered
            self.restarts += restarts

    def up(self) -> bool:
        """Running, whether or not it keeps up (the 0/1 metric)."""
        problem = self.problem()
        return problem is None or problem.startswith("lagging")

    def problem(self) -> str | None:
        """None when ingestion is running and keeping up; else what is wrong, for a person."""
        with self._lock:
            silent = time.monotonic() - self.reported_at
            if self.state != "running":
                return f"ingestion {self.state}" + (f": {self.detail}" if self.detail else "")
            if silent > self.limits.max_silence:
                return f"ingestion stalled: no report from the consumer for {silent:.0f} s"
            if self.pending is not None and self.pending > self.limits.max_pending:
                return (f"lagging: {self.pending} messages pending (limit "
                        f"{self.limits.max_pending})")
            if self.oldest_age > self.limits.max_age:
                return (f"lagging: the oldest unacknowledged message waits for "
                        f"{self.oldest_age:.0f} s (limit {self.limits.max_age:g} s)")
            return None


def metric_families(s: IngestStatus):
    """Ingestion's metrics at scrape time (a provider for indelible.metrics)."""
    yield GaugeMetricFamily("indelible_ingest_up", "1 when the NATS consumer is running",
                            value=1 if s.up() else 0)
    yield GaugeMetricFamily("indelible_ingest_ready",
                            "1 when the consumer runs and keeps up (see /readyz)",
                            value=1 if s.problem() is None else 0)
    yield GaugeMetricFamily("indelible_ingest_pending_messages",
                            "Messages in the stream not yet acknowledged (ingestion lag)",
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


PROGRESS_LOGGER = "indelible.ingest.progress"  # `indelible up` shows it at its default level
PROGRESS_EVERY = 10.0  # seconds between progress lines while messages keep coming


class ProgressReport:
    """What ingestion did, for the operator's log: a line as soon as messages start to move,
    then at most one every `every` seconds while they keep moving, and none while idle (a
    quiet service writes a quiet log)."""

    def __init__(self, status: IngestStatus, every: float = PROGRESS_EVERY):
        self._status = status
        self._every = every
        self._told = (0, 0)  # (committed, dead-lettered) as of the last line
        self._told_at: float | None = None

    def line(self, now: float) -> str | None:
        s = self._status
        with s._lock:
            counts, pending = (s.processed, s.dead_lettered), s.pending
        if counts == self._told:
            return None
        if self._told_at is not None and now - self._told_at < self._every:
            return None
        (committed, dead), (before_committed, before_dead) = counts, self._told
        self._told, self._told_at = counts, now
        waiting = "" if pending is None else f"; {pending} pending in the stream"
        return (f"ingestion: {committed - before_committed} committed, {dead - before_dead} "
                f"dead-lettered since the last report{waiting} (since start: {committed} "
                f"committed, {dead} dead-lettered)")
