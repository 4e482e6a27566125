"""The report worker inside `indelible up`: queues scheduled reports when they fall due and
renders queued jobs, one at a time, off the request path.

Several workers (threads, processes, service instances) may run: `store.reports.claim`
gives each job to one of them, and a job whose worker died is claimed again (see there).
"""

from __future__ import annotations

import logging
import os
import socket
import threading

import psycopg

from indelible.store import reports as store
from indelible.store.group_commit import GroupCommitAppender
from indelible.usecases import reports

log = logging.getLogger(__name__)
POLL = 0.5  # seconds between looks at the queue when it is empty
APPEND_TIMEOUT = 60.0  # seconds to wait for the report.generated entry to commit


class ReportWorker:
    def __init__(self, *, conninfo: str, appender: GroupCommitAppender,
                 signing: reports.Signing, poll: float = POLL):
        self.conninfo, self.appender, self.signing, self.poll = conninfo, appender, signing, poll
        self.name = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="report-worker", daemon=True)

    def start(self) -> ReportWorker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _append(self, tenant: str, command):
        outcome = self.appender.submit(tenant, command).result(timeout=APPEND_TIMEOUT)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    while not self._stop.is_set():
                        if not self.run_once(conn):
                            self._stop.wait(self.poll)
            except psycopg.Error as e:  # the database went away: look again shortly
                log.warning("report worker: %s; retrying", e)
                self._stop.wait(2.0)

    def run_once(self, conn: psycopg.Connection) -> bool:
        """Queue due schedules, then render one job; False when there was none."""
        queued = reports.enqueue_due_schedules(conn, self._append)
        if queued:
            log.info("report worker: queued %d scheduled report(s)", queued)
        job = store.claim(conn, self.name)
        if job is None:
            return False
        log.info("report worker: rendering report %s of %s (attempt %d)", job.report_id,
                 job.tenant, job.attempts)
        try:
            reports.run_job(self.conninfo, conn, job, append=self._append, signing=self.signing)
        except Exception as e:  # noqa: BLE001 - one bad job must not stop the worker
            log.exception("report worker: report %s failed", job.report_id)
            store.finish(conn, job, "failed", failure=f"{type(e).__name__}: {e}")
        finally:
            store.release(conn, job)
        return True
