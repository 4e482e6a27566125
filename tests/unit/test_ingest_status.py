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


def test_progress_is_told_at_once_then_at_most_every_interval_and_never_while_idle():
    from indelible.ingest.status import ProgressReport

    status = IngestStatus()
    report = ProgressReport(status, every=10)
    assert report.line(now=100) is None  # nothing happened yet
    status.set_backlog(40, 0.5)
    status.count(processed=60, dead_lettered=2)
    assert report.line(now=101) == ("ingestion: 60 committed, 2 dead-lettered since the last "
                                    "report; 40 pending in the stream (since start: 60 "
                                    "committed, 2 dead-lettered)")
    status.count(processed=40)
    assert report.line(now=105) is None  # too soon
    status.set_backlog(0, 0.0)
    assert report.line(now=111).startswith("ingestion: 40 committed, 0 dead-lettered since the "
                                           "last report; 0 pending")
    assert report.line(now=500) is None  # idle: a quiet log
