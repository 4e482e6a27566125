"""Integrity alarms the ledger cannot carry, sent straight to the Notification Hub.

A finding about derived data (a read model, a stored Merkle node) is appended to the
tenant's log as `verification.failed`, and the transactional outbox delivers its critical
hub event like any other. A finding that breaks the chain itself is deliberately NOT
appended (monitor/service.py says why), so no outbox row can owe the hub an event for it,
and the outbox is a table in the very database the alarm says was tampered with. Those
alarms are relayed from memory instead: signed like every webhook (Standard Webhooks),
with a webhook-id derived from the finding so a receiver de-duplicates repeats, retried on
the outbox's schedule while the service runs. Their durable record is the alarm book
beside the signing key; this relay only makes sure someone is told at once.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from dataclasses import asdict

import httpx
import orjson

from indelible.config import Integration
from indelible.monitor.alarms import CHAIN_CHECKS, Alarm
from indelible.outbound import deadline, retry, webhooks

log = logging.getLogger(__name__)

EVENT = "integrity.alarm"


def alarm_event(alarm: Alarm) -> tuple[str, bytes]:
    """(webhook-id, body) of the hub event for one chain-breaking finding."""
    key = f"{alarm.tenant}\n{alarm.check}\n{alarm.seq}\n{alarm.seq_end}".encode()
    webhook_id = "msg_hub_alarm_" + hashlib.sha256(key).hexdigest()[:32]
    body = orjson.dumps({
        "type": EVENT, "timestamp": alarm.at,
        "data": {"tenant": alarm.tenant, "severity": "critical", **asdict(alarm),
                 "summary": f"INTEGRITY ALARM: {alarm.describe()}",
                 "recorded_in": "the alarm book beside the signing key (the tenant's log "
                                "no longer verifies, so nothing is appended to it)"}},
        option=orjson.OPT_SORT_KEYS)
    return webhook_id, body


class AlarmRelay:
    """Subscribe `submit` to IntegrityAlarms; a thread of its own does the sending, so the
    verifier's monitor thread never waits for the hub."""

    def __init__(self, hub: Integration, *, timeout: float, schedule: tuple[float, ...]):
        self.hub, self.timeout, self.schedule = hub, timeout, schedule
        self._queue: queue.Queue[Alarm | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alarm-relay", daemon=True)

    def start(self) -> AlarmRelay:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout=self.timeout + 5)

    def submit(self, alarm: Alarm) -> None:
        if alarm.check in CHAIN_CHECKS:  # the others reach the hub through the outbox
            self._queue.put(alarm)

    def _run(self) -> None:
        limits = httpx.Limits(max_connections=1)
        with httpx.Client(timeout=self.timeout, follow_redirects=False, limits=limits,
                          transport=deadline.transport(limits)) as client:
            while not self._stop.is_set():
                alarm = self._queue.get()
                if alarm is not None:
                    self._deliver(client, alarm)

    def _deliver(self, client: httpx.Client, alarm: Alarm) -> None:
        webhook_id, body = alarm_event(alarm)
        for attempt in range(1, len(self.schedule) + 1):
            try:
                # Only the status is read, within one deadline for the whole request: a hub
                # streaming or trickling its answer must not hold the one thread that sends
                # every later alarm (deadline.py).
                with deadline.within(self.timeout), client.stream(
                        "POST", self.hub.url, content=body, headers=webhooks.headers(
                            self.hub.secrets, webhook_id, int(time.time()), body)) as answer:
                    status, asked = answer.status_code, answer.headers.get("retry-after")
                decision = retry.judge(status, None, attempt=attempt, schedule=self.schedule,
                                       retry_after=asked)
            except httpx.HTTPError as e:
                decision = retry.judge(None, f"{type(e).__name__}: {e}", attempt=attempt,
                                       schedule=self.schedule)
            if decision.verdict is retry.Verdict.DELIVERED:
                log.info("integrity alarm sent to the hub (%s, attempt %d)", webhook_id, attempt)
                return
            if decision.verdict is not retry.Verdict.RETRY or self._stop.wait(decision.delay):
                break
        log.critical("INTEGRITY ALARM could not be sent to the hub (%s): it stays in the "
                     "alarm book and /readyz", alarm.describe())
