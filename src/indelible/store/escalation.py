"""Escalation in the ledger: rule sets and calendars (versioned entries of two tenant
streams), the index that finds due work, and what decisions read under the log-head lock.

- Rules: stream `tenant/escalation-rules`, entries `tenant.escalation_rules_set` carrying the
  whole set, each rule's own version and the reason. Calendar: stream
  `tenant/business-calendar`, entries `tenant.business_calendar_set`. No table keeps them:
  the set in force is the stream's latest entry (or the one in force at a seq or time).
- `escalation_watch`: per discrepancy, its watched period (status, severity, the entry
  that began it and when, a pause in force) and `next_check_at`, a lower bound of when a
  rule may next fall due. Written in the appending transaction (`WatchedDiscrepancies`), so
  a pass with nothing due is one index probe. It only says where to look: every firing is
  decided against the period read from the ledger itself under the lock (`PeriodModel`),
  so an edited row can delay a look, never cause a firing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
import psycopg

from indelible.domain.validation import check_text
from indelible.entry import Actor, NewEntry
from indelible.escalation.calendar import DEFAULT_CALENDAR, BusinessCalendar, parse_calendar
from indelible.escalation.evaluate import Period
from indelible.escalation.rules import DEFAULT_RULES, RuleSet, parse_rules
from indelible.store import lookups
from indelible.store.appender import Change
from indelible.store.discrepancies import PREFIX as DISC, Discrepancies, _uuid
from indelible.store.schema import ESCALATION_MARKS

RULES_STREAM = "tenant/escalation-rules"
RULES_SET = "tenant.escalation_rules_set"
CALENDAR_STREAM = "tenant/business-calendar"
CALENDAR_SET = "tenant.business_calendar_set"
PERIOD_PREFIX = "escalation/"  # a stream nobody appends to: the period, read from disc/<id>
MAX_REASON = 1000
STARTS = ("discrepancy.opened", "discrepancy.transitioned")
PAUSES = ("escalation.paused", "escalation.resumed")
# Repeated in each probe so the planner can use the partial index on these types.
_MARKED = f"type IN ({ESCALATION_MARKS})"


@dataclass(frozen=True)
class RulesRecord:
    rules: RuleSet
    seq: int | None = None  # the entry that set them; None: the built-in default
    set_at: str | None = None
    set_by: str | None = None
    reason: str | None = None

    @property
    def version(self) -> int:
        return self.rules.version

    def to_dict(self) -> dict:
        return {**self.rules.to_dict(), "version": self.version, "seq": self.seq,
                "set_at": self.set_at, "set_by": self.set_by, "reason": self.reason,
                "rule_versions": {r.id: self.rules.rule_version(r.id) for r in self.rules.rules},
                "default": self.seq is None}


@dataclass(frozen=True)
class CalendarRecord:
    calendar: BusinessCalendar
    seq: int | None = None
    set_at: str | None = None
    set_by: str | None = None
    reason: str | None = None

    @property
    def version(self) -> int:
        return self.calendar.version

    def to_dict(self) -> dict:
        return {**self.calendar.to_dict(), "version": self.version, "seq": self.seq,
                "set_at": self.set_at, "set_by": self.set_by, "reason": self.reason,
                "default": self.seq is None}


def rules_of(change: Change) -> RulesRecord:
    data = change.data
    parsed = parse_rules({"rules": data["rules"]})
    versions = {k: int(v) for k, v in data["rule_versions"].items()}
    return RulesRecord(RuleSet(parsed.rules, change.version, versions), change.seq, change.at,
                       change.actor_id, data["reason"])


def calendar_of(change: Change) -> CalendarRecord:
    data = {k: v for k, v in change.data.items() if k != "reason"}
    parsed = parse_calendar(data)
    calendar = BusinessCalendar(parsed.time_zone, parsed.working_days, parsed.start, parsed.end,
                                parsed.holidays, change.version)
    return CalendarRecord(calendar, change.seq, change.at, change.actor_id, change.data["reason"])


def _latest(conn: psycopg.Connection, tenant: str, stream: str, *, seq: int | None = None,
            at: datetime | None = None) -> Change | None:
    row = conn.execute(
        "SELECT seq, stream_version, entry, recorded_at FROM ledger_entries WHERE tenant_id = %s "
        "AND stream_id = %s AND (%s::bigint IS NULL OR seq <= %s) "
        "AND (%s::timestamptz IS NULL OR recorded_at <= %s) "
        "ORDER BY stream_version DESC LIMIT 1", (tenant, stream, seq, seq, at, at)).fetchone()
    return None if row is None else Change.of_entry(row[0], stream, row[1], row[2], row[3])


def current_rules(conn: psycopg.Connection, tenant: str, *, seq: int | None = None,
                  at: datetime | None = None) -> RulesRecord:
    """The rule set in force now, or after the entry at `seq`, or at time `at`."""
    found = _latest(conn, tenant, RULES_STREAM, seq=seq, at=at)
    return RulesRecord(DEFAULT_RULES) if found is None else rules_of(found)


def rules_history(conn: psycopg.Connection, tenant: str) -> list[RulesRecord]:
    """Every rule set the tenant put in force, newest first (the console's history)."""
    rows = conn.execute("SELECT seq, stream_version, entry, recorded_at FROM ledger_entries "
                        "WHERE tenant_id = %s AND stream_id = %s ORDER BY stream_version DESC",
                        (tenant, RULES_STREAM)).fetchall()
    return [rules_of(Change.of_entry(row[0], RULES_STREAM, row[1], row[2], row[3]))
            for row in rows]


def current_calendar(conn: psycopg.Connection, tenant: str, *, seq: int | None = None,
                     at: datetime | None = None) -> CalendarRecord:
    found = _latest(conn, tenant, CALENDAR_STREAM, seq=seq, at=at)
    return CalendarRecord(DEFAULT_CALENDAR) if found is None else calendar_of(found)


def rules_change(rules: RuleSet, previous: RulesRecord, *, reason: str, actor: Actor,
                 expected_version: int) -> NewEntry:
    """The entry that puts `rules` in force, if the stream is still at `expected_version`
    (which `previous`, the set the caller read, must be)."""
    check_text(reason, "reason", max_len=MAX_REASON)
    versioned = rules.versioned(expected_version + 1, previous.rules)
    return NewEntry(stream=RULES_STREAM, type=RULES_SET, actor=actor,
                    expected_version=expected_version,
                    data={**rules.to_dict(), "rule_versions": dict(versioned.rule_versions),
                          "reason": reason})


def calendar_change(calendar: BusinessCalendar, *, reason: str, actor: Actor,
                    expected_version: int) -> NewEntry:
    check_text(reason, "reason", max_len=MAX_REASON)
    return NewEntry(stream=CALENDAR_STREAM, type=CALENDAR_SET, actor=actor,
                    expected_version=expected_version, data={**calendar.to_dict(), "reason": reason})


# -- the next-check bound ------------------------------------------------------------------

def _rule_arrays(rules: RuleSet) -> dict:
    enabled = [r for r in rules.rules if r.enabled]
    return {"rsev": [r.severity for r in enabled], "rst": [",".join(r.statuses) for r in enabled],
            "rsec": [float(r.seconds) for r in enabled]}


# The earliest wall-clock moment any enabled rule watching (status, severity) could fall due:
# a lower bound also for business-time rules (business time never runs faster than the
# clock). The pass computes the exact time and moves the bound up.
_BOUND = """(SELECT min({at} + make_interval(secs => r.secs))
  FROM unnest(%(rsev)s::text[], %(rst)s::text[], %(rsec)s::float8[]) AS r(sev, st, secs)
  WHERE (r.sev = '*' OR r.sev = {severity}) AND {status} = ANY(string_to_array(r.st, ',')))"""


def reset_bounds(conn: psycopg.Connection, tenant: str, rules: RuleSet) -> None:
    """After a rules or calendar change: every bound back to the earliest possible, so the
    next pass looks again (stamp + 1: a pass still running under the old set cannot move
    a bound it computed from it)."""
    bound = _BOUND.format(at="w.period_at", severity="w.severity", status="w.status")
    conn.execute(f"UPDATE escalation_watch w SET next_check_at = GREATEST({bound}, w.paused_until), "
                 "stamp = w.stamp + 1 WHERE w.tenant_id = %(t)s",
                 {"t": tenant, **_rule_arrays(rules)})


# Each changed discrepancy's watch row: its period and pause, read from its own entries by
# LATERAL probes down the marks index (sent with generic plans: see lookups.py).
_WATCH = f"""
INSERT INTO escalation_watch AS w (tenant_id, discrepancy_id, status, severity, period_seq,
    period_at, paused_until, next_check_at)
SELECT %(t)s, d.id, d.status, d.severity, p.seq, p.recorded_at, z.until,
       GREATEST({_BOUND.format(at="p.recorded_at", severity="d.severity", status="d.status")},
                z.until)
FROM unnest(%(ids)s::uuid[], %(st)s::text[], %(sv)s::text[]) AS d(id, status, severity)
CROSS JOIN LATERAL (SELECT seq, recorded_at FROM ledger_entries
    WHERE tenant_id = %(t)s AND stream_id = 'disc/' || d.id::text AND type = ANY(%(starts)s) AND {_MARKED}
    ORDER BY stream_version DESC LIMIT 1) p
LEFT JOIN LATERAL (SELECT CASE WHEN type = 'escalation.paused' THEN
        (convert_from(entry, 'UTF8')::jsonb -> 'data' ->> 'until')::timestamptz END AS until
    FROM ledger_entries WHERE tenant_id = %(t)s AND stream_id = 'disc/' || d.id::text
    AND type = ANY(%(pauses)s) AND {_MARKED} ORDER BY stream_version DESC LIMIT 1) z ON true
ON CONFLICT (tenant_id, discrepancy_id) DO UPDATE SET status = EXCLUDED.status,
    severity = EXCLUDED.severity, period_seq = EXCLUDED.period_seq,
    period_at = EXCLUDED.period_at, paused_until = EXCLUDED.paused_until,
    next_check_at = CASE WHEN (w.status, w.severity, w.period_seq, w.paused_until) IS DISTINCT
        FROM (EXCLUDED.status, EXCLUDED.severity, EXCLUDED.period_seq, EXCLUDED.paused_until)
        THEN EXCLUDED.next_check_at ELSE w.next_check_at END,
    stamp = CASE WHEN (w.status, w.severity, w.period_seq, w.paused_until) IS DISTINCT
        FROM (EXCLUDED.status, EXCLUDED.severity, EXCLUDED.period_seq, EXCLUDED.paused_until)
        THEN w.stamp + 1 ELSE w.stamp END"""


class WatchedDiscrepancies(Discrepancies):
    """The discrepancy read model, and beside it the watch index, in the same transaction.
    The period and pause are read from the entries just written (the model's states do not
    carry seqs), with the rules in force for the bound."""

    def __init__(self):
        # Streams whose period or pause may have changed since the last projection: an
        # entry that begins a period or pauses one, or a status or severity change. Other
        # entries (comments, notify firings) leave the watch row as it is. Marking too
        # many only costs a probe (the row is recomputed from the entries). `project`
        # clears the marks of the streams it writes; `load` clears all, but a batch whose
        # states the appender remembers (KnownStreams) is not loaded, so marks of a refused
        # decision or a rolled-back batch may wait for a later batch: one probe more, never
        # a wrong row. One appender thread owns a model.
        self._dirty: set[str] = set()

    def load(self, conn, tenant, streams):
        self._dirty.clear()  # a new batch: marks of a rolled-back one are moot
        return super().load(conn, tenant, streams)

    def evolve(self, state, change: Change):
        after = super().evolve(state, change)
        if (change.type in STARTS or change.type in PAUSES or state is None
                or (state.status, state.severity) != (after.status, after.severity)):
            self._dirty.add(change.stream)
        return after

    def project(self, conn, tenant, states):
        super().project(conn, tenant, states)
        items = [d for s, d in states.items() if s in self._dirty]
        self._dirty.difference_update(states)
        if not items:
            return
        rules = current_rules(conn, tenant).rules
        with lookups.generic_plans(conn):  # see lookups.py: its LATERAL probes, each
            # down the marks index, became scans of the tenant's whole log under a custom
            # plan for a tenant statistics did not know (35 s for 500 streams at 60k entries)
            conn.execute(_WATCH,
                         {"t": tenant, "ids": [d.id for d in items],
                          "st": [str(d.status) for d in items],
                          "sv": [str(d.severity) for d in items],
                          "starts": list(STARTS), "pauses": list(PAUSES), **_rule_arrays(rules)})


class RulesModel:
    """StreamModel of the rules and calendar streams: decisions read the set in force under
    the lock, and a change resets the watch bounds in its own transaction."""

    def owns(self, stream: str) -> bool:
        return stream in (RULES_STREAM, CALENDAR_STREAM)

    def load(self, conn, tenant, streams):
        found = {}
        if RULES_STREAM in streams:
            found[RULES_STREAM] = current_rules(conn, tenant)
        if CALENDAR_STREAM in streams:
            found[CALENDAR_STREAM] = current_calendar(conn, tenant)
        return found

    def evolve(self, state, change: Change):
        return rules_of(change) if change.stream == RULES_STREAM else calendar_of(change)

    def digest(self, stream, state):
        return None  # read from the ledger itself, never from a row

    def project(self, conn, tenant, states):
        rules = states.get(RULES_STREAM) or current_rules(conn, tenant)
        reset_bounds(conn, tenant, rules.rules)


@dataclass(frozen=True)
class PeriodState:
    """A discrepancy's watched period as its own entries say, read under the lock (the
    start time from the hashed entry itself, not a column or the watch index)."""

    period_seq: int
    period_at: datetime
    paused_until: datetime | None
    version: int  # the discrepancy stream's version when this was read


# Each discrepancy's period: LATERAL probes down the marks index and the stream's versions.
_PERIODS = f"""
SELECT d.id::text, p.seq, p.at, z.type, z.until, v.stream_version
FROM unnest(%(ids)s::uuid[]) AS d(id)
CROSS JOIN LATERAL (SELECT seq, (convert_from(entry, 'UTF8')::jsonb ->> 'at')::timestamptz AS at
    FROM ledger_entries WHERE tenant_id = %(t)s
    AND stream_id = 'disc/' || d.id::text AND type = ANY(%(starts)s) AND {_MARKED}
    ORDER BY stream_version DESC LIMIT 1) p
CROSS JOIN LATERAL (SELECT stream_version FROM ledger_entries WHERE tenant_id = %(t)s
    AND stream_id = 'disc/' || d.id::text ORDER BY stream_version DESC LIMIT 1) v
LEFT JOIN LATERAL (SELECT type, (convert_from(entry, 'UTF8')::jsonb -> 'data' ->> 'until')
        ::timestamptz AS until FROM ledger_entries WHERE tenant_id = %(t)s
    AND stream_id = 'disc/' || d.id::text AND type = ANY(%(pauses)s) AND {_MARKED}
    ORDER BY stream_version DESC LIMIT 1) z ON true"""


class PeriodModel:
    """StreamModel of `escalation/<id>`: a stream nobody appends to, whose state is the
    period of `disc/<id>` read from the ledger under the log-head lock, for decisions."""

    def owns(self, stream: str) -> bool:
        return stream.startswith(PERIOD_PREFIX)

    def load(self, conn, tenant, streams):
        ids = [u for s in streams if (u := _uuid(s[len(PERIOD_PREFIX):])) is not None]
        with lookups.generic_plans(conn):  # see lookups.py and WatchedDiscrepancies.project
            rows = conn.execute(_PERIODS,
                                {"t": tenant, "ids": ids, "starts": list(STARTS),
                                 "pauses": list(PAUSES)})
        return {PERIOD_PREFIX + i: PeriodState(seq, at, until if kind == PAUSES[0] else None,
                                               version)
                for i, seq, at, kind, until, version in rows.fetchall()}

    def evolve(self, state, change):
        raise ValueError(f"nothing is appended to {change.stream}")

    def digest(self, stream, state):
        return None

    def project(self, conn, tenant, states):
        pass


# -- queries for passes and views ---------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    period: Period
    stamp: int


def due_candidates(conn: psycopg.Connection, tenant: str, now: datetime,
                   limit: int) -> list[Candidate]:
    """The periods whose bound has passed, earliest first (one probe of the bound index)."""
    rows = conn.execute(
        "SELECT discrepancy_id::text, status, severity, period_seq, period_at, paused_until, "
        "stamp FROM escalation_watch WHERE tenant_id = %s AND next_check_at <= %s "
        "ORDER BY next_check_at LIMIT %s", (tenant, now, limit)).fetchall()
    return [Candidate(Period(i, st, sv, seq, at, until), stamp)
            for i, st, sv, seq, at, until, stamp in rows]


def open_periods(conn: psycopg.Connection, tenant: str, *, limit: int) -> list[Period]:
    """Every watched period not in a terminal status (for a preview)."""
    rows = conn.execute(
        "SELECT discrepancy_id::text, status, severity, period_seq, period_at, paused_until "
        "FROM escalation_watch WHERE tenant_id = %s AND status NOT IN ('resolved', "
        "'auto_closed') ORDER BY period_at, discrepancy_id LIMIT %s", (tenant, limit))
    return [Period(*row) for row in rows]


def period_of(conn: psycopg.Connection, tenant: str, discrepancy_id: str) -> Period | None:
    row = conn.execute(
        "SELECT discrepancy_id::text, status, severity, period_seq, period_at, paused_until "
        "FROM escalation_watch WHERE tenant_id = %s AND discrepancy_id = %s",
        (tenant, _uuid(discrepancy_id))).fetchone()
    return None if row is None else Period(*row)


def recorded_keys(conn: psycopg.Connection, tenant: str, keys: list[str]) -> set[str]:
    """Which of these firing keys the ledger holds (one index probe each)."""
    if not keys:
        return set()
    rows = conn.execute(
        "SELECT k FROM unnest(%(keys)s::text[]) AS k WHERE EXISTS (SELECT 1 FROM ledger_entries "
        "WHERE tenant_id = %(t)s AND idempotency_key = k)", {"keys": keys, "t": tenant})
    return {k for (k,) in rows}


def move_bounds(conn: psycopg.Connection, tenant: str,
                moves: list[tuple[str, int, datetime | None]]) -> None:
    """Set each (discrepancy, stamp read, next check) bound, unless its row changed since
    the pass read it (a newer period, a rule change): then the newer bound stays."""
    if moves:
        conn.execute(
            "UPDATE escalation_watch w SET next_check_at = m.next FROM unnest(%(ids)s::uuid[], "
            "%(stamps)s::bigint[], %(next)s::timestamptz[]) AS m(id, stamp, next) "
            "WHERE w.tenant_id = %(t)s AND w.discrepancy_id = m.id AND w.stamp = m.stamp",
            {"t": tenant, "ids": [m[0] for m in moves], "stamps": [m[1] for m in moves],
             "next": [m[2] for m in moves]})


def next_bound(conn: psycopg.Connection, tenant: str) -> datetime | None:
    row = conn.execute("SELECT min(next_check_at) FROM escalation_watch WHERE tenant_id = %s",
                       (tenant,)).fetchone()
    return row[0]


def firings(conn: psycopg.Connection, tenant: str, discrepancy_id: str) -> list[dict]:
    """The escalation entries of one discrepancy (fired, paused, resumed), in order."""
    rows = conn.execute(
        "SELECT seq, type, entry FROM ledger_entries WHERE tenant_id = %s AND stream_id = %s "
        "AND type LIKE 'escalation.%%' ORDER BY seq", (tenant, DISC + discrepancy_id))
    out = []
    for seq, kind, entry in rows:
        document = orjson.loads(bytes(entry))
        out.append({"seq": seq, "type": kind, "at": document["at"], **document["data"]})
    return out
