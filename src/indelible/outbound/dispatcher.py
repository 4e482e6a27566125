"""The dispatcher inside `indelible up`: delivers outbox rows, records every outcome.

One lane per enabled integration, each with its own HTTP client and at most `concurrency`
requests in flight, so a hub that hangs holds up at most its own lane, and never an append:
a request gives up after `timeout` seconds, and appends do not wait for the dispatcher at all
(they only queue a row). A lane's claimer takes due rows (store/outbox.py: `FOR UPDATE SKIP
LOCKED` and a lease, so several dispatchers share the queue and a killed one's rows are
taken again) whenever a sender is free, woken by the NOTIFY an appending transaction sends
at commit, or every `poll` seconds. Each attempt's outcome goes through the appender like
any other entry (outcomes.py); if it cannot be recorded, the row's lease runs out and the
event is sent again under the same webhook-id, which the receiver de-duplicates.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import httpx
import psycopg
from psycopg_pool import ConnectionPool

from indelible.config import Integration, OutboundSettings
from indelible.entry import format_time
from indelible.outbound import deadline, outcomes, render, retry, webhooks
from indelible.store import outbox
from indelible.store.appender import Appended
from indelible.store.group_commit import GroupCommitAppender

log = logging.getLogger(__name__)


def lease_for(timeout: float) -> float:
    """Seconds a claimed row stays with its sender: the request's timeout, then as long again
    (at least 5 s) to record the outcome. A sender killed meanwhile delays its rows this long."""
    return 2 * timeout + 5


MAX_ERROR = 200  # characters of an error kept in the ledger entry and the row


def _bounded(error: str) -> str:
    """An error's text, cut short: a malformed answer's error quotes the receiver's bytes
    (up to ~100 KB), and the reason becomes a permanent ledger entry at every attempt."""
    return error if len(error) <= MAX_ERROR else f"{error[:MAX_ERROR]}… ({len(error)} chars)"


def _shown(url: str) -> str:
    """A receiver's URL for the log: without the user:password@ and query a webhook URL
    often carries its token in."""
    u = httpx.URL(url)
    return str(u.copy_with(userinfo=b"", query=None)) + ("?…" if u.query else "")


class Dispatcher:
    def __init__(self, *, conninfo: str, appender: GroupCommitAppender,
                 settings: OutboundSettings):
        self._conninfo = conninfo
        self._settings = settings
        self._stopped = threading.Event()
        self._pool = ConnectionPool(conninfo, min_size=1,
                                    max_size=2 + len(settings.enabled) * settings.concurrency,
                                    open=False, kwargs={"autocommit": True})
        self.lanes = [Lane(i, pool=self._pool, appender=appender, settings=settings,
                           stopped=self._stopped) for i in settings.enabled]
        self._listener = threading.Thread(target=self._listen, name="outbox-listen", daemon=True)

    def start(self) -> Dispatcher:
        self._pool.open()
        for lane in self.lanes:
            lane.start()
        self._listener.start()
        log.info("outbox: delivering to %s", ", ".join(f"{l.integration.name} at "
                                                       f"{_shown(l.integration.url)}" for l in self.lanes))
        return self

    def stop(self) -> None:
        self._stopped.set()
        for lane in self.lanes:
            lane.stop()
        self._listener.join(timeout=5)
        self._pool.close()

    def wake(self) -> None:
        for lane in self.lanes:
            lane.wake.set()

    def _listen(self) -> None:
        """Wake the lanes when an appending transaction that queued rows commits."""
        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {outbox.CHANNEL}")
                    self.wake()  # anything queued while not listening
                    while not self._stopped.is_set():
                        for _ in conn.notifies(timeout=0.5):
                            self.wake()
            except psycopg.Error as e:
                log.warning("outbox: listening for new events failed (%s); polling meanwhile", e)
                self._stopped.wait(self._settings.poll)


class Lane:
    """One integration's deliveries: a claimer thread and `concurrency` senders."""

    def __init__(self, integration: Integration, *, pool: ConnectionPool,
                 appender: GroupCommitAppender, settings: OutboundSettings,
                 stopped: threading.Event):
        self.integration = integration
        self._pool, self._appender, self._settings = pool, appender, settings
        self._stopped = stopped
        self.wake = threading.Event()
        # Up to `concurrency` rows wait claimed behind the ones in flight, so a sender that
        # finishes starts the next at once instead of waiting for the claimer's query; the
        # pool's workers bound what is actually in flight.
        self._free = threading.Semaphore(2 * settings.concurrency)
        self._senders = ThreadPoolExecutor(settings.concurrency,
                                           thread_name_prefix=f"outbox-{integration.name}")
        limits = httpx.Limits(max_connections=settings.concurrency)
        self._client = httpx.Client(timeout=settings.timeout, follow_redirects=False,
                                    limits=limits, transport=deadline.transport(limits),
                                    headers={"user-agent": "indelible-outbox/1"})
        self._thread = threading.Thread(target=self._claim_loop, daemon=True,
                                        name=f"outbox-claim-{integration.name}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.wake.set()
        self._thread.join(timeout=10)
        # Rows claimed but not started give themselves back at once (see _send), so a
        # restart does not wait for their leases; requests in flight end within the timeout.
        self._senders.shutdown(wait=True)
        self._client.close()

    def _claim_loop(self) -> None:
        lease = lease_for(self._settings.timeout)
        while not self._stopped.is_set():
            self.wake.clear()  # before looking: a wake during the claim is not lost
            free = self._acquire_free()
            rows = []
            if free:
                try:
                    with self._pool.connection() as conn:
                        rows = outbox.claim(conn, self.integration.name, free, lease)
                except psycopg.Error as e:
                    log.warning("outbox: claiming %s events failed: %s", self.integration.name, e)
                for _ in range(free - len(rows)):
                    self._free.release()
                for row in rows:
                    self._senders.submit(self._send, row)
            if len(rows) < free or not free:
                self.wake.wait(self._settings.poll)

    def _acquire_free(self) -> int:
        """How many senders are idle (taken now; each released when its delivery ends)."""
        free = 0
        while self._free.acquire(blocking=False):
            free += 1
        return free

    def _send(self, row: outbox.Claimed) -> None:
        try:
            if self._stopped.is_set():
                with self._pool.connection() as conn:
                    outbox.release(conn, row.tenant, row.id, row.attempt)
                return
            self._record(self._attempt(row))
        except Exception:  # noqa: BLE001 - one event's failure must not stop the lane
            log.exception("outbox: delivering %s failed unexpectedly; its lease will run out "
                          "and it is tried again", row.webhook_id)
        finally:
            self._free.release()
            self.wake.set()

    def _attempt(self, row: outbox.Claimed) -> outcomes.Attempt:
        # Rendered from the ledger at every attempt, never taken from the row: what we sign
        # must not rest on a row anyone with a database login could have changed.
        try:
            with self._pool.connection() as conn:
                body = render.render(conn, row, public_url=self._settings.public_url)
        except psycopg.OperationalError:
            raise  # the database is away: the lease runs out and the row is taken again
        except Exception as e:  # noqa: BLE001 - an event that cannot be rendered is parked
            if isinstance(e, render.UnowedEventError):
                log.critical("INTEGRITY ALARM: %s", e)
            else:
                log.exception("outbox: %s could not be rendered", row.webhook_id)
            return outcomes.Attempt(row, retry.Verdict.PARK, "the event could not be "
                                    f"rendered from the ledger: {type(e).__name__}: {e}",
                                    None, 0)
        if row.body is not None and row.body != body:
            log.critical("INTEGRITY ALARM: outbox row %d holds a body that is not what the "
                         "ledger renders for %s; sending the ledger's", row.id, row.webhook_id)
        headers = webhooks.headers(self.integration.secrets, row.webhook_id, int(time.time()), body)
        started = time.monotonic()
        status, error, retry_after = None, None, None
        try:
            # The status is the answer; the body is never read, so a receiver trickling one
            # cannot hold the sender past the timeout of each read; one trickling the status
            # line and headers is cut off at the timeout of the whole request (deadline.py).
            with deadline.within(self._settings.timeout), \
                    self._client.stream("POST", self.integration.url, content=body,
                                        headers=headers) as response:
                status, retry_after = response.status_code, response.headers.get("retry-after")
        except httpx.HTTPError as e:
            error = _bounded(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
        duration_ms = int((time.monotonic() - started) * 1000)
        judged = retry.judge(status, error, attempt=row.attempt, schedule=self._settings.schedule,
                             retry_after=retry_after)
        retry_at = None
        if judged.verdict is retry.Verdict.RETRY:
            retry_at = format_time(datetime.now(timezone.utc) + timedelta(seconds=judged.delay))
        return outcomes.Attempt(row, judged.verdict, judged.reason, status, duration_ms,
                                judged.delay, retry_at, body=body if row.body is None else None)

    def _record(self, attempt: outcomes.Attempt) -> None:
        """Hand the outcome to the appender and free the sender at once: its entry commits
        with the next group commit, and until then the row stays claimed (the lease), so
        nobody sends it again meanwhile."""
        recording = self._appender.submit(attempt.row.tenant, outcomes.decision(attempt))
        recording.add_done_callback(lambda done: self._recorded(attempt, done))

    def _recorded(self, attempt: outcomes.Attempt, done) -> None:
        row = attempt.row
        if done.exception() is not None:
            log.warning("outbox: recording the outcome of %s failed (%s); its lease will run "
                        "out and it is sent again", row.webhook_id, done.exception())
            return
        if isinstance(done.result(), Appended) and done.result().replayed:
            try:  # rare (an outcome recorded before): not on the appender's writer thread
                self._senders.submit(self._settle, attempt)
            except RuntimeError:
                pass  # stopping: the lease runs out and the row is taken again
        level = logging.INFO if attempt.verdict is retry.Verdict.DELIVERED else logging.WARNING
        log.log(level, "outbox: %s %s (%s) to %s: %s, %s", row.event, row.webhook_id,
                row.tenant, self.integration.name, attempt.verdict, attempt.reason)

    def _settle(self, attempt: outcomes.Attempt) -> None:
        with self._pool.connection() as conn:
            outcomes.settle_replayed(conn, attempt)
