"""The exceptions raised by :mod:`indelible.domain`.

Exception tree::

    Exception
     └── DomainError                      anything the discrepancy domain refuses
          ├── InvalidCommandError         a command is malformed on its own (.field, .rule)
          ├── InvalidEventError           an event cannot be folded: the stream is corrupt
          └── RefusedError                a well-formed command the current state refuses
               ├── TransitionRefusedError     this role may not make this move from here
               ├── PermissionRefusedError     this role may not issue this command at all
               ├── UnknownDiscrepancyError    the discrepancy does not exist
               ├── DuplicateDiscrepancyError  already opened (same source and external_ref)
               ├── StaleReportError           a re-report older than the report recorded
               ├── ClosedDiscrepancyError     terminal: only comments are accepted
               └── NoChangeError              the command would change nothing

Two families, two meanings. :class:`InvalidCommandError` depends on the command alone
(the HTTP edge answers 422 and names ``field`` and ``rule``); every :class:`RefusedError`
depends on the state the command met (409), and its message is written for a person:
which discrepancy, which state, which move, and what is allowed instead.

Caller misuse (for example a ``discrepancy_id`` that contradicts the state handed in) is a
bug in the calling code, not a refusal, and raises :class:`ValueError` or :class:`TypeError`.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ClosedDiscrepancyError",
    "DomainError",
    "DuplicateDiscrepancyError",
    "InvalidCommandError",
    "InvalidEventError",
    "NoChangeError",
    "PermissionRefusedError",
    "RefusedError",
    "StaleReportError",
    "TransitionRefusedError",
    "UnknownDiscrepancyError",
]


class DomainError(Exception):
    """Root of every error the discrepancy domain raises on purpose."""


class InvalidCommandError(DomainError):
    """A command field breaks a rule; the message is ``"<field>: <rule>"``."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class InvalidEventError(DomainError):
    """An event cannot be applied to the state it meets (corrupt or foreign stream)."""


class RefusedError(DomainError):
    """A well-formed command that the discrepancy's current state does not allow."""


def _names(values: Iterable[str]) -> str:
    return ", ".join(values) or "none"


class TransitionRefusedError(RefusedError):
    """A status move this role may not make from the current status.

    ``allowed`` lists, sorted, the statuses this role may move to from here (taking the
    investigated rule into account), so a client can offer the moves that would work.
    """

    def __init__(self, *, discrepancy_id: str, status: str, requested: str, role: str,
                 allowed: list[str], why: str | None = None) -> None:
        because = f" ({why})" if why else ""
        super().__init__(
            f"discrepancy {discrepancy_id}: cannot move from '{status}' to '{requested}' "
            f"as {role}{because}; allowed from here: {_names(allowed)}"
        )
        self.discrepancy_id = discrepancy_id
        self.status = status
        self.requested = requested
        self.role = role
        self.allowed = list(allowed)
        self.why = why


class PermissionRefusedError(RefusedError):
    """This role may never issue this kind of command, whatever the state."""

    def __init__(self, *, action: str, role: str, allowed_roles: list[str],
                 discrepancy_id: str | None = None) -> None:
        where = f"discrepancy {discrepancy_id}: " if discrepancy_id else ""
        super().__init__(
            f"{where}{role} may not {action}; roles that may: {_names(allowed_roles)}"
        )
        self.action = action
        self.role = role
        self.allowed_roles = list(allowed_roles)
        self.discrepancy_id = discrepancy_id


class UnknownDiscrepancyError(RefusedError):
    """A command names a discrepancy that was never opened."""

    def __init__(self, discrepancy_id: str) -> None:
        super().__init__(f"discrepancy {discrepancy_id} does not exist")
        self.discrepancy_id = discrepancy_id


class DuplicateDiscrepancyError(RefusedError):
    """The source already reported this external_ref; ``existing_id`` is the discrepancy."""

    def __init__(self, *, existing_id: str, source: str, external_ref: str) -> None:
        super().__init__(
            f"discrepancy {existing_id} already exists for source '{source}' "
            f"and external_ref '{external_ref}'"
        )
        self.existing_id = existing_id
        self.source = source
        self.external_ref = external_ref


class StaleReportError(RefusedError):
    """A re-report with other facts, detected before the report already recorded: applying
    it would roll a later amendment back (a redelivered or retried old report)."""

    def __init__(self, *, discrepancy_id: str, detected_at: str, reported_at: str) -> None:
        super().__init__(
            f"discrepancy {discrepancy_id}: this report (detected_at {detected_at}) is older "
            f"than the one recorded (detected_at {reported_at}); it is not applied"
        )
        self.discrepancy_id = discrepancy_id
        self.detected_at = detected_at
        self.reported_at = reported_at


class ClosedDiscrepancyError(RefusedError):
    """The discrepancy is in a terminal status, where only comments are still accepted."""

    def __init__(self, *, discrepancy_id: str, status: str, action: str) -> None:
        super().__init__(
            f"discrepancy {discrepancy_id}: cannot {action}: it is {status} (terminal); "
            "only comments are accepted"
        )
        self.discrepancy_id = discrepancy_id
        self.status = status
        self.action = action


class NoChangeError(RefusedError):
    """The command would record nothing new (same assignee, same severity, same file)."""

    def __init__(self, *, discrepancy_id: str, field: str, detail: str) -> None:
        super().__init__(f"discrepancy {discrepancy_id}: {field} {detail}; nothing to change")
        self.discrepancy_id = discrepancy_id
        self.field = field
        self.detail = detail
