"""The severity policy use case: put a new policy in force, as a ledger entry that names the
version it replaces (optimistic concurrency: `VersionConflictError` when it is stale)."""

from __future__ import annotations

from indelible import domain
from indelible.store import severity_policy
from indelible.usecases.principal import Ledger, Principal

# Who may put a severity policy in force (the API and the console both ask this).
SETTERS = ("compliance_manager", "admin")


async def set_severity_policy(ledger: Ledger, who: Principal, policy: domain.SeverityPolicy, *,
                              reason: str, expected_version: int) -> severity_policy.PolicyRecord:
    """The policy now in force. Raises InvalidCommandError for a bad reason and
    VersionConflictError when another change came first; PermissionRefusedError for a
    role outside SETTERS."""
    if who.role not in SETTERS:
        raise domain.PermissionRefusedError(action="set the severity policy", role=who.role,
                                            allowed_roles=list(SETTERS))
    entry = severity_policy.change(policy, reason=reason, actor=who.entry_actor(),
                                   expected_version=expected_version)
    appended = await ledger.append(who.tenant, entry)
    return severity_policy.record(appended.seq, appended.version, appended.entry)
