"""Report jobs, files and schedules in PostgreSQL (migration 15).

The job queue is operational, like an outbox: a row says what was asked and how far the
worker got. Claiming is exclusive twice over: `FOR UPDATE SKIP LOCKED` keeps two workers off
the same row while they claim, and a session advisory lock on the job, held by the worker's
connection for as long as it renders, says the claim is alive. A worker that dies (a crash,
a restart) loses its connection and so its lock: the next worker to look finds a `running`
job whose lock it can take, and claims it again. No heartbeat, no timeout to tune.

`report_files` is evidence (append-only): the bytes the `report.generated` entry hashes,
inserted in that entry's own transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg

LOCK_SPACE = 0x1DE1_0013  # advisory lock class for report jobs (the second key: the job)
MAX_ATTEMPTS = 3  # a job whose renderer died this often is failed, not retried forever


@dataclass(frozen=True)
class Job:
    tenant: str
    report_id: str
    parameters: dict
    requested_by: str
    requested_at: datetime
    status: str  # queued, running, done, failed
    attempts: int = 0
    progress: str | None = None
    finished_at: datetime | None = None
    failure: str | None = None
    entry_seq: int | None = None
    schedule_id: str | None = None


_JOB = ("tenant_id, report_id::text, parameters, requested_by, requested_at, status, attempts, "
        "progress, finished_at, failure, entry_seq, schedule_id::text")


def enqueue(conn: psycopg.Connection, tenant: str, report_id: str, parameters: dict,
            requested_by: str, schedule_id: str | None = None) -> bool:
    """Queue a job; False when that report id was queued before (a schedule's second look)."""
    cur = conn.execute(
        "INSERT INTO report_jobs (tenant_id, report_id, parameters, requested_by, schedule_id) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (tenant, report_id, psycopg.types.json.Jsonb(parameters), requested_by, schedule_id))
    return cur.rowcount == 1


def get_job(conn: psycopg.Connection, tenant: str, report_id: str) -> Job | None:
    row = conn.execute(f"SELECT {_JOB} FROM report_jobs WHERE tenant_id = %s AND report_id = %s",
                       (tenant, report_id)).fetchone()
    return Job(*row) if row else None


def list_jobs(conn: psycopg.Connection, tenant: str, limit: int = 50) -> list[Job]:
    rows = conn.execute(f"SELECT {_JOB} FROM report_jobs WHERE tenant_id = %s "
                        "ORDER BY requested_at DESC LIMIT %s", (tenant, limit))
    return [Job(*r) for r in rows]


def claim(conn: psycopg.Connection, worker: str, tenant: str | None = None) -> Job | None:
    """The oldest job nobody is rendering (of `tenant`, if given), now held by `conn`
    (autocommit) until `release`."""
    only = "" if tenant is None else "AND tenant_id = %(tenant)s "
    with conn.transaction():
        rows = conn.execute(
            f"SELECT {_JOB} FROM report_jobs WHERE status IN ('queued', 'running') {only}"
            "ORDER BY requested_at LIMIT 20 FOR UPDATE SKIP LOCKED", {"tenant": tenant}).fetchall()
        for row in rows:
            job = Job(*row)
            (locked,) = conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))",
                                     (LOCK_SPACE, _lock_key(job))).fetchone()
            if not locked:
                continue  # a live worker renders it
            if job.status == "running" and job.attempts >= MAX_ATTEMPTS:
                _finish(conn, job, "failed", failure=f"the renderer stopped {job.attempts} "
                        "times while working on it (see the service log)")
                release(conn, job)
                continue
            conn.execute("UPDATE report_jobs SET status = 'running', attempts = attempts + 1, "
                         "claimed_by = %s, progress = 'claimed' "
                         "WHERE tenant_id = %s AND report_id = %s",
                         (worker, job.tenant, job.report_id))
            return Job(**{**job.__dict__, "status": "running", "attempts": job.attempts + 1})
    return None


def release(conn: psycopg.Connection, job: Job) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_SPACE, _lock_key(job)))


def _lock_key(job: Job) -> str:
    return f"{job.tenant}/{job.report_id}"


def set_progress(conn: psycopg.Connection, job: Job, progress: str) -> None:
    conn.execute("UPDATE report_jobs SET progress = %s WHERE tenant_id = %s AND report_id = %s",
                 (progress[:200], job.tenant, job.report_id))


def finish(conn: psycopg.Connection, job: Job, status: str, *, failure: str | None = None,
           entry_seq: int | None = None) -> None:
    with conn.transaction():
        _finish(conn, job, status, failure=failure, entry_seq=entry_seq)


def _finish(conn, job: Job, status: str, *, failure=None, entry_seq=None) -> None:
    conn.execute("UPDATE report_jobs SET status = %s, failure = %s, entry_seq = %s, "
                 "finished_at = now(), progress = NULL WHERE tenant_id = %s AND report_id = %s",
                 (status, failure, entry_seq, job.tenant, job.report_id))


@dataclass(frozen=True)
class StoredFile:
    name: str
    media_type: str
    sha256: str  # hex
    size: int

    def to_json(self) -> dict:
        return {"name": self.name, "media_type": self.media_type, "sha256": self.sha256,
                "size": self.size}


def store_files(conn: psycopg.Connection, tenant: str, report_id: str,
                files: list[tuple[str, str, bytes]]) -> None:
    """Insert (name, media type, bytes); the same bytes again (a replayed append) are kept
    once: rows are never updated."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO report_files (tenant_id, report_id, name, media_type, sha256, size, "
            "content) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(tenant, report_id, name, media, hashlib.sha256(content).digest(), len(content),
              content) for name, media, content in files])


def list_files(conn: psycopg.Connection, tenant: str, report_id: str) -> list[StoredFile]:
    rows = conn.execute("SELECT name, media_type, encode(sha256, 'hex'), size FROM report_files "
                        "WHERE tenant_id = %s AND report_id = %s ORDER BY name",
                        (tenant, report_id))
    return [StoredFile(*r) for r in rows]


def read_file(conn: psycopg.Connection, tenant: str, report_id: str,
              name: str) -> tuple[StoredFile, bytes] | None:
    row = conn.execute("SELECT name, media_type, encode(sha256, 'hex'), size, content "
                       "FROM report_files WHERE tenant_id = %s AND report_id = %s AND name = %s",
                       (tenant, report_id, name)).fetchone()
    return (StoredFile(*row[:4]), bytes(row[4])) if row else None


def generated_entry(conn: psycopg.Connection, tenant: str, stream: str) -> bytes | None:
    """A report stream's `report.generated` entry, if any."""
    row = conn.execute("SELECT entry FROM ledger_entries WHERE tenant_id = %s AND stream_id = %s "
                       "AND type = 'report.generated' ORDER BY seq LIMIT 1",
                       (tenant, stream)).fetchone()
    return bytes(row[0]) if row else None


def requested_entry(conn: psycopg.Connection, tenant: str,
                    stream: str) -> tuple[int, bytes, bytes] | None:
    """(seq, leaf hash, entry) of the entry that opened a report's stream (its
    `report.requested`), if any; the caller checks the bytes, not this row's word."""
    row = conn.execute("SELECT seq, leaf_hash, entry FROM ledger_entries WHERE tenant_id = %s "
                       "AND stream_id = %s AND stream_version = 1", (tenant, stream)).fetchone()
    return (row[0], bytes(row[1]), bytes(row[2])) if row else None


def find_generated(conn: psycopg.Connection, sha256_hex: str,
                   tenant: str | None = None) -> list[tuple[str, int, bytes]]:
    """(tenant, seq, entry) of every `report.generated` entry naming a file with this hash."""
    sql = ("SELECT tenant_id, seq, entry FROM ledger_entries WHERE type = 'report.generated' "
           "AND position(%s IN convert_from(entry, 'UTF8')) > 0")
    args: list[Any] = [f'"sha256":"{sha256_hex}"']
    if tenant is not None:
        sql += " AND tenant_id = %s"
        args.append(tenant)
    return [(t, s, bytes(e)) for t, s, e in conn.execute(sql + " ORDER BY tenant_id, seq", args)]


# Schedules ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    tenant: str
    schedule_id: str
    every: str
    parameters: dict
    set_seq: int
    next_run_at: datetime
    cancelled: bool

    def to_json(self) -> dict:
        return {"id": self.schedule_id, "every": self.every, "formats": self.parameters["formats"],
                "filters": self.parameters["filters"], "set_seq": self.set_seq,
                "next_run_at": self.next_run_at.isoformat().replace("+00:00", "Z"),
                "cancelled": self.cancelled}


_SCHEDULE = "tenant_id, schedule_id::text, every, parameters, set_seq, next_run_at, cancelled"


def insert_schedule(conn: psycopg.Connection, schedule: Schedule) -> None:
    conn.execute("INSERT INTO report_schedules (tenant_id, schedule_id, every, parameters, "
                 "set_seq, next_run_at, cancelled) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                 (schedule.tenant, schedule.schedule_id, schedule.every,
                  psycopg.types.json.Jsonb(schedule.parameters), schedule.set_seq,
                  schedule.next_run_at, schedule.cancelled))


def cancel_schedule(conn: psycopg.Connection, tenant: str, schedule_id: str) -> None:
    conn.execute("UPDATE report_schedules SET cancelled = true WHERE tenant_id = %s "
                 "AND schedule_id = %s", (tenant, schedule_id))


def list_schedules(conn: psycopg.Connection, tenant: str) -> list[Schedule]:
    rows = conn.execute(f"SELECT {_SCHEDULE} FROM report_schedules WHERE tenant_id = %s "
                        "ORDER BY schedule_id", (tenant,))
    return [Schedule(*r) for r in rows]


def get_schedule(conn: psycopg.Connection, tenant: str, schedule_id: str) -> Schedule | None:
    row = conn.execute(f"SELECT {_SCHEDULE} FROM report_schedules WHERE tenant_id = %s "
                       "AND schedule_id = %s", (tenant, schedule_id)).fetchone()
    return Schedule(*row) if row else None


def due_schedules(conn: psycopg.Connection) -> list[Schedule]:
    """Schedules whose next run is due, locked for this transaction (SKIP LOCKED: another
    worker looking at the same moment takes the others)."""
    rows = conn.execute(f"SELECT {_SCHEDULE} FROM report_schedules WHERE NOT cancelled "
                        "AND next_run_at <= now() ORDER BY next_run_at LIMIT 20 "
                        "FOR UPDATE SKIP LOCKED")
    return [Schedule(*r) for r in rows]


def advance_schedule(conn: psycopg.Connection, schedule: Schedule, next_run_at: datetime) -> None:
    conn.execute("UPDATE report_schedules SET next_run_at = %s WHERE tenant_id = %s "
                 "AND schedule_id = %s", (next_run_at, schedule.tenant, schedule.schedule_id))


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def record_finished(conn: psycopg.Connection, tenant: str, report_id: str, parameters: dict,
                    requested_by: str, entry_seq: int) -> None:
    """A report made outside the queue (the CLI), listed beside the others."""
    conn.execute(
        "INSERT INTO report_jobs (tenant_id, report_id, parameters, requested_by, status, "
        "attempts, finished_at, entry_seq) VALUES (%s, %s, %s, %s, 'done', 1, now(), %s) "
        "ON CONFLICT DO NOTHING",
        (tenant, report_id, psycopg.types.json.Jsonb(parameters), requested_by, entry_seq))
