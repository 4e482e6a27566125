"""Report use cases: ask for a report, see how it is going, fetch its files, generate it (the
worker's and the CLI's job), tie a file back to its ledger entry, and recurring schedules.

    request_report      validate, record `report.requested` and queue a job in the same
                        transaction (HTTP 202; the worker renders it)
    report_status       the job, and its files once done
    report_file         one file's bytes
    generate            take what was asked from the `report.requested` entry, read the
                        covered range, render every format, append `report.generated`
                        (naming the request's seq) with the files in the same transaction
    verify_report_file  which `report.generated` entry recorded these exact bytes
    set_schedule / cancel_schedule / enqueue_due_schedules

A report covers the ledger up to a signed checkpoint: `generate` waits until one covers
the log as it stood when the job started (or uses the tree size it is given, to regenerate),
so every entry it shows is under a signature it prints.

What was asked, and by whom, is the `report.requested` entry that opens the report's stream,
never the `report_jobs.parameters` column: that row is an operational queue a database
superuser can edit, and `report.generated` must vouch only for what the ledger recorded.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson
import psycopg

from indelible import proofs
from indelible.entry import Actor, NewEntry, time_ordered_ids
from indelible.reports import schedule as periods
from indelible.reports.content import CaseBuilder
from indelible.reports.document import ReportInputs, build_document, to_json_bytes
from indelible.reports.request import (MEDIA_TYPES, InvalidReportError, ReportRequest,
                                       parse_request)
from indelible.store import report_data
from indelible.store import reports as store
from indelible.store.appender import Appended, Decision
from indelible.store.checkpoints import StoredCheckpoint, checkpoint_at, latest_checkpoint
from indelible.store.logs import read_head
from indelible.usecases.principal import Principal

GENERATED, REQUESTED = "report.generated", "report.requested"
SCHEDULE_SET, SCHEDULE_CANCELLED = "report.schedule_set", "report.schedule_cancelled"
STREAM, SCHEDULE_STREAM = "report/", "report-schedule/"
CHECKPOINT_WAIT = 120.0  # seconds a job waits for the checkpointer to cover the log
FILE_NAMES = {"pdf": "report.pdf", "html": "report.html", "json": "report.json"}

Append = Callable[[str, object], Appended]  # (tenant, command) -> the committed entry
Progress = Callable[[str, int, int], None]  # (stage, done, total)


class ReportError(Exception):
    """A report could not be made; the message says why in words."""


class ReportIntegrityError(ReportError):
    """A stored report file is not the one its ledger entry recorded (the database was
    edited behind the service)."""


class UnknownReportError(ReportError):
    pass


# Asking and looking ----------------------------------------------------------------------

def request_report(conn: psycopg.Connection, append: Append, who: Principal,
                   body: Mapping) -> store.Job:
    """Record the request in the ledger and queue its job (one transaction);
    InvalidReportError names every bad field."""
    request = parse_request(body)
    report_id = str(time_ordered_ids(datetime.now(timezone.utc), 1)[0])
    record_request(append, who.tenant, report_id, request, who.entry_actor(),
                   queue=True)
    return store.get_job(conn, who.tenant, report_id)


def record_request(append: Append, tenant: str, report_id: str, request: ReportRequest,
                   actor: Actor, *, schedule_id: str | None = None,
                   tree_size: int | None = None, queue: bool = False) -> Appended:
    """Append `report.requested` (what is asked, by `actor`) as the first entry of the
    report's stream; with `queue`, the job row is inserted in the entry's transaction. The
    idempotency key is the report id: a schedule's second look records nothing new."""
    data = {"report_id": report_id, "parameters": request.to_json(),
            "schedule_id": schedule_id}
    if tree_size is not None:
        data["tree_size"] = tree_size
    entry = NewEntry(stream=STREAM + report_id, type=REQUESTED, actor=actor,
                     expected_version=0, idempotency_key=f"{REQUESTED}:{report_id}", data=data)
    parameters = {"request": request.to_json(), "actor": actor.to_json()}  # a convenience copy

    def enqueue(conn, t):
        store.enqueue(conn, t, report_id, parameters, actor.id, schedule_id=schedule_id)
    outcome = append(tenant, Decision(stream=entry.stream, decide=lambda state: entry,
                                      idempotency_key=entry.idempotency_key,
                                      with_entry=enqueue if queue else None))
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


@dataclass(frozen=True)
class Requested:
    """A report's request as the ledger recorded it."""

    seq: int
    request: ReportRequest
    actor: Actor
    tree_size: int | None


def requested(conn: psycopg.Connection, tenant: str, report_id: str,
              verifier: proofs.NoteVerifier | None = None) -> Requested:
    """The `report.requested` entry of a report, decoded from the entry's bytes. With
    `verifier`, the bytes must be the ones the signed log holds at that seq (or no checkpoint
    covers them yet): a row rewritten in place records nothing. Raises ReportError."""
    found = store.requested_entry(conn, tenant, STREAM + report_id)
    if found is None:
        raise ReportError(f"report {report_id} has no report.requested entry in the ledger: "
                          "nothing says what was asked, so nothing is generated")
    seq, leaf, entry = found
    if proofs.leaf_hash(entry) != leaf:
        raise ReportError(f"the report.requested entry of report {report_id} (seq {seq}) does "
                          "not hash to its leaf hash: the ledger row was edited")
    if verifier is not None and (proof := _proved(conn, tenant, seq, entry, verifier)) not in (
            PROVED, NOT_COVERED):
        raise ReportError(f"the report.requested entry of report {report_id} (seq {seq}) is "
                          f"{proof}")
    document = orjson.loads(entry)
    data = document["data"]
    if document["type"] != REQUESTED or data.get("report_id") != report_id:
        raise ReportError(f"seq {seq} is not the report.requested entry of report {report_id}")
    return Requested(seq, parse_request(data["parameters"]), Actor(**document["actor"]),
                     data.get("tree_size"))


def report_status(conn: psycopg.Connection, tenant: str,
                  report_id: str) -> tuple[store.Job, list[store.StoredFile]]:
    if not _is_uuid(report_id) or (job := store.get_job(conn, tenant, report_id)) is None:
        raise UnknownReportError(f"no report {report_id!r} in this tenant")
    return job, store.list_files(conn, tenant, report_id) if job.status == "done" else []


def report_file(conn: psycopg.Connection, tenant: str, report_id: str,
                name: str) -> tuple[store.StoredFile, bytes]:
    found = store.read_file(conn, tenant, report_id, name) if _is_uuid(report_id) else None
    if found is None:
        raise UnknownReportError(f"no file {name!r} in report {report_id!r} of this tenant")
    # The bytes are served as "recorded in the ledger": check them against the entry, not
    # against the file row's own sha256 column, which whoever edits the bytes can edit too.
    entry = store.generated_entry(conn, tenant, STREAM + report_id)
    recorded = {f.get("name"): f for f in orjson.loads(entry)["data"]["files"]} if entry else {}
    digest = hashlib.sha256(found[1]).hexdigest()
    want = recorded.get(found[0].name, {})
    if want.get("sha256") != digest or want.get("size") != len(found[1]):
        raise ReportIntegrityError(
            f"the stored {found[0].name!r} of report {report_id} hashes to {digest} "
            f"({len(found[1])} bytes), but its report.generated entry records "
            f"{want.get('sha256')} ({want.get('size')} bytes): it is not served")
    return found


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# Generating ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Generated:
    report_id: str
    seq: int  # the report.generated entry
    tree_size: int
    files: list[tuple[str, str, bytes]]  # (name, media type, bytes)


@dataclass(frozen=True)
class Signing:
    """How the generator reaches a checkpoint: the key that verifies it, and optionally a
    way to sign one now (the CLI, without the service's checkpointer)."""

    verifier: proofs.NoteVerifier
    verifier_key: str
    sign_now: Callable[[psycopg.Connection, str], None] | None = None


def generate(conninfo: str, job: store.Job, *, append: Append, signing: Signing,
             tree_size: int | None = None, progress: Progress | None = None) -> Generated:
    """Render the job's report over the ledger and record it. Raises ReportError.

    What is rendered, and in whose name, comes from the report's `report.requested` entry;
    the job row only says which report to make."""
    step = progress or (lambda stage, done, total: None)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        asked = requested(conn, job.tenant, job.report_id)
        request, actor = asked.request, asked.actor
        tree_size = tree_size or asked.tree_size
        checkpoint = _checkpoint(conn, job.tenant, tree_size, signing, step)
        # Now a signed checkpoint covers the request (it was in the log before the job ran):
        # its bytes must be the ones signed.
        asked = requested(conn, job.tenant, job.report_id, signing.verifier)
        origin = read_head(conn, job.tenant).origin
        document = read_document(conn, job.tenant, origin, request, checkpoint, signing, step)
    files = []
    for fmt in request.formats:
        step(f"rendering {fmt}", len(files), len(request.formats))
        files.append((FILE_NAMES[fmt], MEDIA_TYPES[fmt], render(fmt, document)))
    step("recording", 0, 1)
    entry = _generated_entry(job, asked, checkpoint, files)
    appended = append(job.tenant, Decision(
        stream=entry.stream, decide=lambda state: entry, idempotency_key=entry.idempotency_key,
        with_entry=lambda conn, tenant: store.store_files(conn, tenant, job.report_id, files)))
    step("done", 1, 1)
    return Generated(job.report_id, appended.seq, checkpoint.size, files)


def render(fmt: str, document: dict) -> bytes:
    if fmt == "json":
        return to_json_bytes(document)
    if fmt == "html":
        from indelible.reports.html import render_html
        return render_html(document)
    from indelible.reports.pdf import render_pdf
    return render_pdf(document)


def _checkpoint(conn, tenant: str, tree_size: int | None, signing: Signing,
                step: Progress) -> StoredCheckpoint:
    if tree_size is not None:  # regenerating: exactly the range recorded before
        found = checkpoint_at(conn, tenant, tree_size)
        if found is None:
            raise ReportError(f"tenant {tenant!r} has no signed checkpoint of tree size {tree_size}")
        return found
    head = read_head(conn, tenant)
    if head is None:
        raise ReportError(f"tenant {tenant!r} has no log")
    deadline = time.monotonic() + CHECKPOINT_WAIT
    while True:
        found = latest_checkpoint(conn, tenant)
        if found is not None and found.size >= head.size and found.size > 0:
            return found
        if signing.sign_now is not None:
            signing.sign_now(conn, tenant)
            signing = Signing(signing.verifier, signing.verifier_key)  # once is enough
            continue
        if time.monotonic() > deadline:
            raise ReportError(f"no signed checkpoint covers the log's {head.size} entries after "
                              f"{CHECKPOINT_WAIT:.0f} s: is the checkpointer running?")
        step("waiting for a signed checkpoint", found.size if found else 0, head.size)
        time.sleep(0.25)


def read_document(conn, tenant: str, origin: str, request: ReportRequest,
              checkpoint: StoredCheckpoint, signing: Signing, step: Progress) -> dict:
    size = checkpoint.size
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))
        streams = report_data.streams_in_period(conn, tenant, size=size, start=request.period_from,
                                                end=request.period_to, ids=request.discrepancy_ids)
        cases: dict[str, CaseBuilder] = {}
        for n, (stream, seq, entry, leaf) in enumerate(report_data.stream_entries(
                conn, tenant, streams, size=size, end=request.period_to)):
            cases.setdefault(stream, CaseBuilder()).add(seq, orjson.loads(entry), leaf)
            if n % 5000 == 0:
                step("reading entries", len(cases), len(streams))
        step("verifying the covered range", 0, size)
        check = report_data.check_range(conn, tenant, checkpoint, signing.verifier, origin)
        last = report_data.last_recorded_at(conn, tenant, size)
    chosen = [c.to_json() for c in cases.values() if c.state is not None and _matches(c, request)]
    chosen.sort(key=lambda c: (c["opened_at"], c["id"]))
    as_of = min(request.period_to, last) if last else request.period_to
    return build_document(ReportInputs(
        tenant=tenant, origin=origin, request=request, tree_size=size,
        checkpoint_note=checkpoint.note, root_hash=checkpoint.root_hash,
        verifier_key=signing.verifier_key, range_check=check.to_json(), cases=chosen,
        as_of=as_of))


def _matches(case: CaseBuilder, r: ReportRequest) -> bool:
    s = case.state
    return ((not r.statuses or s.status.value in r.statuses)
            and (not r.severities or s.severity.value in r.severities)
            and (not r.sources or s.source in r.sources)
            and (not r.currencies or s.currency in r.currencies))


def _generated_entry(job: store.Job, asked: Requested, checkpoint: StoredCheckpoint,
                     files) -> NewEntry:
    return NewEntry(
        stream=STREAM + job.report_id, type=GENERATED, actor=asked.actor, expected_version=1,
        idempotency_key=f"{GENERATED}:{job.report_id}",
        data={"report_id": job.report_id, "parameters": asked.request.to_json(),
              "requested_seq": asked.seq,
              "covered": {"first_seq": 0, "last_seq": checkpoint.size - 1,
                          "tree_size": checkpoint.size,
                          "checkpoint_root": proofs_b64(checkpoint.root_hash)},
              "schedule_id": job.schedule_id,
              "files": [{"name": name, "media_type": media, "size": len(content),
                         "sha256": hashlib.sha256(content).hexdigest()}
                        for name, media, content in files]})


def proofs_b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def run_job(conninfo: str, conn: psycopg.Connection, job: store.Job, *, append: Append,
            signing: Signing) -> None:
    """Generate a claimed job and record how it ended (a failure keeps its reason)."""
    def progress(stage: str, done: int, total: int) -> None:
        store.set_progress(conn, job, f"{stage} ({done}/{total})" if total else stage)
    try:
        made = generate(conninfo, job, append=append, signing=signing, progress=progress)
    except (ReportError, InvalidReportError) as e:
        store.finish(conn, job, "failed", failure=str(e))
        return
    store.finish(conn, job, "done", entry_seq=made.seq)


# Tying a file to its entry ---------------------------------------------------------------

@dataclass(frozen=True)
class Match:
    tenant: str
    seq: int
    report_id: str
    name: str
    at: str
    actor: str
    parameters: dict
    tree_size: int
    # With a verifier: "proved" (the entry is in the log under a signed checkpoint), or
    # "not yet covered by a checkpoint"; None when not checked.
    proof: str | None = None


def verify_report_file(conn: psycopg.Connection, content: bytes,
                       tenant: str | None = None,
                       verifier: proofs.NoteVerifier | None = None) -> list[Match]:
    """Every `report.generated` entry that recorded these exact bytes (usually one). With
    `verifier`, an entry is a match only if it is the one the signed log holds at its seq (or
    no checkpoint covers it yet): the row alone is the database's word, which a superuser
    can rewrite to record any file's hash."""
    digest = hashlib.sha256(content).hexdigest()
    matches = []
    for found_tenant, seq, entry in store.find_generated(conn, digest, tenant):
        proof = None if verifier is None else _proved(conn, found_tenant, seq, entry, verifier)
        if proof is not None and proof not in (PROVED, NOT_COVERED):
            continue  # the row is not what the log signed: it records nothing
        document = orjson.loads(entry)
        for f in document["data"]["files"]:
            if f["sha256"] == digest and f["size"] == len(content):
                data = document["data"]
                matches.append(Match(found_tenant, seq, data["report_id"], f["name"],
                                     document["at"], document["actor"]["id"],
                                     data["parameters"], data["covered"]["tree_size"],
                                     proof))
    return matches


PROVED, NOT_COVERED = "proved", "not yet covered by a checkpoint"


def _proved(conn: psycopg.Connection, tenant: str, seq: int, entry: bytes,
            verifier: proofs.NoteVerifier) -> str:
    """Whether `entry` is the log's entry at `seq`, checked against a signed checkpoint
    (the inclusion proof's hashes come from the database, the root from a signature)."""
    from indelible.audit import NotFoundError, entry_proof

    try:
        found = entry_proof(conn, tenant, seq)
    except NotFoundError:
        return NOT_COVERED
    try:
        checkpoint = proofs.open_checkpoint(found.checkpoint.note, verifier)
        proofs.verify_inclusion(seq, checkpoint.size, proofs.leaf_hash(entry), found.proof,
                                checkpoint.root_hash)
    except proofs.ProofError as e:
        return f"not in the signed log: {e}"
    return PROVED


# Schedules -------------------------------------------------------------------------------

def set_schedule(append: Append, who: Principal, body: Mapping) -> store.Schedule:
    """A recurring report: `{"every": "monthly", "formats": [...], "filters": {...}}`."""
    every = body.get("every") if isinstance(body, Mapping) else None
    errors = [] if every in periods.EVERY else [
        ("every", f"one of {', '.join(periods.EVERY)}; got {every!r}")]
    now = datetime.now(timezone.utc)
    start, end = periods.period_before(every if not errors else "monthly", now)
    try:
        request = parse_request({"from": start.isoformat(), "to": end.isoformat(),
                                 **{k: v for k, v in body.items() if k in ("formats", "filters")}})
    except InvalidReportError as e:
        errors += e.errors
    errors += [(k, "unknown field; allowed: every, formats, filters")
               for k in sorted(set(body) - {"every", "formats", "filters"})]
    if errors:
        raise InvalidReportError(errors)
    schedule_id = str(uuid.uuid4())
    parameters = {"formats": list(request.formats), "filters": request.to_json()["filters"],
                  "actor": who.entry_actor().to_json()}
    first = periods.first_run(every, now)
    holder: dict = {}
    entry = NewEntry(stream=SCHEDULE_STREAM + schedule_id, type=SCHEDULE_SET,
                     actor=who.entry_actor(), expected_version=0,
                     data={"schedule_id": schedule_id, "every": every,
                           "formats": parameters["formats"], "filters": parameters["filters"]})

    def insert(conn, tenant):
        # The row names its entry's seq; the appender runs this after placing the entry.
        (seq,) = conn.execute("SELECT seq FROM ledger_entries WHERE tenant_id = %s AND "
                              "stream_id = %s AND stream_version = 1",
                              (tenant, entry.stream)).fetchone()
        holder["schedule"] = store.Schedule(tenant, schedule_id, every, parameters, seq, first,
                                            False)
        store.insert_schedule(conn, holder["schedule"])
    decision = Decision(stream=entry.stream, decide=lambda state: entry, with_entry=insert)
    append(who.tenant, decision)
    return holder["schedule"]


def cancel_schedule(append: Append, conn: psycopg.Connection, who: Principal,
                    schedule_id: str) -> None:
    if not _is_uuid(schedule_id) or store.get_schedule(conn, who.tenant, schedule_id) is None:
        raise UnknownReportError(f"no report schedule {schedule_id!r} in this tenant")
    entry = NewEntry(stream=SCHEDULE_STREAM + schedule_id, type=SCHEDULE_CANCELLED,
                     actor=who.entry_actor(), data={"schedule_id": schedule_id},
                     idempotency_key=f"{SCHEDULE_CANCELLED}:{schedule_id}")
    append(who.tenant, Decision(stream=entry.stream, decide=lambda state: entry,
                                idempotency_key=entry.idempotency_key,
                                with_entry=lambda c, t: store.cancel_schedule(c, t, schedule_id)))


def enqueue_due_schedules(conn: psycopg.Connection, append: Append,
                          now: datetime | None = None) -> int:
    """Queue the report of every schedule whose period ended, recording each as a
    `report.requested` entry by the schedule; each run once, whichever worker looks (the
    report id is derived from the schedule and the period, and is the entry's key)."""
    queued = 0
    with conn.transaction():
        for s in store.due_schedules(conn):
            start, end = periods.period_before(s.every, s.next_run_at)
            request = {"from": start.isoformat(), "to": end.isoformat(),
                       "formats": s.parameters["formats"], "filters": s.parameters["filters"]}
            report_id = str(uuid.uuid5(uuid.UUID(s.schedule_id), start.isoformat()))
            actor = Actor(f"schedule:{s.schedule_id}", "system", "system")
            before = store.get_job(conn, s.tenant, report_id)
            record_request(append, s.tenant, report_id, parse_request(request), actor,
                           schedule_id=s.schedule_id, queue=True)
            queued += before is None
            store.advance_schedule(conn, s, periods.next_start(s.every, s.next_run_at))
    return queued
