"""What a report computes, from entries alone: timelines, durations, ageing, charts."""

from __future__ import annotations

from datetime import datetime, timezone

from indelible.reports import charts
from indelible.reports.content import CaseBuilder, format_duration, percentile, summarise


def _entry(kind, at, data, role="analyst"):
    return {"type": kind, "at": at, "actor": {"id": "key:ana", "role": role}, "data": data}


OPENED = {"id": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "external_ref": "po-1",
          "source": "stripe", "kind": "amount_mismatch", "expected_amount": "1.250",
          "actual_amount": "1.000", "currency": "KWD", "difference": "-0.250",
          "severity": "high", "detected_at": "2026-11-01T00:00:00Z", "metadata": {},
          "transaction_refs": []}


def _case() -> CaseBuilder:
    case = CaseBuilder()
    case.add(10, _entry("discrepancy.opened", "2026-11-02T00:00:00.000000Z", OPENED), b"\1" * 32)
    case.add(11, _entry("discrepancy.transitioned", "2026-11-02T01:30:00.000000Z",
                        {"from": "open", "to": "acknowledged", "reason": None}), b"\2" * 32)
    case.add(12, _entry("escalation.fired", "2026-11-03T00:00:00.000000Z",
                        {"rule_name": "48h", "action": "notify", "message": "late"},
                        role="system"), b"\3" * 32)
    case.add(13, _entry("discrepancy.transitioned", "2026-11-03T02:00:00.000000Z",
                        {"from": "acknowledged", "to": "investigating", "reason": None}), b"\4" * 32)
    return case


def test_a_timeline_shows_each_entry_with_the_status_before_and_after():
    rows = _case().to_json()["timeline"]
    assert [(r["seq"], r["status_before"], r["status_after"]) for r in rows] == [
        (10, None, "open"), (11, "open", "acknowledged"), (12, "acknowledged", "acknowledged"),
        (13, "acknowledged", "investigating")]
    assert rows[0]["leaf_hash"] == "01" * 32 and rows[2]["role"] == "system"
    assert "KWD" in rows[0]["note"] and "notify late" in rows[2]["note"]


def test_escalations_fired_are_counted_and_the_acknowledgement_is_timed():
    case = _case().to_json()
    assert case["escalations_fired"] == 1
    s = summarise([case], period_from=datetime(2026, 11, 1, tzinfo=timezone.utc),
                  period_to=datetime(2026, 12, 1, tzinfo=timezone.utc),
                  as_of=datetime(2026, 11, 12, tzinfo=timezone.utc))
    assert s["time_to_acknowledge"] == {"count": 1, "median_seconds": 5400, "p90_seconds": 5400}
    assert s["time_to_resolve"]["count"] == 0 and s["escalations_fired"] == 1
    assert s["amounts_by_currency"]["KWD"]["absolute"] == "0.250"
    assert s["ageing"]["high"]["7-30 days"] == 1  # opened 10 days before as_of, not closed
    assert len(s["per_day"]) == 30 and s["per_day"][1] == {"day": "2026-11-02", "opened": 1,
                                                           "resolved": 0}


def test_percentiles_are_observed_values():
    assert percentile([], 50) is None
    assert percentile([5, 1, 3, 2, 4], 50) == 3 and percentile(list(range(1, 11)), 90) == 9
    assert format_duration(90061) == "1d 01:01:01" and format_duration(None) == "-"


def test_charts_are_svg_drawn_from_the_figures():
    svg = charts.to_svg(charts.opened_resolved([{"day": "2026-11-01", "opened": 3, "resolved": 1}]))
    assert svg.startswith("<svg") and svg.count("<rect") == 2 + 2  # two bars, two legend keys
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
