"""Chain-breaking integrity alarms reach the Notification Hub without the ledger or the
outbox (outbound/alarm_relay.py): a real receiver verifies them with `standardwebhooks`."""

from __future__ import annotations

import time

from indelible.config import Integration
from indelible.monitor.alarms import Alarm, AlarmBook, IntegrityAlarms, now_text
from indelible.outbound.alarm_relay import AlarmRelay
from indelible.outbound.webhooks import new_secret
from tests.webhook_receiver import Receiver


def _alarm(check: str, seq: int) -> Alarm:
    return Alarm("acme", check, f"entry {seq} was changed", seq, None, "incremental", now_text())


def test_a_chain_alarm_is_sent_signed_once_and_a_derived_one_is_left_to_the_outbox(tmp_path):
    secret = new_secret()
    with Receiver(secret) as hub:
        alarms = IntegrityAlarms(AlarmBook(tmp_path / "alarms.jsonl"))
        relay = AlarmRelay(Integration("hub", hub.url, (secret,)), timeout=5,
                           schedule=(0, 0.2, 0.2)).start()
        alarms.subscribe(relay.submit)
        try:
            alarms.raise_alarm(_alarm("read_model", 3))  # appended as verification.failed
            alarms.raise_alarm(_alarm("leaf_hash", 7))
            alarms.raise_alarm(_alarm("leaf_hash", 7))  # the same finding: raised once
            hub.wait_for(1, timeout=20)
            time.sleep(0.5)
        finally:
            relay.stop()
        assert not hub.invalid and not hub.duplicates
        [event] = hub.events.values()
        assert event["type"] == "integrity.alarm"
        assert event["data"]["check"] == "leaf_hash" and event["data"]["seq"] == 7
        assert event["data"]["severity"] == "critical"


def test_a_hub_that_is_down_is_tried_again_with_the_same_webhook_id(tmp_path):
    secret = new_secret()
    hub = Receiver(secret)
    hub.start()
    hub.answer(503)
    relay = AlarmRelay(Integration("hub", hub.url, (secret,)), timeout=5,
                       schedule=(0, 0.5, 0.5, 0.5)).start()
    try:
        relay.submit(_alarm("prev", 11))
        deadline = time.monotonic() + 20
        while hub.requests < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        hub.answer(200)
        hub.wait_for(1, timeout=20)
    finally:
        relay.stop()
        hub.stop()
    assert hub.requests >= 2 and len(hub.events) == 1 and not hub.invalid


def test_a_hub_trickling_its_answer_does_not_hold_back_the_next_alarm(tmp_path):
    """The status is the answer: a hub (or a proxy before it) that sends its body one byte
    at a time, each within the timeout, must not keep the relay from the next alarm."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    arrivals: list[float] = []
    done = threading.Event()

    def trickle(conn):
        with conn:
            conn.recv(65536)
            arrivals.append(time.monotonic())
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n")
            for _ in range(60):
                if done.wait(0.5):
                    return
                try:
                    conn.sendall(b"x")
                except OSError:
                    return

    def serve():
        server.settimeout(0.2)
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:  # closed at the end of the test
                return
            threading.Thread(target=trickle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    relay = AlarmRelay(Integration("hub", f"http://127.0.0.1:{port}/hub", (new_secret(),)),
                       timeout=2, schedule=(0,)).start()
    try:
        relay.submit(_alarm("leaf_hash", 1))
        relay.submit(_alarm("leaf_hash", 2))
        deadline = time.monotonic() + 15
        while len(arrivals) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        # Trickled to the end, the first answer alone would take 30 s.
        assert len(arrivals) == 2
    finally:
        done.set()
        relay.stop()
        time.sleep(0.3)  # the accept loop notices `done` before the socket closes
        server.close()
