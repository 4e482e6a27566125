"""A hostile reviewer's cases: a database login editing the escalation index, and input a
client sends to the rules and calendar, must not make the engine fire wrongly or fail."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.integration.test_escalation import RULES, Harness

pytestmark = pytest.mark.storage


@pytest.fixture
def h(app_url, registered_tenant):
    harness = Harness(app_url, registered_tenant)
    yield harness
    harness.conn.close()


def test_a_backdated_watch_row_does_not_make_a_rule_fire_early(h):
    """Someone with a database login backdates `escalation_watch.period_at`: the pass reads
    the index, but the firing is decided against the period the ledger records, so nothing
    fires before its time (and no entry records a made-up due time)."""
    h.set_rules()
    d = h.open("po-edit")
    start = h.opened_at(d)
    h.conn.execute("UPDATE escalation_watch SET period_at = period_at - interval '30 days', "
                   "next_check_at = now() - interval '30 days' WHERE tenant_id = %s "
                   "AND discrepancy_id = %s", (h.tenant, d))
    result = h.pass_at(start + timedelta(minutes=1))
    assert result.new == []
    assert [e["type"] for e in h.stream(d)] == ["discrepancy.opened"]
    # When the rule really falls due, it fires, with the due time the ledger supports.
    later = h.pass_at(start + timedelta(hours=5))
    assert [f.rule_id for f in later.new] == ["high-4h-notify"]
    from indelible.entry import format_time
    assert h.stream(d)[-1]["data"]["due_at"] == format_time(start + timedelta(hours=4))


def test_a_calendar_with_almost_no_working_time_does_not_stop_the_pass(h):
    """One minute of business time a week cannot reach a 2-business-day threshold within
    the thirty years the calendar walk looks: that rule is never due, and the tenant's other
    rules still fire (the pass, the view and a preview do not fail on it)."""
    from indelible.escalation.calendar import parse_calendar
    from indelible.usecases import escalation

    calendar = parse_calendar({"time_zone": "Europe/Vienna", "working_days": ["sun"],
                               "working_hours": {"start": "00:00", "end": "00:01"}})
    h.run(escalation.set_calendar(h.ledger, h.who("admin"), calendar, reason="odd",
                                  expected_version=0))
    h.set_rules({"rules": [
        {"id": "biz", "name": "Business 2d", "severity": "*", "after": "P2D",
         "business_hours": True, "action": {"type": "notify", "target": "ops",
                                            "message": "{id} waits"}},
        {"id": "wall", "name": "Wall 1h", "severity": "*", "after": "PT1H",
         "action": {"type": "notify", "target": "ops", "message": "{id} waits"}}]})
    d = h.open("po-cal")
    start = h.opened_at(d)
    result = h.pass_at(start + timedelta(hours=11))
    assert [f.rule_id for f in result.new] == ["wall"]
    view = h.run(h.read(lambda conn, t: escalation.escalation_view(
        conn, t, d, now=start + timedelta(hours=11))))
    assert [w["rule_id"] for w in view["watching"]] == ["wall"]


def test_renaming_or_reprioritising_a_rule_does_not_fire_it_again(h):
    """A rule's name or priority does not change what it obliges: the notification it
    already sent for this period is not sent a second time."""
    h.set_rules()
    d = h.open("po-rename")
    start = h.opened_at(d)
    assert [f.rule_id for f in h.pass_at(start + timedelta(hours=5)).new] == ["high-4h-notify"]
    import copy
    renamed = copy.deepcopy(RULES)
    renamed["rules"][0]["name"] = "High open 4h: tell compliance (reworded)"
    renamed["rules"][0]["priority"] = 5
    h.set_rules(renamed)
    assert h.pass_at(start + timedelta(hours=6)).new == []
    assert [e["type"] for e in h.stream(d)].count("escalation.fired") == 1


def test_verify_names_a_firing_recorded_before_its_rule_was_due(h, app_url):
    """A firing that cites the right rule and period, but was recorded an hour after the
    discrepancy opened for a 4-hour rule (an engine run with a doctored clock, or an edited
    index before the fix), is named by `indelible verify`."""
    from indelible.entry import NewEntry, format_time
    from indelible.store.escalation_firing import ENGINE
    from tests.integration.test_escalation import _verified

    h.set_rules()
    d = h.open("po-early")
    opened = h.stream(d)[0]
    start = h.opened_at(d)
    early = format_time(start + timedelta(minutes=1))
    forged = {"rule_id": "high-4h-notify", "rule_name": "x", "rules_version": 1,
              "rule_version": 0, "action": "notify", "period_start_seq": opened["seq"],
              "period_status": "open", "after": "PT4H", "business_hours": False,
              "due_at": early, "fired_at": early, "target": "compliance_manager", "message": "m"}
    appended = h.run(h.ledger.append(h.tenant, NewEntry(
        stream="disc/" + d, type="escalation.fired", actor=ENGINE, data=forged)))
    report = _verified(app_url, h.tenant)
    assert [(f.check, f.seq) for f in report.findings] == [("domain", appended.seq)]
    assert "due" in report.findings[0].detail


def test_one_tenant_whose_pass_fails_does_not_stop_the_engine_for_the_others(
        h, owner_url, app_url):
    """A tenant whose rules entry was edited in the database (its pass cannot read the
    rules) must not keep the engine from every tenant listed after it."""
    import time

    import psycopg

    from indelible.bootstrap import projections
    from indelible.escalation.engine import EscalationEngine
    from indelible.store.group_commit import GroupCommitAppender
    from indelible.store.tenants import create_tenant

    broken = Harness(app_url, "a-broken-" + h.tenant[2:])  # listed before h.tenant
    create_tenant(broken.conn, broken.tenant, base_origin="test.indelible.local/log")
    fast = {"rules": [{"id": "fast", "name": "Fast", "severity": "*", "after": "PT1S",
                       "action": {"type": "notify", "target": "ops", "message": "{id}"}}]}
    broken.set_rules(fast)
    broken.open("po-b")
    with psycopg.connect(owner_url, autocommit=True) as owner:
        owner.execute("SET session_replication_role = replica")  # as a superuser may
        owner.execute("UPDATE ledger_entries SET entry = convert_to(replace(convert_from("
                      "entry, 'UTF8'), '\"after\":\"PT1S\"', '\"after\":\"PT1Y\"'), 'UTF8') "
                      "WHERE tenant_id = %s AND stream_id = 'tenant/escalation-rules'",
                      (broken.tenant,))
    h.set_rules(fast)
    d = h.open("po-ok")
    appender = GroupCommitAppender(conninfo=app_url, model=projections())
    engine = EscalationEngine(conninfo=app_url, appender=appender, interval=0.2, poll=0.05)
    engine.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "escalation.fired" not in [
                e["type"] for e in h.stream(d)]:
            time.sleep(0.2)
    finally:
        engine.stop()
        appender.close()
        broken.conn.close()
        with psycopg.connect(owner_url, autocommit=True) as owner:  # others share the database
            owner.execute("SET session_replication_role = replica")
            owner.execute("UPDATE ledger_entries SET entry = convert_to(replace(convert_from("
                          "entry, 'UTF8'), '\"after\":\"PT1Y\"', '\"after\":\"PT1S\"'), "
                          "'UTF8') WHERE tenant_id = %s AND stream_id = "
                          "'tenant/escalation-rules'", (broken.tenant,))
    assert "escalation.fired" in [e["type"] for e in h.stream(d)]


def test_a_pause_asked_for_on_a_leap_day_is_checked_not_crashed(h):
    """"At most a year ahead" on 29 February has no same day next year: the check must
    still answer (it raised ValueError, a 500 over HTTP, once every four years)."""
    from datetime import datetime, timezone

    from indelible import domain
    from indelible.usecases import escalation

    d = h.open("po-leap")
    now = datetime(2028, 2, 29, 12, 0, tzinfo=timezone.utc)
    with pytest.raises(domain.InvalidCommandError):
        h.run(escalation.pause(h.ledger, h.who("compliance_manager"), d, reason="leap",
                               until=now + timedelta(days=400), now=now))
    paused = h.run(escalation.pause(h.ledger, h.who("compliance_manager"), d, reason="leap",
                                    until=now + timedelta(days=30), now=now))
    assert paused.seq > 0


def test_a_business_time_firing_computed_under_a_calendar_since_replaced_is_refused(h):
    """A pass computes a business-time due moment under calendar version 1, then a manager
    sets version 2 (under which it is not due) before the firing is appended: the firing is
    decided under the lock against the calendar in force, like the rules, and refused."""
    from indelible.escalation.calendar import parse_calendar
    from indelible.escalation.evaluate import evaluate
    from indelible.store import escalation as store
    from indelible.store.escalation_firing import firing_decisions
    from indelible.usecases import escalation

    every_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    always = parse_calendar({"time_zone": "UTC", "working_days": every_day,
                             "working_hours": {"start": "00:00", "end": "23:59"}})
    h.run(escalation.set_calendar(h.ledger, h.who("admin"), always, reason="24/7",
                                  expected_version=0))
    h.set_rules({"rules": [{"id": "biz", "name": "Business 1h", "severity": "*",
                            "after": "PT1H", "business_hours": True,
                            "action": {"type": "escalate"}}]})
    d = h.open("po-cal-race")
    now = h.opened_at(d) + timedelta(hours=3)
    period = store.period_of(h.conn, h.tenant, d)
    rules = store.current_rules(h.conn, h.tenant)
    calendar = store.current_calendar(h.conn, h.tenant)
    ev = evaluate(period, rules.rules, calendar.calendar, fired=set(), now=now)
    assert [x.rule.id for x in ev.due] == ["biz"]  # due under the 24/7 calendar
    holidays = [(now.date() + timedelta(days=i)).isoformat() for i in range(-2, 3)]
    h.run(escalation.set_calendar(h.ledger, h.who("admin"), parse_calendar(
        {"time_zone": "UTC", "working_days": every_day, "holidays": holidays}),
        reason="closed this week", expected_version=1))
    commands = [c for _, group in firing_decisions(period, ev.due, rules.version, fired_at=now,
                                                   calendar_version=calendar.version)
                for c in group]
    outcomes = h.run(h.ledger.append_all(h.tenant, commands))
    assert all(isinstance(o, Exception) for o in outcomes), outcomes
    assert [e["type"] for e in h.stream(d)] == ["discrepancy.opened"]


def test_an_idempotency_key_written_into_another_entrys_column_does_not_suppress_a_firing(
        h, owner_url):
    """A database login copies a firing's key into the `idempotency_key` column of another
    entry of the discrepancy: the appender must not take that row as the firing already
    recorded (the entry's own hashed meta does not name the key) and silently skip it."""
    import psycopg

    from indelible.escalation.evaluate import firing_key
    from indelible.store.errors import AppendRefusedError

    from indelible.store import escalation as store

    h.set_rules()
    d = h.open("po-key")
    start = h.opened_at(d)
    store_period = store.period_of(h.conn, h.tenant, d)
    rules = store.current_rules(h.conn, h.tenant).rules
    key = firing_key(d, "high-4h-notify", rules.rule_version("high-4h-notify"),
                     store_period.period_seq)
    with psycopg.connect(owner_url, autocommit=True) as owner:
        owner.execute("SET session_replication_role = replica")
        owner.execute("UPDATE ledger_entries SET idempotency_key = %s WHERE tenant_id = %s "
                      "AND stream_id = %s AND type = 'discrepancy.opened'",
                      (key, h.tenant, "disc/" + d))
    with pytest.raises(AppendRefusedError, match="idempotency"):
        h.pass_at(start + timedelta(hours=5))


def _watch_findings(app_url, tenant) -> list[str]:
    from indelible.verifier.models import verify_models
    from indelible.verifier.report import VerificationReport

    report = VerificationReport(tenant, "-")
    verify_models(app_url, tenant, report)
    return [f.detail for f in report.findings
            if f.check == "read_model" and "escalation_watch" in f.detail]


def test_a_watch_row_held_back_or_deleted_by_a_superuser_is_named_by_verify(h, app_url, owner_url):
    """The engine finds due work only through `escalation_watch`: a superuser who NULLs a
    row's bound, pushes it a year ahead or deletes the row would hold that discrepancy's
    firings back for ever. `indelible verify` recomputes each row from the ledger and names
    every one; a bound moved earlier (harmless: the pass looks and finds nothing) is not."""
    from .ledger_helpers import superuser

    h.set_rules()
    nulled, later, deleted, earlier, kept = (h.open(f"po-watch-{i}") for i in range(5))
    start = h.opened_at(kept)
    # A pass that fires the 4h notification moves bounds up to the 24h escalation: the
    # untouched log, with firings recorded, gives no finding.
    assert len(h.pass_at(start + timedelta(hours=5)).new) == 5
    assert _watch_findings(app_url, h.tenant) == []
    rogue = superuser(owner_url)
    try:
        where = "WHERE tenant_id = %s AND discrepancy_id = %s"
        rogue.execute(f"UPDATE escalation_watch SET next_check_at = NULL {where}",
                      (h.tenant, nulled))
        rogue.execute(f"UPDATE escalation_watch SET next_check_at = next_check_at + "
                      f"interval '1 year' {where}", (h.tenant, later))
        rogue.execute(f"DELETE FROM escalation_watch {where}", (h.tenant, deleted))
        rogue.execute(f"UPDATE escalation_watch SET next_check_at = next_check_at - "
                      f"interval '1 day' {where}", (h.tenant, earlier))
    finally:
        rogue.close()
    findings = _watch_findings(app_url, h.tenant)
    assert len(findings) == 3, findings
    named = {d: [f for f in findings if d in f] for d in (nulled, later, deleted, earlier, kept)}
    assert "next_check_at is NULL" in named[nulled][0]
    assert "next_check_at is" in named[later][0] and "too late" in named[later][0]
    assert "is missing" in named[deleted][0]
    assert named[earlier] == [] and named[kept] == []
