"""How far checkpoints trail each log (/metrics' checkpoint age and unsigned entries)."""

from __future__ import annotations

import pytest

from indelible.store.appender import append_batch
from indelible.store.signing import sign_checkpoint
from indelible.store.signing_health import SigningLag, signing_lag

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


def test_readyz_names_the_checkpointer_when_its_passes_stall(app_url, tmp_path):
    import time
    from types import SimpleNamespace

    from indelible.config import Settings
    from indelible.operations import operated

    settings = Settings(tmp_path, database_url="unused", continuous_verify=False,
                        checkpoint_interval=5.0)
    signing = SimpleNamespace(passed_at=time.monotonic())
    with operated(settings, app_url=app_url, appender=None, key_text="", checkpointer=signing) as ops:
        (check,) = ops.readiness
        assert check() is None
        signing.passed_at -= 61  # 12 intervals of 5 s, at least 60 s
        component, detail = check()
    assert component == "checkpointer" and detail.startswith("lagging: no signing pass completed for 61 s")
