"""`indelible bench escalate` at a tiny size, against the suite's PostgreSQL: it runs the
real pass end to end (nothing due, then one in ten due) and prints one JSON object."""

from __future__ import annotations

import pytest

from .test_bench_cli import assert_measured, env, invoke  # noqa: F401 - the fixture

pytestmark = pytest.mark.storage


def test_bench_escalate_measures_an_idle_pass_and_the_firing_rate(env):  # noqa: F811
    report = invoke(env, "escalate", "--open", "200", "--rules", "10")
    assert_measured(report, {"escalate_nothing_due", "escalate_firing_rate"})
    firing = report["measurements"]["escalate_firing_rate"]
    assert firing["details"]["firings"] == 20  # one in ten is critical and due
    assert report["open"] == 200 and report["escalation_tenant"].startswith("bench-esc-")
