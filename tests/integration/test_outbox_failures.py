"""The outbox when the receiver misbehaves: down, slow, 500, 400, 410, 429 with Retry-After.

In every case appends carry on, the event reaches the de-duplicating receiver exactly once
when it can, none is lost, and each outcome is a ledger entry on the discrepancy's stream.
Retry schedules are a fraction of a second here (outbox_helpers.FAST)."""

from __future__ import annotations

import time

import pytest

from indelible.store import outbox
from indelible.store.appender import Appended
from indelible.store.discrepancies import stream_of
from indelible.verifier.models import verify_models
from indelible.verifier.report import VerificationReport
from tests.webhook_receiver import Receiver

from .outbox_helpers import (new_secret, outbound, outbox_rows, outcomes, resolve, settings,
                             wait_until)

pytestmark = pytest.mark.storage


def _types(conn, tenant, d):
    return [o["type"] for o in outcomes(conn, tenant, stream_of(d))]


def _state(conn, tenant):
    return outbox_rows(conn, tenant)[0][3]


def test_a_receiver_that_is_down_gets_the_event_once_when_it_returns(
        app_url, conn, registered_tenant):
    secret = new_secret()
    receiver = Receiver(secret)  # not started: the port refuses connections
    config = settings(receiver.url, secret, schedule=(0, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3))
    with outbound(app_url, config) as appender:
        d, _ = resolve(appender, registered_tenant, "po-down")
        wait_until(lambda: len(_types(conn, registered_tenant, d)) >= 2, what="failed attempts")
        with receiver:
            receiver.wait_for(1, tenant=registered_tenant)
            wait_until(lambda: "outbox.delivered" in _types(conn, registered_tenant, d),
                       what="the delivery entry")
    kinds = _types(conn, registered_tenant, d)
    assert kinds[-1] == "outbox.delivered" and set(kinds[:-1]) == {"outbox.attempt_failed"}
    failed = outcomes(conn, registered_tenant, stream_of(d))[0]["data"]
    assert "no answer: ConnectError" in failed["reason"] and failed["retry_at"]
    assert len(receiver.of(registered_tenant)) == 1 and receiver.invalid == []


def test_a_500_is_retried_and_delivered_once(app_url, conn, registered_tenant):
    secret = new_secret()
    with Receiver(secret) as receiver, outbound(app_url, settings(receiver.url, secret)) as appender:
        receiver.answer(500)
        d, _ = resolve(appender, registered_tenant, "po-500")
        wait_until(lambda: "outbox.attempt_failed" in _types(conn, registered_tenant, d),
                   what="a failed attempt")
        receiver.answer(200)
        wait_until(lambda: "outbox.delivered" in _types(conn, registered_tenant, d),
                   what="the delivery")
    failed = outcomes(conn, registered_tenant, stream_of(d))[0]["data"]
    assert failed["status"] == 500 and failed["attempt"] == 1
    assert len(receiver.of(registered_tenant)) == 1 and receiver.duplicates_of(registered_tenant) == []


def test_a_400_is_parked_at_once_and_delivered_after_an_operator_retry(
        app_url, conn, registered_tenant):
    secret = new_secret()
    with Receiver(secret) as receiver, outbound(app_url, settings(receiver.url, secret)) as appender:
        receiver.answer(400)
        d, _ = resolve(appender, registered_tenant, "po-400")
        wait_until(lambda: _state(conn, registered_tenant) == "parked", what="parking")
        time.sleep(1)  # several retry delays: nothing more is sent
        assert _types(conn, registered_tenant, d) == ["outbox.parked"]
        parked = outcomes(conn, registered_tenant, stream_of(d))[0]["data"]
        assert parked["status"] == 400 and "not retried" in parked["reason"]
        receiver.answer(200)
        assert len(outbox.requeue(conn, registered_tenant)) == 1
        wait_until(lambda: "outbox.delivered" in _types(conn, registered_tenant, d),
                   what="the delivery after the retry")
    delivered = outcomes(conn, registered_tenant, stream_of(d))[-1]["data"]
    assert (delivered["round"], delivered["attempt"]) == (2, 1)
    assert len(receiver.of(registered_tenant)) == 1


def test_the_last_failed_attempt_parks_the_event(app_url, conn, registered_tenant):
    secret = new_secret()
    with Receiver(secret) as receiver, \
            outbound(app_url, settings(receiver.url, secret, schedule=(0, 0.2, 0.2))) as appender:
        receiver.answer(503)
        d, _ = resolve(appender, registered_tenant, "po-503")
        wait_until(lambda: _state(conn, registered_tenant) == "parked", what="parking")
    assert _types(conn, registered_tenant, d) == [
        "outbox.attempt_failed", "outbox.attempt_failed", "outbox.parked"]
    assert "the last of 3 attempts failed" in outcomes(conn, registered_tenant,
                                                       stream_of(d))[-1]["data"]["reason"]


def test_a_410_disables_the_integration_until_an_operator_re_enables_it(
        app_url, conn, registered_tenant):
    secret = new_secret()
    with Receiver(secret) as receiver, outbound(app_url, settings(receiver.url, secret)) as appender:
        receiver.answer(410)
        d, _ = resolve(appender, registered_tenant, "po-410-a")
        wait_until(lambda: outbox.disabled(conn, registered_tenant), what="disabling")
        e, _ = resolve(appender, registered_tenant, "po-410-b")  # queued, held
        time.sleep(1)
        mine = [r for r in outbox_rows(conn, registered_tenant)]
        assert [r[3] for r in mine] == ["pending", "pending"]
        assert _types(conn, registered_tenant, d) == ["outbox.integration_disabled"]
        assert _types(conn, registered_tenant, e) == []
        (off,) = outbox.disabled(conn, registered_tenant)
        assert off["integration"] == "rag" and "410" in off["reason"]
        receiver.answer(200)
        assert outbox.enable(conn, registered_tenant, "rag")
        conn.execute(f"NOTIFY {outbox.CHANNEL}")
        receiver.wait_for(2, tenant=registered_tenant)
        wait_until(lambda: "outbox.delivered" in _types(conn, registered_tenant, e),
                   what="the held event")
    assert len(receiver.of(registered_tenant)) == 2


def test_a_429_is_retried_no_sooner_than_its_retry_after(app_url, conn, registered_tenant):
    secret = new_secret()
    with Receiver(secret) as receiver, outbound(app_url, settings(receiver.url, secret)) as appender:
        receiver.answer(429, {"Retry-After": "2"})
        d, _ = resolve(appender, registered_tenant, "po-429")
        wait_until(lambda: _types(conn, registered_tenant, d), what="the first attempt")
        receiver.answer(200)
        answered = time.monotonic()
        wait_until(lambda: "outbox.delivered" in _types(conn, registered_tenant, d),
                   what="the delivery")
        waited = time.monotonic() - answered
    failed = outcomes(conn, registered_tenant, stream_of(d))[0]["data"]
    assert failed["status"] == 429 and "Retry-After" in failed["reason"]
    assert waited > 1.2  # the schedule alone would have retried after 0.3 s
    assert len(receiver.of(registered_tenant)) == 1


def test_a_receiver_slower_than_the_timeout_does_not_hold_up_appends(
        app_url, conn, registered_tenant):
    secret = new_secret()
    with Receiver(secret) as receiver, \
            outbound(app_url, settings(receiver.url, secret, timeout=1.0)) as appender:
        receiver.hang(3)  # beyond the 1 s timeout
        d, _ = resolve(appender, registered_tenant, "po-slow")
        wait_until(lambda: receiver.requests, what="the first request")
        # While the request hangs, the ledger goes on: appends complete at once.
        more = [resolve(appender, registered_tenant, f"po-slow-{i}")[1] for i in range(3)]
        assert all(isinstance(a, Appended) for a in more)
        wait_until(lambda: "outbox.attempt_failed" in _types(conn, registered_tenant, d),
                   what="the timed-out attempt")
        receiver.answer(200)
        receiver.wait_for(4, tenant=registered_tenant)
        wait_until(lambda: len([r for r in outbox_rows(conn, registered_tenant)
                                if r[3] == "delivered"]) == 4, what="every delivery")
    failed = outcomes(conn, registered_tenant, stream_of(d))[0]["data"]
    assert "ReadTimeout" in failed["reason"]
    assert len(receiver.of(registered_tenant)) == 4  # a late duplicate is de-duplicated


def test_two_dispatchers_share_the_queue_and_send_each_event_once(
        app_url, conn, registered_tenant):
    secret = new_secret()
    with Receiver(secret) as receiver, \
            outbound(app_url, settings(receiver.url, secret), dispatchers=2) as appender:
        for i in range(12):
            resolve(appender, registered_tenant, f"po-two-{i}")
        receiver.wait_for(12, tenant=registered_tenant)
        wait_until(lambda: all(r[3] == "delivered" for r in outbox_rows(conn, registered_tenant)),
                   what="every delivery entry")
    assert receiver.duplicates_of(registered_tenant) == []
    assert len([o for o in outcomes(conn, registered_tenant)
                if o["type"] == "outbox.delivered"]) == 12


def test_an_event_that_cannot_be_rendered_is_parked_with_the_reason(app_url, conn,
                                                                   registered_tenant):
    secret = new_secret()
    with Receiver(secret) as receiver, outbound(app_url, settings(receiver.url, secret)):
        conn.execute("INSERT INTO outbox (tenant_id, integration, event, source_seq, stream_id, "
                     "webhook_id) VALUES (%s, 'rag', 'discrepancy.resolved', 999999, "
                     "'elsewhere/1', %s)", (registered_tenant, f"msg_rag_{registered_tenant}"))
        conn.execute(f"NOTIFY {outbox.CHANNEL}")
        wait_until(lambda: _state(conn, registered_tenant) == "parked", what="parking")
    (parked,) = outcomes(conn, registered_tenant, "outbox/rag")
    assert parked["type"] == "outbox.parked"
    assert "could not be rendered" in parked["data"]["reason"]
    assert "no entry at seq 999999" in parked["data"]["reason"]
    assert receiver.of(registered_tenant) == {}


def test_a_row_made_by_hand_sends_nothing_and_an_edited_body_is_not_sent(
        app_url, conn, registered_tenant, owner_url):
    """As a database superuser might: a row for an entry that owes nothing, and a stored body
    rewritten before a retry. What is signed comes from the ledger alone."""
    from tests.integration.ledger_helpers import superuser

    secret = new_secret()
    with Receiver(secret) as receiver, outbound(app_url, settings(receiver.url, secret)) as appender:
        receiver.answer(500)
        d, resolved = resolve(appender, registered_tenant, "po-forged")
        wait_until(lambda: "outbox.attempt_failed" in _types(conn, registered_tenant, d),
                   what="a failed attempt")
        (opened_seq, opened_id) = conn.execute(
            "SELECT seq, event_id FROM ledger_entries WHERE tenant_id = %s AND stream_id = %s "
            "ORDER BY seq LIMIT 1", (registered_tenant, stream_of(d))).fetchone()
        with superuser(owner_url) as rogue:
            rogue.execute("INSERT INTO outbox (tenant_id, integration, event, source_seq, "
                          "stream_id, webhook_id) VALUES (%s, 'rag', 'discrepancy.resolved', "
                          "%s, %s, %s)", (registered_tenant, opened_seq, stream_of(d),
                                          f"msg_rag_{opened_id.hex}"))
            rogue.execute("UPDATE outbox SET body = convert_to('{\"forged\":true}', 'UTF8') "
                          "WHERE tenant_id = %s AND source_seq = %s",
                          (registered_tenant, resolved.seq))
        receiver.answer(200)
        wait_until(lambda: "outbox.delivered" in _types(conn, registered_tenant, d),
                   what="the delivery")
        wait_until(lambda: "outbox.parked" in _types(conn, registered_tenant, d),
                   what="the forged row parked")
    (event,) = receiver.of(registered_tenant).values()
    assert event["type"] == "discrepancy.resolved" and "forged" not in event
    assert event["data"]["proof"]["seq"] == resolved.seq
    parked = [o for o in outcomes(conn, registered_tenant, stream_of(d))
              if o["type"] == "outbox.parked"][0]["data"]
    assert "made or changed by hand" in parked["reason"] and parked["source_seq"] == opened_seq
    report = VerificationReport(registered_tenant, "")
    verify_models(app_url, registered_tenant, report)  # an auditor sees the forged row too
    (finding,) = report.findings
    assert finding.check == "outbox" and finding.seq == opened_seq
    assert "does not owe discrepancy.resolved to rag" in finding.detail
