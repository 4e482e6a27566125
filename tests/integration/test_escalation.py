"""The escalation engine against real PostgreSQL: exactly once, in order, late after an
outage, never from a status a person already left, held by a pause; `verify` agrees."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import orjson
import psycopg
import pytest

from indelible import domain
from indelible.bootstrap import projections
from indelible.escalation.rules import parse_rules
from indelible.store import discrepancies as discs
from indelible.store import escalation as store
from indelible.usecases import escalation
from indelible.usecases.principal import DirectLedger, Principal
from indelible.verifier.models import verify_models
from indelible.verifier.report import VerificationReport

pytestmark = pytest.mark.storage

ANALYST = Principal("?", "key:ana", "analyst")
RULES = {"rules": [
    {"id": "high-4h-notify", "name": "High open 4h: tell compliance", "severity": "high",
     "statuses": ["open", "acknowledged"], "after": "PT4H", "priority": 10,
     "action": {"type": "notify", "target": "compliance_manager",
                "message": "{external_ref} ({currency} {difference}) open for 4h"}},
    {"id": "high-24h-escalate", "name": "High open 24h: escalate", "severity": "high",
     "after": "P1D", "priority": 20, "action": {"type": "escalate", "severity": "critical"}},
]}


class Harness:
    def __init__(self, conninfo: str, tenant: str):
        self.conninfo, self.tenant = conninfo, tenant
        self.conn = psycopg.connect(conninfo, autocommit=True)
        self.ledger = DirectLedger(self.conn, projections())

    def who(self, role: str, actor: str = "key:x") -> Principal:
        return Principal(self.tenant, actor, role)

    def read(self, fn, *args):
        async def run():
            with psycopg.connect(self.conninfo, autocommit=True) as conn, conn.transaction():
                conn.execute("SELECT set_config('indelible.tenant', %s, true)", (self.tenant,))
                return fn(conn, self.tenant, *args)
        return run()

    def run(self, coroutine):
        return asyncio.run(coroutine)

    def open(self, ref: str, severity: str = "high") -> str:
        command = domain.OpenDiscrepancy(external_ref=ref, source="stripe", kind="amount_mismatch",
                                         expected_amount="9850.00", actual_amount="10000.00",
                                         currency="EUR", detected_at="2026-11-23T05:00:00Z",
                                         severity=severity)
        decision = discs.decision(discs.new_id(), command, self.who("analyst").domain_actor(),
                                  discs.open_key("stripe", ref))
        return self.run(self.ledger.append(self.tenant, decision)).stream.removeprefix("disc/")

    def move(self, d: str, to: str, role: str = "analyst"):
        decision = discs.decision(d, domain.Transition(to=to), self.who(role).domain_actor())
        return self.run(self.ledger.append(self.tenant, decision))

    def set_rules(self, document: dict = RULES):
        current = store.current_rules(self.conn, self.tenant)
        return self.run(escalation.set_rules(
            self.ledger, self.who("admin"), lambda fn: self.read(fn),
            parse_rules(document), reason="demo", expected_version=current.version))

    def pass_at(self, now: datetime):
        return self.run(escalation.run_pass(self.ledger, self.read, self.tenant, now=now))

    def opened_at(self, d: str) -> datetime:
        return store.period_of(self.conn, self.tenant, d).period_at

    def stream(self, d: str) -> list[dict]:
        rows = self.conn.execute("SELECT entry FROM ledger_entries WHERE tenant_id = %s AND "
                                 "stream_id = %s ORDER BY seq", (self.tenant, "disc/" + d))
        return [orjson.loads(bytes(e)) for (e,) in rows]


@pytest.fixture
def h(app_url, registered_tenant):
    harness = Harness(app_url, registered_tenant)
    yield harness
    harness.conn.close()


def _types(entries):
    return [e["type"] for e in entries]


def _verified(app_url, tenant):
    report = VerificationReport(tenant=tenant, origin="-")
    verify_models(app_url, tenant, report)
    return report


def test_a_new_tenant_has_the_default_rules(h):
    record = store.current_rules(h.conn, h.tenant)
    assert record.version == 0 and record.seq is None
    assert [r.id for r in record.rules.rules] == ["high-4h-notify", "high-24h-escalate"]


def test_both_steps_fire_once_in_order_and_a_rerun_adds_nothing(h, app_url):
    h.set_rules()
    d = h.open("po-1")
    start = h.opened_at(d)
    assert h.pass_at(start + timedelta(hours=3)).new == []
    first = h.pass_at(start + timedelta(hours=5))
    assert [(f.rule_id, f.replayed) for f in first.new] == [("high-4h-notify", False)]
    second = h.pass_at(start + timedelta(hours=25))
    assert [f.rule_id for f in second.new] == ["high-24h-escalate"]
    assert h.pass_at(start + timedelta(hours=30)).new == []  # escalated: a new period
    entries = h.stream(d)
    assert _types(entries) == ["discrepancy.opened", "escalation.fired", "escalation.fired",
                               "discrepancy.severity_changed", "discrepancy.transitioned"]
    notify, escalate = entries[1]["data"], entries[2]["data"]
    assert notify["message"] == "po-1 (EUR 150.00) open for 4h"
    assert notify["target"] == "compliance_manager" and notify["rules_version"] == 1
    assert notify["period_start_seq"] == escalate["period_start_seq"] == entries[0]["seq"]
    assert escalate["action"] == "escalate" and escalate["severity"] == "critical"
    assert entries[4]["data"]["from"] == "open" and entries[4]["data"]["to"] == "escalated"
    assert entries[4]["actor"]["role"] == "system"
    report = _verified(app_url, h.tenant)
    assert report.ok, report.findings


def test_after_a_two_day_outage_each_step_fires_once_in_order_and_late(h):
    h.set_rules()
    d = h.open("po-2")
    late = h.opened_at(d) + timedelta(days=2)
    result = h.pass_at(late)
    assert [f.rule_id for f in result.new] == ["high-4h-notify", "high-24h-escalate"]
    fired = [e["data"] for e in h.stream(d) if e["type"] == "escalation.fired"]
    assert [f["rule_id"] for f in fired] == ["high-4h-notify", "high-24h-escalate"]
    for f in fired:
        assert f["due_at"] < f["fired_at"]
    assert h.pass_at(late).new == []  # a second engine at the same moment: nothing new


def test_a_status_change_starts_a_new_period(h):
    h.set_rules()
    d = h.open("po-3")
    h.move(d, "acknowledged")
    period = store.period_of(h.conn, h.tenant, d)
    ack = h.stream(d)[-1]
    assert period.status == "acknowledged" and period.period_seq == ack["seq"]
    result = h.pass_at(period.period_at + timedelta(hours=5))
    assert [f.rule_id for f in result.new] == ["high-4h-notify"]
    fired = h.stream(d)[-1]["data"]
    assert fired["period_start_seq"] == ack["seq"] and fired["period_status"] == "acknowledged"
    h.move(d, "investigating")  # watched by neither rule: nothing more fires
    assert h.pass_at(period.period_at + timedelta(days=3)).new == []


def test_a_stale_firing_is_refused_under_the_lock(h):
    """The pass looked before the person's move committed: its decision is refused."""
    from indelible.escalation.evaluate import evaluate
    from indelible.store.escalation_firing import NotDueError, firing_decisions

    h.set_rules()
    d = h.open("po-4")
    period = store.period_of(h.conn, h.tenant, d)
    rules = store.current_rules(h.conn, h.tenant)
    ev = evaluate(period, rules.rules, store.current_calendar(h.conn, h.tenant).calendar,
                  fired=set(), now=period.period_at + timedelta(days=2))
    h.move(d, "investigating")
    commands = [c for _, group in firing_decisions(period, ev.due, rules.version,
                                                   fired_at=period.period_at) for c in group]
    outcomes = h.run(h.ledger.append_all(h.tenant, commands))
    assert all(isinstance(o, NotDueError) for o in outcomes), outcomes
    assert "a new period" in str(outcomes[0])
    assert _types(h.stream(d))[-1] == "discrepancy.transitioned"


def test_a_paused_discrepancy_fires_when_the_pause_ends(h):
    h.set_rules()
    d = h.open("po-5")
    start = h.opened_at(d)
    manager = h.who("compliance_manager", "key:cm")
    until = start + timedelta(hours=10)
    h.run(escalation.pause(h.ledger, manager, d, reason="waiting for the bank", until=until,
                           now=start + timedelta(minutes=1)))
    assert h.pass_at(start + timedelta(hours=5)).new == []
    result = h.pass_at(start + timedelta(hours=11))
    assert [f.rule_id for f in result.new] == ["high-4h-notify"]
    view = escalation.escalation_view(h.conn, h.tenant, d, now=start + timedelta(hours=11))
    assert [w["state"] for w in view["watching"]] == ["fired", "pending"]
    assert [x["type"] for x in view["history"]] == ["escalation.paused", "escalation.fired"]
    with pytest.raises(Exception, match="not paused"):
        h.run(escalation.resume(h.ledger, manager, d, reason="x", now=start + timedelta(hours=11)))


def test_a_rule_change_does_not_fire_unchanged_rules_again(h):
    h.set_rules()
    d = h.open("po-6")
    start = h.opened_at(d)
    assert len(h.pass_at(start + timedelta(hours=5)).new) == 1
    changed = {"rules": [RULES["rules"][0], {**RULES["rules"][1], "after": "P2D"}]}
    record = h.set_rules(changed)
    assert record.rules.rule_version("high-4h-notify") == 0  # unchanged since the default
    assert record.rules.rule_version("high-24h-escalate") == 2
    assert h.pass_at(start + timedelta(hours=30)).new == []
    assert [f.rule_id for f in h.pass_at(start + timedelta(days=3)).new] == ["high-24h-escalate"]


def test_rules_as_of_a_seq_show_the_set_then(h):
    before = h.set_rules()
    h.set_rules({"rules": []})
    assert store.current_rules(h.conn, h.tenant).rules.rules == ()
    then = store.current_rules(h.conn, h.tenant, seq=before.seq)
    assert [r.id for r in then.rules.rules] == ["high-4h-notify", "high-24h-escalate"]


def test_a_pass_with_nothing_due_reads_no_discrepancy(h):
    h.set_rules()
    for i in range(5):
        h.open(f"po-n{i}")
    result = h.pass_at(datetime.now(timezone.utc))
    assert result.looked_at == 0 and result.new == []


def test_a_business_time_rule_fires_at_its_business_due_time(h, app_url):
    from indelible.escalation.calendar import parse_calendar

    calendar = {"time_zone": "Europe/Vienna", "working_days": ["mon", "tue", "wed", "thu", "fri"],
                "working_hours": {"start": "09:00", "end": "10:00"}, "holidays": []}
    h.run(escalation.set_calendar(h.ledger, h.who("admin"), parse_calendar(calendar),
                                  reason="office hours", expected_version=0))
    h.set_rules({"rules": [{"id": "bh", "name": "business", "severity": "*", "after": "PT90M",
                            "business_hours": True, "action": {"type": "notify",
                            "target": "compliance_manager", "message": "{external_ref}"}}]})
    d = h.open("po-bh")
    start = h.opened_at(d)
    due = parse_calendar(calendar).add_business_seconds(start, 90 * 60)
    assert due - start >= timedelta(hours=23)  # two office hours a day: at least a day later
    # The index bound is the wall-clock lower bound; the first look moves it to the exact time.
    assert h.pass_at(start + timedelta(minutes=91)).new == []
    assert store.next_bound(h.conn, h.tenant) == due
    assert h.pass_at(due - timedelta(seconds=1)).new == []
    result = h.pass_at(due + timedelta(seconds=1))
    assert [f.rule_id for f in result.new] == ["bh"]
    fired = h.stream(d)[-1]["data"]
    assert fired["business_hours"] is True and fired["due_at"] == escalation.format_time(due)
    report = _verified(app_url, h.tenant)
    assert report.ok, report.findings


def test_verify_names_a_firing_that_no_rule_or_period_supports(h, app_url):
    from indelible.entry import NewEntry
    from indelible.store.escalation_firing import ENGINE

    h.set_rules()
    d = h.open("po-forged")
    forged = {"rule_id": "high-4h-notify", "rule_name": "x", "rules_version": 1,
              "rule_version": 0, "action": "notify", "period_start_seq": 0,
              "period_status": "open", "after": "PT4H", "business_hours": False,
              "due_at": "2026-01-01T00:00:00.000000Z", "fired_at": "2026-01-01T00:00:00.000000Z",
              "target": "compliance_manager", "message": "m"}
    appended = h.run(h.ledger.append(h.tenant, NewEntry(
        stream="disc/" + d, type="escalation.fired", actor=ENGINE, data=forged)))
    report = _verified(app_url, h.tenant)
    assert [(f.check, f.seq) for f in report.findings] == [("domain", appended.seq)]
    assert "period" in report.findings[0].detail


def test_a_preview_says_what_a_proposed_set_would_fire_and_writes_nothing(h):
    h.set_rules()
    d = h.open("po-preview")
    start = h.opened_at(d)
    assert len(h.pass_at(start + timedelta(hours=5)).new) == 1  # the 4h notify
    size = h.conn.execute("SELECT size FROM log_heads WHERE tenant_id = %s",
                          (h.tenant,)).fetchone()[0]
    proposed = parse_rules({"rules": [RULES["rules"][0], {**RULES["rules"][1], "after": "PT3H"}]})
    answer = escalation.preview(h.conn, h.tenant, proposed, now=start + timedelta(hours=5))
    assert answer["counts"] == {"due_now": 1, "due_later": 0, "already_fired": 1,
                                "held_by_pause": 0}
    (item,) = answer["firings"]
    assert (item["discrepancy_id"], item["rule_id"], item["when"]) == (d, "high-24h-escalate",
                                                                      "due_now")
    assert "after PT3H of wall-clock time" in item["why"]
    assert h.conn.execute("SELECT size FROM log_heads WHERE tenant_id = %s",
                          (h.tenant,)).fetchone()[0] == size
