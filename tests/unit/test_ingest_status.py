"""When ingestion counts as down or lagging (pure: what /readyz and /metrics report)."""

from __future__ import annotations

from indelible.ingest.status import IngestStatus, LagLimits


def test_a_consumer_not_yet_running_is_not_ready():
    status = IngestStatus()
    assert status.problem() == "ingestion starting" and not status.up()


def test_a_running_consumer_that_keeps_up_is_ready():
    status = IngestStatus()
    status.set_backlog(10, 1.0)
    assert status.problem() is None and status.up()


def test_too_many_pending_messages_is_lagging_but_up():
    status = IngestStatus(LagLimits(max_pending=100))
    status.set_backlog(101, 1.0)
    assert status.problem() == "lagging: 101 messages pending (limit 100)" and status.up()


def test_an_old_unacknowledged_message_is_lagging():
    status = IngestStatus(LagLimits(max_age=60))
    status.set_backlog(1, 61.0)
    assert "oldest unacknowledged message waits for 61 s (limit 60 s)" in status.problem()


def test_a_consumer_that_stopped_reporting_is_stalled():
    status = IngestStatus(LagLimits(max_silence=-1.0))
    status.set_backlog(0, 0.0)
    assert status.problem().startswith("ingestion stalled")


def test_a_restarting_consumer_says_why():
    status = IngestStatus()
    status.set_state("restarting", "ConsumerLostError: gone")
    assert status.problem() == "ingestion restarting: ConsumerLostError: gone" and not status.up()
