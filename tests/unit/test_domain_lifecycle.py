"""The transition table is the whole truth about status moves: decide() accepts exactly
its moves (less resolving what was never investigated) and refuses everything else with
a message that names the discrepancy, its status, the requested move and the role."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from indelible.domain import (
    TERMINAL,
    TRANSITIONS,
    Actor,
    OpenDiscrepancy,
    Role,
    Status,
    Transition,
    TransitionRefusedError,
    allowed_moves,
    can_move,
    decide,
    evolve,
)

ID = "0190d3c2-7a1e-7cc0-8000-000000000001"
AT = "2026-11-23T05:00:00.000000Z"


def opened():
    command = OpenDiscrepancy(external_ref="ref-1", source="stripe", kind="amount_mismatch",
                              expected_amount="10.00", actual_amount="9.50", currency="EUR",
                              detected_at="2026-11-22T10:00:00Z")
    event = decide(None, command, Actor("eng", Role.SYSTEM), discrepancy_id=ID)
    return evolve(None, event, at=AT)


BASE = opened()


def at_status(status: Status, *, investigated: bool):
    return replace(BASE, status=status, investigated=investigated)


def move(target: Status) -> Transition:
    """A well-formed command for any target: reasons, codes and notes where required."""
    if target is Status.RESOLVED:
        return Transition(target, resolution_code="corrected_in_ledger", note="Booked the fee.")
    if target in (Status.ESCALATED, Status.AUTO_CLOSED):
        return Transition(target, reason="Unattended for 48 hours.")
    return Transition(target)


def test_the_table_has_one_row_per_status_and_one_line_per_role():
    assert set(TRANSITIONS) == set(Status)
    for status, row in TRANSITIONS.items():
        assert set(row) == set(Role), status
        for moves in row.values():
            assert isinstance(moves, frozenset) and moves <= set(Status)
            assert status not in moves  # a move always changes the status


def test_terminal_rows_are_empty_and_auditor_and_admin_never_move():
    assert {Status.RESOLVED, Status.AUTO_CLOSED} == TERMINAL
    for status in TERMINAL:
        assert all(not moves for moves in TRANSITIONS[status].values())
    for status in Status:
        assert not TRANSITIONS[status][Role.AUDITOR]
        assert not TRANSITIONS[status][Role.ADMIN]


def test_only_people_resolve_and_only_the_engine_auto_closes():
    for row in TRANSITIONS.values():
        assert Status.RESOLVED not in row[Role.SYSTEM]
        for role in (Role.ANALYST, Role.COMPLIANCE_MANAGER):
            assert Status.AUTO_CLOSED not in row[role]


def test_allowed_moves_are_listed_in_lifecycle_order():
    moves = allowed_moves(Status.OPEN, Role.COMPLIANCE_MANAGER, investigated=False)
    assert moves == [Status.ACKNOWLEDGED, Status.INVESTIGATING, Status.ESCALATED]
    assert allowed_moves("escalated", "compliance_manager", investigated=True) == [
        Status.INVESTIGATING, Status.RESOLVED]


def test_allowed_moves_never_offer_resolving_what_was_not_investigated():
    assert allowed_moves(Status.ESCALATED, Role.COMPLIANCE_MANAGER, investigated=False) == [
        Status.INVESTIGATING]
    assert not can_move(Status.ESCALATED, Role.COMPLIANCE_MANAGER, Status.RESOLVED,
                        investigated=False)
    assert can_move(Status.ESCALATED, Role.COMPLIANCE_MANAGER, Status.RESOLVED,
                    investigated=True)


TRIPLES = list(itertools.product(Status, Role, Status, (False, True)))


@pytest.mark.parametrize(("status", "role", "target", "investigated"), TRIPLES,
                         ids=[f"{s}-{r}-{t}-{'inv' if i else 'new'}" for s, r, t, i in TRIPLES])
def test_decide_accepts_exactly_the_moves_in_the_table(status, role, target, investigated):
    state = at_status(status, investigated=investigated)
    actor = Actor("someone", role)
    in_table = target in TRANSITIONS[status][role]
    allowed = in_table and (target is not Status.RESOLVED or investigated)
    if allowed:
        event = decide(state, move(target), actor, discrepancy_id=ID)
        assert event.type == "discrepancy.transitioned"
        assert (event.data["from"], event.data["to"]) == (status.value, target.value)
        after = evolve(state, event, at=AT)
        assert after.status is target
        assert after.investigated is (investigated or target is Status.INVESTIGATING)
        return
    with pytest.raises(TransitionRefusedError) as refused:
        decide(state, move(target), actor, discrepancy_id=ID)
    error = refused.value
    expected_allowed = [s.value for s in allowed_moves(status, role, investigated=investigated)]
    assert error.allowed == expected_allowed
    assert (error.discrepancy_id, error.status, error.requested, error.role) == (
        ID, status.value, target.value, role.value)
    message = str(error)
    assert message.startswith(f"discrepancy {ID}: cannot move from '{status}' to '{target}' "
                              f"as {role}")
    assert message.endswith(f"; allowed from here: {', '.join(expected_allowed) or 'none'}")


def test_the_refusal_reads_like_a_sentence():
    with pytest.raises(TransitionRefusedError) as refused:
        decide(BASE, move(Status.RESOLVED), Actor("ana", Role.ANALYST), discrepancy_id=ID)
    assert str(refused.value) == (
        f"discrepancy {ID}: cannot move from 'open' to 'resolved' as analyst; "
        "allowed from here: acknowledged, investigating"
    )


def test_resolving_an_acknowledged_discrepancy_is_refused():
    state = at_status(Status.ACKNOWLEDGED, investigated=False)
    for role in (Role.ANALYST, Role.COMPLIANCE_MANAGER):
        with pytest.raises(TransitionRefusedError, match="from 'acknowledged' to 'resolved'") as r:
            decide(state, move(Status.RESOLVED), Actor("p", role), discrepancy_id=ID)
        assert "investigating" in r.value.allowed


def test_resolving_after_escalation_without_investigation_is_refused():
    engine, manager = Actor("engine", Role.SYSTEM), Actor("mgr", Role.COMPLIANCE_MANAGER)
    escalated = evolve(BASE, decide(BASE, move(Status.ESCALATED), engine, discrepancy_id=ID),
                       at=AT)
    assert escalated.status is Status.ESCALATED and not escalated.investigated
    with pytest.raises(TransitionRefusedError) as refused:
        decide(escalated, move(Status.RESOLVED), manager, discrepancy_id=ID)
    assert refused.value.allowed == ["investigating"]
    assert refused.value.why == "it was never investigated"
    assert str(refused.value) == (
        f"discrepancy {ID}: cannot move from 'escalated' to 'resolved' as compliance_manager "
        "(it was never investigated); allowed from here: investigating"
    )


def test_resolving_after_escalation_from_investigation_is_allowed():
    manager = Actor("mgr", Role.COMPLIANCE_MANAGER)
    state = BASE
    for target in (Status.INVESTIGATING, Status.ESCALATED, Status.RESOLVED):
        state = evolve(state, decide(state, move(target), manager, discrepancy_id=ID), at=AT)
    assert state.status is Status.RESOLVED


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
@pytest.mark.parametrize("role", list(Role))
def test_terminal_states_refuse_every_move(terminal, role):
    state = at_status(terminal, investigated=True)
    for target in Status:
        with pytest.raises(TransitionRefusedError, match=rf"\({terminal} is terminal\); "
                                                         "allowed from here: none"):
            decide(state, move(target), Actor("p", role), discrepancy_id=ID)


def test_the_table_is_the_agreed_policy():
    """A second, flat spelling of the policy: changing the table means changing this too."""
    granted = {(s.value, r.value, t.value)
               for s, row in TRANSITIONS.items() for r, moves in row.items() for t in moves}
    assert granted == {
        ("open", "analyst", "acknowledged"), ("open", "analyst", "investigating"),
        ("open", "compliance_manager", "acknowledged"),
        ("open", "compliance_manager", "investigating"),
        ("open", "compliance_manager", "escalated"),
        ("open", "system", "escalated"), ("open", "system", "auto_closed"),
        ("acknowledged", "analyst", "investigating"),
        ("acknowledged", "compliance_manager", "investigating"),
        ("acknowledged", "compliance_manager", "escalated"),
        ("acknowledged", "system", "escalated"), ("acknowledged", "system", "auto_closed"),
        ("investigating", "analyst", "resolved"),
        ("investigating", "compliance_manager", "resolved"),
        ("investigating", "compliance_manager", "escalated"),
        ("investigating", "system", "escalated"),
        ("escalated", "compliance_manager", "investigating"),
        ("escalated", "compliance_manager", "resolved"),
    }
