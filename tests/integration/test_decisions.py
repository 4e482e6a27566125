"""Decisions are judged inside the appending transaction, against committed state.

A toy model: a counter stream whose next entry is allowed only below a limit. Its state is
read from the ledger itself under the log-head lock, so racing appenders cannot overshoot.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from indelible.entry import Actor, NewEntry
from indelible.store.appender import Appended, Change, Decision, append_batch
from indelible.store.group_commit import GroupCommitAppender
from indelible.store.errors import AppendRefusedError

pytestmark = pytest.mark.storage

SYSTEM = Actor("counter", "system", "engine")


class LimitReachedError(AppendRefusedError):
    pass


class Counters:
    """State: how many entries a stream has. Projection: remembered per batch, for the test."""

    def __init__(self):
        self.projected: list[dict] = []

    def owns(self, stream):
        return stream.startswith("ctr/")

    def load(self, conn, tenant, streams):
        rows = conn.execute("SELECT stream_id, max(stream_version) FROM ledger_entries "
                            "WHERE tenant_id = %s AND stream_id = ANY(%s) GROUP BY stream_id",
                            (tenant, streams))
        return dict(rows.fetchall())

    def evolve(self, state, change: Change):
        return change.version

    def digest(self, stream, state):
        return None

    def project(self, conn, tenant, states):
        self.projected.append(dict(states))


def increment(stream: str, limit: int, key: str | None = None) -> Decision:
    def decide(count):
        count = count or 0
        if count >= limit:
            raise LimitReachedError(f"{stream} already has {count} of {limit}")
        return NewEntry(stream=stream, type="counter.incremented", actor=SYSTEM,
                        data={"n": count + 1}, idempotency_key=key)
    return Decision(stream, decide, key)


def test_a_decision_sees_the_entries_of_its_batch_mates(conn, tenant):
    model = Counters()
    out = append_batch(conn, tenant, [increment("ctr/a", 2) for _ in range(3)], model=model)
    assert [o.version for o in out[:2]] == [1, 2]
    assert isinstance(out[2], LimitReachedError) and "already has 2 of 2" in str(out[2])
    assert model.projected == [{"ctr/a": 2}]


def test_a_refused_decision_does_not_fail_its_batch_mates(conn, tenant):
    out = append_batch(conn, tenant, [increment("ctr/full", 0), increment("ctr/b", 5)],
                       model=Counters())
    assert isinstance(out[0], LimitReachedError) and out[1].seq == 0


def test_a_retried_decision_returns_the_original_entry_without_deciding_again(conn, tenant):
    first = append_batch(conn, tenant, [increment("ctr/c", 1, key="req-1")], model=Counters())[0]
    again = append_batch(conn, tenant, [increment("ctr/c", 1, key="req-1")], model=Counters())[0]
    assert again.replayed and again.seq == first.seq  # not refused, although the limit is hit


def test_decisions_without_a_model_are_a_programming_error(conn, tenant):
    with pytest.raises(ValueError, match="need a StreamModel"):
        append_batch(conn, tenant, [increment("ctr/d", 1)])


def test_racing_appenders_never_push_a_stream_past_its_limit(app_url, tenant):
    """Two appenders, separate connections, 200 attempts each at a limit of 150."""
    limit, outcomes, lock = 150, [], threading.Lock()

    def race() -> None:
        appender = GroupCommitAppender(conninfo=app_url, batch_max=16, model=Counters())
        futures = [appender.submit(tenant, increment("ctr/race", limit)) for _ in range(200)]
        for f in futures:
            try:
                result = f.result(60)
            except LimitReachedError as e:
                result = e
            with lock:
                outcomes.append(result)
        appender.close()

    racers = [threading.Thread(target=race) for _ in range(2)]
    for r in racers:
        r.start()
    for r in racers:
        r.join()

    appended = [o for o in outcomes if isinstance(o, Appended)]
    assert len(appended) == limit and len(outcomes) == 400
    assert sorted(o.version for o in appended) == list(range(1, limit + 1))
    with psycopg.connect(app_url) as c:
        (count,) = c.execute("SELECT count(*) FROM ledger_entries WHERE tenant_id = %s",
                             (tenant,)).fetchone()
    assert count == limit


class Picky(Counters):
    """Projects each count into a text cast; a stream named with NUL makes PostgreSQL refuse."""

    def project(self, conn, tenant, states):
        for stream in states:
            conn.execute("SELECT %s::text", (stream.replace("ctr/poison", "ctr/\x00"),))


def test_a_command_the_database_refuses_fails_alone_not_its_batch_mates(app_url, tenant):
    from indelible.store.errors import InvalidEntryError

    appender = GroupCommitAppender(conninfo=app_url, model=Picky())
    # One submit_many is one queue item, so the three are committed as one batch.
    futures = appender.submit_many(tenant, [increment("ctr/ok-1", 5), increment("ctr/poison", 5),
                                            increment("ctr/ok-2", 5)])
    assert isinstance(futures[0].result(30), Appended)
    with pytest.raises(InvalidEntryError, match="the database refused this entry"):
        futures[1].result(30)
    assert isinstance(futures[2].result(30), Appended)
    appender.close()


def test_a_submitted_batch_resolves_once_with_every_outcome_in_order(app_url, tenant):
    from indelible.store.errors import InvalidEntryError

    appender = GroupCommitAppender(conninfo=app_url, model=Picky())
    outcomes = appender.submit_batch(tenant, [
        increment("ctr/b-1", 5), increment("ctr/poison", 5), increment("ctr/b-2", 5),
        increment("ctr/b-2", 1)]).result(30)  # the last: over the limit of 1
    assert [type(o) for o in outcomes[:3]] == [Appended, InvalidEntryError, Appended]
    assert isinstance(outcomes[3], LimitReachedError) and "already has 1 of 1" in str(outcomes[3])
    assert appender.submit_batch(tenant, []).result(1) == []
    appender.close()


def test_the_writer_survives_a_decision_that_crashes_and_keeps_serving(app_url, tenant):
    def broken(_state):
        raise RuntimeError("a bug in a model")

    appender = GroupCommitAppender(conninfo=app_url, model=Counters())
    crashed = appender.submit(tenant, Decision("ctr/bug", broken))
    with pytest.raises(RuntimeError, match="a bug in a model"):
        crashed.result(30)
    assert isinstance(appender.submit(tenant, increment("ctr/after", 5)).result(30), Appended)
    appender.close()
