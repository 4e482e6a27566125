"""Discrepancy use cases: report, close as matched, move, assign, comment, change severity,
attach evidence.

Each takes the principal asking and a domain command, decides through the appender (under
the log-head lock, against state read in that transaction) and returns a `Recorded`; a
refusal is raised as the domain's own error (`domain.RefusedError` and its kinds,
`domain.InvalidCommandError`) or as `KeyReusedError`, each readable by a person.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

from indelible import domain
from indelible.store import discrepancies as store
from indelible.store import evidence
from indelible.store.appender import Appended, Decision
from indelible.store.errors import IdempotencyConflictError
from indelible.usecases.principal import Ledger, Principal


@dataclass(frozen=True)
class ClientKey:
    """A client's Idempotency-Key and the SHA-256 fingerprint of the request it came with:
    the same request again replays; another request under the key is refused."""

    key: str  # already namespaced by the caller's identity (e.g. its API key)
    request_sha256: str


class KeyReusedError(Exception):
    """A client's key was already used for a different request."""

    def __init__(self, key: str, seq: int, discrepancy_id: str):
        super().__init__(f"the key was already used for a different request: it produced the "
                         f"entry at seq {seq} (discrepancy {discrepancy_id})")
        self.key, self.seq, self.discrepancy_id = key, seq, discrepancy_id


@dataclass(frozen=True)
class Recorded:
    """What a use case did: the entry (original, when replayed) and the state it decided."""

    discrepancy_id: str
    appended: Appended
    state: domain.Discrepancy | None  # None when replayed: read the current one if needed


async def report(ledger: Ledger, who: Principal, command: domain.OpenDiscrepancy, *,
                 key: ClientKey | None = None) -> Recorded:
    """Open a discrepancy, or — reported before under the same source and external_ref —
    record nothing (identical) or an amendment (kind, amounts or currency differ)."""
    return await _run(ledger, who, report_decision(who, command, key=key), key)


def report_decision(who: Principal, command: domain.OpenDiscrepancy, *,
                    key: ClientKey | None = None, new_id: str | None = None) -> Decision:
    """The decision `report` appends, for callers that submit many at once (ingestion,
    which names the id a new discrepancy gets so a match in the same batch can find it)."""
    return _decision(new_id or store.new_id(), command, who, key,
                     service_key=store.open_key(command.source, command.external_ref))


def close_as_matched_decision(who: Principal, discrepancy_id: str, *, source: str,
                              external_ref: str, matched_at: str, reason: str) -> Decision:
    """The engine matched the discrepancy: auto-close it, once per (source, external_ref)."""
    close = domain.Transition(to=domain.Status.AUTO_CLOSED,
                              reason=f"matched at {matched_at}: {reason}"[:1000])
    once = "matched:" + hashlib.sha256(orjson.dumps([source, external_ref])).hexdigest()
    return _decision(discrepancy_id, close, who, None, service_key=once)


async def move(ledger: Ledger, who: Principal, discrepancy_id: str,
               command: domain.Transition, *, key: ClientKey | None = None) -> Recorded:
    return await _run(ledger, who, _decision(discrepancy_id, command, who, key), key)


async def assign(ledger: Ledger, who: Principal, discrepancy_id: str, command: domain.Assign,
                 *, key: ClientKey | None = None) -> Recorded:
    return await _run(ledger, who, _decision(discrepancy_id, command, who, key), key)


async def comment(ledger: Ledger, who: Principal, discrepancy_id: str, command: domain.Comment,
                  *, key: ClientKey | None = None) -> Recorded:
    return await _run(ledger, who, _decision(discrepancy_id, command, who, key), key)


async def change_severity(ledger: Ledger, who: Principal, discrepancy_id: str,
                          command: domain.ChangeSeverity, *,
                          key: ClientKey | None = None) -> Recorded:
    return await _run(ledger, who, _decision(discrepancy_id, command, who, key), key)


async def attach_evidence(ledger: Ledger, who: Principal, discrepancy_id: str,
                          command: domain.AttachEvidence, content: bytes, *,
                          key: ClientKey | None = None) -> Recorded:
    """The bytes are stored in the transaction of the entry that attaches them, and only if
    it is appended: a refused attach leaves nothing in the append-only evidence store."""
    if hashlib.sha256(content).hexdigest() != command.sha256 or len(content) != command.size:
        raise ValueError("the command does not describe these bytes")
    decision = _decision(discrepancy_id, command, who, key,
                         with_entry=lambda conn, tenant: evidence.store_file(conn, tenant, content))
    return await _run(ledger, who, decision, key)


def _decision(discrepancy_id: str, command, who: Principal, key: ClientKey | None, *,
              service_key: str | None = None, with_entry=None) -> Decision:
    return store.decision(discrepancy_id, command, who.domain_actor(), service_key,
                          request_key=key.key if key else None,
                          request_sha256=key.request_sha256 if key else None,
                          with_entry=with_entry)


async def _run(ledger: Ledger, who: Principal, decision: Decision,
               key: ClientKey | None) -> Recorded:
    try:
        appended = await ledger.append(who.tenant, decision)
    except store.DomainRefusedError as e:
        raise e.error from e
    except IdempotencyConflictError as e:
        if key is None or e.key != key.key:
            raise
        raise KeyReusedError(key.key, e.seq, e.stream.removeprefix(store.PREFIX)) from e
    return Recorded(appended.stream.removeprefix(store.PREFIX), appended, appended.state)
