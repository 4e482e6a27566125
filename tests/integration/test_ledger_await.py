"""How a use case awaits the appender (usecases/principal.py Ledger): the entry, the refusal,
or a timeout that leaves the appender working."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from indelible.store.errors import AppendRefusedError, StoreError
from indelible.store.group_commit import GroupCommitAppender
from indelible.usecases.principal import Ledger

from .ledger_helpers import command

pytestmark = pytest.mark.storage


@pytest.fixture
def appender(app_url):
    appender = GroupCommitAppender(conninfo=app_url)
    yield appender
    appender.close()


def test_an_awaited_append_answers_with_its_entry(appender, tenant):
    appended = asyncio.run(Ledger(appender).append(tenant, command(1)))
    assert appended.seq == 0


def test_an_awaited_append_raises_its_refusal(appender, tenant):
    ledger = Ledger(appender)
    asyncio.run(ledger.append(tenant, command(1, key="once")))
    with pytest.raises(AppendRefusedError):
        asyncio.run(ledger.append(tenant, command(2, key="once")))


def test_a_timed_out_append_still_commits_and_the_appender_keeps_answering(
        appender, app_url, tenant):
    with psycopg.connect(app_url) as holder:  # holds the tenant's log head: the writer waits
        holder.execute("SELECT 1 FROM log_heads WHERE tenant_id = %s FOR UPDATE", (tenant,))
        with pytest.raises(TimeoutError):
            asyncio.run(Ledger(appender, timeout=0.2).append(tenant, command(1)))
    # The writer settles the expired request's future, then takes the next command.
    appended = asyncio.run(Ledger(appender, timeout=30).append(tenant, command(2)))
    assert appended.seq == 1


def test_a_cancelled_wait_for_many_leaves_the_appender_answering(appender, app_url, tenant):
    async def cancelled_while_the_writer_waits() -> None:
        waiting = asyncio.ensure_future(Ledger(appender).append_all(tenant, [command(1)]))
        await asyncio.sleep(0.2)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    with psycopg.connect(app_url) as holder:
        holder.execute("SELECT 1 FROM log_heads WHERE tenant_id = %s FOR UPDATE", (tenant,))
        asyncio.run(cancelled_while_the_writer_waits())
    (appended,) = asyncio.run(Ledger(appender, timeout=30).append_all(tenant, [command(2)]))
    assert appended.seq == 1


def _while_the_writer_waits(app_url: str, tenant: str, appender: GroupCommitAppender, queue):
    """Run `queue` (which submits and returns futures) while the writer is blocked on the
    tenant's log head by another transaction holding it."""
    with psycopg.connect(app_url) as holder:
        holder.execute("SELECT 1 FROM log_heads WHERE tenant_id = %s FOR UPDATE", (tenant,))
        first = appender.submit(tenant, command(1))  # taken by the writer, which then waits
        queued = queue()
    return first, queued


def test_a_future_cancelled_before_the_writer_takes_it_appends_nothing(appender, app_url, tenant):
    def cancel_one():
        future = appender.submit(tenant, command(2))
        assert future.cancel()
        return future

    first, cancelled = _while_the_writer_waits(app_url, tenant, appender, cancel_one)
    assert first.result(30).seq == 0 and cancelled.cancelled()
    assert appender.append(tenant, command(3)).seq == 1  # the writer lives; nothing of 2


def test_a_cancelled_batch_future_appends_nothing_and_the_writer_lives(appender, app_url, tenant):
    def cancel_batch():
        future = appender.submit_batch(tenant, [command(2), command(3)])
        assert future.cancel()
        return future

    first, cancelled = _while_the_writer_waits(app_url, tenant, appender, cancel_batch)
    assert first.result(30).seq == 0 and cancelled.cancelled()
    assert appender.append(tenant, command(4)).seq == 1


def test_an_empty_submission_is_answered_at_once_and_a_closed_appender_refuses_more(app_url,
                                                                                   tenant):
    appender = GroupCommitAppender(conninfo=app_url)
    assert appender.submit_batch(tenant, []).result(0) == []
    assert appender.submit_many(tenant, []) == []
    appender.close()
    with pytest.raises(StoreError, match="closed"):
        appender.submit_batch(tenant, [command(1)])
