"""`indelible simulate`: what reconciliation engines publish, so a new user sees the pipeline.

A realistic mix: sources stripe, paypal and bank; every kind; amounts in currencies with 0, 2
and 3 minor units; and about one in five discrepancies matched later by its engine.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone

import orjson

from indelible.ingest.settlement import Published
from indelible.nats_auth import NatsAccess

SOURCES = ("stripe", "paypal", "bank")
KINDS = ("amount_mismatch", "missing_transaction", "timing_gap", "duplicate", "other")
CURRENCIES = {"EUR": 2, "USD": 2, "GBP": 2, "JPY": 0, "KWD": 3}
IN_FLIGHT = 256  # publishes awaiting their acknowledgement at once


def messages(tenant: str, count: int, *, matched_share: float = 0.2,
             seed: int | None = None) -> list[dict]:
    rng = random.Random(seed)
    run = f"{rng.getrandbits(32):08x}"
    now = datetime.now(timezone.utc)
    detected, matched = [], []
    for i in range(count):
        currency = rng.choice(list(CURRENCIES))
        expected = rng.randrange(100, 5_000_000)
        actual = expected + rng.choice([-1, 1]) * rng.randrange(1, max(2, expected // 20))
        body = {"type": "discrepancy.detected", "tenant": tenant, "source": rng.choice(SOURCES),
                "external_ref": f"sim-{run}-{i:06d}", "kind": rng.choice(KINDS),
                "expected_amount": _amount(expected, CURRENCIES[currency]),
                "actual_amount": _amount(actual, CURRENCIES[currency]), "currency": currency,
                "detected_at": (now - timedelta(minutes=rng.randrange(0, 7 * 24 * 60))).isoformat(),
                "transaction_refs": [f"tx_{rng.getrandbits(40):010x}"],
                "metadata": {"simulated": True, "batch": i // 100}}
        detected.append(body)
        if rng.random() < matched_share:
            matched.append({"type": "discrepancy.matched", "tenant": tenant,
                            "source": body["source"], "external_ref": body["external_ref"],
                            "matched_at": now.isoformat(), "reason": "settled in a later run"})
    return detected + matched


def _amount(minor: int, units: int) -> str:
    return str(minor) if units == 0 else f"{minor // 10**units}.{minor % 10**units:0{units}d}"


async def publish(broker: NatsAccess, prefix: str, bodies: list[dict]) -> int:
    nc = await broker.connect()
    try:
        return (await publish_on(nc.jetstream(), prefix, bodies)).count
    finally:
        await nc.close()


async def publish_on(js, prefix: str, bodies: list[dict]) -> Published:
    """Publish, IN_FLIGHT at a time; each is acknowledged by the stream, so its sequence is
    known (a duplicate Nats-Msg-Id is acknowledged with the original's)."""
    seqs: list[int] = []
    for lo in range(0, len(bodies), IN_FLIGHT):
        acks = await asyncio.gather(*(
            js.publish(f"{prefix}.{b['tenant']}", orjson.dumps(b),
                       headers={"Nats-Msg-Id": f"{b['type']}:{b['source']}:{b['external_ref']}"})
            for b in bodies[lo:lo + IN_FLIGHT]))
        seqs.extend(a.seq for a in acks)
    return Published(len(bodies), min(seqs, default=0), max(seqs, default=0))
