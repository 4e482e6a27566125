"""The outbox end to end on real PostgreSQL and a real receiver: queued with the entry,
delivered signed, every outcome a ledger entry on the discrepancy's stream."""

from __future__ import annotations

import orjson
import pytest

from indelible.entry import b64
from indelible.store import outbox
from indelible.store.appender import Appended
from indelible.store.discrepancies import stream_of
from indelible.verifier.models import verify_models
from indelible.verifier.report import VerificationReport
from tests.webhook_receiver import Receiver

from .outbox_helpers import (move, new_secret, open_case, outbound, outbox_rows, outcomes,
                             resolve, settings, wait_until)

pytestmark = pytest.mark.storage


def test_with_the_flags_off_a_resolution_queues_nothing(app_url, conn, registered_tenant):
    with outbound(app_url, None) as appender:
        resolve(appender, registered_tenant, "po-off")
    assert outbox_rows(conn, registered_tenant) == []


def test_a_refused_move_queues_nothing_and_a_committed_one_queues_one_row(
        app_url, conn, registered_tenant):
    config = settings("http://127.0.0.1:9/never", new_secret())
    with outbound(app_url, config, dispatchers=0) as appender:
        d = open_case(appender, registered_tenant, "po-refused")
        move(appender, registered_tenant, d, "acknowledged")
        with pytest.raises(Exception, match="investigat"):
            move(appender, registered_tenant, d, "resolved",
                 resolution_code="corrected_in_ledger", note="too early")
        assert outbox_rows(conn, registered_tenant) == []
        move(appender, registered_tenant, d, "investigating")
        resolved = move(appender, registered_tenant, d, "resolved",
                        resolution_code="corrected_in_ledger", note="booked")
    ((integration, event, seq, state, attempts, webhook_id),) = outbox_rows(conn, registered_tenant)
    assert (integration, event, seq, state, attempts) == (
        "rag", "discrepancy.resolved", resolved.seq, "pending", 0)
    assert webhook_id == f"msg_rag_{resolved.event_id.hex}"


def test_a_resolved_discrepancy_reaches_the_rag_feed_signed_and_the_delivery_is_in_its_history(
        app_url, conn, registered_tenant):
    secret = new_secret()
    with Receiver(secret) as receiver, \
            outbound(app_url, settings(receiver.url, secret)) as appender:
        d, resolved = resolve(appender, registered_tenant, "po-rag")
        receiver.wait_for(1, tenant=registered_tenant)
        wait_until(lambda: outcomes(conn, registered_tenant), what="the delivery entry")
    assert receiver.invalid == [] and receiver.duplicates_of(registered_tenant) == []
    (event,) = receiver.of(registered_tenant).values()
    assert event["type"] == "discrepancy.resolved"
    document = event["data"]
    assert document["id"] == d and document["tenant"] == registered_tenant
    assert document["proof"]["seq"] == resolved.seq
    assert document["proof"]["leaf_hash"] == b64(resolved.leaf_hash)
    assert document["resolution"]["code"] == "corrected_in_ledger"
    assert document["resolution"]["note"] == "Processor fee booked"
    assert document["fields"]["expected_amount"] == "9850.00"
    assert len(document["timeline"]) == 4
    assert "moved it from investigating to resolved" in document["timeline"][-1]
    (delivered,) = outcomes(conn, registered_tenant)
    assert delivered["type"] == "outbox.delivered" and delivered["stream"] == stream_of(d)
    assert delivered["data"]["status"] == 200 and delivered["data"]["attempt"] == 1
    assert delivered["data"]["webhook_id"] == next(iter(receiver.of(registered_tenant)))
    assert outbox_rows(conn, registered_tenant)[0][3] == "delivered"
    (row_id,) = conn.execute("SELECT id FROM outbox WHERE tenant_id = %s",
                             (registered_tenant,)).fetchone()
    assert orjson.loads(outbox.get(conn, row_id)[1]) == event  # the body sent, kept
    report = VerificationReport(registered_tenant, "")
    verify_models(app_url, registered_tenant, report)  # outcome entries fold, rows agree
    assert report.findings == []


def test_a_row_marked_delivered_by_hand_is_a_verification_finding(app_url, conn, owner_url,
                                                                   registered_tenant):
    from tests.integration.ledger_helpers import superuser

    config = settings("http://127.0.0.1:9/never", new_secret())
    with outbound(app_url, config, dispatchers=0) as appender:
        _, resolved = resolve(appender, registered_tenant, "po-silenced")
    with superuser(owner_url) as rogue:
        rogue.execute("UPDATE outbox SET state = 'delivered' WHERE tenant_id = %s",
                      (registered_tenant,))
    report = VerificationReport(registered_tenant, "")
    verify_models(app_url, registered_tenant, report)
    (finding,) = report.findings
    assert finding.check == "outbox" and finding.seq == resolved.seq
    assert "says delivered, but no outbox.delivered entry records it" in finding.detail
