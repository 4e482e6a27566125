"""Re-reports, request keys and the severity policy, decided under the log-head lock."""

from __future__ import annotations

import orjson
import pytest

from indelible import domain
from indelible.bootstrap import projections
from indelible.entry import Actor
from indelible.store import discrepancies as store
from indelible.store import severity_policy
from indelible.store.appender import Appended, append_batch
from indelible.store.errors import IdempotencyConflictError, InvalidEntryError

pytestmark = pytest.mark.storage

ENGINE = domain.Actor("engine:stripe", "system")
ANALYST = domain.Actor("key:ana", "analyst")
ADMIN = Actor("key:adm", "admin")


def _report(ref="po-1", severity=None, **changes):
    fields = dict(external_ref=ref, source="stripe", kind="amount_mismatch",
                  expected_amount="9850.00", actual_amount="10000.00", currency="EUR",
                  detected_at="2026-11-23T05:00:00Z", severity=severity)
    return domain.OpenDiscrepancy(**{**fields, **changes})


def _decision(command, **request):
    return store.decision(store.new_id(), command, ENGINE,
                          store.open_key(command.source, command.external_ref), **request)


def _append(conn, tenant, *commands):
    return append_batch(conn, tenant, list(commands), model=projections())


def _row(conn, tenant, discrepancy_id):
    with conn.transaction():
        conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))
        return conn.execute("SELECT kind, currency, expected_amount::text, actual_amount::text, "
                            "difference::text, severity, status FROM discrepancies "
                            "WHERE tenant_id = %s AND id = %s", (tenant, discrepancy_id)).fetchone()


def _size(conn, tenant):
    return conn.execute("SELECT size FROM log_heads WHERE tenant_id = %s", (tenant,)).fetchone()[0]


def test_a_re_report_with_other_amounts_is_recorded_as_an_amendment(conn, registered_tenant):
    (opened,) = _append(conn, registered_tenant, _decision(_report()))
    (amended,) = _append(conn, registered_tenant, _decision(_report(actual_amount="10100.00")))
    assert not amended.replayed and amended.stream == opened.stream and amended.version == 2
    data = orjson.loads(amended.entry)["data"]
    assert orjson.loads(amended.entry)["type"] == "discrepancy.amended"
    assert data["changed"] == ["actual_amount"]
    assert (data["before"]["actual_amount"], data["after"]["actual_amount"]) == ("10000.00", "10100.00")
    assert (data["before"]["difference"], data["after"]["difference"]) == ("150.00", "250.00")
    d = opened.stream.removeprefix(store.PREFIX)
    assert _row(conn, registered_tenant, d) == (
        "amount_mismatch", "EUR", "9850.00", "10100.00", "250.00", "medium", "open")

    size = _size(conn, registered_tenant)
    (again,) = _append(conn, registered_tenant, _decision(_report(actual_amount="10100.00")))
    assert again.replayed and _size(conn, registered_tenant) == size  # the amended report again


def test_a_changed_currency_and_kind_are_named_with_before_and_after(conn, registered_tenant):
    (opened,) = _append(conn, registered_tenant, _decision(_report(ref="po-2")))
    (amended,) = _append(conn, registered_tenant, _decision(_report(
        ref="po-2", currency="USD", kind="other", detected_at="2026-11-24T05:00:00Z")))
    data = orjson.loads(amended.entry)["data"]
    assert data["changed"] == ["kind", "currency"]
    assert data["detected_at"] == "2026-11-24T05:00:00.000000Z" and data["status"] == "open"
    assert amended.state.currency == "USD" and amended.state.severity is domain.Severity.MEDIUM


def test_reports_of_one_batch_open_then_amend_then_replay(conn, registered_tenant):
    d = store.new_id()
    key = store.open_key("stripe", "po-3")
    out = _append(conn, registered_tenant, *(
        store.decision(d, c, ENGINE, key) for c in
        (_report(ref="po-3"), _report(ref="po-3", expected_amount="9900.00"),
         _report(ref="po-3", expected_amount="9900.00"))))
    assert [o.version for o in out] == [1, 2, 1] and [o.replayed for o in out] == [False, False, True]
    assert _row(conn, registered_tenant, d)[2] == "9900.00"


def test_a_decided_discrepancy_is_amended_and_its_snapshot_stays_frozen(conn, registered_tenant):
    (opened,) = _append(conn, registered_tenant, _decision(_report(ref="po-4")))
    d = opened.stream.removeprefix(store.PREFIX)
    manager = domain.Actor("key:max", "compliance_manager")
    _append(conn, registered_tenant,
            store.decision(d, domain.Transition(to="investigating"), manager),
            store.decision(d, domain.Transition(to="resolved", resolution_code="written_off",
                                                note="booked"), manager))
    (amended,) = _append(conn, registered_tenant, _decision(_report(ref="po-4", actual_amount="1.00")))
    assert amended.state.status is domain.Status.RESOLVED and amended.state.actual_amount == "1.00"
    with conn.transaction():
        conn.execute("SELECT set_config('indelible.tenant', %s, true)", (registered_tenant,))
        frozen = store.snapshot(conn, registered_tenant, d)
    assert frozen["discrepancy"]["actual_amount"] == "10000.00"


def test_the_policy_committed_after_the_caller_looked_is_the_one_applied(conn, registered_tenant):
    decision = _decision(_report(ref="po-5"))  # what the caller built, before the change
    policy = domain.parse_policy({"thresholds": {"EUR": {"medium": "1000.00", "high": "5000.00",
                                                         "critical": "100000.00"}}})
    (changed,) = _append(conn, registered_tenant, severity_policy.change(
        policy, reason="EUR is noisy", actor=ADMIN, expected_version=0))
    (opened,) = _append(conn, registered_tenant, decision)
    data = orjson.loads(opened.entry)["data"]
    assert (data["severity"], data["severity_basis"], data["severity_policy_seq"]) == (
        "low", "tenant_policy", changed.seq)


def test_a_policy_change_earlier_in_the_same_batch_applies_to_the_reports_after_it(
        conn, registered_tenant):
    policy = domain.parse_policy({"thresholds": {"EUR": {"medium": "1.00", "high": "100.00",
                                                         "critical": "120.00"}}})
    changed, opened = _append(conn, registered_tenant, severity_policy.change(
        policy, reason="tight", actor=ADMIN, expected_version=0), _decision(_report(ref="po-6")))
    assert opened.state.severity is domain.Severity.CRITICAL
    assert orjson.loads(opened.entry)["data"]["severity_policy_seq"] == changed.seq


def test_a_request_key_replays_its_request_and_refuses_any_other(conn, registered_tenant):
    (opened,) = _append(conn, registered_tenant, _decision(_report(ref="po-7")))
    d = opened.stream.removeprefix(store.PREFIX)

    def comment(text, sha):
        return store.decision(d, domain.Comment(text=text), ANALYST,
                              request_key="req:k1:c-1", request_sha256=sha)
    (first,) = _append(conn, registered_tenant, comment("fee", "a" * 64))
    meta = orjson.loads(first.entry)["meta"]
    assert (meta["request_key"], meta["request_sha256"]) == ("req:k1:c-1", "a" * 64)
    size = _size(conn, registered_tenant)
    again, other = _append(conn, registered_tenant, comment("fee", "a" * 64),
                           comment("another", "b" * 64))
    assert again.replayed and again.seq == first.seq
    assert isinstance(other, IdempotencyConflictError)
    assert (other.key, other.seq, other.stream) == ("req:k1:c-1", first.seq, opened.stream)
    assert _size(conn, registered_tenant) == size

    move = store.decision(d, domain.Transition(to="acknowledged"), ANALYST,
                          request_key="req:k1:c-1", request_sha256="c" * 64)
    (refused,) = _append(conn, registered_tenant, move)
    assert isinstance(refused, IdempotencyConflictError)


def test_a_request_key_is_bound_within_its_own_batch(conn, registered_tenant):
    (opened,) = _append(conn, registered_tenant, _decision(_report(ref="po-8")))
    d = opened.stream.removeprefix(store.PREFIX)
    out = _append(conn, registered_tenant, *(
        store.decision(d, domain.Comment(text=t), ANALYST, request_key="req:k1:c-2",
                       request_sha256=sha) for t, sha in (("x", "1" * 64), ("x", "1" * 64),
                                                           ("y", "2" * 64))))
    assert isinstance(out[0], Appended) and out[1].replayed and out[1].seq == out[0].seq
    assert isinstance(out[2], IdempotencyConflictError)


def test_a_hand_made_request_key_row_refuses_its_command_alone(conn, registered_tenant):
    """Someone with the service's login binds a victim's next key to an unrelated entry: that
    request is refused (the index contradicts the evidence), its batch-mates go on."""
    (opened,) = _append(conn, registered_tenant, _decision(_report(ref="po-forged")))
    d = opened.stream.removeprefix(store.PREFIX)
    with conn.transaction():
        conn.execute("SELECT set_config('indelible.tenant', %s, true)", (registered_tenant,))
        conn.execute("INSERT INTO request_keys (tenant_id, request_key, seq) VALUES (%s, %s, %s)",
                     (registered_tenant, "req:victim:next", opened.seq))
    victim = store.decision(d, domain.Comment(text="mine"), ANALYST,
                            request_key="req:victim:next", request_sha256="d" * 64)
    mate = store.decision(d, domain.Comment(text="unrelated"), ANALYST)
    refused, appended = _append(conn, registered_tenant, victim, mate)
    assert "does not record it" in str(refused) and not isinstance(refused, Appended)
    assert isinstance(appended, Appended)


def test_a_request_key_with_a_nul_is_refused_alone(conn, registered_tenant):
    (opened,) = _append(conn, registered_tenant, _decision(_report(ref="po-9")))
    d = opened.stream.removeprefix(store.PREFIX)
    good, bad = _append(conn, registered_tenant, *(
        store.decision(d, domain.Comment(text="x"), ANALYST, request_key=key,
                       request_sha256="1" * 64) for key in ("req:fine", "req:nul\x00")))
    assert isinstance(good, Appended)
    assert isinstance(bad, InvalidEntryError) and "holds a NUL" in str(bad)


def test_an_empty_request_key_answers_its_repeat_and_fails_no_batch_mate(conn, registered_tenant):
    (opened,) = _append(conn, registered_tenant, _decision(_report(ref="po-10")))
    d = opened.stream.removeprefix(store.PREFIX)

    def comment(text, key):
        return store.decision(d, domain.Comment(text=text), ANALYST, request_key=key,
                              request_sha256="1" * 64)

    (first,) = _append(conn, registered_tenant, comment("x", ""))
    repeat, mate = _append(conn, registered_tenant, comment("x", ""), comment("y", "req:mate"))
    assert isinstance(first, Appended) and isinstance(mate, Appended)
    assert isinstance(repeat, Appended) and repeat.seq == first.seq and repeat.replayed
