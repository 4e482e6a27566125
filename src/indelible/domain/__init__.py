"""The discrepancy domain: pure rules, no I/O, standard library only.

- :mod:`.lifecycle` statuses, roles and the one transition table (DESIGN §7);
- :mod:`.money` ISO 4217 minor units, decimal-string amounts;
- :mod:`.commands` what may be asked, each command validated when it is built;
- :mod:`.decisions` :func:`decide`: whether a command is allowed now, and its event;
- :mod:`.severity` the tenant's severity policy for discrepancies reported without one;
- :mod:`.events` the facts recorded as ledger entries (type + plain-JSON data);
- :mod:`.discrepancy` the state, and :func:`evolve` / :func:`replay` that fold events;
- :mod:`.errors` the exception tree.

The storage layer uses it like this, inside the appending transaction::

    state = load(discrepancy_id)                     # replay of the stream, or a projection
    event = decide(state, command, actor, discrepancy_id=discrepancy_id)  # or raises
    append(stream=f"disc/{discrepancy_id}", type=event.type, data=event.data)
    state = evolve(state, event, at=entry_time)      # the next command in the batch sees it
"""

from .commands import (
    Actor,
    Assign,
    AttachEvidence,
    ChangeSeverity,
    Command,
    Comment,
    OpenDiscrepancy,
    Transition,
)
from .decisions import PERMISSIONS, decide
from .discrepancy import Discrepancy, Kind, ResolutionCode, Severity, evolve, replay
from .errors import (
    ClosedDiscrepancyError,
    DomainError,
    DuplicateDiscrepancyError,
    InvalidCommandError,
    InvalidEventError,
    NoChangeError,
    PermissionRefusedError,
    RefusedError,
    StaleReportError,
    TransitionRefusedError,
    UnknownDiscrepancyError,
)
from .events import Event, EventType
from .lifecycle import TERMINAL, TRANSITIONS, Role, Status, allowed_moves, can_move
from .money import CURRENCIES, difference, format_amount, minor_units, parse_amount
from .severity import BUILT_IN, SeverityPolicy, default_severity, parse_policy

__all__ = [
    "BUILT_IN", "CURRENCIES", "PERMISSIONS", "TERMINAL", "TRANSITIONS",
    "Actor", "Assign", "AttachEvidence", "ChangeSeverity", "ClosedDiscrepancyError", "Command",
    "Comment", "Discrepancy", "DomainError", "DuplicateDiscrepancyError", "Event", "EventType",
    "InvalidCommandError", "InvalidEventError", "Kind", "NoChangeError", "OpenDiscrepancy",
    "PermissionRefusedError", "RefusedError", "ResolutionCode", "Role", "Severity",
    "SeverityPolicy", "StaleReportError", "Status",
    "Transition", "TransitionRefusedError", "UnknownDiscrepancyError", "allowed_moves",
    "can_move", "decide", "default_severity", "difference", "evolve", "format_amount",
    "minor_units", "parse_amount", "parse_policy", "replay",
]
