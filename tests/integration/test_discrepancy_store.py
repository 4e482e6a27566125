"""Discrepancies in the store: decisions under the lock, projection, history, time travel."""

from __future__ import annotations

import dataclasses
import secrets
import threading

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from indelible import domain
from indelible.bootstrap import projections
from indelible.store import discrepancies as store
from indelible.store.appender import Appended, append_batch
from indelible.store.group_commit import GroupCommitAppender

pytestmark = pytest.mark.storage

ANALYST = domain.Actor("key:ana", "analyst")
MANAGER = domain.Actor("key:max", "compliance_manager")


def _open(conn, tenant, ref="po-1"):
    command = domain.OpenDiscrepancy(external_ref=ref, source="stripe", kind="amount_mismatch",
                                     expected_amount="9850.00", actual_amount="10000.00",
                                     currency="EUR", detected_at="2026-11-23T05:00:00Z")
    discrepancy_id = store.new_id()
    (out,) = append_batch(conn, tenant, [store.decision(discrepancy_id, command, ANALYST,
                                                        store.open_key("stripe", ref))],
                          model=projections())
    assert isinstance(out, Appended), out
    return discrepancy_id


def _move(discrepancy_id, to, actor=ANALYST, **extra):
    if to == "escalated":
        extra.setdefault("reason", "over the manager's limit")
    return store.decision(discrepancy_id, domain.Transition(to=to, **extra), actor)


def _scoped(conn, tenant, fn, *args, **kwargs):
    with conn.transaction():
        conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))
        return fn(conn, tenant, *args, **kwargs)


def test_moves_in_one_batch_are_judged_one_after_the_other(conn, registered_tenant):
    d = _open(conn, registered_tenant)
    out = append_batch(conn, registered_tenant, [
        _move(d, "acknowledged"), _move(d, "acknowledged"), _move(d, "investigating")],
        model=projections())
    assert isinstance(out[0], Appended) and isinstance(out[2], Appended)
    assert isinstance(out[1], store.DomainRefusedError)
    assert isinstance(out[1].error, domain.TransitionRefusedError)
    assert _scoped(conn, registered_tenant, store.current, d)["status"] == "investigating"


def test_racing_appenders_cannot_make_an_illegal_history(app_url, conn, registered_tenant):
    """8 appenders on their own connections race the same moves on one discrepancy."""
    d = _open(conn, registered_tenant)
    wins, refusals, lock = [], [], threading.Lock()
    moves = ["acknowledged", "investigating", "escalated", "investigating"]

    def racer() -> None:
        appender = GroupCommitAppender(conninfo=app_url, model=projections())
        for to in moves:
            try:
                outcome = appender.submit(registered_tenant, _move(d, to, MANAGER)).result(60)
                with lock:
                    wins.append((to, outcome.seq))
            except store.DomainRefusedError as e:
                with lock:
                    refusals.append(e.error)
        appender.close()

    threads = [threading.Thread(target=racer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(wins) + len(refusals) == 32
    assert all(isinstance(r, domain.TransitionRefusedError) for r in refusals)
    # Replaying the ledger checks every recorded move against the status it left.
    state, items = _scoped(conn, registered_tenant, store.history, d)
    assert [i.status_after for i in items][0] == "open"
    assert all(i.status_before != i.status_after for i in items[1:])
    assert _scoped(conn, registered_tenant, store.current, d) == state.to_dict()


def test_history_and_time_travel_follow_the_ledger(conn, registered_tenant):
    d = _open(conn, registered_tenant)
    append_batch(conn, registered_tenant, [_move(d, "acknowledged")], model=projections())
    (moved,) = append_batch(conn, registered_tenant, [_move(d, "investigating")],
                            model=projections())
    then, items = _scoped(conn, registered_tenant, store.history, d, until_seq=moved.seq - 1)
    assert then.status == domain.Status.ACKNOWLEDGED and len(items) == 2
    now, items = _scoped(conn, registered_tenant, store.history, d)
    assert now.status == domain.Status.INVESTIGATING and items[-1].seq == moved.seq


def test_the_same_report_twice_is_one_discrepancy(conn, registered_tenant):
    first = _open(conn, registered_tenant, ref="dup-1")
    command = domain.OpenDiscrepancy(external_ref="dup-1", source="stripe", kind="amount_mismatch",
                                     expected_amount="9850.00", actual_amount="10000.00",
                                     currency="EUR", detected_at="2026-11-24T05:00:00Z")
    (again,) = append_batch(conn, registered_tenant, [store.decision(
        store.new_id(), command, ANALYST, store.open_key("stripe", "dup-1"))], model=projections())
    assert again.replayed and again.stream == store.stream_of(first)


def test_a_resolution_snapshot_is_frozen_once_and_never_changes(conn, owner_url, registered_tenant):
    import psycopg

    d = _open(conn, registered_tenant)
    append_batch(conn, registered_tenant, [
        _move(d, "investigating"),
        _move(d, "resolved", resolution_code="corrected_in_ledger", note="fee booked")],
        model=projections())
    frozen = _scoped(conn, registered_tenant, store.snapshot, d)
    assert frozen["discrepancy"]["status"] == "resolved" and frozen["history"]["entries"] == 3
    with psycopg.connect(owner_url, autocommit=True) as owner:
        for sql in ("UPDATE resolution_snapshots SET seq = 0 WHERE discrepancy_id = %s",
                    "DELETE FROM resolution_snapshots WHERE discrepancy_id = %s"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                owner.execute(sql, (d,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        conn.execute("DELETE FROM resolution_snapshots")


def test_rebuilt_read_models_equal_the_live_ones(conn, owner_url, registered_tenant):
    import psycopg

    from indelible.entry import Actor
    from indelible.store.api_keys import issue_command, revoke_decision
    from indelible.store.rebuild import rebuild_projections

    admin = Actor("key:root", "admin")
    keys = [issue_command(role=r, name=None, by=admin)[1] for r in ("analyst", "auditor")]
    append_batch(conn, registered_tenant, keys, model=projections())
    append_batch(conn, registered_tenant, [revoke_decision(keys[0].data["key_id"], by=admin)],
                 model=projections())
    ids = [_open(conn, registered_tenant, ref=f"r-{i}") for i in range(3)]
    append_batch(conn, registered_tenant, [
        _move(ids[0], "acknowledged"), _move(ids[1], "investigating"),
        _move(ids[1], "resolved", resolution_code="written_off", note="below threshold"),
        store.decision(ids[2], domain.Assign(assignee="ana"), MANAGER)], model=projections())

    def read_models():
        with psycopg.connect(owner_url) as c:
            return [c.execute(f"SELECT * FROM {t} WHERE tenant_id = %s ORDER BY 2",
                              (registered_tenant,)).fetchall() for t in ("api_keys", "discrepancies")]

    live = read_models()
    assert len(live[0]) == 2 and len(live[1]) == 3
    assert rebuild_projections(owner_url, registered_tenant, projections()) == 5
    assert read_models() == live


def test_the_snapshot_is_the_state_at_the_resolving_entry_not_later(conn, registered_tenant):
    d = _open(conn, registered_tenant)
    out = append_batch(conn, registered_tenant, [
        _move(d, "investigating"),
        _move(d, "resolved", resolution_code="corrected_in_ledger", note="fee booked"),
        store.decision(d, domain.Comment(text="noted after the fact"), ANALYST)],
        model=projections())
    frozen = _scoped(conn, registered_tenant, store.snapshot, d)
    assert frozen["seq"] == out[1].seq and frozen["discrepancy"]["comments"] == 0
    assert frozen["history"]["last_seq"] == out[1].seq


def test_a_role_without_bypassrls_projects_new_discrepancies_by_upsert_alike(
        owner_url, conn, registered_tenant):
    """Where migration 8 could not grant BYPASSRLS (no superuser), COPY into the read model is
    not allowed; new rows then go through the upsert, with the same columns."""
    d = _open(conn, registered_tenant, ref="rls-1")
    state = _scoped(conn, registered_tenant, lambda c, t: store.Discrepancies().load(
        c, t, [store.stream_of(d)]))[store.stream_of(d)]
    twin = dataclasses.replace(state, id=store.new_id(), external_ref="rls-2")
    role, password = f"idl_norls_{secrets.token_hex(3)}", secrets.token_hex(16)
    with psycopg.connect(owner_url, autocommit=True) as owner:
        # indelible_app's privileges, not its BYPASSRLS
        owner.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE indelible_app")
        try:
            with psycopg.connect(make_conninfo(owner_url, user=role, password=password)) as limited:
                assert store._bypasses_rls(limited) is False
                _scoped(limited, registered_tenant, store.Discrepancies().project,
                        {store.stream_of(twin.id): twin})
        finally:
            owner.execute(f"DROP ROLE {role}")
    columns = "source, kind, currency, expected_amount, actual_amount, difference, severity, " \
              "status, assignee, detected_at, opened_at, updated_at, version, state - 'id' - 'external_ref'"
    rows = conn.execute(f"SELECT {columns} FROM discrepancies WHERE tenant_id = %s AND id = ANY(%s)",
                        (registered_tenant, [d, twin.id])).fetchall()
    assert len(rows) == 2 and rows[0] == rows[1]
    assert store._bypasses_rls(conn) is True


def _ledger_rows_read(conn, tenant: str, command) -> int:
    """Ledger rows PostgreSQL read (by heap or by index) while appending `command`."""
    count = ("SELECT coalesce(sum(seq_tup_read + idx_tup_fetch), 0) "
             "FROM pg_stat_xact_user_tables WHERE relname = 'ledger_entries'")
    with conn.transaction():
        before = conn.execute(count).fetchone()[0]
        (outcome,) = append_batch(conn, tenant, [command], model=projections())
        assert isinstance(outcome, Appended), outcome
        return conn.execute(count).fetchone()[0] - before


def test_the_cost_of_a_command_does_not_grow_with_the_comments_before_it(
        owner_url, conn, registered_tenant):
    d = _open(conn, registered_tenant, ref="chatty")
    comment = store.decision(d, domain.Comment(text="one more"), ANALYST)
    few = _ledger_rows_read(conn, registered_tenant, comment)
    append_batch(conn, registered_tenant, [store.decision(d, domain.Comment(text=f"note {i}"),
                                                          ANALYST) for i in range(300)],
                 model=projections())
    with psycopg.connect(owner_url, autocommit=True) as owner:
        # As autovacuum would: without statistics that know this tenant, the planner may
        # probe stream versions through another index (a cost of the version probe the
        # appender always made, not of loading the state).
        owner.execute("ANALYZE ledger_entries")
    many = _ledger_rows_read(conn, registered_tenant, comment)
    moved = _ledger_rows_read(conn, registered_tenant, _move(d, "acknowledged"))
    # Replaying the stream would read its 300+ entries; loading the row reads a handful,
    # how many depends on the planner (PostgreSQL 15 probes a few more than 18).
    assert many < 30 and moved < 30, (few, many, moved)
    state = _scoped(conn, registered_tenant, store.Discrepancies().load,
                    [store.stream_of(d)])[store.stream_of(d)]
    replayed = store.Discrepancies.replay(conn, registered_tenant, [store.stream_of(d)])
    assert state == replayed[store.stream_of(d)] and state.comments == 302


def test_a_read_model_row_behind_the_ledger_is_not_trusted(owner_url, conn, registered_tenant):
    d = _open(conn, registered_tenant, ref="stale")
    append_batch(conn, registered_tenant, [_move(d, "acknowledged")], model=projections())
    with psycopg.connect(owner_url, autocommit=True) as owner:  # a row set back to version 1
        owner.execute("UPDATE discrepancies SET version = 1, state = jsonb_set(jsonb_set(state, "
                      "'{version}', '1'), '{status}', '\"open\"') WHERE tenant_id = %s AND id = %s",
                      (registered_tenant, d))
    state = _scoped(conn, registered_tenant, store.Discrepancies().load,
                    [store.stream_of(d)])[store.stream_of(d)]
    assert (state.version, state.status) == (2, domain.Status.ACKNOWLEDGED)


def test_a_row_edited_at_the_ledger_version_cannot_steer_a_decision(app_url, conn,
                                                                     registered_tenant):
    """Someone with the service's database login marks an acknowledged case as under
    investigation, keeping its version: resolving it must still be refused, decided from the
    ledger."""
    d = _open(conn, registered_tenant, ref="steered")
    append_batch(conn, registered_tenant, [_move(d, "acknowledged")], model=projections())
    with psycopg.connect(app_url, autocommit=True) as insider:
        insider.execute("SELECT set_config('indelible.tenant', %s, false)", (registered_tenant,))
        insider.execute("UPDATE discrepancies SET state = jsonb_set(jsonb_set(state, "
                        "'{investigated}', 'true'), '{status}', '\"investigating\"') "
                        "WHERE tenant_id = %s AND id = %s", (registered_tenant, d))
    (outcome,) = append_batch(conn, registered_tenant, [_move(
        d, "resolved", resolution_code="corrected_in_ledger", note="never investigated")],
        model=projections())
    assert isinstance(outcome, store.DomainRefusedError), outcome
    assert "from 'acknowledged'" in str(outcome)


def test_a_malformed_row_does_not_fail_its_batch_mates(app_url, conn, registered_tenant):
    d, other = _open(conn, registered_tenant, ref="garbled"), _open(conn, registered_tenant, "fine")
    with psycopg.connect(app_url, autocommit=True) as insider:
        insider.execute("SELECT set_config('indelible.tenant', %s, false)", (registered_tenant,))
        insider.execute("UPDATE discrepancies SET state = '{\"version\": 1}' WHERE tenant_id = %s "
                        "AND id = %s", (registered_tenant, d))
    out = append_batch(conn, registered_tenant, [_move(d, "acknowledged"),
                                                 _move(other, "acknowledged")], model=projections())
    assert all(isinstance(o, Appended) for o in out), out


def test_a_stream_without_entries_has_no_state_whatever_a_row_claims(owner_url, conn,
                                                                     registered_tenant):
    d = _open(conn, registered_tenant, ref="copied")
    orphan = store.new_id()
    with psycopg.connect(owner_url, autocommit=True) as owner:  # a row no entry backs
        owner.execute("INSERT INTO discrepancies SELECT tenant_id, %s, external_ref || '-2', "
                      "source, kind, currency, expected_amount, actual_amount, difference, "
                      "severity, status, assignee, detected_at, opened_at, updated_at, version, "
                      "jsonb_set(state, '{id}', to_jsonb(%s::text)) FROM discrepancies "
                      "WHERE tenant_id = %s AND id = %s", (orphan, orphan, registered_tenant, d))
    streams = [store.stream_of(orphan), store.stream_of(store.new_id()), store.stream_of(d)]

    states = _scoped(conn, registered_tenant, store.Discrepancies().load, streams)

    assert list(states) == [store.stream_of(d)]


def test_loaded_states_are_what_folding_each_streams_entries_gives(owner_url, conn,
                                                                   registered_tenant):
    kept, moved, edited = (_open(conn, registered_tenant, ref=f"fold-{n}") for n in range(3))
    append_batch(conn, registered_tenant, [_move(moved, "acknowledged"),
                                           _move(edited, "acknowledged")], model=projections())
    with psycopg.connect(owner_url, autocommit=True) as owner:  # an edited row: not trusted
        owner.execute("UPDATE discrepancies SET state = jsonb_set(state, '{assignee}', "
                      "'\"mallory\"') WHERE tenant_id = %s AND id = %s",
                      (registered_tenant, edited))
    ids = [kept, moved, edited, kept.upper(), store.new_id(), moved]  # a spelling, a new one, twice

    states = _scoped(conn, registered_tenant, store.Discrepancies().load,
                     [store.stream_of(i) for i in ids])

    folded = {store.stream_of(i): s for i in ids
              if (s := store.history(conn, registered_tenant, i)[0]) is not None}
    assert states == folded and len(folded) == 3
    assert states[store.stream_of(edited)].assignee is None


def test_streams_that_cannot_have_a_row_load_from_their_entries_alone(conn, registered_tenant):
    d = _open(conn, registered_tenant, ref="spelt")
    spellings = [store.stream_of(d.upper()), store.stream_of("{" + d + "}"),
                 store.stream_of(f" {d}"), "disc/not-a-uuid"]

    states = _scoped(conn, registered_tenant, store.Discrepancies().load, spellings)

    assert states == {}  # no entries under those spellings: no state, and no row read


def test_a_latest_entry_edited_to_record_no_digest_object_means_a_replay(owner_url, conn,
                                                                        registered_tenant):
    d = _open(conn, registered_tenant, ref="meta")
    with psycopg.connect(owner_url, autocommit=True) as owner:  # as a superuser may
        owner.execute("SET session_replication_role = replica")
        owner.execute("UPDATE ledger_entries SET entry = convert_to(jsonb_set(convert_from("
                      "entry, 'UTF8')::jsonb, '{meta}', 'null')::text, 'UTF8') "
                      "WHERE tenant_id = %s AND stream_id = %s",
                      (registered_tenant, store.stream_of(d)))

    states = _scoped(conn, registered_tenant, store.Discrepancies().load, [store.stream_of(d)])

    assert states == {store.stream_of(d): store.history(conn, registered_tenant, d)[0]}
