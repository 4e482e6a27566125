"""Ingestion that cannot livelock, stop unseen or lose a report: real nats-server and
PostgreSQL, faults induced on the real servers."""

from __future__ import annotations

import asyncio

import nats
import orjson
import psycopg
import pytest
from nats.js.api import ConsumerConfig, DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from indelible.ingest import streams
from indelible.ingest.consumer import Consumer, IngestConfig, stream_tag
from indelible.runtime import EmbeddedNats
from indelible.store.group_commit import GroupCommitAppender

from .test_ingest import PREFIX, RunningConsumer, detected, entries, publish, wait_for

pytestmark = pytest.mark.storage


@pytest.fixture
def broker(tmp_path):  # one per test: these tests delete and reshape streams
    with EmbeddedNats(tmp_path / "nats") as server:
        yield server


def _run(coro):
    return asyncio.run(coro)


async def _stream_info(access, name: str):
    nc = await access.connect()
    try:
        return await nc.jetstream().stream_info(name)
    finally:
        await nc.close()


def test_a_message_redelivered_after_its_dead_letter_committed_is_acknowledged(
        broker, app_url, registered_tenant):
    subject = f"{PREFIX}.{registered_tenant}"

    async def dead_letter_then_crash():
        # An earlier instance dead-letters the message, commits the entry, and dies before
        # its acknowledgement reaches the broker: the message comes back (delivery 2).
        nc = await broker.access.connect()
        js = nc.jetstream()
        await streams.ensure_streams(js, PREFIX)
        await js.publish(subject, b"{not json")
        sub = await js.pull_subscribe(subject.rsplit(".", 1)[0] + ".*", durable=streams.DURABLE,
                                      stream=streams.STREAM,
                                      config=ConsumerConfig(ack_wait=60, max_ack_pending=50_000))
        (msg,) = await sub.fetch(1, timeout=5)
        appender = GroupCommitAppender(conninfo=app_url)
        crashed = Consumer(config=IngestConfig(broker=broker.access, prefix=PREFIX),
                           appender=appender, conninfo=app_url)
        crashed.stream_tag = await stream_tag(js)
        await crashed.record_dead_letter(js, msg, "not JSON", registered_tenant)
        appender.close()
        await msg.nak()
        await nc.close()

    _run(dead_letter_then_crash())
    assert len(entries(app_url, registered_tenant, "ingest.dead_lettered")) == 1
    publish(broker.access, [(subject, orjson.dumps(detected(registered_tenant, "after")))])
    with RunningConsumer(broker.access, app_url) as running:
        wait_for(lambda: entries(app_url, registered_tenant, "discrepancy.opened"), timeout=15)
        wait_for(lambda: _run(_stream_info(broker.access, streams.STREAM)).state.messages == 0,
                 timeout=15)
        assert running.consumer.status.dead_lettered == 1
    assert len(entries(app_url, registered_tenant, "ingest.dead_lettered")) == 1


def test_the_consumer_restarts_itself_when_its_durable_consumer_is_deleted(
        broker, app_url, registered_tenant):
    subject = f"{PREFIX}.{registered_tenant}"
    with RunningConsumer(broker.access, app_url) as running:
        status = running.consumer.status
        wait_for(lambda: status.problem() is None, timeout=15)

        async def delete_consumer():
            nc = await broker.access.connect()
            await nc.jetstream().delete_consumer(streams.STREAM, streams.DURABLE)
            await nc.close()
        _run(delete_consumer())
        wait_for(lambda: status.restarts >= 1, timeout=15)
        publish(broker.access, [(subject, orjson.dumps(detected(registered_tenant, "after-loss")))])
        wait_for(lambda: entries(app_url, registered_tenant, "discrepancy.opened"), timeout=20)
        wait_for(lambda: status.problem() is None, timeout=15)


def test_ingestion_down_is_reported_while_the_broker_is_away(broker, app_url):
    with RunningConsumer(broker.access, app_url) as running:
        status = running.consumer.status
        wait_for(lambda: status.problem() is None, timeout=15)
        broker.stop()
        problem = wait_for(status.problem, timeout=15)
        assert problem.startswith(("ingestion reconnecting", "ingestion restarting")), problem
        assert not status.up()
        broker.start()
        wait_for(lambda: status.problem() is None, timeout=30)


def test_an_old_expiring_stream_is_moved_to_the_work_queue_without_losing_a_message(
        broker, app_url, registered_tenant):
    subject = f"{PREFIX}.{registered_tenant}"

    async def old_deployment():
        # The stream and durable as earlier versions created them; two reports consumed
        # and acknowledged, three not yet.
        nc = await broker.access.connect()
        js = nc.jetstream()
        await js.add_stream(StreamConfig(
            name="RECON", subjects=[f"{PREFIX}.*"], storage=StorageType.FILE, max_age=7 * 86400,
            max_msg_size=1024 * 1024, discard=DiscardPolicy.OLD, duplicate_window=120))
        for i in range(5):
            await js.publish(subject, orjson.dumps(detected(registered_tenant, f"old-{i}")))
        sub = await js.pull_subscribe(f"{PREFIX}.*", durable=streams.DURABLE, stream="RECON")
        for msg in await sub.fetch(2, timeout=5):
            await msg.ack()
        await nc.close()

    _run(old_deployment())
    with RunningConsumer(broker.access, app_url):
        opened = wait_for(lambda: len(found := entries(app_url, registered_tenant,
                                                       "discrepancy.opened")) == 3 and found)
    assert sorted(e["data"]["external_ref"] for e in opened) == ["old-2", "old-3", "old-4"]
    info = _run(_stream_info(broker.access, streams.STREAM))
    assert info.config.retention == RetentionPolicy.WORK_QUEUE
    assert info.config.discard == DiscardPolicy.NEW and not info.config.max_age
    with pytest.raises(nats.js.errors.NotFoundError):
        _run(_stream_info(broker.access, "RECON"))


def test_a_full_stream_refuses_new_publishes_and_keeps_the_unconsumed_ones(broker,
                                                                         registered_tenant):
    subject = f"{PREFIX}.{registered_tenant}"
    body = orjson.dumps(detected(registered_tenant, "x", metadata={"pad": "p" * 2000}))

    async def fill():
        nc = await broker.access.connect()
        js = nc.jetstream()
        await streams.ensure_streams(js, PREFIX, max_bytes=64 * 1024)
        accepted = 0
        with pytest.raises(nats.js.errors.APIError, match="maximum bytes"):
            for _ in range(100):
                await js.publish(subject, body)
                accepted += 1
        info = await js.stream_info(streams.STREAM)
        await nc.close()
        return accepted, info

    accepted, info = _run(fill())
    assert 0 < accepted < 100
    assert info.state.messages == accepted and info.state.first_seq == 1  # nothing dropped


def test_messages_for_an_unknown_tenant_do_not_open_a_connection_each(broker, app_url, owner_url):
    def sessions() -> int:
        with psycopg.connect(owner_url, autocommit=True) as conn:
            conn.execute("SELECT pg_stat_force_next_flush()")
            return conn.execute("SELECT sum(sessions) FROM pg_stat_database").fetchone()[0]

    tenant = "nobody-here"
    with RunningConsumer(broker.access, app_url) as running:
        wait_for(lambda: running.consumer.status.problem() is None, timeout=15)
        before = sessions()
        publish(broker.access, [(f"{PREFIX}.{tenant}", orjson.dumps(detected(tenant, f"u{i}")))
                             for i in range(200)])
        wait_for(lambda: running.consumer.status.dead_lettered >= 200, timeout=30)
        opened = sessions() - before
    assert opened < 20, f"{opened} database sessions for 200 messages of an unknown tenant"


def test_listing_dead_letters_when_none_were_set_aside_answers_an_empty_list(broker):
    from indelible.ingest.dead_letters import list_dead_letters

    async def create_streams():
        nc = await broker.access.connect()
        try:
            await streams.ensure_streams(nc.jetstream(), PREFIX)
        finally:
            await nc.close()

    _run(create_streams())
    assert _run(list_dead_letters(broker.access)) == []
