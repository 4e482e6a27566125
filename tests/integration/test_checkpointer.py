"""The checkpointer signs a grown log after `interval` seconds, or sooner after `entries`."""

from __future__ import annotations

import time

import pytest

from indelible.store.appender import append_batch
from indelible.store.checkpoints import all_checkpoints
from indelible.store.checkpointer import Checkpointer

from .ledger_helpers import command

pytestmark = pytest.mark.storage


def _sizes(conn, tenant):
    return [c.size for c in all_checkpoints(conn, tenant)]


def test_a_log_that_reaches_the_entry_threshold_is_signed_before_the_interval(app_url, conn, tenant, signer, kept):
    checkpointer = Checkpointer(conninfo=app_url, signer=signer, kept=kept, interval=3600, entries=50)
    append_batch(conn, tenant, [command(i) for i in range(10)])
    checkpointer.run_once(conn)
    assert _sizes(conn, tenant) == [10]  # never signed before: due at once

    append_batch(conn, tenant, [command(i) for i in range(10, 40)])
    checkpointer.run_once(conn)
    assert _sizes(conn, tenant) == [10]  # 30 unsigned, signed seconds ago: not due

    append_batch(conn, tenant, [command(i) for i in range(40, 60)])
    checkpointer.run_once(conn)
    assert _sizes(conn, tenant) == [10, 60]  # 50 unsigned: due


def test_a_grown_log_is_signed_once_the_interval_has_passed(app_url, conn, tenant, signer, kept):
    checkpointer = Checkpointer(conninfo=app_url, signer=signer, kept=kept, interval=0.3, entries=10_000)
    append_batch(conn, tenant, [command(0)])
    checkpointer.run_once(conn)
    append_batch(conn, tenant, [command(1)])
    checkpointer.run_once(conn)
    assert _sizes(conn, tenant) == [1]
    time.sleep(0.35)
    checkpointer.run_once(conn)
    assert _sizes(conn, tenant) == [1, 2]


def test_the_background_thread_signs_new_entries(app_url, conn, tenant, signer, kept):
    checkpointer = Checkpointer(conninfo=app_url, signer=signer, kept=kept, interval=0.1, entries=10_000).start()
    try:
        append_batch(conn, tenant, [command(i) for i in range(5)])
        deadline = time.monotonic() + 10
        while _sizes(conn, tenant) != [5] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        checkpointer.stop()
    assert _sizes(conn, tenant) == [5]
