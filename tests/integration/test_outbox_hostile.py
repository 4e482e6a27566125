"""The outbox against hostile receivers (review of issue 12): a receiver that trickles its
answer a byte at a time must not hold a sender, or the service's shutdown, past the timeout."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from indelible.runtime import free_port
from indelible.store.discrepancies import stream_of

from indelible.bootstrap import projections
from indelible.outbound.dispatcher import Dispatcher
from indelible.outbound.hook import OutboxHook
from indelible.store.group_commit import GroupCommitAppender

from .outbox_helpers import new_secret, outbound, outcomes, resolve, settings, wait_until

pytestmark = pytest.mark.storage


class Trickler:
    """Reads a request, then sends its status line one byte every `every` seconds, forever:
    each read of the sender's succeeds within any per-read timeout."""

    def __init__(self, every: float = 0.3):
        self.port, self.every = free_port(), every
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self.accepted = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def __enter__(self):
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._sock.close()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.accepted += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn):
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                while not self._stop.is_set():
                    for byte in b"HTTP/1.1 200 OK\r\nx-trickle: " + b"a" * 10_000:
                        if self._stop.wait(self.every):
                            return
                        conn.sendall(bytes([byte]))
            except OSError:
                pass


def _stop_within(seconds: float, stop) -> bool:
    """Run `stop` in a thread; whether it returned within `seconds` (a hung one is left)."""
    t = threading.Thread(target=stop, daemon=True)
    t.start()
    t.join(seconds)
    return not t.is_alive()


def test_a_trickling_receiver_is_cut_off_at_the_timeout_and_does_not_hold_shutdown(
        app_url, conn, registered_tenant):
    secret = new_secret()
    with Trickler(every=0.3) as trickler:
        config = settings(trickler.url, secret, timeout=1.0, schedule=(0, 30))
        appender = GroupCommitAppender(conninfo=app_url, model=projections(),
                                       hooks=[OutboxHook(["rag"])])
        dispatcher = Dispatcher(conninfo=app_url, appender=appender, settings=config).start()
        stopped = False
        try:
            d, _ = resolve(appender, registered_tenant, "po-trickle")
            # The attempt is given up at the timeout and recorded as failed, not left hanging
            # while its lease runs out and the row is sent again.
            wait_until(lambda: [o for o in outcomes(conn, registered_tenant, stream_of(d))
                                if o["type"] == "outbox.attempt_failed"],
                       timeout=10, what="the trickled attempt recorded as failed")
            failed = outcomes(conn, registered_tenant, stream_of(d))[0]["data"]
            assert "no answer" in failed["reason"] and "Timeout" in failed["reason"]
            resolve(appender, registered_tenant, "po-trickle-2")  # a second one in flight
            wait_until(lambda: trickler.accepted >= 2, timeout=10, what="the second request")
            stopped = _stop_within(5, dispatcher.stop)
            assert stopped, "stopping the dispatcher waited on the trickling receiver"
        finally:
            if not stopped:
                _stop_within(1, dispatcher.stop)
            appender.close()


def test_a_row_parked_or_an_integration_disabled_by_hand_is_a_verification_finding(
        app_url, conn, owner_url, registered_tenant):
    """A superuser who parks a pending row, or disables the integration for the tenant, stops
    an event from being sent as surely as one who marks it delivered: verify must say so."""
    from indelible.verifier.models import verify_models
    from indelible.verifier.report import VerificationReport
    from tests.integration.ledger_helpers import superuser

    config = settings("http://127.0.0.1:9/never", new_secret())
    with outbound(app_url, config, dispatchers=0) as appender:
        _, resolved = resolve(appender, registered_tenant, "po-shelved")
    with superuser(owner_url) as rogue:
        rogue.execute("UPDATE outbox SET state = 'parked' WHERE tenant_id = %s",
                      (registered_tenant,))
        rogue.execute("INSERT INTO outbox_disabled (tenant_id, integration, seq, reason) "
                      "VALUES (%s, 'rag', %s, '410')", (registered_tenant, resolved.seq))
    report = VerificationReport(registered_tenant, "")
    verify_models(app_url, registered_tenant, report)
    details = sorted(f.detail for f in report.findings if f.check == "outbox")
    assert len(details) == 2, report.findings
    assert any("says parked, but no outbox.parked entry records it" in d for d in details)
    assert any("disabled, but no outbox.integration_disabled entry" in d for d in details)


def test_a_receiver_cannot_write_its_own_text_into_the_ledger(app_url, conn, registered_tenant):
    """A malformed answer's text (h11 quotes the bad line, up to ~100 KB) must not become a
    permanent ledger entry: the failed attempt's reason is bounded."""
    sock = socket.create_server(("127.0.0.1", free_port()))
    port = sock.getsockname()[1]
    stop = threading.Event()

    def serve():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = sock.accept()
            except OSError:
                continue
            with c:
                try:
                    c.recv(65536)
                    c.sendall(b"HTTP/1.1 200 OK\r\n" + b"INJECTED" * 7000 + b"\r\n\r\n")
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    try:
        config = settings(f"http://127.0.0.1:{port}/hook", new_secret(), schedule=(0, 30))
        with outbound(app_url, config) as appender:
            d, _ = resolve(appender, registered_tenant, "po-inject")
            (failed, *_) = wait_until(
                lambda: [o for o in outcomes(conn, registered_tenant, stream_of(d))
                         if o["type"] == "outbox.attempt_failed"], what="the failed attempt")
    finally:
        stop.set()
        sock.close()
    reason = failed["data"]["reason"]
    assert reason.startswith("no answer: RemoteProtocolError") and len(reason) <= 400, len(reason)
    (last_error,) = conn.execute("SELECT last_error FROM outbox WHERE tenant_id = %s",
                                 (registered_tenant,)).fetchone()
    assert len(last_error) <= 400


def test_credentials_in_a_receiver_url_are_not_logged(app_url, caplog):
    """Webhook URLs often carry a token (user:password@, ?code=...): the log names the host."""
    import logging

    url = f"http://hub:s3cr3t-pass@127.0.0.1:{free_port()}/hook?code=s3cr3t-code"
    with caplog.at_level(logging.INFO, logger="indelible.outbound"):
        with outbound(app_url, settings(url, new_secret())):
            pass
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "127.0.0.1" in logged and "s3cr3t" not in logged, logged


def test_a_hub_sending_an_endless_body_does_not_silence_later_integrity_alarms(tmp_path):
    """The alarm relay has one thread: a hub that answers 200 and then streams its body for
    ever must not keep every later chain-breaking alarm from being sent."""
    from indelible.config import Integration
    from indelible.monitor.alarms import Alarm, now_text
    from indelible.outbound.alarm_relay import AlarmRelay

    sock = socket.create_server(("127.0.0.1", free_port()))
    sock.settimeout(0.2)
    port, stop, seen = sock.getsockname()[1], threading.Event(), []

    def endless(c):
        with c:
            try:
                c.recv(65536)
                seen.append(time.monotonic())
                if len(seen) > 1:
                    c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    return
                c.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                while not stop.wait(0.2):
                    c.sendall(b"1\r\na\r\n")
            except OSError:
                pass

    def serve():
        while not stop.is_set():
            try:
                c, _ = sock.accept()
            except OSError:
                continue
            threading.Thread(target=endless, args=(c,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    secret = new_secret()
    relay = AlarmRelay(Integration("hub", f"http://127.0.0.1:{port}/hook", (secret,)),
                       timeout=1, schedule=(0, 0.2)).start()
    try:
        for seq in (7, 8):
            relay.submit(Alarm("acme", "leaf_hash", "changed", seq, None, "incremental",
                               now_text()))
        wait_until(lambda: len(seen) >= 2, timeout=10, what="the second alarm sent")
    finally:
        stop.set()
        sock.close()
        relay.stop()
