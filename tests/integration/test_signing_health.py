"""How far checkpoints trail each log (/metrics' checkpoint age, /readyz's checkpointer)."""

from __future__ import annotations

import pytest

from indelible.store.appender import append_batch
from indelible.store.signing import sign_checkpoint
from indelible.store.signing_health import SigningLag, lagging, signing_lag

from .ledger_helpers import command

pytestmark = pytest.mark.storage


def _lag_of(conn, tenant) -> SigningLag:
    return next(lag for lag in signing_lag(conn) if lag.tenant == tenant)


def test_unsigned_entries_and_their_age_are_read_from_the_log(conn, tenant, signer, kept):
    assert _lag_of(conn, tenant) == SigningLag(tenant, 0, 0, None, None)
    append_batch(conn, tenant, [command(i) for i in range(5)])
    lag = _lag_of(conn, tenant)
    assert (lag.size, lag.signed, lag.checkpoint_age) == (5, 0, None)
    assert lag.oldest_unsigned_age >= 0
    sign_checkpoint(conn, tenant, signer, kept)
    lag = _lag_of(conn, tenant)
    assert (lag.size, lag.signed, lag.oldest_unsigned_age) == (5, 5, None)
    assert lag.checkpoint_age >= 0


def test_the_checkpointer_is_lagging_when_an_entry_waits_unsigned_too_long():
    fresh = SigningLag("a", 10, 5, 3.0, 2.0)
    late = SigningLag("b", 30, 10, 400.0, 90.0)
    assert lagging([fresh], 60) is None
    assert lagging([fresh, late], 60) == ("lagging: a tenant's log has 20 entries unsigned, "
                                          "the oldest for 90 s (limit 60 s)")
    assert lagging([late, SigningLag("c", 2, 0, None, 70.0)], 60).endswith("; 2 tenants in all")
