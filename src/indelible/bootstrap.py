"""The single composition root: settings → data directory → database → key → appender →
checkpointer → ingestion → HTTP app. Nothing else opens pools or starts servers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from psycopg_pool import ConnectionPool

from indelible import datadir
from indelible.api.app import create_app
from indelible.config import Settings
from indelible.console.sessions import Timeouts
from indelible.ingest.service import Ingestion
from indelible.ingest.status import IngestStatus
from indelible.kept import KeptCheckpoints
from indelible.operations import operated
from indelible.outbound.dispatcher import Dispatcher
from indelible.outbound.alarm_relay import AlarmRelay
from indelible.outbound.hook import OutboxHook
from indelible.keys import load_or_create_signer
from indelible.proofs import NoteSigner
from indelible.runtime import EmbeddedPostgres
from indelible.store import api_keys, discrepancies, isolation, severity_policy
from indelible.store.group_commit import GroupCommitAppender
from indelible.store.key_cache import KeyCache
from indelible.store.checkpointer import Checkpointer
from indelible.store.db import app_conninfo, request_conninfo
from indelible.store.projections import Projections
from indelible.store.schema import migrate
from indelible.timestamping.worker import from_settings as timestamper

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Database:
    owner_url: str  # migrations, operator tasks
    app_url: str  # the service's own work: the INSERT/SELECT-only role
    request_url: str  # HTTP request handlers: held to the request's tenant by row-level security


@contextmanager
def open_database(settings: Settings, *, owner: bool = False) -> Iterator[Database]:
    """The configured PostgreSQL, or the embedded one (reused if `indelible up` runs it).

    `owner` is the service holding the data directory: it adopts an embedded server left
    running (by a crashed predecessor, or a CLI command a moment ago) and stops it on exit.
    Anyone else leaves a server it did not start running."""
    if settings.database_url:
        migrate(settings.database_url)
        _check_isolation(settings.database_url, settings)
        yield Database(settings.database_url,
                       app_conninfo(settings.database_url, settings.app_database_url),
                       request_conninfo(settings.database_url, settings.api_database_url))
        return
    server = EmbeddedPostgres(settings.data_dir / "postgres")
    port = server.running_port()
    if port is not None:
        server.port = port
    else:
        log.info("starting embedded PostgreSQL in %s", server.pgdata)
        server.start()
    try:
        migrate(server.url)
        server.secure_roles()  # the migrations may just have created the service's roles
        yield Database(server.url, app_conninfo(server.url), request_conninfo(server.url))
    finally:
        if owner:
            server.stop()
        elif port is None:
            _stop_unless_in_use(server)


def _check_isolation(owner_url: str, settings: Settings) -> None:
    for gap in isolation.require_isolation(owner_url, accepted=settings.accept_weak_isolation):
        log.warning("tenant isolation incomplete, accepted by %s: %s",
                    isolation.ACCEPT_VARIABLE, gap)


def _stop_unless_in_use(server: EmbeddedPostgres) -> None:
    """Stop the server this process started, unless others (say, an `indelible up` that
    started meanwhile) are connected to it: they would lose their database."""
    import psycopg

    try:
        with psycopg.connect(server.url, connect_timeout=5) as conn:
            (others,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                "AND pid <> pg_backend_pid()").fetchone()
    except psycopg.Error:
        others = 0
    if others:
        log.warning("leaving embedded PostgreSQL running: %d other connection(s) use it", others)
        return
    server.stop()


def projections() -> Projections:
    """Every read model, by the prefix of the streams it follows."""
    from indelible.store import escalation

    rules = escalation.RulesModel()
    return Projections({api_keys.PREFIX: api_keys.ApiKeys(),
                        # discrepancies, and beside them the escalation watch index
                        discrepancies.PREFIX: escalation.WatchedDiscrepancies(),
                        severity_policy.STREAM: severity_policy.PolicyModel(),
                        escalation.RULES_STREAM: rules, escalation.CALENDAR_STREAM: rules,
                        escalation.PERIOD_PREFIX: escalation.PeriodModel()})


@dataclass(frozen=True)
class Service:
    settings: Settings
    db: Database
    signer: NoteSigner
    appender: GroupCommitAppender
    nats_url: str | None  # None: ingestion is switched off
    ingest_status: IngestStatus | None = None  # None: this process does not ingest
    app: Any = None  # the HTTP API (FastAPI), over its own pool of request-role connections
    operations: Any = None  # operations.Operations: the verifier, readiness checks


@contextmanager
def running_service(settings: Settings, *, checkpointer: bool = True, ingest: bool = True,
                    about: dict[str, str] | None = None,
                    escalate: bool = True, hold: bool = True) -> Iterator[Service]:
    """Everything `indelible up` runs; `about` (e.g. its HTTP address) tells a second service
    started on the same data directory who holds it. `hold=False` is a worker of `indelible
    up --workers N`, whose supervisor holds the data directory (see `running_backends`)."""
    with (datadir.hold(settings.data_dir, **(about or {})) if hold else nullcontext()), \
            open_database(settings, owner=True) as db, ExitStack() as stack:
        signer = load_or_create_signer(settings.key_file, settings.key_name)
        outbound = settings.outbound.enabled  # flags off: no hook, nothing queued, no dispatcher
        appender = GroupCommitAppender(conninfo=db.app_url, batch_max=settings.batch_max,
                                       batch_wait=settings.batch_wait, model=projections(),
                                       hooks=_outbox_hooks(settings))
        signing = Checkpointer(conninfo=db.app_url, signer=signer,
                               kept=KeptCheckpoints(settings.kept_dir),
                               interval=settings.checkpoint_interval,
                               entries=settings.checkpoint_entries)
        # Read before anything starts: a bad witnesses file stops `up` with nothing running.
        feeders = _witness_feeders(settings, db) if checkpointer else []
        if checkpointer:
            signing.start()
        engine = None
        if settings.escalation_enabled and escalate:
            from indelible.escalation.engine import EscalationEngine

            engine = EscalationEngine(conninfo=db.app_url, appender=appender,
                                      interval=settings.escalation_interval).start()
        for feeder in feeders:
            feeder.start()
        stamping = timestamper(settings, db.app_url) if checkpointer else None
        if stamping is not None:
            stamping.start()
        ingestion = None
        if settings.ingest_enabled and ingest:
            ingestion = Ingestion(settings, appender=appender, conninfo=db.app_url).start()
        status = ingestion.status if ingestion else None
        ops = stack.enter_context(operated(settings, app_url=db.app_url, appender=appender,
                                           key_text=signer.verifier_key_text(),
                                           checkpointer=signing if checkpointer else None))
        dispatcher = Dispatcher(conninfo=db.app_url, appender=appender,
                                settings=settings.outbound).start() if outbound else None
        stack.enter_context(_alarm_relay(settings, ops))  # after ops: stops before it
        # HTTP requests connect as the role row-level security holds to one tenant.
        requests = ConnectionPool(db.request_url, min_size=1, max_size=16, open=True,
                                  kwargs={"autocommit": True})
        # Revocations are heard within a second (store/key_cache.py); TTL 0 switches it off.
        keys = KeyCache(conninfo=db.request_url, ttl=settings.key_cache_ttl)
        if settings.key_cache_ttl > 0:
            keys.start()
        app = create_app(pool=requests, signer=signer, appender=appender, ingest_status=status,
                         key_cache=keys if settings.key_cache_ttl > 0 else None,
                         witnesses=tuple(f.status for f in feeders),
                         metrics_public=settings.metrics_public, readiness=ops.readiness,
                         console_timeouts=Timeouts.of(settings))
        report_worker = _report_worker(db, signer, appender).start()
        try:
            yield Service(settings, db, signer, appender, ingestion.url if ingestion else None,
                          status, app, ops)
        finally:
            keys.stop()
            report_worker.stop()
            requests.close()
            if ingestion is not None:
                ingestion.stop()
            if engine is not None:
                engine.stop()
            for feeder in feeders:
                feeder.stop()
            stack.close()  # the verifier, the metrics port
            if checkpointer:
                signing.stop()
            if dispatcher is not None:
                dispatcher.stop()
            if stamping is not None:
                stamping.stop()
            appender.close()


@dataclass(frozen=True)
class Backends:
    """What the supervisor of `indelible up --workers N` runs once for all its workers."""
    db: Database
    nats_url: str | None  # None: ingestion is switched off
    worker_environment: dict[str, str]  # how a worker process reaches the same servers


@contextmanager
def running_backends(settings: Settings, *, about: dict[str, str] | None = None
                     ) -> Iterator[Backends]:
    """The data directory held, the database and broker (embedded unless configured), and
    the one checkpointer: a checkpoint extends the one kept in the data directory, so only
    one process may sign. Workers then run `running_service(hold=False, checkpointer=False)`
    against the servers named in `worker_environment`."""
    from indelible.ingest.service import nats_dir
    from indelible.runtime import EmbeddedNats

    with datadir.hold(settings.data_dir, **(about or {})), \
            open_database(settings, owner=True) as db:
        signer = load_or_create_signer(settings.key_file, settings.key_name)
        signing = Checkpointer(conninfo=db.app_url, signer=signer,
                               kept=KeptCheckpoints(settings.kept_dir),
                               interval=settings.checkpoint_interval,
                               entries=settings.checkpoint_entries)
        broker = None
        environment = {"INDELIBLE_DATABASE_URL": db.owner_url,
                       "INDELIBLE_APP_DATABASE_URL": db.app_url,
                       "INDELIBLE_API_DATABASE_URL": db.request_url}
        nats_url = settings.nats_url
        if settings.ingest_enabled and not nats_url:
            broker = EmbeddedNats(nats_dir(settings)).start()
            nats_url = broker.url
            environment.update(INDELIBLE_NATS_URL=broker.url,
                               INDELIBLE_NATS_SEED_FILE=str(broker.access.seed_file))
        signing.start()
        stamping = timestamper(settings, db.app_url)  # beside the one checkpointer
        if stamping is not None:
            stamping.start()
        # The verifier and the metrics port run once, here, not in every worker.
        environment.update(INDELIBLE_CONTINUOUS_VERIFY="false", INDELIBLE_METRICS_LISTEN="")
        # The verifier appends here: its `verification.failed` entries owe hub events too.
        appender = GroupCommitAppender(conninfo=db.app_url, model=projections(),
                                       hooks=_outbox_hooks(settings))
        try:
            with operated(settings, app_url=db.app_url, appender=appender,
                          key_text=signer.verifier_key_text(), checkpointer=signing) as ops, \
                    _alarm_relay(settings, ops):
                yield Backends(db, nats_url if settings.ingest_enabled else None, environment)
        finally:
            if stamping is not None:
                stamping.stop()
            appender.close()
            signing.stop()
            if broker is not None:
                broker.stop()


def _outbox_hooks(settings: Settings) -> list:
    """The appending transaction's outbox hook, when an outbound integration is on."""
    outbound = settings.outbound.enabled
    return [OutboxHook(i.name for i in outbound)] if outbound else []


@contextmanager
def _alarm_relay(settings: Settings, ops) -> Iterator[None]:
    """Chain-breaking integrity alarms, which no ledger entry carries, go straight to the
    Notification Hub (outbound/alarm_relay.py); the others reach it through the outbox."""
    hub = settings.outbound.hub
    if hub is None or ops.verification is None:
        yield
        return
    relay = AlarmRelay(hub, timeout=settings.outbound.timeout,
                       schedule=settings.outbound.schedule).start()
    ops.verification.alarms.subscribe(relay.submit)
    try:
        yield
    finally:
        relay.stop()


def _report_worker(db: Database, signer: NoteSigner, appender: GroupCommitAppender):
    """Renders queued compliance reports (issue 13) and queues scheduled ones."""
    from indelible.proofs import NoteVerifier
    from indelible.reports.worker import ReportWorker
    from indelible.usecases.reports import Signing

    key = signer.verifier_key_text()
    return ReportWorker(conninfo=db.app_url, appender=appender,
                        signing=Signing(NoteVerifier.from_key_text(key), key))


def _witness_feeders(settings: Settings, db: Database) -> list:
    """One background submitter per configured witness (INDELIBLE_WITNESSES), not started."""
    from indelible.cosigning.config import load_witnesses
    from indelible.cosigning.feeder import WitnessFeeder

    if settings.witnesses_file is None:
        return []
    return [WitnessFeeder(conninfo=db.app_url, witness=w)
            for w in load_witnesses(settings.witnesses_file)]
