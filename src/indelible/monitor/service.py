"""Continuous verification inside `indelible up`: the verifier process and what its
findings become.

The work (re-reading entries, hashing, full runs) happens in a spawned process
(monitor/worker.py); this side, a thread of the service, turns its messages into alarms,
metrics and ledger entries, and restarts the process if it dies.

What goes into the tenant's own ledger:
  - each full run that finds the log's entries, chain and signatures intact is recorded as
    `verification.completed` (range, root, duration, result) on the stream
    `tenant/verification`, so the trail itself shows when it was checked;
  - a finding about what is derived from those entries (read models, stored Merkle nodes,
    the log head, indexed columns, snapshots, evidence files) is also recorded there as
    `verification.failed`, naming the first seq and each check: the log still verifies
    up to it, so the entry is chained and signed like any other;
  - a finding that breaks the chain itself (an entry changed, missing or unlinked, a
    checkpoint that no longer matches) is NOT appended to that log: anything appended after
    the break sits on a history that no longer verifies, the checkpointer will not sign
    over it (it must extend the checkpoint it kept), and whoever broke the chain could drop
    the record unseen. It is recorded in the alarm book beside the signing key instead
    (monitor/alarms.py), with the CRITICAL log line, the metric and /readyz.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from indelible import metrics
from indelible.entry import Actor, NewEntry
from indelible.monitor.alarms import CHAIN_CHECKS, Alarm, AlarmBook, IntegrityAlarms, now_text
from indelible.monitor.follow import Finding
from indelible.monitor.worker import WorkerConfig, main

log = logging.getLogger(__name__)

STREAM = "tenant/verification"
COMPLETED = "verification.completed"
FAILED = "verification.failed"
VERIFIER = Actor("indelible-verifier", "system", "system")
RESTART_AFTER = 2.0  # seconds before a dead verifier process is started again


@dataclass(frozen=True)
class VerificationConfig:
    conninfo: str  # the service role: SELECT on the ledger, BYPASSRLS
    key_text: str  # the service's verifier key
    alarm_file: Path
    window: int = 1_000  # newest entries re-read every couple of seconds, per tenant
    full_interval: float = 86_400.0  # seconds between full runs of one tenant


class ContinuousVerification:
    def __init__(self, config: VerificationConfig, *, appender):
        self.config = config
        self.alarms = IntegrityAlarms(AlarmBook(config.alarm_file))
        self._appender = appender
        self._context = multiprocessing.get_context("spawn")
        self._messages = None  # a queue per verifier process (a dead one may leave it locked)
        self._stop = threading.Event()
        self._process = None
        self._thread = threading.Thread(target=self._monitor, name="verification", daemon=True)
        self._progress: dict[str, dict] = {}
        self._started_at = time.time()

    def start(self) -> ContinuousVerification:
        metrics.provide("verification", self._progress_metrics)
        self._spawn()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        if self._process is not None:
            self._process.terminate()
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=5)
        metrics.provide("verification", None)
        metrics.VERIFIER_UP.set(0)

    def progress(self) -> dict[str, dict]:
        """Per tenant, as last reported: entries read ("verified") and proven under a
        checkpoint ("signed")."""
        return self._progress

    def readiness(self) -> tuple[str, str] | None:
        return self.alarms.problem()

    def _spawn(self) -> None:
        config = WorkerConfig(self.config.conninfo, self.config.key_text, self.config.window,
                              self.config.full_interval, self._started_at, os.getpid())
        self._messages = self._context.Queue()
        self._process = self._context.Process(target=main, args=(config, self._messages),
                                              name="indelible-verifier", daemon=True)
        self._process.start()
        self.alarms.set_verifier_state("running")
        metrics.VERIFIER_UP.set(1)

    def _monitor(self) -> None:
        while not self._stop.is_set():
            try:
                kind, body = self._messages.get(timeout=0.5)
            except queue.Empty:
                self._supervise()
                continue
            try:
                self._handle(kind, body)
            except Exception:  # noqa: BLE001 - one bad message must not stop the alarms
                log.exception("verification: could not handle a %s message", kind)

    def _supervise(self) -> None:
        if self._process is not None and not self._process.is_alive() and not self._stop.is_set():
            code = self._process.exitcode
            log.error("the verifier process exited (code %s); starting it again", code)
            self.alarms.set_verifier_state(f"exited with code {code}")
            metrics.VERIFIER_UP.set(0)
            if not self._stop.wait(RESTART_AFTER):
                self._spawn()

    def _handle(self, kind: str, body) -> None:
        if kind == "progress":
            self._progress = body
        elif kind == "finding":
            self._alarm(body, "incremental")
        elif kind == "completed":
            self._completed(body)
        elif kind == "error":
            log.warning("verifier: %s", body)

    def _alarm(self, finding: Finding, found_by: str) -> bool:
        return self.alarms.raise_alarm(Alarm(finding.tenant, finding.check, finding.detail,
                                             finding.seq, finding.seq_end, found_by, now_text()))

    def _completed(self, run: dict) -> None:
        tenant, findings = run["tenant"], run["findings"]
        metrics.VERIFICATION_RUNS.labels(tenant, run["status"]).inc()
        log.info("full verification of tenant %s: %s, %d entries in %.2f s", tenant,
                 run["status"], run["entries_checked"], run["seconds"])
        for finding in findings:
            self._alarm(finding, "full")
        if any(f.check in CHAIN_CHECKS for f in findings):
            return  # recorded in the alarm book; see the module docstring
        if any(a.check in CHAIN_CHECKS for a in self.alarms.raised(tenant)):
            # The incremental verifier saw this log's chain break (say, a verified tail
            # deleted and the head rewritten to match): a full run that finds the rest
            # consistent must not record the forged history as checked.
            log.critical("full verification of tenant %s not recorded in its ledger: an "
                         "integrity alarm about its chain stands", tenant)
            return
        self._append(tenant, COMPLETED, {
            "kind": "full", "from_seq": 0, "to_seq": run["size"] - 1, "size": run["size"],
            "root": run["root"], "signed_size": run["signed_size"],
            "duration_ms": round(run["seconds"] * 1000), "result": run["status"],
            "entries_checked": run["entries_checked"], "findings": run["finding_count"]})
        if findings:
            self._append(tenant, FAILED, {
                "found_by": "full", "seq": run["first_bad_seq"], "size": run["size"],
                "findings": [{"check": f.check, "detail": f.detail, "seq": f.seq,
                              "seq_end": f.seq_end} for f in findings],
                "finding_count": run["finding_count"]})

    def _append(self, tenant: str, type_: str, data: dict) -> None:
        def done(future):
            error = future.exception()
            if error is not None:
                log.error("could not record %s for tenant %s: %s", type_, tenant, error)
        self._appender.submit(tenant, NewEntry(STREAM, type_, VERIFIER, data)).add_done_callback(done)

    def _progress_metrics(self):
        from prometheus_client.core import GaugeMetricFamily

        verified = GaugeMetricFamily(
            "indelible_verifier_verified_entries",
            "Entries the continuous verifier has re-read and checked", labels=["tenant"])
        signed = GaugeMetricFamily(
            "indelible_verifier_signed_entries",
            "Entries the continuous verifier proved included under a signed checkpoint",
            labels=["tenant"])
        for tenant, p in self._progress.items():
            verified.add_metric([tenant], p["verified"])
            signed.add_metric([tenant], p["signed"])
        yield verified
        yield signed
