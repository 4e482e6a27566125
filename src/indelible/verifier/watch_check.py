"""What `indelible verify` checks of the escalation index (`escalation_watch`), from the
ledger alone.

The engine finds due work only through this index, so a row edited or deleted by a
database login can hold a discrepancy's firings back indefinitely. Each row must say what
the ledger implies: the discrepancy's status and severity, the entry that began its period
(seq and recorded time), the pause in force, and a `next_check_at` no later than the
earliest time a rule of the set in force (with the calendar in force) may still fall due,
given the firings already recorded. A bound earlier than that is harmless (the pass looks,
finds nothing due and moves it up); a later one, a NULL one where a rule still waits, or a
missing row, is a finding. The bound is computed by the engine's own `evaluate`, so the
rules are written once.
"""

from __future__ import annotations

from datetime import datetime, timezone

from indelible.escalation.calendar import DEFAULT_CALENDAR, BusinessCalendar
from indelible.escalation.evaluate import Period, evaluate, firing_key
from indelible.escalation.rules import DEFAULT_RULES, RuleSet
from indelible.store import discrepancies, escalation

# Evaluating "as of the beginning of time" makes every unfired rule pending, so the
# evaluation's next check is the earliest due time of any of them (held by a pause in
# force), whatever the clock says now.
_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)
FETCH = 5_000


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


class WatchCheck:
    """Fed every discrepancy entry in seq order (and the rules and calendar entries), it
    keeps per stream only what a watch row derives from: a few fields, not the history."""

    def __init__(self) -> None:
        self.rules: RuleSet = DEFAULT_RULES
        self.calendar: BusinessCalendar = DEFAULT_CALENDAR
        self.periods: dict[str, tuple[int, datetime]] = {}  # stream -> (seq, recorded_at)
        self.paused: dict[str, datetime | None] = {}  # stream -> pause in force (latest mark)
        self.fired: dict[str, set[str]] = {}  # stream -> firing keys recorded

    def config(self, stream: str, record) -> None:
        if stream == escalation.RULES_STREAM:
            self.rules = record.rules
        elif stream == escalation.CALENDAR_STREAM:
            self.calendar = record.calendar

    def entry(self, stream: str, seq: int, recorded_at: datetime, document: dict) -> None:
        kind, data = document["type"], document["data"]
        if kind in escalation.STARTS:
            self.periods[stream] = (seq, recorded_at)
        elif kind in escalation.PAUSES:
            self.paused[stream] = _time(data.get("until")) if kind == escalation.PAUSES[0] else None
        elif kind == "escalation.fired":
            self.fired.setdefault(stream, set()).add(firing_key(
                stream.removeprefix(discrepancies.PREFIX), data["rule_id"], data["rule_version"],
                data["period_start_seq"]))

    def expected(self, stream: str, state) -> tuple[Period, datetime | None] | None:
        """The row the ledger implies for this discrepancy, and the latest acceptable bound
        (None: no rule waits); None when its stream never began a period."""
        if stream not in self.periods:
            return None
        seq, at = self.periods[stream]
        period = Period(stream.removeprefix(discrepancies.PREFIX), str(state.status),
                        str(state.severity), seq, at, self.paused.get(stream))
        ev = evaluate(period, self.rules, self.calendar, fired=self.fired.get(stream, set()),
                      now=_EARLIEST)
        return period, ev.next_check


def check_watch(conn, tenant: str, cases: dict, broken: set[str], watch: WatchCheck,
                report) -> None:
    """Compare every `escalation_watch` row with what the ledger implies (`read_model`
    findings naming the discrepancy). `cases`: the replayed discrepancy states by stream."""
    seen = set()
    with conn.cursor(name="watch") as cur:
        cur.execute("SELECT discrepancy_id::text, status, severity, period_seq, period_at, "
                    "paused_until, next_check_at FROM escalation_watch WHERE tenant_id = %s",
                    (tenant,))
        while rows := cur.fetchmany(FETCH):
            for case_id, status, severity, seq, at, paused, bound in rows:
                stream = discrepancies.stream_of(case_id)
                seen.add(stream)
                if stream in broken:
                    continue  # already a domain finding
                where = f"escalation_watch row (tenant {tenant}, discrepancy {case_id})"
                state = cases.get(stream)
                truth = None if state is None else watch.expected(stream, state)
                if truth is None:
                    report.add("read_model", f"{where} has no ledger entries that begin a "
                               "period: it was inserted by hand")
                    continue
                period, due = truth
                wrong = [f"{name} is {v!r} but the ledger says {e!r}" for name, v, e in (
                    ("status", status, period.status), ("severity", severity, period.severity),
                    ("period_seq", seq, period.period_seq), ("period_at", at, period.period_at),
                    ("paused_until", paused, period.paused_until)) if v != e]
                if due is not None and (bound is None or bound > due):
                    wrong.append(f"next_check_at is {_show(bound)}, but a rule falls due at "
                                 f"{_show(due)}: the engine would not look until too late")
                if wrong:
                    report.add("read_model", f"{where}: {'; '.join(wrong)}")
    for stream in cases.keys() - seen - broken:
        truth = watch.expected(stream, cases[stream])
        if truth is None:
            continue
        case_id, due = stream.removeprefix(discrepancies.PREFIX), truth[1]
        held = (f": a rule falls due at {_show(due)} and the engine never looks at it"
                if due is not None else "")
        report.add("read_model", f"escalation_watch row (tenant {tenant}, discrepancy "
                   f"{case_id}) is missing{held}",
                   truth[0].period_seq)


def _show(moment: datetime | None) -> str:
    return "NULL" if moment is None else moment.astimezone(timezone.utc).isoformat()
