"""The second pass: what the service decides from, recomputed from the ledger entries.

The cryptographic pass (run.py) proves the entries; this one proves what was derived from
them and is read by the service and by people: the `api_keys` and `discrepancies` rows, the
severity policy, the resolution snapshots and the evidence files. In one snapshot:
  1. replay every model stream in seq order through the service's own folds; each
     discrepancy move is also checked against the lifecycle table (an illegal move, or an
     event the domain refuses, is a `domain` finding at that entry);
  2. compare the stored rows with the replayed states (`read_model`, naming the row);
  3. recompute each resolution snapshot (`snapshot`) and re-hash each evidence file against
     the hash its attaching entry recorded (`evidence`);
  4. check the outbox's claims against the ledger (`outbox`, see outbox_check.py);
  5. check the escalation index rows against the periods, pauses, firings and rules the
     ledger records (`read_model`, naming the discrepancy; see watch_check.py).
It reads every model entry once more, so it is a pass of its own (`indelible verify` runs it
unless `--no-models`); the cryptographic pass is unchanged and no slower.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

import orjson
import psycopg

from indelible import domain
from indelible.entry import b64
from indelible.store import api_keys, discrepancies, escalation, severity_policy
from indelible.store.appender import Change
from indelible.verifier.escalation_check import FiringCheck
from indelible.verifier.outbox_check import check_outbox
from indelible.verifier.report import VerificationReport
from indelible.verifier.watch_check import WatchCheck, check_watch

FETCH = 5_000  # rows per round trip
MAX_PER_CHECK = 100  # findings listed per check; the rest are counted


class _Capped:
    """The report, listing at most MAX_PER_CHECK findings per check: a log the domain never
    wrote (say, a benchmark's) must give a readable report, not a million lines."""

    def __init__(self, report: VerificationReport):
        self.report, self.counts = report, {}

    def add(self, check: str, detail: str, seq: int | None = None) -> None:
        self.counts[check] = self.counts.get(check, 0) + 1
        if self.counts[check] <= MAX_PER_CHECK:
            self.report.add(check, detail, seq)

    def close(self) -> None:
        for check, count in self.counts.items():
            if count > MAX_PER_CHECK:
                self.report.add(check, f"... and {count - MAX_PER_CHECK:,} more {check} "
                                "findings not listed")


@dataclass
class _Replay:
    keys: dict[str, api_keys.KeyState] = field(default_factory=dict)  # by stream
    cases: dict[str, domain.Discrepancy] = field(default_factory=dict)  # by stream
    broken: set[str] = field(default_factory=set)  # streams the domain refused
    histories: dict[str, list] = field(default_factory=dict)  # [seq, leaf] until decided
    snapshots: dict[str, tuple[int, bytes, bytes]] = field(default_factory=dict)  # by id
    evidence: dict[str, tuple[int, int]] = field(default_factory=dict)  # sha256 -> (seq, size)
    firings: FiringCheck = field(default_factory=FiringCheck)  # escalation firings hold
    watch: WatchCheck = field(default_factory=WatchCheck)  # what escalation_watch must say


def verify_models(conninfo: str, tenant: str, report: VerificationReport) -> None:
    capped = _Capped(report)
    _verify(conninfo, tenant, capped)
    capped.close()
    report.models_checked = True


def _verify(conninfo: str, tenant: str, report: _Capped) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))
        replay = _replay(conn, tenant, report)  # 1.
        _compare_keys(conn, tenant, replay, report)  # 2.
        _compare_cases(conn, tenant, replay, report)
        _compare_snapshots(conn, tenant, replay, report)  # 3.
        _rehash_evidence(conn, tenant, replay, report)
        check_outbox(conn, tenant, report)  # the outbox's claims agree with the ledger
        check_watch(conn, tenant, replay.cases, replay.broken, replay.watch, report)  # 5.


def _replay(conn, tenant: str, report: _Capped) -> _Replay:
    replay, model = _Replay(), api_keys.ApiKeys()
    with conn.cursor(name="models") as cur:
        cur.execute("SELECT seq, event_id, stream_id, stream_version, leaf_hash, recorded_at, "
                    "entry FROM ledger_entries WHERE tenant_id = %s AND (stream_id LIKE 'disc/%%' "
                    "OR stream_id LIKE 'apikey/%%' OR stream_id = ANY(%s)) ORDER BY seq",
                    (tenant, [severity_policy.STREAM, *_CONFIG]))
        while rows := cur.fetchmany(FETCH):
            for seq, event_id, stream, version, leaf, at, entry in rows:
                entry, leaf = bytes(entry), bytes(leaf)
                try:
                    if stream.startswith(discrepancies.PREFIX):
                        _case(replay, stream, seq, leaf, at, entry, report)
                    elif stream.startswith(api_keys.PREFIX):
                        replay.keys[stream] = model.evolve(replay.keys.get(stream), Change.of_entry(
                            seq, stream, version, entry, at))
                    elif stream in _CONFIG:
                        change = Change.of_entry(seq, stream, version, entry, at)
                        replay.watch.config(stream, _CONFIG[stream](change))
                        replay.firings.config(change)
                    else:
                        severity_policy.record(seq, version, entry)
                except Exception as e:  # noqa: BLE001 - any refusal of a recorded entry is a finding
                    replay.broken.add(stream)
                    report.add("domain", f"stream {stream}: the entry is not valid for its "
                               f"stream: {type(e).__name__}: {e}", seq)
    return replay


# Tenant configuration streams: each entry must parse as what its stream holds.
_CONFIG = {escalation.RULES_STREAM: escalation.rules_of,
           escalation.CALENDAR_STREAM: escalation.calendar_of}


def _case(replay: _Replay, stream: str, seq: int, leaf: bytes, at, entry: bytes,
          report: _Capped) -> None:
    if stream in replay.broken:
        return
    document = orjson.loads(entry)
    state = replay.cases.get(stream)
    wrong = replay.firings.entry(stream, seq, document)
    replay.watch.entry(stream, seq, at, document)
    if wrong is not None:
        report.add("domain", f"stream {stream}: {wrong}", seq)
    if document["type"] == domain.EventType.TRANSITIONED and state is not None:
        _check_move(state, document, seq, report)
    state = domain.evolve(state, domain.Event(document["type"], document["data"]),
                          at=document["at"])
    replay.cases[stream] = state
    recorded = document.get("meta", {}).get("state_sha256")
    if recorded is not None and recorded != discrepancies.state_digest(state):
        report.add("domain", f"stream {stream}: the state digest this entry records does not "
                   "match the state its stream's entries lead to", seq)
    if document["type"] == domain.EventType.EVIDENCE_ATTACHED:
        replay.evidence.setdefault(document["data"]["sha256"], (seq, document["data"]["size"]))
    if state.id in replay.snapshots:
        return
    history = replay.histories.setdefault(stream, [])
    history.append([seq, b64(leaf)])
    if state.status in domain.TERMINAL:
        snapshot, digest = discrepancies.render_snapshot(state, replay.histories.pop(stream))
        replay.snapshots[state.id] = (seq, snapshot, digest)


def _check_move(state: domain.Discrepancy, document: dict, seq: int,
                report: _Capped) -> None:
    role, target = document["actor"]["role"], document["data"]["to"]
    try:
        legal = domain.can_move(state.status, role, target, investigated=state.investigated)
    except ValueError:
        legal = False
    if not legal:
        report.add("domain", f"discrepancy {state.id}: the move {state.status} -> {target} by "
                   f"role {role!r} is not allowed by the lifecycle", seq)


def _compare_keys(conn, tenant: str, replay: _Replay, report: _Capped) -> None:
    stored = {api_keys.PREFIX + k.key_id: k for k in api_keys.list_keys(conn, tenant)}
    for stream in stored.keys() | replay.keys.keys():
        row, truth = stored.get(stream), replay.keys.get(stream)
        where = f"api_keys row (tenant {tenant}, key {stream.removeprefix(api_keys.PREFIX)})"
        if truth is None:
            report.add("read_model", f"{where} has no ledger entries: it was inserted by hand")
        elif row is None:
            report.add("read_model", f"{where} is missing; the ledger issued it at seq "
                       f"{truth.issued_seq}")
        elif row != truth:
            report.add("read_model", f"{where}: {_differences(row, truth)}")


def _differences(row, truth) -> str:
    names = [n for n in row.__dataclass_fields__ if getattr(row, n) != getattr(truth, n)]
    return "; ".join(f"{n} is {getattr(row, n)!r} but the ledger says {getattr(truth, n)!r}"
                     for n in names)


_CASE_COLUMNS = ("external_ref", "source", "kind", "currency", "expected_amount",
                 "actual_amount", "difference", "severity", "status", "assignee", "version")


def _compare_cases(conn, tenant: str, replay: _Replay, report: _Capped) -> None:
    rows = conn.execute(f"SELECT id::text, {', '.join(_CASE_COLUMNS)}, state FROM discrepancies "
                        "WHERE tenant_id = %s", (tenant,))
    seen = set()
    for row in rows:
        stream = discrepancies.stream_of(row[0])
        seen.add(stream)
        truth, where = replay.cases.get(stream), f"discrepancies row (tenant {tenant}, id {row[0]})"
        if stream in replay.broken:
            continue  # already a domain finding
        if truth is None:
            report.add("read_model", f"{where} has no ledger entries: it was inserted by hand")
            continue
        expected = truth.to_dict()
        wrong = [f"{c} is {v!r} but the ledger says {expected[c]!r}"
                 for c, v in zip(_CASE_COLUMNS, row[1:-1]) if not _same(v, expected[c])]
        if row[-1] != expected:
            wrong.append("its state document differs from the replayed state")
        if wrong:
            report.add("read_model", f"{where}: {'; '.join(wrong)}")
    for stream in replay.cases.keys() - seen - replay.broken:
        report.add("read_model", f"discrepancies row (tenant {tenant}, id "
                   f"{stream.removeprefix(discrepancies.PREFIX)}) is missing")


def _same(stored, expected) -> bool:
    if isinstance(stored, Decimal):
        return stored == Decimal(expected)
    return stored == expected


def _compare_snapshots(conn, tenant: str, replay: _Replay, report: _Capped) -> None:
    rows = conn.execute("SELECT discrepancy_id::text, seq, snapshot, history_digest FROM "
                        "resolution_snapshots WHERE tenant_id = %s", (tenant,))
    seen = set()
    for case_id, seq, snapshot, digest in rows:
        seen.add(case_id)
        expected = replay.snapshots.get(case_id)
        where = f"resolution snapshot of discrepancy {case_id}"
        if expected is None:
            report.add("snapshot", f"{where} exists, but the ledger never decided it")
        elif (seq, bytes(snapshot), bytes(digest)) != expected:
            report.add("snapshot", f"{where} is not the discrepancy as the ledger decided it at "
                       f"seq {expected[0]}", expected[0])
    for case_id in replay.snapshots.keys() - seen:
        report.add("snapshot", f"resolution snapshot of discrepancy {case_id} is missing",
                   replay.snapshots[case_id][0])


def _rehash_evidence(conn, tenant: str, replay: _Replay, report: _Capped) -> None:
    found = set()
    with conn.cursor(name="evidence") as cur:
        cur.execute("SELECT sha256, size, content FROM evidence_files WHERE tenant_id = %s",
                    (tenant,))
        while rows := cur.fetchmany(16):  # files are up to 25 MB each
            for named, size, content in rows:
                named, actual = bytes(named).hex(), hashlib.sha256(content).hexdigest()
                found.add(named)
                if actual != named or size != len(content):
                    recorded = replay.evidence.get(named, (None,))[0]
                    report.add("evidence", f"evidence file {named}: its {len(content)} stored "
                               f"bytes hash to {actual}", recorded)
    for named, (seq, _) in replay.evidence.items():
        if named not in found:
            report.add("evidence", f"evidence file {named}, attached at seq {seq}, is missing", seq)
