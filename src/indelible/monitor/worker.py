"""The verifier process: follows every tenant's log and runs the scheduled full verifications.

It runs apart from the service (a spawned process, at a lower CPU priority), so hashing
and parsing every entry again never competes with the appender for the service's GIL, and
the operating system gives appends the CPU first. It has its own database connections and
learns of commits by polling each log for entries past what it has read (an index probe).
Everything it finds is sent to the service as plain messages on `outbox` (a queue):
  ("progress", {tenant: {"verified": n, "signed": n, "seen": n}})
  ("finding", Finding)                      -- raised as an alarm by the service
  ("completed", {tenant, report summary})   -- one full run, for the ledger
  ("error", text)
The service decides what to do with them (alarm, ledger entry, metrics).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass

import psycopg

from indelible.entry import b64
from indelible.monitor.follow import FETCH, Finding, TenantFollower
from indelible.proofs import NoteVerifier, ProofError

log = logging.getLogger(__name__)

POLL = 0.25  # seconds between looks for new entries when every log is caught up
RECHECK = 2.0  # seconds between rechecks of the newest entries (row versions)
DEEP_RECHECK = 30.0  # seconds between rechecks that re-hash every one of them
RECHECK_BUDGET = 20_000  # entries rechecked per RECHECK, over all tenants
SWEEP = 30.0  # seconds between probes of every log, whatever log_heads says
NICE = 10  # lower CPU priority than the service's appender and HTTP threads
MAX_FINDINGS = 20  # per full run, sent to the service (the count is always sent)


@dataclass(frozen=True)
class WorkerConfig:
    conninfo: str
    key_text: str  # this service's verifier key
    window: int  # entries re-read every RECHECK seconds, per tenant
    full_interval: float  # seconds between full runs of one tenant; 0: never
    started_at: float  # wall clock; full runs are spread over the interval from here
    service_pid: int  # the service that started us: we end when it is gone


def main(config: WorkerConfig, outbox) -> None:
    """The process's entry point (spawned by monitor/service.py, which stops it with
    SIGTERM: it holds nothing that needs a goodbye)."""
    try:
        os.nice(NICE)
    except OSError:
        pass
    # The service's pid comes from the service: asked here, it might already be init's, if
    # the service was killed while this process was still starting.
    parent, stop = config.service_pid, threading.Event()
    _die_with(parent)
    threads = [threading.Thread(target=_guard, args=(fn, config, outbox, stop), name=fn.__name__,
                                daemon=True) for fn in (follow, full_runs)]
    for t in threads:
        t.start()
    # Messages not yet sent when we end are worth nothing to a service that is gone: never
    # wait for the queue's feeder at exit.
    outbox.cancel_join_thread()
    # A service killed with SIGKILL cannot stop us: notice it is gone (we are re-parented)
    # and end, rather than poll its database forever as an orphan.
    while not stop.wait(1.0):
        if os.getppid() != parent:
            os._exit(0)  # nothing to flush or release: the database sees its connections close


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when the service dies, however it dies (Linux
    PR_SET_PDEATHSIG); elsewhere the watch in `main` does it within a second."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # it died before the line above
        os._exit(0)


def _guard(fn, config: WorkerConfig, outbox, stop) -> None:
    while not stop.is_set():
        try:
            fn(config, outbox, stop)
            return
        except psycopg.Error as e:
            outbox.put(("error", f"{fn.__name__}: database: {e}"))
        except Exception as e:  # noqa: BLE001 - reported, then the loop starts over
            outbox.put(("error", f"{fn.__name__}: {type(e).__name__}: {e}"))
        stop.wait(2.0)


def trusted_keys(conn, tenant: str, key_text: str) -> list[NoteVerifier]:
    """Ours, and those the log's own key-rotation entries name (which the chain and the
    checkpoints then prove were written by the service)."""
    from indelible.entry import decode_entry
    from indelible.store.key_rotation import STREAM

    texts = [key_text]
    # Read here, row by row, not with store.key_rotation.rotations: one row a superuser
    # edited into that stream must not raise and stop the verifier for every tenant. A
    # row skipped here is still checked by the chain (its bytes) and the full run (columns).
    for (entry,) in conn.execute("SELECT entry FROM ledger_entries WHERE tenant_id = %s AND "
                                 "stream_id = %s ORDER BY stream_version", (tenant, STREAM)):
        try:
            data = decode_entry(bytes(entry))["data"]
            found = (data["previous"], data["next"])
        except (ValueError, KeyError, TypeError):
            continue
        texts += [t for t in found if isinstance(t, str) and t not in texts]
    keys = []
    for text in texts:
        try:
            keys.append(NoteVerifier.from_key_text(text))
        except (ProofError, ValueError):
            continue
    return keys


def follow(config: WorkerConfig, outbox, stop) -> None:
    followers: dict[str, TenantFollower] = {}
    rechecks: deque[str] = deque()  # tenants in the order their newest entries are re-read
    last_recheck = last_sweep = last_deep = time.monotonic()
    with psycopg.connect(config.conninfo, autocommit=True) as conn:
        while not stop.is_set():
            # log_heads says which tenants exist and, as a hint only, where to look: a log is
            # probed when its head moved past what was read or a checkpoint may be due, and
            # every log every SWEEP seconds whatever the hint says. Nothing about a log's
            # contents is read from it.
            sweep = time.monotonic() - last_sweep >= SWEEP
            last_sweep = time.monotonic() if sweep else last_sweep
            heads = {}
            for tenant, origin, size in conn.execute("SELECT tenant_id, origin, size FROM log_heads"):
                heads[tenant] = size
                if tenant not in followers:
                    followers[tenant] = TenantFollower(
                        tenant, origin, trusted_keys(conn, tenant, config.key_text),
                        window=config.window)
                    rechecks.append(tenant)
            busy = False
            for tenant, follower in followers.items():
                if not (sweep or heads.get(tenant, 0) > follower.next_seq
                        or follower.signed_size < follower.next_seq):
                    continue
                before = follower.next_seq
                for finding in _advance(conn, follower, config):
                    outbox.put(("finding", finding))
                # Behind (a full fetch came back): read on at once. Caught up: wait a poll, so
                # a busy log is read in a few large queries a second, not many small ones.
                busy |= follower.next_seq - before >= FETCH
            if time.monotonic() - last_recheck >= RECHECK:
                last_recheck = time.monotonic()
                deep = last_recheck - last_deep >= DEEP_RECHECK
                last_deep = last_recheck if deep else last_deep
                _recheck(conn, followers, rechecks, outbox, deep)
            outbox.put(("progress", {t: {"verified": f.next_seq, "signed": f.signed_size,
                                         "halted": f.halted is not None}
                                     for t, f in followers.items()}))
            if not busy:
                stop.wait(POLL)


def _recheck(conn, followers: dict[str, TenantFollower], order: deque[str], outbox,
             deep: bool) -> None:
    """Re-read the newest entries of as many tenants as RECHECK_BUDGET allows, round robin:
    with a few tenants each is re-read every RECHECK seconds; with many, the round is longer
    but the database is never asked for more than the budget at once."""
    spent = 0
    for _ in range(len(order)):
        if spent >= RECHECK_BUDGET:
            return
        tenant = order[0]
        order.rotate(-1)
        follower = followers[tenant]
        spent += len(follower.recent)
        for finding in follower.recheck(conn, deep=deep):
            outbox.put(("finding", finding))


def _advance(conn, follower: TenantFollower, config: WorkerConfig) -> list[Finding]:
    findings = follower.advance(conn)
    if findings and findings[-1].check == "checkpoint" and "not signed" in findings[-1].detail:
        # Perhaps a key rotation the follower has not seen yet: reload the keys once.
        keys = trusted_keys(conn, follower.tenant, config.key_text)
        if len(keys) > len(follower.verifiers):
            follower.verifiers, follower.halted = keys, None
            return follower.advance(conn)
    return findings


def spread(tenant: str, interval: float) -> float:
    """Seconds after start of the tenant's first full run: between a tenth and the whole
    interval, fixed per tenant, so many tenants' runs do not all start at once."""
    fraction = int.from_bytes(hashlib.sha256(tenant.encode()).digest()[:4], "big") / 2**32
    return interval * (0.1 + 0.9 * fraction)


def full_runs(config: WorkerConfig, outbox, stop) -> None:
    if config.full_interval <= 0:
        return
    due: dict[str, float] = {}
    while not stop.wait(min(1.0, config.full_interval / 4)):
        with psycopg.connect(config.conninfo, autocommit=True) as conn:
            # Registered tenants too: one whose log_heads row a superuser deleted must not
            # drop out of the runs unseen (it is reported as unverifiable below).
            tenants = [t for (t,) in conn.execute("SELECT tenant_id FROM log_heads UNION "
                                                  "SELECT tenant_id FROM tenants")]
            keys = {t: trusted_keys(conn, t, config.key_text) for t in tenants}
        for tenant in tenants:
            due.setdefault(tenant, config.started_at + spread(tenant, config.full_interval))
        now = time.time()
        for tenant in sorted((t for t in tenants if due[t] <= now), key=due.get):
            if stop.is_set():
                return
            outbox.put(("completed", _run_one(config.conninfo, tenant, keys[tenant])))
            due[tenant] = max(due[tenant] + config.full_interval, time.time())


def _run_one(conninfo: str, tenant: str, keys: list[NoteVerifier]) -> dict:
    """A full run; a log that cannot even be read (a garbled or missing log head) is an
    alarm for that tenant, not an exception that restarts the runs of every tenant."""
    try:
        return run_full(conninfo, tenant, keys)
    except psycopg.OperationalError:
        raise  # the database, not the log: _guard reports it and tries again
    except Exception as e:  # noqa: BLE001 - anything else is about this log's rows
        finding = Finding(tenant, "unverifiable", f"the log could not be verified: "
                          f"{type(e).__name__}: {e}", None)
        return {"tenant": tenant, "size": 0, "signed_size": 0, "root": "", "seconds": 0.0,
                "status": "tampered", "entries_checked": 0, "first_bad_seq": None,
                "finding_count": 1, "findings": [finding]}


def run_full(conninfo: str, tenant: str, keys: list[NoteVerifier]) -> dict:
    """Everything `indelible verify` checks, in this process (one worker: it is niced and
    must not fan out over every core while the service appends)."""
    from indelible.verifier import verify_log
    from indelible.verifier.models import verify_models

    report = verify_log(conninfo, tenant, keys, workers=1)
    if report.ok:
        verify_models(conninfo, tenant, report)
    # Findings that break the chain first: the service decides from the few sent whether the
    # log still verifies, so many derived findings (columns, nodes) must not crowd them out.
    from indelible.monitor.alarms import CHAIN_CHECKS

    ordered = sorted(report.findings, key=lambda f: (f.check not in CHAIN_CHECKS,
                                                     f.seq if f.seq is not None else -1))
    return {"tenant": tenant, "size": report.size, "signed_size": report.signed_size,
            "root": b64(report.root_hash) if report.root_hash else "",
            "seconds": report.seconds, "status": report.status,
            "entries_checked": report.entries_checked, "first_bad_seq": report.first_bad_seq,
            "finding_count": len(report.findings),
            "findings": [Finding(tenant, f.check, f.detail, f.seq, f.seq_end)
                         for f in ordered[:MAX_FINDINGS]]}
