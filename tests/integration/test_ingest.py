"""Ingestion against a real nats-server and real PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time

import nats
import orjson
import psycopg
import pytest

from indelible import domain
from indelible.bootstrap import projections
from indelible.ingest.consumer import DLQ_STREAM, Consumer, IngestConfig
from indelible.nats_auth import NatsAccess
from indelible.runtime import EmbeddedNats
from indelible.store import severity_policy
from indelible.store.appender import append_batch
from indelible.store.group_commit import GroupCommitAppender
from indelible.store.tenants import OPERATOR

pytestmark = pytest.mark.storage

PREFIX = "recon.discrepancies"


def detected(tenant: str, ref: str, **extra) -> dict:
    return {"type": "discrepancy.detected", "tenant": tenant, "source": "stripe",
            "external_ref": ref, "kind": "amount_mismatch", "expected_amount": "100.00",
            "actual_amount": "90.00", "currency": "EUR", "detected_at": "2026-11-23T05:00:00Z",
            **extra}


def matched(tenant: str, ref: str) -> dict:
    return {"type": "discrepancy.matched", "tenant": tenant, "source": "stripe",
            "external_ref": ref, "matched_at": "2026-11-23T06:00:00Z", "reason": "settled late"}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with EmbeddedNats(tmp_path_factory.mktemp("nats")) as server:
        yield server


class RunningConsumer:
    """The consumer on its own thread and event loop, as `indelible up` runs it."""

    def __init__(self, broker: NatsAccess, app_url: str):
        self.appender = GroupCommitAppender(conninfo=app_url, model=projections())
        self.consumer = Consumer(config=IngestConfig(broker=broker, prefix=PREFIX),
                                 appender=self.appender, conninfo=app_url)
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        self.loop.run_until_complete(self.consumer.run(self.stop))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)
        self.loop.close()  # its self-pipe sockets would otherwise warn in some later test
        self.appender.close()


@pytest.fixture
def consumer(broker, app_url):
    with RunningConsumer(broker.access, app_url) as running:
        yield running


def publish(broker: NatsAccess, messages: list[tuple[str, bytes]]) -> None:
    async def send():
        nc = await broker.connect()
        js = nc.jetstream()
        for subject, data in messages:
            await _publish_once_the_stream_exists(js, subject, data)
        await nc.close()
    asyncio.run(send())


async def _publish_once_the_stream_exists(js, subject: str, data: bytes) -> None:
    # The consumer fixture's thread creates the stream as it starts; a test that publishes
    # at once may get there first on a busy machine ("no response from stream").
    deadline = time.monotonic() + 30
    while True:
        try:
            await js.publish(subject, data)
            return
        except nats.js.errors.NoStreamResponseError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def dead_letters(broker: NatsAccess) -> list:
    async def read():
        nc = await broker.connect()
        js = nc.jetstream()
        sub = await js.subscribe("indelible.dlq.>", ordered_consumer=True, stream=DLQ_STREAM)
        found = []
        try:
            while True:
                found.append(await sub.next_msg(timeout=0.5))
        except nats.errors.TimeoutError:
            pass
        await nc.close()
        return found
    return asyncio.run(read())


def wait_for(predicate, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def entries(app_url: str, tenant: str, type_: str | None = None) -> list[dict]:
    with psycopg.connect(app_url) as conn:
        rows = conn.execute("SELECT entry FROM ledger_entries WHERE tenant_id = %s ORDER BY seq",
                            (tenant,)).fetchall()
    docs = [orjson.loads(bytes(r[0])) for r in rows]
    return [d for d in docs if type_ is None or d["type"] == type_]


def test_detections_are_appended_once_however_often_they_are_delivered(broker, consumer, app_url,
                                                                       registered_tenant):
    subject = f"{PREFIX}.{registered_tenant}"
    messages = [(subject, orjson.dumps(detected(registered_tenant, f"r{i}"))) for i in range(50)]
    publish(broker.access, messages + messages)  # every report published twice
    wait_for(lambda: len(entries(app_url, registered_tenant, "discrepancy.opened")) >= 50)
    time.sleep(1)
    assert len(entries(app_url, registered_tenant, "discrepancy.opened")) == 50


def test_a_match_closes_its_discrepancy_even_when_it_arrives_first(broker, consumer, app_url,
                                                                   registered_tenant):
    subject = f"{PREFIX}.{registered_tenant}"
    publish(broker.access, [(subject, orjson.dumps(matched(registered_tenant, "early")))])
    time.sleep(1.5)  # the match waits: nothing to close yet, and it is not dropped
    publish(broker.access, [(subject, orjson.dumps(detected(registered_tenant, "early")))])
    closed = wait_for(lambda: entries(app_url, registered_tenant, "discrepancy.transitioned"))
    assert closed[0]["data"]["to"] == "auto_closed" and "settled late" in closed[0]["data"]["reason"]


def test_a_report_without_severity_gets_it_from_the_tenants_policy(broker, consumer, app_url,
                                                                   registered_tenant):
    policy = domain.parse_policy({"thresholds": {"EUR": {
        "medium": "5.00", "high": "9.00", "critical": "1000.00"}}})
    with psycopg.connect(app_url, autocommit=True) as conn:
        (set_,) = append_batch(conn, registered_tenant, [severity_policy.change(
            policy, reason="tighter", actor=OPERATOR, expected_version=0)])
    subject = f"{PREFIX}.{registered_tenant}"
    publish(broker.access, [(subject, orjson.dumps(detected(registered_tenant, "p1"))),
                         (subject, orjson.dumps(detected(registered_tenant, "p2", severity="low")))])
    opened = wait_for(lambda: (found := entries(app_url, registered_tenant, "discrepancy.opened"))
                      and len(found) == 2 and found)
    assert [(e["data"]["severity"], e["data"]["severity_basis"]) for e in opened] == [
        ("high", "tenant_policy"), ("low", "reported")]  # 10.00 EUR apart; built-in: low
    assert opened[0]["data"]["severity_policy_seq"] == set_.seq


def test_a_conflicting_re_report_is_recorded_as_an_amendment_and_a_repeat_adds_nothing(
        broker, consumer, app_url, registered_tenant):
    subject = f"{PREFIX}.{registered_tenant}"
    first = orjson.dumps(detected(registered_tenant, "amend-1"))
    changed = orjson.dumps(detected(registered_tenant, "amend-1", actual_amount="80.00",
                                    detected_at="2026-11-24T05:00:00Z"))
    publish(broker.access, [(subject, first)])
    wait_for(lambda: entries(app_url, registered_tenant, "discrepancy.opened"))
    publish(broker.access, [(subject, changed), (subject, changed)])  # the second is a retry
    amended = wait_for(lambda: entries(app_url, registered_tenant, "discrepancy.amended"))
    time.sleep(1)
    assert len(entries(app_url, registered_tenant, "discrepancy.amended")) == 1
    data = amended[0]["data"]
    assert data["changed"] == ["actual_amount"]
    assert (data["before"]["actual_amount"], data["after"]["actual_amount"]) == ("90.00", "80.00")
    assert amended[0]["stream"] == entries(app_url, registered_tenant, "discrepancy.opened")[0]["stream"]
    with psycopg.connect(app_url) as conn:
        row = conn.execute("SELECT actual_amount::text, difference::text FROM discrepancies "
                           "WHERE tenant_id = %s AND external_ref = 'amend-1'",
                           (registered_tenant,)).fetchone()
    assert row == ("80.00", "-20.00")
    assert not [m for m in dead_letters(broker.access) if m.headers.get("Indelible-Subject") == subject]


def test_a_poison_message_is_dead_lettered_with_its_reason_and_the_rest_flow(broker, consumer, app_url,
                                                                             registered_tenant):
    subject = f"{PREFIX}.{registered_tenant}"
    publish(broker.access, [
        (subject, orjson.dumps(detected(registered_tenant, "good-1"))),
        (subject, orjson.dumps(detected(registered_tenant, "bad", expected_amount=100.0))),
        (subject, b"{not json"),
        (subject, orjson.dumps(detected(registered_tenant, "good-2")))])
    wait_for(lambda: len(entries(app_url, registered_tenant, "discrepancy.opened")) == 2)
    logged = wait_for(lambda: len(entries(app_url, registered_tenant, "ingest.dead_lettered")) == 2
                      and entries(app_url, registered_tenant, "ingest.dead_lettered"))
    reasons = sorted(e["data"]["reason"] for e in logged)
    assert "expected_amount: must be a decimal string, not a float" in reasons[0]
    assert reasons[1].startswith("not JSON")
    kept = [m for m in dead_letters(broker.access) if m.headers.get("Indelible-Subject") == subject]
    assert {m.data for m in kept} >= {b"{not json"}
    assert all(m.headers["Indelible-Reason"] and m.headers["Indelible-Attempts"] == "1" for m in kept)


def test_a_match_with_a_nul_in_its_ref_is_dead_lettered_and_does_not_hold_back_its_batch(
        broker, consumer, app_url, registered_tenant):
    subject = f"{PREFIX}.{registered_tenant}"
    poison = {**matched(registered_tenant, "x"), "source": "a\u0000b"}
    publish(broker.access, [(subject, orjson.dumps(poison)),
                            (subject, orjson.dumps(detected(registered_tenant, "beside-poison")))])
    wait_for(lambda: len(entries(app_url, registered_tenant, "discrepancy.opened")) == 1)
    (logged,) = wait_for(lambda: entries(app_url, registered_tenant, "ingest.dead_lettered"))
    assert logged["data"]["reason"].startswith("source:") and logged["data"]["attempts"] == 1


def test_a_message_for_an_unknown_tenant_is_dead_lettered_not_lost(broker, consumer):
    publish(broker.access, [(f"{PREFIX}.nobody", orjson.dumps(detected("nobody", "x")))])
    found = wait_for(lambda: [m for m in dead_letters(broker.access)
                              if m.headers.get("Indelible-Subject") == f"{PREFIX}.nobody"])
    assert found[0].headers["Indelible-Reason"] == "unknown tenant 'nobody'"


def test_a_dead_letter_is_listed_and_replayed_after_its_cause_is_fixed(broker, consumer, conn, app_url):
    from indelible.ingest.dead_letters import list_dead_letters, replay
    from indelible.store.tenants import create_tenant
    from tests.conftest import BASE_ORIGIN

    tenant = f"late-{time.monotonic_ns() % 10**8}"
    publish(broker.access, [(f"{PREFIX}.{tenant}", orjson.dumps(detected(tenant, "r1")))])
    letter = wait_for(lambda: [d for d in asyncio.run(list_dead_letters(broker.access))
                               if d.subject == f"{PREFIX}.{tenant}"])[0]
    assert letter.reason == f"unknown tenant {tenant!r}" and letter.attempts == 1

    create_tenant(conn, tenant, base_origin=BASE_ORIGIN)  # the fix
    assert asyncio.run(replay(broker.access, letter.seq)) == f"{PREFIX}.{tenant}"
    opened = wait_for(lambda: entries(app_url, tenant, "discrepancy.opened"))
    assert opened[0]["data"]["external_ref"] == "r1"


MALFORMED = {
    "not-json": (b"<xml/>", "not JSON"),
    "wrong-type": (lambda t: orjson.dumps(detected(t, "w", external_ref=42)), "external_ref"),
    "float-amount": (lambda t: orjson.dumps(detected(t, "f", actual_amount=90.5)),
                     "actual_amount: must be a decimal string, not a float"),
    "huge": (lambda t: orjson.dumps(detected(t, "h", metadata={"blob": "x" * 200_000})),
             "bytes; the limit is 65536"),
    "missing-field": (lambda t: orjson.dumps({k: v for k, v in detected(t, "m").items()
                                              if k != "detected_at"}), "detected_at: required"),
    "wrong-scale": (lambda t: orjson.dumps(detected(t, "s", currency="JPY", expected_amount="100.50")),
                    "JPY allows 0"),
}


def test_every_kind_of_malformed_message_is_dead_lettered_with_its_reason(broker, consumer, app_url,
                                                                          registered_tenant):
    subject = f"{PREFIX}.{registered_tenant}"
    payloads = {name: (data if isinstance(data, bytes) else data(registered_tenant))
                for name, (data, _) in MALFORMED.items()}
    publish(broker.access, [(subject, p) for p in payloads.values()])
    logged = wait_for(lambda: len(entries(app_url, registered_tenant, "ingest.dead_lettered"))
                      == len(MALFORMED) and entries(app_url, registered_tenant, "ingest.dead_lettered"))
    reasons = [e["data"]["reason"] for e in logged]
    for name, (_, reason) in MALFORMED.items():
        assert any(reason in r for r in reasons), f"{name}: no reason containing {reason!r} in {reasons}"
    kept = {m.data for m in dead_letters(broker.access) if m.headers.get("Indelible-Subject") == subject}
    assert set(payloads.values()) <= kept  # the original bytes, every one
    assert entries(app_url, registered_tenant, "discrepancy.opened") == []


def test_a_message_whose_body_names_another_tenant_is_dead_lettered(broker, consumer, app_url,
                                                                   registered_tenant):
    subject = f"{PREFIX}.{registered_tenant}"
    publish(broker.access, [(subject, orjson.dumps(detected("someone-else", "x1")))])
    logged = wait_for(lambda: entries(app_url, registered_tenant, "ingest.dead_lettered"))
    assert logged[0]["data"]["reason"] == (
        f"tenant: 'someone-else' does not match the subject's tenant {registered_tenant!r}")
    assert entries(app_url, registered_tenant, "discrepancy.opened") == []


class Engine:
    """A reconciliation engine holding a per-tenant credential, connected as engines are."""

    def __init__(self, broker: EmbeddedNats, tenant: str):
        from indelible import nats_auth

        self.seed, self.credential = nats_auth.engine_credential(
            broker.store_dir, tenant=tenant, name=f"engine of {tenant}", prefix=PREFIX)
        assert EmbeddedNats.reload_config(broker.store_dir)
        self.url, self.errors = broker.url, []

    async def connect(self):
        async def collect(e):
            self.errors.append(str(e))
        return await nats.connect(self.url, nkeys_seed_str=self.seed, error_cb=collect,
                                  inbox_prefix=self.credential.inbox_prefix)

    def refusals(self) -> list[str]:
        """What the server refused, from its permission violations."""
        marker = "permissions violation for "
        return [e.lower().split(marker, 1)[1] for e in self.errors if marker in e.lower()]

    def attempt(self, action) -> BaseException | None:
        """Run `action(nc)`; the exception it raised, if any."""
        async def run():
            nc = await self.connect()
            try:
                await action(nc)
            except Exception as e:  # noqa: BLE001 - returned for the test to judge
                return e
            finally:
                await nc.close()
        return asyncio.run(run())


def test_an_engine_credential_publishes_to_its_own_tenant_only(broker, consumer, app_url, conn,
                                                               registered_tenant):
    from indelible.store.tenants import create_tenant
    from tests.conftest import BASE_ORIGIN

    other = f"{registered_tenant}-b"
    create_tenant(conn, other, base_origin=BASE_ORIGIN)
    engine = Engine(broker, registered_tenant)
    own, foreign = f"{PREFIX}.{registered_tenant}", f"{PREFIX}.{other}"

    async def publish_both(nc):
        js = nc.jetstream()
        await js.publish(own, orjson.dumps(detected(registered_tenant, "mine")))
        await js.publish(foreign, orjson.dumps(detected(other, "theirs")), timeout=2)

    refused = engine.attempt(publish_both)
    assert isinstance(refused, (nats.errors.TimeoutError, nats.errors.NoRespondersError))
    assert engine.refusals() == [f'publish to "{foreign}"']
    opened = wait_for(lambda: entries(app_url, registered_tenant, "discrepancy.opened"))
    assert opened[0]["data"]["external_ref"] == "mine"
    time.sleep(1)  # the foreign message would have been consumed by now
    assert entries(app_url, other) == entries(app_url, other, "tenant.created")


def test_an_engine_credential_cannot_read_others_traffic_or_use_the_jetstream_api(broker,
                                                                                registered_tenant):
    engine = Engine(broker, registered_tenant)

    async def listen_to_every_inbox(nc):
        await nc.subscribe("_INBOX.>")
        await nc.flush()
        await asyncio.sleep(0.3)

    async def delete_the_stream(nc):
        await nc.request("$JS.API.STREAM.DELETE.RECON_QUEUE", b"", timeout=1)

    engine.attempt(listen_to_every_inbox)
    assert isinstance(engine.attempt(delete_the_stream),
                      (nats.errors.TimeoutError, nats.errors.NoRespondersError))
    assert engine.refusals() == ['subscription to "_inbox.>"',  # the client lowercases
                                 'publish to "$js.api.stream.delete.recon_queue"']
    assert _stream_exists(broker, "RECON_QUEUE")


def _stream_exists(broker: EmbeddedNats, name: str) -> bool:
    async def look():
        nc = await broker.access.connect()
        try:
            return (await nc.jetstream().stream_info(name)).config.name == name
        finally:
            await nc.close()
    return asyncio.run(look())
