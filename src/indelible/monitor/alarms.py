"""Integrity alarms: what the verifiers found, raised everywhere an operator looks.

An alarm is raised once per finding (tenant, check, seq range) and goes, at once, to:
  1. the log, as a CRITICAL "INTEGRITY ALARM" line naming the tenant, the seq and the check;
  2. the metrics (`indelible_verification_findings_total`, `indelible_integrity_ok` = 0);
  3. the alarm book, a JSON-lines file beside the signing key, outside the database the
     alarm is about, appended and fsynced before anything else is attempted;
  4. `/readyz`, which answers 503 naming the integrity problem while the alarm stands (in
     the book: across restarts, until an operator archives the book);
  5. every subscriber (`IntegrityAlarms.subscribe`): the seam for the Notification Hub's
     critical event, so the outbound integration adds one call and nothing here changes.
Whether the tenant's own ledger also gets a `verification.failed` entry is decided by the
caller (monitor/service.py), because it depends on whether that log still verifies.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from indelible import metrics

log = logging.getLogger("indelible.integrity")

# Checks about the entries themselves, their chain and the signatures over them: after one
# fails, the log no longer verifies up to its head (see monitor/service.py).
# ("unverifiable": the log's rows could not even be read; nothing is appended to it.)
CHAIN_CHECKS = frozenset({"seq", "leaf_hash", "prev", "entry", "checkpoint", "trusted",
                          "unverifiable"})
STALE_VERIFIER = 30.0  # seconds the verifier process may be down before /readyz says so


@dataclass(frozen=True)
class Alarm:
    tenant: str
    check: str
    detail: str
    seq: int | None
    seq_end: int | None  # exclusive end, when only a range can be named
    found_by: str  # incremental | full
    at: str  # RFC 3339, UTC

    def where(self) -> str:
        if self.seq is None:
            return "the log"
        if self.seq_end is not None and self.seq_end > self.seq + 1:
            return f"seq {self.seq}..{self.seq_end - 1}"
        return f"seq {self.seq}"

    def describe(self) -> str:
        return f"tenant {self.tenant}, {self.where()}: [{self.check}] {self.detail}"


def _key(alarm: Alarm) -> tuple:
    return (alarm.tenant, alarm.check, alarm.seq, alarm.seq_end)


def now_text() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class AlarmBook:
    """Append-only JSON lines, mode 0600, each line fsynced: what a superuser who rewrote
    the database cannot reach (it lives with the signing key, which must be guarded anyway)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def record(self, alarm: Alarm) -> None:
        line = json.dumps(asdict(alarm), sort_keys=True) + "\n"
        with self._lock:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def read(self) -> list[Alarm]:
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        alarms = []
        for line in lines:
            if not line.strip():
                continue
            try:
                alarms.append(Alarm(**json.loads(line)))
            except (ValueError, TypeError):  # a line torn by a crash mid-write
                log.critical("unreadable line in the alarm book %s: %r", self.path, line[:200])
        return alarms


class IntegrityAlarms:
    """Raised alarms and the verifier's progress, shared by its monitor thread (writer) and
    the HTTP threads (/readyz)."""

    def __init__(self, book: AlarmBook):
        self.book = book
        self._lock = threading.Lock()
        self._raised: dict[tuple, Alarm] = {}
        self._subscribers: list[Callable[[Alarm], None]] = []
        self.verifier_state = "starting"
        self._down_since: float | None = None
        # Alarms from before a restart still stand: a break made consistent afterwards (a
        # verified tail deleted, the head rewritten to match) is not found again by a fresh
        # verification. An operator clears them by archiving the book after investigating.
        for alarm in book.read():
            self._raised[_key(alarm)] = alarm
            metrics.INTEGRITY_OK.labels(alarm.tenant).set(0)

    def subscribe(self, callback: Callable[[Alarm], None]) -> None:
        """Call `callback(alarm)` for every alarm raised from now on (e.g. a Notification Hub
        critical event). It runs on the verifier's monitor thread: keep it short."""
        self._subscribers.append(callback)

    def raise_alarm(self, alarm: Alarm) -> bool:
        """Raise it unless already raised; True if it is new."""
        key = _key(alarm)
        with self._lock:
            if key in self._raised:
                return False
            self._raised[key] = alarm
        log.critical("INTEGRITY ALARM: %s (found by the %s verifier)", alarm.describe(),
                     alarm.found_by)
        metrics.VERIFICATION_FINDINGS.labels(alarm.tenant, alarm.check).inc()
        metrics.INTEGRITY_OK.labels(alarm.tenant).set(0)
        try:
            self.book.record(alarm)
        except OSError:
            log.critical("INTEGRITY ALARM could not be written to %s", self.book.path,
                         exc_info=True)
        for callback in list(self._subscribers):
            try:
                callback(alarm)
            except Exception:  # noqa: BLE001 - one subscriber must not silence the others
                log.exception("integrity alarm subscriber %r failed", callback)
        return True

    def raised(self, tenant: str | None = None) -> list[Alarm]:
        with self._lock:
            return [a for a in self._raised.values() if tenant in (None, a.tenant)]

    def set_verifier_state(self, state: str) -> None:
        with self._lock:
            self.verifier_state = state
            if state == "running":
                self._down_since = None
            elif self._down_since is None:
                self._down_since = time.monotonic()

    def problem(self) -> tuple[str, str] | None:
        """For /readyz: ("integrity", what is wrong) or None."""
        with self._lock:
            alarms = list(self._raised.values())
            down = (self.verifier_state if self._down_since is not None
                    and time.monotonic() - self._down_since > STALE_VERIFIER else None)
        if alarms:
            # The earliest entry named precisely; else the earliest range; the log last.
            first = min(alarms, key=lambda a: (a.seq is None, a.seq_end is not None,
                                               a.seq or 0, a.tenant))
            # /readyz is public: the check and the seq, never the tenant (a customer's name);
            # the log line, the metric and the alarm book name it.
            more = f"; {len(alarms)} alarms in all" if len(alarms) > 1 else ""
            return "integrity", (f"degraded: {first.where()} of a tenant's log failed the "
                                 f"{first.check} check{more} (see the INTEGRITY ALARM log lines)")
        if down:
            return "integrity", f"the continuous verifier is not running: {down}"
        return None
