"""evolve/replay: the state is a pure fold of plain-JSON events, so read models and time
travel can be rebuilt from the ledger byte for byte."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from indelible.domain import (
    Actor,
    Assign,
    AttachEvidence,
    ChangeSeverity,
    Comment,
    Event,
    InvalidEventError,
    Kind,
    OpenDiscrepancy,
    ResolutionCode,
    Role,
    Severity,
    Status,
    Transition,
    decide,
    evolve,
    replay,
)
from indelible.proofs import canonical_json

ID = "0190d3c2-7a1e-7cc0-8000-000000000003"
SHA = "f" * 64
ANALYST = Actor("ana", Role.ANALYST)
MANAGER = Actor("mia", Role.COMPLIANCE_MANAGER)


def times():
    for minute in range(60):
        yield f"2026-11-23T05:{minute:02d}:00.000000Z"


def walk():
    """A whole life: opened, worked, resolved, annotated. Returns [(event, at)]."""
    commands = [
        (OpenDiscrepancy(external_ref="pi_9", source="stripe", kind="amount_mismatch",
                         expected_amount="1500", actual_amount="1450", currency="JPY",
                         detected_at="2026-11-22T23:59:59.999999-02:00",
                         metadata={"batch": 7, "flags": [True, None], "psp": {"id": "x"}},
                         transaction_refs=("ch_1", "ch_2")), ANALYST),
        (Assign("ana"), MANAGER),
        (Transition("acknowledged"), ANALYST),
        (Transition("investigating", reason="Fee suspected"), ANALYST),
        (AttachEvidence(SHA, "settlement.csv", 512, "text/csv"), ANALYST),
        (ChangeSeverity("medium", "Recurring pattern"), MANAGER),
        (Transition("resolved", resolution_code="corrected_by_counterparty",
                    note="Stripe refunded the fee."), ANALYST),
        (Comment("Confirmed on the next statement."), ANALYST),
    ]
    state, events, clock = None, [], times()
    for command, actor in commands:
        event = decide(state, command, actor, discrepancy_id=ID)
        at = next(clock)
        state = evolve(state, event, at=at)
        events.append((event, at))
    return state, events


def test_a_full_walk_folds_to_the_expected_state():
    state, _events = walk()
    assert state.to_dict() == {
        "id": ID, "external_ref": "pi_9", "source": "stripe", "kind": "amount_mismatch",
        "expected_amount": "1500", "actual_amount": "1450", "currency": "JPY",
        "difference": "-50", "severity": "medium", "status": "resolved", "assignee": "ana",
        "detected_at": "2026-11-23T01:59:59.999999Z",
        "metadata": {"batch": 7, "flags": [True, None], "psp": {"id": "x"}},
        "transaction_refs": ["ch_1", "ch_2"], "investigated": True,
        "resolution_code": "corrected_by_counterparty",
        "resolution_note": "Stripe refunded the fee.", "version": 8,
        "opened_at": "2026-11-23T05:00:00.000000Z", "updated_at": "2026-11-23T05:07:00.000000Z",
        "comments": 1,
        "evidence": [{"sha256": SHA, "name": "settlement.csv", "size": 512,
                      "media_type": "text/csv"}],
    }
    assert state.kind is Kind.AMOUNT_MISMATCH and state.status is Status.RESOLVED
    assert state.severity is Severity.MEDIUM
    assert state.resolution_code is ResolutionCode.CORRECTED_BY_COUNTERPARTY


def test_open_acknowledge_investigate_resolve_counts_four_versions():
    state = None
    for command in [
        OpenDiscrepancy(external_ref="r", source="bank", kind="missing_transaction",
                        expected_amount="12.500", actual_amount="0", currency="KWD",
                        detected_at="2026-11-22T10:00:00Z"),
        Transition("acknowledged"), Transition("investigating"),
        Transition("resolved", resolution_code="false_positive", note="Posted late."),
    ]:
        previous = state.version if state else 0
        state = evolve(state, decide(state, command, ANALYST, discrepancy_id=ID), at="t")
        assert state.version == previous + 1
    assert (state.status, state.version, state.difference) == (Status.RESOLVED, 4, "-12.500")


def test_replay_equals_the_step_by_step_fold_and_every_prefix_is_a_past_state():
    state, events = walk()
    assert replay(events) == state
    assert replay([]) is None
    as_of = replay(events[:4])
    assert (as_of.status, as_of.version, as_of.updated_at) == (
        Status.INVESTIGATING, 4, "2026-11-23T05:03:00.000000Z")


def refuse_everything(value):
    raise TypeError(f"not plain JSON: {type(value).__name__}")


def test_event_data_is_plain_json_without_floats_decimals_or_enums():
    _, events = walk()
    for event, _ in events:
        assert type(event.type) is str
        json.dumps(event.data, allow_nan=False, default=refuse_everything)
        canonical_json({"type": event.type, "data": event.data})  # exact types only


def test_folding_events_read_back_from_json_gives_the_same_state():
    state, events = walk()
    stored = [(Event(e.type, json.loads(json.dumps(e.data))), at) for e, at in events]
    assert replay(stored) == state


def test_the_fold_does_not_share_metadata_with_the_event():
    _, events = walk()
    state = evolve(None, events[0][0], at="t")
    state.metadata["psp"]["id"] = "mutated"
    assert events[0][0].data["metadata"]["psp"]["id"] == "x"


def test_evolve_refuses_an_event_that_contradicts_the_state():
    state, events = walk()
    opened_event = events[0][0]
    with pytest.raises(InvalidEventError, match=f"discrepancy {ID} is already open"):
        evolve(state, opened_event, at="t")
    with pytest.raises(InvalidEventError, match="discrepancy.commented before discrepancy.opened"):
        evolve(None, Event("discrepancy.commented", {"text": "x"}), at="t")
    with pytest.raises(InvalidEventError, match="unknown event type 'discrepancy.deleted'"):
        evolve(state, Event("discrepancy.deleted", {}), at="t")
    with pytest.raises(InvalidEventError, match="recorded move from 'open' but it is 'resolved'"):
        evolve(state, Event("discrepancy.transitioned", {"from": "open", "to": "escalated"}),
               at="t")
    facts = {"kind": "other", "expected_amount": "1.00", "actual_amount": "2.00",
             "currency": "EUR", "difference": "1.00"}
    with pytest.raises(InvalidEventError, match="recorded amendment from"):
        evolve(state, Event("discrepancy.amended", {"changed": ["kind"], "before": facts,
                                                    "after": facts}), at="t")


@pytest.mark.parametrize("event", [
    Event("discrepancy.transitioned", {"from": "investigating"}),
    Event("discrepancy.transitioned", {"from": "investigating", "to": "closed"}),
    Event("discrepancy.severity_changed", {"to": "urgent"}),
    Event("discrepancy.evidence_attached", {"sha256": SHA}),
    Event("discrepancy.assigned", None),
    Event("discrepancy.amended", {"changed": ["kind"]}),
])
def test_evolve_refuses_malformed_event_data(event):
    _, events = walk()
    investigating = replay(events[:4])
    with pytest.raises(InvalidEventError, match="malformed event data"):
        evolve(investigating, event, at="t")


def test_evolve_trusts_recorded_moves_even_outside_todays_table():
    _, events = walk()
    state = replay(events[:1])
    moved = evolve(state, Event("discrepancy.transitioned",
                                {"from": "open", "to": "resolved", "reason": None,
                                 "resolution_code": "other", "note": "legacy import"}), at="t")
    assert moved.status is Status.RESOLVED and moved.investigated is False


def test_investigated_stays_true_after_leaving_investigating():
    _, events = walk()
    state = replace(replay(events[:4]), status=Status.INVESTIGATING)
    escalate = Transition("escalated", reason="Large")
    state = evolve(state, decide(state, escalate, MANAGER, discrepancy_id=ID), at="t")
    assert state.status is Status.ESCALATED and state.investigated


def test_evolve_needs_an_event_and_the_entry_time_as_a_string():
    _, events = walk()
    with pytest.raises(TypeError, match="evolve needs an Event and the entry's time"):
        evolve(None, events[0][0], at=None)
    with pytest.raises(TypeError, match="evolve needs an Event"):
        evolve(None, {"type": "discrepancy.opened"}, at="t")
