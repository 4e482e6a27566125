"""The append path against a real PostgreSQL: order, links, replays, refusals, concurrency."""

from __future__ import annotations

import base64
import json
import multiprocessing
import threading

import pytest

from indelible.proofs import leaf_hash
from indelible.store.appender import Appended, append_batch
from indelible.store.group_commit import GroupCommitAppender
from indelible.store.errors import (IdempotencyConflictError, InvalidEntryError,
                                    UnknownLogError, VersionConflictError)
from indelible.store.logs import read_head
from indelible.verifier import verify_log

from .ledger_helpers import command, superuser, verifier_of

pytestmark = pytest.mark.storage


def _stored(conn, tenant):
    return conn.execute("SELECT seq, entry, leaf_hash FROM ledger_entries WHERE tenant_id = %s "
                        "ORDER BY seq", (tenant,)).fetchall()


def test_entries_get_gap_free_seqs_from_zero_and_link_to_their_predecessor(conn, tenant):
    append_batch(conn, tenant, [command(i) for i in range(5)])
    append_batch(conn, tenant, [command(i) for i in range(5, 8)])

    rows = _stored(conn, tenant)
    assert [seq for seq, _, _ in rows] == list(range(8))
    previous = ""
    for seq, entry, stored_leaf in rows:
        doc = json.loads(entry)
        assert (doc["seq"], doc["prev"]) == (seq, previous)
        assert bytes(stored_leaf) == leaf_hash(bytes(entry))
        previous = base64.b64encode(bytes(stored_leaf)).decode()


def test_the_log_head_tracks_size_last_leaf_and_merkle_root(conn, tenant):
    out = append_batch(conn, tenant, [command(i) for i in range(300)])
    head = read_head(conn, tenant)
    assert head.size == 300 and head.last_leaf_hash == out[-1].leaf_hash
    assert head.frontier.size == 300
    (nodes,) = conn.execute("SELECT count(*) FROM merkle_nodes WHERE tenant_id = %s",
                            (tenant,)).fetchone()
    assert nodes == 1  # one complete 256-leaf subtree so far


def test_a_retried_append_returns_the_original_entry_and_adds_nothing(conn, tenant):
    first = append_batch(conn, tenant, [command(1, stream="disc/a", key="req-1")])[0]
    again = append_batch(conn, tenant, [command(1, stream="disc/a", key="req-1")])[0]

    assert again.replayed and not first.replayed
    assert (again.seq, again.event_id, again.entry) == (first.seq, first.event_id, first.entry)
    assert read_head(conn, tenant).size == 1


def test_a_key_repeated_within_one_batch_is_appended_once(conn, tenant):
    out = append_batch(conn, tenant, [command(1, stream="disc/a", key="k")] * 3)
    assert [o.seq for o in out] == [0, 0, 0] and [o.replayed for o in out] == [False, True, True]


def test_reusing_a_key_for_a_different_command_is_refused(conn, tenant):
    append_batch(conn, tenant, [command(1, stream="disc/a", key="req-1")])
    (outcome,) = append_batch(conn, tenant, [command(2, stream="disc/a", key="req-1")])
    assert isinstance(outcome, IdempotencyConflictError)
    assert "req-1" in str(outcome) and "seq 0" in str(outcome)


def test_a_stale_expected_version_is_refused_and_its_batch_mates_are_appended(conn, tenant):
    append_batch(conn, tenant, [command(1, stream="disc/a"), command(2, stream="disc/a")])
    out = append_batch(conn, tenant, [
        command(3, stream="disc/b"),
        command(4, stream="disc/a", expected_version=1),
        command(5, stream="disc/a", expected_version=2),
    ])
    assert out[0].seq == 2
    assert isinstance(out[1], VersionConflictError)
    assert "version 2" in str(out[1]) and "expected 1" in str(out[1])
    assert (out[2].seq, out[2].version) == (3, 3)


def test_expected_version_zero_means_the_stream_must_be_new(conn, tenant):
    out = append_batch(conn, tenant, [command(1, stream="disc/n", expected_version=0),
                                      command(2, stream="disc/n", expected_version=0)])
    assert out[0].version == 1 and isinstance(out[1], VersionConflictError)


def test_an_entry_with_a_float_is_refused_with_its_path_and_others_still_land(conn, tenant):
    bad = command(1)
    bad = type(bad)(stream=bad.stream, type=bad.type, actor=bad.actor, data={"amount": 10.5})
    out = append_batch(conn, tenant, [command(0), bad, command(2)])
    assert isinstance(out[1], InvalidEntryError) and "$.data.amount" in str(out[1])
    assert [out[0].seq, out[2].seq] == [0, 1]


def test_appending_to_a_tenant_without_a_log_fails_clearly(conn):
    with pytest.raises(UnknownLogError, match="'nobody' has no ledger log"):
        append_batch(conn, "nobody", [command(0)])


def test_concurrent_callers_are_group_committed_into_one_gap_free_chain(app_url, conn, tenant, signer):
    appender = GroupCommitAppender(conninfo=app_url, batch_max=500, batch_wait=0.005)
    results, lock = [], threading.Lock()

    def caller(worker: int) -> None:
        for i in range(50):
            outcome = appender.append(tenant, command(i, key=f"{worker}-{i}"))
            with lock:
                results.append(outcome.seq)

    threads = [threading.Thread(target=caller, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    appender.close()

    assert sorted(results) == list(range(800))
    assert verify_log(app_url, tenant, verifier_of(signer), workers=1).ok


def _append_from_another_process(app_url: str, tenant: str, worker: int, count: int) -> None:
    appender = GroupCommitAppender(conninfo=app_url, batch_max=50, batch_wait=0.001)
    futures = [appender.submit(tenant, command(i, key=f"p{worker}-{i}")) for i in range(count)]
    for f in futures:
        f.result(60)
    appender.close()


def test_several_processes_appending_to_one_tenant_keep_one_chain(app_url, tenant, signer):
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_append_from_another_process, args=(app_url, tenant, w, 400))
                 for w in range(3)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(120)
    assert [p.exitcode for p in processes] == [0, 0, 0]

    report = verify_log(app_url, tenant, verifier_of(signer), workers=1, chunk=256)
    assert report.ok, report.to_text()
    assert report.entries_checked == 1200


def test_a_keyed_entry_whose_meta_was_edited_away_refuses_its_repeat_alone(owner_url, conn,
                                                                          tenant):
    (first,) = append_batch(conn, tenant, [command(0, key="fact-1")])
    with superuser(owner_url) as rogue:
        rogue.execute("UPDATE ledger_entries SET entry = convert_to(jsonb_set(convert_from("
                      "entry, 'UTF8')::jsonb, '{meta}', 'null')::text, 'UTF8') "
                      "WHERE tenant_id = %s AND seq = %s", (tenant, first.seq))

    repeat, mate = append_batch(conn, tenant, [command(0, key="fact-1"), command(1)])

    assert "does not record it" in str(repeat) and not isinstance(repeat, Appended)
    assert isinstance(mate, Appended)
