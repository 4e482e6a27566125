"""Ingestion inside the service: the broker (embedded unless configured) and the consumer,
on a thread with its own event loop, stopped with the service."""

from __future__ import annotations

import asyncio
import logging
import threading

from indelible import metrics
from indelible.config import Settings
from indelible.ingest.consumer import Consumer, IngestConfig
from indelible.ingest.status import IngestStatus, metric_families
from indelible.nats_auth import NatsAccess
from indelible.runtime import EmbeddedNats
from indelible.store.group_commit import GroupCommitAppender

log = logging.getLogger(__name__)


def nats_access(settings: Settings) -> NatsAccess | None:
    """The configured broker, or the embedded one a running service started."""
    if settings.nats_url:
        return NatsAccess(settings.nats_url, settings.nats_seed_file)
    return EmbeddedNats.running_access(nats_dir(settings))


def nats_dir(settings: Settings):
    return settings.data_dir / "nats"


class Ingestion:
    def __init__(self, settings: Settings, *, appender: GroupCommitAppender, conninfo: str):
        self._settings = settings
        self._appender = appender
        self._conninfo = conninfo
        self._broker: EmbeddedNats | None = None
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self.access: NatsAccess | None = None
        self.status = IngestStatus()  # read by /readyz and /metrics

    @property
    def url(self) -> str:
        return self.access.url if self.access else ""

    def start(self) -> Ingestion:
        if self._settings.nats_url:
            self.access = NatsAccess(self._settings.nats_url, self._settings.nats_seed_file)
        else:
            self._broker = EmbeddedNats(nats_dir(self._settings)).start()
            self.access = self._broker.access
        metrics.provide("ingest", lambda: metric_families(self.status))
        self._thread.start()
        return self

    def stop(self) -> None:
        metrics.provide("ingest", None)
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self._loop.close()
        if self._broker is not None:
            self._broker.stop()

    def _run(self) -> None:
        consumer = Consumer(config=IngestConfig(broker=self.access,
                                                prefix=self._settings.subject_prefix),
                            appender=self._appender, conninfo=self._conninfo,
                            status=self.status)
        try:
            self._loop.run_until_complete(consumer.run(self._stop))
        except BaseException as e:  # the consumer restarts itself; this is a bug: say it
            self.status.set_state("stopped", f"{type(e).__name__}: {e}")
            log.exception("ingestion stopped")
