"""Realistic append commands, and baseline rows built from exactly the same entry bytes.

A command looks like what the discrepancy engine writes: stream `bench/<uuid7>` (a few events
per stream, so stream-version lookups hit existing streams), a discrepancy type, an actor,
and a data dict with amounts as decimal strings, currency, source and external reference.
Every command carries a unique idempotency key, as retried API calls do.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

from indelible.entry import Actor, NewEntry, encode_entry, time_ordered_ids
from indelible.proofs import leaf_hash

EVENTS_PER_STREAM = 4  # detected, assigned, acknowledged, resolved
TYPES = ("discrepancy.detected", "discrepancy.assigned", "discrepancy.acknowledged",
         "discrepancy.resolved")
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "JPY")
SOURCES = ("bank-feed", "erp", "card-processor", "payroll")
ACTORS = tuple(Actor(f"analyst-{i}", "analyst") for i in range(20)) + (
    Actor("engine", "system", "engine"),)


def commands(count: int, *, seed: int | None = None) -> list[NewEntry]:
    """`count` commands over count/4 fresh streams, with keys unique to this call."""
    rng = random.Random(seed)
    run = secrets.token_hex(4)
    # Discrepancy ids are UUIDv7, as the service mints them: time-ordered, so new streams
    # land at the right edge of the (tenant, stream, version) index.
    # Under `bench/`, not `disc/`: these are synthetic events, not the discrepancy domain's,
    # and `indelible verify` replays `disc/` streams through the domain and its read model.
    streams = [f"bench/{i}" for i in time_ordered_ids(datetime.now(timezone.utc),
                                                     max(1, count // EVENTS_PER_STREAM))]
    return [_command(rng, run, i, streams[i % len(streams)], i // len(streams))
            for i in range(count)]


def _command(rng: random.Random, run: str, i: int, stream: str, step: int) -> NewEntry:
    expected = rng.randrange(1, 10_000_000)
    found = expected + rng.randrange(-50_000, 50_000)
    data = {"expected": f"{expected // 100}.{expected % 100:02d}",
            "found": f"{found // 100}.{found % 100:02d}",
            "currency": rng.choice(CURRENCIES), "source": rng.choice(SOURCES),
            "external_ref": f"INV-{rng.randrange(10**9):09d}"}
    return NewEntry(stream=stream, type=TYPES[step % len(TYPES)], actor=rng.choice(ACTORS),
                    data=data, idempotency_key=f"bench-{run}-{i}")


def baseline_rows(tenant: str, origin: str, cmds: list[NewEntry]) -> Iterator[tuple]:
    """Rows for the scratch table: the ledger's columns, the same canonical entry bytes.

    Built before the clock starts, so the baseline pays only for PostgreSQL ingest.
    """
    at = datetime.now(timezone.utc)
    prev: bytes | None = None
    versions: dict[str, int] = {}
    for seq, command in enumerate(cmds):
        version = versions.get(command.stream, 0) + 1
        versions[command.stream] = version
        event_id = uuid.uuid4()
        entry = encode_entry(command, origin=origin, seq=seq, prev=prev, version=version, at=at,
                             event_id=event_id)
        prev = leaf_hash(entry)
        yield (tenant, seq, entry, prev, event_id, command.stream, version, command.type,
               at, command.actor.id, command.idempotency_key)
