"""`indelible bench outbox` at a tiny size, against the suite's PostgreSQL: it runs the real
path end to end, prints one JSON object, delivers every event it queued (nothing is left for
a dispatcher) and queues only for its own lane, never the hub's or the feed's."""

from __future__ import annotations

import psycopg

from .test_bench_cli import assert_measured, bench_tenant, env, invoke  # noqa: F401 - fixtures


def test_bench_outbox_reports_delivery_rate_and_append_latency(env, bench_tenant, app_url):  # noqa: F811
    report = invoke(env, "outbox", "--tenant", bench_tenant, "--events", "40",
                    "--latency-samples", "10")
    assert report["command"] == "outbox"
    assert_measured(report, {"outbox_delivery", "outbox_append_latency",
                             "outbox_append_latency_delivering",
                             "outbox_append_latency_hub_hanging"})
    assert report["measurements"]["outbox_delivery"]["details"]["outcome_entries"] == 40
    with psycopg.connect(app_url) as conn:
        states = conn.execute("SELECT integration, state, count(*) FROM outbox WHERE "
                              "tenant_id = %s GROUP BY 1, 2", (bench_tenant,)).fetchall()
    assert states == [("bench", "delivered", 40 + 10 + 10 + 11)]
