"""decide(): who may issue which command, on which discrepancy, in which state."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from indelible.domain import (
    PERMISSIONS,
    TERMINAL,
    Actor,
    Assign,
    AttachEvidence,
    ChangeSeverity,
    ClosedDiscrepancyError,
    Comment,
    Discrepancy,
    DuplicateDiscrepancyError,
    NoChangeError,
    OpenDiscrepancy,
    PermissionRefusedError,
    RefusedError,
    Role,
    Severity,
    StaleReportError,
    Status,
    Transition,
    TransitionRefusedError,
    UnknownDiscrepancyError,
    decide,
    default_severity,
    evolve,
)

ID = "0190d3c2-7a1e-7cc0-8000-000000000002"
AT = "2026-11-23T05:00:00.000000Z"
SHA = "0123456789abcdef" * 4
ANALYST = Actor("ana", Role.ANALYST)
MANAGER = Actor("mia", Role.COMPLIANCE_MANAGER)
ENGINE = Actor("recon", Role.SYSTEM)
AUDITOR = Actor("aud", Role.AUDITOR)
ADMIN = Actor("adm", Role.ADMIN)


def report(**changes) -> OpenDiscrepancy:
    fields = {"external_ref": "pi_1", "source": "stripe", "kind": "amount_mismatch",
                  "expected_amount": "100.00", "actual_amount": "90.00", "currency": "EUR",
                  "detected_at": "2026-11-22T10:00:00Z"}
    fields.update(changes)
    return OpenDiscrepancy(**fields)


def opened(**changes):
    return evolve(None, decide(None, report(**changes), ENGINE, discrepancy_id=ID), at=AT)


CASE_WORK = {
    Assign: Assign("ana"),
    Comment: Comment("Called the bank."),
    AttachEvidence: AttachEvidence(SHA, "statement.pdf", 2048, "application/pdf"),
    ChangeSeverity: ChangeSeverity("critical", "Regulator involved."),
}


def test_the_permission_table_is_the_brief():
    assert PERMISSIONS == {
        OpenDiscrepancy: {Role.ANALYST, Role.COMPLIANCE_MANAGER, Role.SYSTEM},
        Assign: {Role.ANALYST, Role.COMPLIANCE_MANAGER},
        Comment: {Role.ANALYST, Role.COMPLIANCE_MANAGER},
        AttachEvidence: {Role.ANALYST, Role.COMPLIANCE_MANAGER},
        ChangeSeverity: {Role.COMPLIANCE_MANAGER, Role.SYSTEM},
    }


@pytest.mark.parametrize("command_type", list(CASE_WORK))
@pytest.mark.parametrize("role", list(Role))
def test_case_work_follows_the_permission_table(command_type, role):
    state = opened()
    command = CASE_WORK[command_type]
    if role in PERMISSIONS[command_type]:
        event = decide(state, command, Actor("p", role), discrepancy_id=ID)
        assert evolve(state, event, at=AT).version == 2
        return
    with pytest.raises(PermissionRefusedError, match=f"discrepancy {ID}: {role} may not") as r:
        decide(state, command, Actor("p", role), discrepancy_id=ID)
    assert r.value.role == role.value
    assert r.value.allowed_roles == [x.value for x in Role if x in PERMISSIONS[command_type]]


@pytest.mark.parametrize("role", list(Role))
def test_opening_follows_the_permission_table(role):
    if role in PERMISSIONS[OpenDiscrepancy]:
        assert decide(None, report(), Actor("p", role), discrepancy_id=ID).type == (
            "discrepancy.opened")
        return
    with pytest.raises(PermissionRefusedError) as refused:
        decide(None, report(), Actor("p", role), discrepancy_id=ID)
    assert str(refused.value) == (f"{role} may not open a discrepancy; roles that may: "
                                  "analyst, compliance_manager, system")


def test_the_auditor_is_refused_everything():
    state = opened()
    refusals = [decide_refusal(None, report(), AUDITOR)]
    refusals += [decide_refusal(state, command, AUDITOR) for command in CASE_WORK.values()]
    refusals += [decide_refusal(state, Transition(target, reason="r") if target in
                                (Status.ESCALATED, Status.AUTO_CLOSED) else Transition(target),
                                AUDITOR)
                 for target in Status if target is not Status.RESOLVED]
    assert all(isinstance(error, (PermissionRefusedError, TransitionRefusedError))
               for error in refusals)
    assert all(error.role == "auditor" for error in refusals)


def decide_refusal(state, command, actor) -> RefusedError:
    with pytest.raises(RefusedError) as refused:
        decide(state, command, actor, discrepancy_id=ID)
    return refused.value


def test_opening_records_the_normalised_report_with_its_difference():
    event = decide(None, report(metadata={"psp": "stripe"}, transaction_refs=["ch_1"]),
                   ANALYST, discrepancy_id=ID)
    assert event.type == "discrepancy.opened"
    assert event.data == {
        "id": ID, "external_ref": "pi_1", "source": "stripe", "kind": "amount_mismatch",
        "expected_amount": "100.00", "actual_amount": "90.00", "currency": "EUR",
        "difference": "-10.00", "severity": "low", "detected_at": "2026-11-22T10:00:00.000000Z",
        "metadata": {"psp": "stripe"}, "transaction_refs": ["ch_1"],
        "severity_basis": "built_in",
    }


def test_a_given_severity_wins_over_the_default():
    event = decide(None, report(severity="critical"), ANALYST, discrepancy_id=ID)
    assert event.data["severity"] == "critical"


def test_opening_twice_is_refused_with_the_existing_id():
    existing = opened()
    with pytest.raises(DuplicateDiscrepancyError) as refused:
        decide(existing, report(), ENGINE, discrepancy_id="another-new-id")
    assert refused.value.existing_id == ID
    assert str(refused.value) == (f"discrepancy {ID} already exists for source 'stripe' "
                                  "and external_ref 'pi_1'")


def test_a_re_report_with_other_facts_is_an_amendment_naming_each_change():
    event = decide(opened(), report(actual_amount="95.00", detected_at="2026-11-24T10:00:00Z"),
                   ENGINE, discrepancy_id="another-new-id")
    assert event.type == "discrepancy.amended"
    assert event.data == {
        "changed": ["actual_amount"],
        "before": {"kind": "amount_mismatch", "expected_amount": "100.00",
                   "actual_amount": "90.00", "currency": "EUR", "difference": "-10.00"},
        "after": {"kind": "amount_mismatch", "expected_amount": "100.00",
                  "actual_amount": "95.00", "currency": "EUR", "difference": "-5.00"},
        "detected_at": "2026-11-24T10:00:00.000000Z", "status": "open"}


def test_a_re_report_differing_only_in_context_is_a_duplicate():
    again = report(detected_at="2026-11-30T10:00:00Z", metadata={"run": 2},
                   transaction_refs=("ch_9",), severity="critical")
    with pytest.raises(DuplicateDiscrepancyError):
        decide(opened(), again, ENGINE, discrepancy_id="another-new-id")


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_a_decided_discrepancy_is_amended_and_keeps_its_status(status):
    state = replace(opened(), status=status)
    event = decide(state, report(currency="USD", kind="other"), ENGINE, discrepancy_id="x")
    assert event.data["changed"] == ["kind", "currency"] and event.data["status"] == status
    after = evolve(state, event, at=AT)
    assert (after.status, after.currency, after.kind, after.severity) == (
        status, "USD", "other", state.severity)


def test_an_amendment_needs_the_right_to_report():
    with pytest.raises(PermissionRefusedError):
        decide(opened(), report(actual_amount="1.00"), AUDITOR, discrepancy_id="x")


def test_opening_against_the_state_of_another_report_is_a_caller_bug():
    with pytest.raises(ValueError, match="reported under another ref"):
        decide(opened(), report(external_ref="pi_2"), ENGINE, discrepancy_id="new")


@pytest.mark.parametrize("command", [*CASE_WORK.values(), Transition("acknowledged")])
def test_commands_on_a_discrepancy_that_does_not_exist_are_refused(command):
    actor = MANAGER if not isinstance(command, ChangeSeverity) else ENGINE
    with pytest.raises(UnknownDiscrepancyError, match=f"discrepancy {ID} does not exist"):
        decide(None, command, actor, discrepancy_id=ID)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
@pytest.mark.parametrize("command_type", [Assign, AttachEvidence, ChangeSeverity])
def test_terminal_states_refuse_every_non_comment_command(terminal, command_type):
    state = replace(opened(), status=terminal, investigated=True)
    with pytest.raises(ClosedDiscrepancyError,
                       match=f"discrepancy {ID}: cannot .*: it is {terminal} \\(terminal\\); "
                             "only comments are accepted"):
        decide(state, CASE_WORK[command_type], MANAGER, discrepancy_id=ID)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_comments_are_accepted_after_closing(terminal):
    state = replace(opened(), status=terminal, investigated=True)
    event = decide(state, Comment("Auditor asked for the bank letter."), ANALYST,
                   discrepancy_id=ID)
    assert evolve(state, event, at=AT).comments == 1


def test_assigning_records_from_and_to_and_refuses_no_change():
    state = opened()
    event = decide(state, Assign("ana"), MANAGER, discrepancy_id=ID)
    assert event.data == {"from": None, "to": "ana"}
    state = evolve(state, event, at=AT)
    with pytest.raises(NoChangeError, match="assignee is already 'ana'; nothing to change"):
        decide(state, Assign("ana"), MANAGER, discrepancy_id=ID)
    event = decide(state, Assign(None), MANAGER, discrepancy_id=ID)
    assert event.data == {"from": "ana", "to": None}
    state = evolve(state, event, at=AT)
    with pytest.raises(NoChangeError, match="assignee is already nobody"):
        decide(state, Assign(None), MANAGER, discrepancy_id=ID)


def test_changing_severity_records_the_reason_and_refuses_no_change():
    state = opened()
    event = decide(state, ChangeSeverity("high", "Repeated at month end."), MANAGER,
                   discrepancy_id=ID)
    assert event.data == {"from": "low", "to": "high", "reason": "Repeated at month end."}
    with pytest.raises(NoChangeError, match="severity is already low"):
        decide(state, ChangeSeverity("low", "Same."), ENGINE, discrepancy_id=ID)


def test_attaching_the_same_file_twice_is_refused():
    state = opened()
    event = decide(state, CASE_WORK[AttachEvidence], ANALYST, discrepancy_id=ID)
    assert event.data == {"sha256": SHA, "name": "statement.pdf", "size": 2048,
                          "media_type": "application/pdf"}
    state = evolve(state, event, at=AT)
    with pytest.raises(NoChangeError, match=f"evidence already holds file {SHA}"):
        decide(state, AttachEvidence(SHA, "copy.pdf", 2048, "application/pdf"), ANALYST,
               discrepancy_id=ID)


def test_a_transition_records_its_reason_and_resolution():
    state = replace(opened(), status=Status.INVESTIGATING, investigated=True)
    event = decide(state, Transition("resolved", resolution_code="written_off",
                                     note="Below the write-off limit.", reason="Month end"),
                   ANALYST, discrepancy_id=ID)
    assert event.data == {"from": "investigating", "to": "resolved", "reason": "Month end",
                          "resolution_code": "written_off", "note": "Below the write-off limit."}


@pytest.mark.parametrize(("difference", "currency", "severity"), [
    ("0", "EUR", Severity.LOW),
    ("-99.99", "EUR", Severity.LOW),
    ("100.00", "EUR", Severity.MEDIUM),
    ("-9999.99", "USD", Severity.MEDIUM),
    ("10000", "EUR", Severity.HIGH),
    ("999999.99", "EUR", Severity.HIGH),
    ("1000000", "EUR", Severity.CRITICAL),
    ("9999", "JPY", Severity.LOW),
    ("10000", "JPY", Severity.MEDIUM),
    ("9.999", "KWD", Severity.LOW),
    ("10.000", "KWD", Severity.MEDIUM),
    ("100000", "KWD", Severity.CRITICAL),
])
def test_default_severity_uses_thresholds_in_minor_units(difference, currency, severity):
    assert default_severity(Decimal(difference), currency) is severity


def test_decide_rejects_caller_mistakes():
    state = opened()
    with pytest.raises(ValueError, match=f"state is discrepancy {ID}, not other"):
        decide(state, Comment("x"), ANALYST, discrepancy_id="other")
    with pytest.raises(ValueError, match="discrepancy_id must be a non-empty string"):
        decide(state, Comment("x"), ANALYST, discrepancy_id="")
    with pytest.raises(TypeError, match="not a discrepancy command: str"):
        decide(state, "close it", ANALYST, discrepancy_id=ID)
    with pytest.raises(TypeError, match="actor must be an Actor"):
        decide(state, Comment("x"), ("ana", "analyst"), discrepancy_id=ID)


def test_an_older_report_arriving_after_an_amendment_is_refused_as_stale_not_applied():
    first = report(actual_amount="95.00", detected_at="2026-11-24T10:00:00Z")
    amended = evolve(opened(), decide(opened(), first, ENGINE, discrepancy_id="x"), at=AT)
    late = report(detected_at="2026-11-23T05:00:00Z")  # the opening report, redelivered
    with pytest.raises(StaleReportError, match="older than the one recorded"):
        decide(amended, late, ENGINE, discrepancy_id="x")
    with pytest.raises(DuplicateDiscrepancyError):  # the amended report again: nothing new
        decide(amended, first, ENGINE, discrepancy_id="x")
    assert amended.to_dict()["reported_at"] == "2026-11-24T10:00:00.000000Z"
    assert Discrepancy.from_dict(amended.to_dict()) == amended
