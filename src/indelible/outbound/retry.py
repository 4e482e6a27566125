"""What one attempt's answer means, and when to try again. Pure.

- 2xx: delivered.
- 410 Gone: the receiver says the endpoint is gone for good; the integration is disabled for
  the tenant until an operator re-enables it, and the event waits (it is not lost).
- any other 4xx but 408 and 429: the receiver refuses this request; sending it again would
  change nothing, so the event is parked at once for an operator.
- everything else (408, 429, 5xx, 3xx, no answer, a timeout): tried again after the
  schedule's next delay, jittered ±20 % so a recovering receiver is not hit by every queued
  event in the same second; at least as late as a `Retry-After` on 429 or 503 asks (capped
  at a day). After the schedule's last attempt, the event is parked.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from enum import StrEnum

JITTER = 0.2  # ± fraction of each delay
MAX_RETRY_AFTER = 86_400.0  # seconds: a Retry-After beyond a day is read as a day


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PARK = "park"
    DISABLE = "disable"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str  # in words, for the ledger entry and the operator
    delay: float = 0.0  # seconds until the next attempt (RETRY only)


def judge(status: int | None, error: str | None, *, attempt: int, schedule: Sequence[float],
          retry_after: str | None = None, now: datetime | None = None,
          rng: random.Random | None = None) -> Decision:
    """The verdict on attempt number `attempt` (1-based) of a `schedule` of len(schedule)
    attempts: `status` is the HTTP status, or None with `error` when no answer came."""
    if status is not None and 200 <= status < 300:
        return Decision(Verdict.DELIVERED, f"{status}")
    if status == 410:
        return Decision(Verdict.DISABLE, "410 Gone: the receiver says the endpoint is gone; "
                        "the integration is disabled until an operator re-enables it")
    if status is not None and 400 <= status < 500 and status not in (408, 429):
        return Decision(Verdict.PARK, f"{status}: the receiver refused the request "
                        "(a 4xx other than 408 and 429 is not retried)")
    what = f"{status}" if status is not None else f"no answer: {error}"
    if attempt >= len(schedule):
        return Decision(Verdict.PARK, f"{what}; the last of {len(schedule)} attempts failed")
    delay = jittered(schedule[attempt], rng)
    asked = parse_retry_after(retry_after, now) if status in (429, 503) else None
    if asked is not None and asked > delay:
        return Decision(Verdict.RETRY, f"{what}; retrying after {asked:g} s as Retry-After asks",
                        asked)
    return Decision(Verdict.RETRY, f"{what}; retrying in {delay:.1f} s", delay)


def jittered(delay: float, rng: random.Random | None = None) -> float:
    return delay * (1 + JITTER * (2 * (rng or random).random() - 1))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP-date); None when it
    is absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²" is a digit to isdigit, not to float
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
