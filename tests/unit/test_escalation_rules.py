"""Escalation rules, durations, business calendars and evaluation: pure, no database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from indelible.domain import InvalidCommandError
from indelible.escalation.calendar import DEFAULT_CALENDAR, parse_calendar
from indelible.escalation.durations import DurationError, format_duration, parse_duration
from indelible.escalation.evaluate import Period, evaluate, firing_key
from indelible.escalation.rules import DEFAULT_RULES, parse_rules, render

VIENNA = ZoneInfo("Europe/Vienna")
ISSUE_EXAMPLE = {"rules": [
    {"id": "high-4h-notify", "name": "High open 4h: tell compliance", "severity": "high",
     "statuses": ["open", "acknowledged"], "after": "PT4H", "priority": 10,
     "action": {"type": "notify", "target": "compliance_manager",
                "message": "{external_ref} ({currency} {difference}) open for 4h"}},
    {"id": "high-24h-escalate", "name": "High open 24h: escalate", "severity": "high",
     "after": "P1D", "priority": 20, "action": {"type": "escalate", "severity": "critical"}},
    {"id": "low-30d-close", "name": "Stale low: close", "severity": "low", "after": "P30D",
     "action": {"type": "auto_close", "reason": "below materiality, stale"}, "enabled": False},
]}


# -- durations ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [("PT4H", 14_400), ("P1D", 86_400), ("PT2S", 2),
                                           ("P1DT12H", 129_600), ("P2W", 1_209_600),
                                           ("PT1H30M5S", 5_405)])
def test_iso_durations_down_to_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text, why", [("P1M", "years and months"), ("P1Y", "years and months"),
                                       ("PT0S", "zero"), ("P", "not an ISO 8601"),
                                       ("PT", "not an ISO 8601"), ("4h", "not an ISO 8601"),
                                       ("PT1.5S", "not an ISO 8601"), (14400, "string")])
def test_bad_durations_say_why(text, why):
    with pytest.raises(DurationError, match=why):
        parse_duration(text)


@pytest.mark.parametrize("seconds", [1, 59, 3600, 86_400, 129_605])
def test_a_duration_round_trips(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


# -- rules ------------------------------------------------------------------------------------

def test_the_issue_example_is_accepted_and_round_trips():
    rules = parse_rules(ISSUE_EXAMPLE)
    assert [r.id for r in rules.rules] == ["high-4h-notify", "high-24h-escalate", "low-30d-close"]
    assert rules.rules[1].statuses == ("open", "acknowledged")  # the default
    assert rules.rules[2].enabled is False and rules.rules[1].priority == 20
    assert parse_rules(rules.to_dict()) == rules


@pytest.mark.parametrize("change, field, why", [
    ({"after": "PT4X"}, "rules[r].after", "not an ISO 8601"),
    ({"severity": "urgent"}, "rules[r].severity", "low, medium, high, critical"),
    ({"statuses": ["resolved"]}, "rules[r].statuses", "linger"),
    ({"priority": -1}, "rules[r].priority", "integer"),
    ({"enabled": "yes"}, "rules[r].enabled", "true or false"),
    ({"colour": "red"}, "rules[r].colour", "unknown field"),
    ({"action": {"type": "shout"}}, "rules[r].action.type", "notify, escalate or auto_close"),
    ({"action": {"type": "notify", "target": "Bad Target", "message": "x"}},
     "rules[r].action.target", "role"),
    ({"action": {"type": "notify", "target": "compliance_manager", "message": "{secret}"}},
     "rules[r].action.message", "not a field"),
    ({"action": {"type": "escalate", "severity": "huge"}}, "rules[r].action.severity", "must be"),
    ({"action": {"type": "auto_close"}}, "rules[r].action.reason", "required"),
    ({"statuses": ["escalated"], "action": {"type": "escalate"}}, "rules[r].statuses",
     "cannot act"),
])
def test_an_invalid_rule_is_refused_naming_the_rule_the_field_and_the_reason(change, field, why):
    rule = {"id": "r", "name": "n", "severity": "high", "after": "PT1H",
            "action": {"type": "escalate"}, **change}
    with pytest.raises(InvalidCommandError, match=why) as refused:
        parse_rules({"rules": [rule]})
    assert refused.value.field == field


def test_rule_ids_are_unique():
    rule = {"id": "r", "name": "n", "severity": "*", "after": "PT1H", "action": {"type": "escalate"}}
    with pytest.raises(InvalidCommandError, match="unique"):
        parse_rules({"rules": [rule, rule]})


def test_messages_render_the_discrepancy_fields():
    assert render("{external_ref}: {currency} {difference} ({assignee})",
                  {"external_ref": "po-1", "currency": "EUR", "difference": "150.00"}) == \
        "po-1: EUR 150.00 (-)"


def test_an_unchanged_rule_keeps_its_version_and_a_changed_one_gets_the_new_one():
    v1 = parse_rules(ISSUE_EXAMPLE).versioned(1, DEFAULT_RULES)
    assert v1.rule_version("high-4h-notify") == 0  # as in the default set
    assert v1.rule_version("low-30d-close") == 1
    changed = ISSUE_EXAMPLE["rules"][:2] + [{**ISSUE_EXAMPLE["rules"][2], "enabled": True}]
    v2 = parse_rules({"rules": changed}).versioned(2, v1)
    assert (v2.rule_version("high-4h-notify"), v2.rule_version("low-30d-close")) == (0, 2)


# -- business calendar ------------------------------------------------------------------------

def test_four_business_hours_from_friday_16_in_vienna_are_due_monday_11():
    calendar = parse_calendar({"time_zone": "Europe/Vienna"})
    start = datetime(2026, 11, 27, 16, 0, tzinfo=VIENNA)  # a Friday
    assert calendar.add_business_seconds(start, 4 * 3600) == datetime(2026, 11, 30, 11, 0,
                                                                       tzinfo=VIENNA)


@pytest.mark.parametrize("friday", [datetime(2026, 3, 27, 16, 0), datetime(2026, 10, 23, 16, 0)])
def test_a_daylight_saving_change_over_the_weekend_keeps_local_hours(friday):
    calendar = parse_calendar({"time_zone": "Europe/Vienna"})
    due = calendar.add_business_seconds(friday.replace(tzinfo=VIENNA), 4 * 3600)
    assert due.astimezone(VIENNA).replace(tzinfo=None) == friday + timedelta(days=3, hours=-5)
    assert calendar.business_seconds_between(friday.replace(tzinfo=VIENNA), due) == 4 * 3600


def test_holidays_and_days_off_are_skipped():
    calendar = parse_calendar({"time_zone": "UTC", "working_days": ["mon", "tue"],
                               "working_hours": {"start": "09:00", "end": "10:00"},
                               "holidays": ["2026-12-01"]})
    start = datetime(2026, 11, 30, 9, 30, tzinfo=timezone.utc)  # Monday
    assert calendar.add_business_seconds(start, 3600) == datetime(2026, 12, 7, 9, 30,
                                                                  tzinfo=timezone.utc)


@pytest.mark.parametrize("document, field", [
    ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ({"time_zone": "UTC", "working_days": ["funday"]}, "working_days"),
    ({"time_zone": "UTC", "working_hours": {"start": "17:00", "end": "09:00"}}, "working_hours.end"),
    ({"time_zone": "UTC", "working_hours": {"start": "9", "end": "17:00"}}, "working_hours.start"),
    ({"time_zone": "UTC", "holidays": ["2026-13-01"]}, "holidays[0]"),
])
def test_a_bad_calendar_names_the_field(document, field):
    with pytest.raises(InvalidCommandError) as refused:
        parse_calendar(document)
    assert refused.value.field == field


def test_a_calendar_round_trips():
    calendar = parse_calendar({"time_zone": "Europe/Vienna", "working_days": ["mon", "fri"],
                               "working_hours": {"start": "07:30", "end": "16:00"},
                               "holidays": ["2026-12-24", "2026-12-25"]})
    assert parse_calendar(calendar.to_dict()) == calendar


# -- evaluation -------------------------------------------------------------------------------

START = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)


def _period(**change) -> Period:
    return Period(**{"discrepancy_id": "d1", "status": "open", "severity": "high",
                     "period_seq": 7, "period_at": START, **change})


def test_nothing_is_due_before_the_threshold_and_the_next_check_is_the_first_due_time():
    ev = evaluate(_period(), DEFAULT_RULES, DEFAULT_CALENDAR, fired=set(),
                  now=START + timedelta(hours=1))
    assert ev.due == [] and ev.next_check == START + timedelta(hours=4)


def test_after_an_outage_every_step_is_due_in_order_and_the_escalation_ends_the_period():
    ev = evaluate(_period(), DEFAULT_RULES, DEFAULT_CALENDAR, fired=set(),
                  now=START + timedelta(days=2))
    assert [d.rule.id for d in ev.due] == ["high-4h-notify", "high-24h-escalate"]
    assert ev.next_check is None


def test_what_already_fired_is_not_due_again():
    key = firing_key("d1", "high-4h-notify", 0, 7)
    ev = evaluate(_period(), DEFAULT_RULES, DEFAULT_CALENDAR, fired={key},
                  now=START + timedelta(hours=5))
    assert ev.due == [] and ev.next_check == START + timedelta(days=1)


def test_a_pause_holds_firings_until_it_ends():
    until = START + timedelta(hours=6)
    ev = evaluate(_period(paused_until=until), DEFAULT_RULES, DEFAULT_CALENDAR, fired=set(),
                  now=START + timedelta(hours=5))
    assert ev.due == [] and ev.next_check == until


def test_rules_only_watch_their_severity_and_statuses():
    for period in (_period(severity="low"), _period(status="investigating")):
        ev = evaluate(period, DEFAULT_RULES, DEFAULT_CALENDAR, fired=set(),
                      now=START + timedelta(days=9))
        assert ev.due == [] and ev.next_check is None


def test_firing_keys_differ_per_rule_version_and_period():
    keys = {firing_key("d1", "r", 1, 7), firing_key("d1", "r", 2, 7), firing_key("d1", "r", 1, 8),
            firing_key("d2", "r", 1, 7)}
    assert len(keys) == 4 and all(k.startswith("esc:") for k in keys)


def test_the_default_rule_set_is_frozen_because_firings_cite_it_as_version_0():
    assert DEFAULT_RULES.version == 0
    assert DEFAULT_RULES.to_dict() == {"rules": [
        {"id": "high-4h-notify", "name": "High open 4h: tell compliance", "severity": "high",
         "statuses": ["open", "acknowledged"], "after": "PT4H", "priority": 10, "enabled": True,
         "action": {"type": "notify", "target": "compliance_manager",
                    "message": "{external_ref} ({currency} {difference}) open for 4h"}},
        {"id": "high-24h-escalate", "name": "High open 24h: escalate", "severity": "high",
         "statuses": ["open", "acknowledged"], "after": "P1D", "priority": 20, "enabled": True,
         "action": {"type": "escalate", "severity": "critical"}}]}
