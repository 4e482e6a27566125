"""A tenant's severity policy lives in its ledger: each change is an entry of one stream.

There is no table to keep in step: the policy in force is the latest entry of the stream,
read through the (tenant, stream, version) index. Changing it needs the stream version
the caller last saw, so two administrators cannot overwrite each other unknowingly.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from indelible import domain
from indelible.domain.validation import check_text
from indelible.entry import Actor, NewEntry
from indelible.store.appender import Change

STREAM = "tenant/severity-policy"
SET = "tenant.severity_policy_set"
MAX_REASON = 1000


@dataclass(frozen=True)
class PolicyRecord:
    """The policy in force, and the entry that set it (None: the built-in rule only)."""

    policy: domain.SeverityPolicy
    version: int = 0  # the stream version: how many times the policy was set
    set_at: str | None = None
    set_by: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict:
        builtin = {"rule": "by |difference| in the currency's minor units",
                   "thresholds_minor_units": dict(zip(domain.severity.LEVELS,
                                                      domain.severity.BUILT_IN_THRESHOLDS))}
        return {**self.policy.to_dict(), "seq": self.policy.seq, "version": self.version,
                "set_at": self.set_at, "set_by": self.set_by, "reason": self.reason,
                "unlisted_currencies": builtin}


def current(conn: psycopg.Connection, tenant: str) -> PolicyRecord:
    row = conn.execute(
        "SELECT seq, stream_version, entry FROM ledger_entries WHERE tenant_id = %s AND "
        "stream_id = %s ORDER BY stream_version DESC LIMIT 1", (tenant, STREAM)).fetchone()
    return PolicyRecord(domain.BUILT_IN) if row is None else record(*row)


def versions(conn: psycopg.Connection, tenant: str) -> list[PolicyRecord]:
    """Every policy the tenant ever put in force, newest first (the console's history)."""
    rows = conn.execute(
        "SELECT seq, stream_version, entry FROM ledger_entries WHERE tenant_id = %s AND "
        "stream_id = %s ORDER BY stream_version DESC", (tenant, STREAM)).fetchall()
    return [record(*row) for row in rows]


def record(seq: int, version: int, entry: bytes) -> PolicyRecord:
    """The policy a stored entry of the stream puts in force."""
    return record_of(Change.of_entry(seq, STREAM, version, entry, recorded_at=None))


def record_of(change: Change) -> PolicyRecord:
    """The policy an entry of the stream (stored or about to be) puts in force."""
    data = change.data
    return PolicyRecord(domain.parse_policy({"thresholds": data["thresholds"]}, seq=change.seq),
                        change.version, change.at, change.actor_id, data["reason"])


def change(policy: domain.SeverityPolicy, *, reason: str, actor: Actor,
           expected_version: int) -> NewEntry:
    """The entry that puts `policy` in force, if the stream is still at `expected_version`."""
    check_text(reason, "reason", max_len=MAX_REASON)
    return NewEntry(stream=STREAM, type=SET, actor=actor, expected_version=expected_version,
                    data={**policy.to_dict(), "reason": reason})


class PolicyModel:
    """StreamModel of the policy stream, so a decision reads the policy in force under the
    log-head lock (a change committed after the caller looked is the one applied, and one
    appended earlier in the same batch too). The ledger is its only store: nothing to
    project."""

    def owns(self, stream: str) -> bool:
        return stream == STREAM

    def load(self, conn: psycopg.Connection, tenant: str, streams: list[str]) -> dict:
        found = current(conn, tenant)
        return {STREAM: found} if found.version else {}

    def evolve(self, state, change: Change) -> PolicyRecord:
        return record_of(change)

    def digest(self, stream: str, state) -> None:
        return None  # loaded from the ledger itself, never from a row

    def project(self, conn: psycopg.Connection, tenant: str, states: dict) -> None:
        pass
