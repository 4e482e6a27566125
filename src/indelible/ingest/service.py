"""Ingestion inside the service: the broker (embedded unless configured) and the consumer,
on a thread with its own event loop, stopped with the service."""

from __future__ import annotations

import asyncio
import logging
import threading

from indelible.config import Settings
from indelible.ingest.consumer import Consumer, IngestConfig
from indelible.ingest.status import IngestStatus
from indelible.runtime import EmbeddedNats
from indelible.store.appender import GroupCommitAppender

log = logging.getLogger(__name__)


def nats_url(settings: Settings) -> str | None:
    """The configured broker, or the embedded one a running service started."""
    return settings.nats_url or EmbeddedNats.running_url(settings.data_dir / "nats")


class Ingestion:
    def __init__(self, settings: Settings, *, appender: GroupCommitAppender, conninfo: str):
        self._settings = settings
        self._appender = appender
        self._conninfo = conninfo
        self._broker: EmbeddedNats | None = None
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self.url = ""
        self.status = IngestStatus()  # read by /readyz and /metrics

    def start(self) -> Ingestion:
        self.url = self._settings.nats_url or ""
        if not self.url:
            self._broker = EmbeddedNats(self._settings.data_dir / "nats").start()
            self.url = self._broker.url
        self._thread.start()
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self._loop.close()
        if self._broker is not None:
            self._broker.stop()

    def _run(self) -> None:
        consumer = Consumer(config=IngestConfig(nats_url=self.url,
                                                prefix=self._settings.subject_prefix),
                            appender=self._appender, conninfo=self._conninfo,
                            status=self.status)
        try:
            self._loop.run_until_complete(consumer.run(self._stop))
        except BaseException as e:  # the consumer restarts itself; this is a bug: say it
            self.status.set_state("stopped", f"{type(e).__name__}: {e}")
            log.exception("ingestion stopped")
