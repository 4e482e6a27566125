"""Outbound, pure parts: Standard Webhooks signatures (checked by the reference library),
the retry verdicts, which entries owe which events, and what is rendered."""

from __future__ import annotations

import random
import time
import uuid
from datetime import datetime, timezone

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from indelible.config import ConfigError, OutboundSettings
from indelible.outbound import events, render, retry, webhooks

BODY = b'{"data":{"x":1},"timestamp":"2026-11-30T00:00:00.000000Z","type":"t"}'


def test_a_signature_verifies_with_the_reference_library():
    secret = webhooks.new_secret()
    headers = webhooks.headers([secret], "msg_1", int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, headers) == {"data": {"x": 1}, "timestamp":
                                                     "2026-11-30T00:00:00.000000Z", "type": "t"}


def test_a_changed_body_or_id_fails_the_reference_check():
    secret = webhooks.new_secret()
    headers = webhooks.headers([secret], "msg_1", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"1", b"2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "msg_2"})
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(BODY, headers)


def test_during_a_rotation_both_secrets_sign_and_either_receiver_verifies():
    old, new = webhooks.new_secret(), webhooks.new_secret()
    headers = webhooks.headers([new, old], "msg_1", int(time.time()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(BODY, headers)
    Webhook(new).verify(BODY, headers)


@pytest.mark.parametrize("text, message", [
    ("abc", "must start with 'whsec_'"),
    ("whsec_!!!", "must be base64"),
    ("whsec_AAAA", "at least 24 bytes"),
])
def test_a_bad_secret_is_refused_with_the_reason(text, message):
    with pytest.raises(webhooks.SecretError, match=message):
        webhooks.secret_bytes(text)


def test_no_secret_means_no_request():
    with pytest.raises(webhooks.SecretError, match="never sent unsigned"):
        webhooks.headers([], "msg_1", 0, BODY)


SCHEDULE = (0, 5, 300, 1800)


@pytest.mark.parametrize("status, verdict", [
    (200, retry.Verdict.DELIVERED), (204, retry.Verdict.DELIVERED),
    (410, retry.Verdict.DISABLE), (400, retry.Verdict.PARK), (401, retry.Verdict.PARK),
    (404, retry.Verdict.PARK), (408, retry.Verdict.RETRY), (429, retry.Verdict.RETRY),
    (500, retry.Verdict.RETRY), (503, retry.Verdict.RETRY), (302, retry.Verdict.RETRY),
])
def test_each_answer_has_its_verdict(status, verdict):
    assert retry.judge(status, None, attempt=1, schedule=SCHEDULE).verdict is verdict


def test_no_answer_is_retried_by_the_schedule_with_jitter():
    judged = retry.judge(None, "ConnectError", attempt=2, schedule=SCHEDULE,
                         rng=random.Random(1))
    assert judged.verdict is retry.Verdict.RETRY and 240 <= judged.delay <= 360
    assert "no answer: ConnectError" in judged.reason


def test_after_the_last_attempt_the_event_is_parked():
    judged = retry.judge(500, None, attempt=4, schedule=SCHEDULE)
    assert judged.verdict is retry.Verdict.PARK and "last of 4 attempts" in judged.reason


def test_retry_after_wins_over_a_shorter_delay_and_not_over_a_longer_one():
    asked = retry.judge(429, None, attempt=1, schedule=SCHEDULE, retry_after="120")
    assert asked.delay == 120 and "Retry-After" in asked.reason
    longer = retry.judge(503, None, attempt=2, schedule=SCHEDULE, retry_after="1",
                         rng=random.Random(1))
    assert longer.delay >= 240


def test_retry_after_is_read_as_seconds_or_an_http_date_and_capped():
    now = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
    assert retry.parse_retry_after("Mon, 30 Nov 2026 12:01:00 GMT", now) == 60
    assert retry.parse_retry_after("999999999") == retry.MAX_RETRY_AFTER
    assert retry.parse_retry_after("soon") is None and retry.parse_retry_after(None) is None


def test_a_retry_after_of_non_ascii_digits_is_unreadable_not_a_crash():
    # http headers are latin-1: a receiver can send "\xb2" ("²"), which str.isdigit accepts
    # and float refuses; the attempt must still be judged (and recorded), not raise.
    for value in ("\u00b2", "\u0661\u0662", "\u00b9\u00b2"):
        assert retry.parse_retry_after(value) is None
    judged = retry.judge(429, None, attempt=1, schedule=SCHEDULE, retry_after="\u00b2")
    assert judged.verdict is retry.Verdict.RETRY


def test_retry_after_on_a_500_is_not_honoured():
    judged = retry.judge(500, None, attempt=1, schedule=SCHEDULE, retry_after="600",
                         rng=random.Random(1))
    assert judged.delay < 10


# Entries shaped like the escalation contract (issue 11): escalation.fired on the
# discrepancy's stream with rule_id, rule_name, rules_version, action, period_start_seq,
# due_at, fired_at, and target/message (notify) or severity (escalate).
NOTIFY = {"rule_id": "r-1", "rule_name": "Critical after 4h", "rules_version": 3,
          "action": "notify", "period_start_seq": 10, "due_at": "2026-11-30T04:00:00.000000Z",
          "fired_at": "2026-11-30T04:00:01.000000Z", "target": "team:payments",
          "message": "po-1042 has been open for 4 hours"}
ESCALATE = {**{k: v for k, v in NOTIFY.items() if k not in ("target", "message")},
            "action": "escalate", "severity": "critical"}


@pytest.mark.parametrize("entry_type, data, owed", [
    ("escalation.fired", NOTIFY, [("hub", "escalation.notify")]),
    ("escalation.fired", ESCALATE, [("hub", "escalation.escalated")]),
    ("escalation.fired", {**NOTIFY, "action": "auto_close"}, []),
    ("discrepancy.transitioned", {"from": "investigating", "to": "resolved"},
     [("rag", "discrepancy.resolved")]),
    ("discrepancy.transitioned", {"from": "open", "to": "auto_closed"},
     [("rag", "discrepancy.auto_closed")]),
    ("discrepancy.transitioned", {"from": "open", "to": "acknowledged"}, []),
    ("verification.failed", {"message": "seq 12 was changed"}, [("hub", "verification.failed")]),
    ("discrepancy.commented", {"text": "x"}, []),
    ("outbox.delivered", {}, []),
])
def test_which_entries_owe_which_events(entry_type, data, owed):
    assert events.events_for(entry_type, data) == owed


def test_the_webhook_id_is_one_per_integration_and_causing_entry():
    entry = uuid.uuid4()
    assert events.webhook_id("hub", entry) == events.webhook_id("hub", entry)
    assert events.webhook_id("hub", entry) != events.webhook_id("rag", entry)


CASE = {"id": "0193", "external_ref": "po-1042", "source": "stripe", "kind": "amount_mismatch",
        "expected_amount": "9850.00", "actual_amount": "10000.00", "currency": "EUR",
        "difference": "150.00", "severity": "high", "status": "escalated", "assignee": None,
        "resolution_code": None, "resolution_note": None}
SOURCE = {"seq": 14, "leaf_hash": "AAAA", "at": "2026-11-30T04:00:01.000000Z",
          "type": "escalation.fired", "stream": "disc/0193", "log": "x/acme"}


def test_delivery_outcomes_in_the_timeline_name_the_integration_in_words():
    items = [{"seq": 5, "at": "t", "type": "outbox.delivered", "actor": "outbox:hub",
              "role": "system", "data": {"integration": "hub", "event": "escalation.notify",
                                         "status": 200}}]
    assert render.timeline(items) == [
        "seq 5, t: event escalation.notify was delivered to the Notification Hub (HTTP 200)"]


def test_a_notify_firing_renders_a_hub_event_with_rule_target_message_and_link():
    body = render.hub_event("escalation.notify", "acme", CASE, NOTIFY, SOURCE,
                            public_url="https://ledger.example")
    assert body["type"] == "escalation.notify" and body["timestamp"] == SOURCE["at"]
    data = body["data"]
    assert data["rule"] == {"id": "r-1", "name": "Critical after 4h", "rules_version": 3,
                            "period_start_seq": 10}
    assert (data["target"], data["message"]) == ("team:payments", NOTIFY["message"])
    assert data["severity"] == "high" and data["tenant"] == "acme"
    assert data["discrepancy"]["link"] == "https://ledger.example/v1/discrepancies/0193"
    assert data["discrepancy"]["summary"] == ("amount mismatch on stripe po-1042: expected "
                                              "9850.00 EUR, actual 10000.00 (difference 150.00)")


def test_an_escalation_renders_the_new_severity():
    body = render.hub_event("escalation.escalated", "acme", CASE, ESCALATE, SOURCE,
                            public_url="http://x")
    assert body["data"]["severity"] == "critical" and body["data"]["action"] == "escalate"


def test_a_failed_verification_is_a_critical_hub_event():
    body = render.hub_event("verification.failed", "acme", None, {"first_bad_seq": 12},
                            SOURCE, public_url="http://x")
    assert body["data"]["severity"] == "critical" and "discrepancy" not in body["data"]


def test_the_timeline_is_written_in_words():
    items = [{"seq": 3, "at": "t1", "type": "escalation.fired", "actor": "engine:escalation",
              "role": "system", "data": NOTIFY},
             {"seq": 4, "at": "t2", "type": "discrepancy.transitioned", "actor": "key:ana",
              "role": "analyst", "data": {"from": "investigating", "to": "resolved",
                                          "reason": None, "resolution_code": "written_off",
                                          "note": "fee"}}]
    assert render.timeline(items) == [
        "seq 3, t1: escalation rule 'Critical after 4h' (rules version 3) fired: notify to "
        "team:payments",
        "seq 4, t2: key:ana (analyst) moved it from investigating to resolved with resolution "
        "written_off: fee"]


def test_both_integrations_are_off_unless_enabled():
    assert OutboundSettings.from_env({}).enabled == ()


def test_an_enabled_integration_needs_a_url_and_a_secret():
    with pytest.raises(ConfigError, match="_URL must be an http"):
        OutboundSettings.from_env({"INDELIBLE_NOTIFICATION_HUB_ENABLED": "true"})
    with pytest.raises(ConfigError, match="_SECRET must hold a signing secret"):
        OutboundSettings.from_env({"INDELIBLE_RAG_FEED_ENABLED": "1",
                                   "INDELIBLE_RAG_FEED_URL": "http://127.0.0.1:1/"})
    with pytest.raises(ConfigError, match="whsec_"):
        OutboundSettings.from_env({"INDELIBLE_RAG_FEED_ENABLED": "1",
                                   "INDELIBLE_RAG_FEED_URL": "http://127.0.0.1:1/",
                                   "INDELIBLE_RAG_FEED_SECRET": "hunter2"})


def test_rotation_secrets_and_a_retry_schedule_are_read_from_the_environment():
    old, new = webhooks.new_secret(), webhooks.new_secret()
    config = OutboundSettings.from_env({
        "INDELIBLE_NOTIFICATION_HUB_ENABLED": "true",
        "INDELIBLE_NOTIFICATION_HUB_URL": "http://127.0.0.1:9/hub",
        "INDELIBLE_NOTIFICATION_HUB_SECRET": f"{new} {old}",
        "INDELIBLE_OUTBOX_RETRY_SCHEDULE": "0, 1, 2"})
    assert config.hub.secrets == (new, old) and config.schedule == (0, 1, 2)
    with pytest.raises(ConfigError, match="none negative"):
        OutboundSettings.from_env({"INDELIBLE_OUTBOX_RETRY_SCHEDULE": "0 -1"})
