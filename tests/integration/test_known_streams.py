"""What an appender remembers of the streams it wrote (KnownStreams): used only while the log
head is the one it left, so foreign appends and rolled-back batches never leak into a
decision."""

from __future__ import annotations

import threading

import orjson
import psycopg
import pytest

from indelible.entry import NewEntry
from indelible.store.appender import Decision, append_batch
from indelible.store.group_commit import GroupCommitAppender
from indelible.store.known_streams import KnownStreams
from indelible.verifier import verify_log

from .ledger_helpers import ANALYST, command, verifier_of

pytestmark = pytest.mark.storage


class Counter:
    """StreamModel of `count/…`: a stream's state is how many entries it has, loaded by
    counting them in the ledger (so a load is always right, and counted)."""

    def __init__(self):
        self.loaded: list[str] = []

    def owns(self, stream):
        return stream.startswith("count/")

    def load(self, conn, tenant, streams):
        self.loaded += streams
        rows = conn.execute("SELECT stream_id, count(*) FROM ledger_entries WHERE tenant_id = %s "
                            "AND stream_id = ANY(%s) GROUP BY stream_id", (tenant, streams))
        return dict(rows.fetchall())

    def evolve(self, state, change):
        return (state or 0) + 1

    def digest(self, stream, state):
        return None

    def project(self, conn, tenant, states):
        pass


def _count(stream: str) -> Decision:
    """A decision recording how many entries it saw on its stream before its own."""
    def decide(seen):
        return NewEntry(stream=stream, type="counted", actor=ANALYST, data={"seen": seen or 0})
    return Decision(stream, decide)


def _seen(outcome) -> int:
    return orjson.loads(outcome.entry)["data"]["seen"]


def test_the_next_batch_decides_on_what_the_appender_remembers_without_loading(conn, tenant):
    model, known = Counter(), KnownStreams()
    append_batch(conn, tenant, [_count("count/a")], model=model, known=known)
    model.loaded.clear()

    (outcome,) = append_batch(conn, tenant, [_count("count/a")], model=model, known=known)

    assert (outcome.version, _seen(outcome), outcome.state) == (2, 1, 2)
    assert model.loaded == []


def test_a_foreign_append_between_two_batches_is_seen_by_the_next_one(conn, app_url, tenant):
    model, known = Counter(), KnownStreams()
    append_batch(conn, tenant, [_count("count/a"), command(1, stream="plain/a")],
                 model=model, known=known)
    with psycopg.connect(app_url, autocommit=True) as other:  # another appender, no memory
        append_batch(other, tenant, [_count("count/a"), command(2, stream="plain/a")],
                     model=Counter())

    counted, plain = append_batch(
        conn, tenant, [_count("count/a"), command(3, stream="plain/a", expected_version=2)],
        model=model, known=known)

    assert (counted.version, _seen(counted)) == (3, 2)
    assert plain.version == 3  # not a VersionConflictError from a remembered version 1


class _Failing:
    """An append hook that fails the batch after its entries were added (a rollback)."""

    types = frozenset({"counted"})

    def __call__(self, conn, tenant, written):
        raise RuntimeError("this batch is rolled back")


def test_a_rolled_back_batch_leaves_nothing_remembered(conn, tenant):
    model, known = Counter(), KnownStreams()
    append_batch(conn, tenant, [_count("count/a"), command(1, stream="plain/a")],
                 model=model, known=known)
    with pytest.raises(RuntimeError, match="rolled back"):
        append_batch(conn, tenant, [_count("count/a"), command(2, stream="plain/a")],
                     model=model, known=known, hooks=[_Failing()])

    counted, plain = append_batch(conn, tenant, [_count("count/a"), command(3, stream="plain/a")],
                                  model=model, known=known)

    assert (counted.version, _seen(counted), plain.version) == (2, 1, 2)


def test_two_group_commit_appenders_racing_on_one_tenant_keep_one_chain(app_url, conn, tenant,
                                                                        signer):
    model = Counter()
    appenders = [GroupCommitAppender(conninfo=app_url, batch_max=20, model=model)
                 for _ in range(2)]
    streams = [f"count/{i}" for i in range(4)]
    outcomes, lock = [], threading.Lock()

    def caller(worker: int) -> None:
        appender = appenders[worker % 2]
        for i in range(40):
            futures = appender.submit_many(tenant, [_count(streams[(worker + i) % 4]),
                                                    command(i, stream=f"plain/{i % 3}")])
            done = [f.result(60) for f in futures]
            with lock:
                outcomes.extend(done)

    threads = [threading.Thread(target=caller, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for appender in appenders:
        appender.close()

    assert sorted(o.seq for o in outcomes) == list(range(480))
    by_stream: dict[str, list[int]] = {}
    for o in outcomes:
        by_stream.setdefault(o.stream, []).append(o.version)
        if o.stream.startswith("count/"):
            assert _seen(o) == o.version - 1, o  # decided on the stream's current state
    assert all(sorted(v) == list(range(1, len(v) + 1)) for v in by_stream.values())
    assert verify_log(app_url, tenant, verifier_of(signer), workers=1).ok


def test_known_streams_are_refused_inside_an_outer_transaction(conn, tenant):
    with conn.transaction(), pytest.raises(ValueError, match="outermost"):
        append_batch(conn, tenant, [command(0)], known=KnownStreams())
