"""Read models kept in step with the ledger, in the appending transaction.

Each model owns the streams of one prefix (`apikey/…`, `disc/…`); `Projections` routes a
batch's streams to their models, so one appender serves them all.
"""

from __future__ import annotations

from typing import Any

import psycopg

from indelible.store.appender import Change, StreamModel


class Projections:
    def __init__(self, models: dict[str, StreamModel]):
        self._models = models  # stream prefix, e.g. "apikey/" -> model
        self._prefixes = tuple(models)

    def owns(self, stream: str) -> bool:
        return stream.startswith(self._prefixes)  # asked twice per entry appended

    def _model(self, stream: str) -> StreamModel:
        for prefix, model in self._models.items():
            if stream.startswith(prefix):
                return model
        raise ValueError(f"no read model for stream {stream!r}")

    def load(self, conn: psycopg.Connection, tenant: str, streams: list[str]) -> dict[str, Any]:
        states: dict[str, Any] = {}
        for prefix, model in self._models.items():
            mine = [s for s in streams if s.startswith(prefix)]
            if mine:
                states.update(model.load(conn, tenant, mine))
        return states

    def evolve(self, state: Any, change: Change) -> Any:
        return self._model(change.stream).evolve(state, change)

    def digest(self, stream: str, state: Any) -> str | None:
        return self._model(stream).digest(stream, state)

    def project(self, conn: psycopg.Connection, tenant: str, states: dict[str, Any]) -> None:
        for prefix, model in self._models.items():
            mine = {s: v for s, v in states.items() if s.startswith(prefix)}
            if mine:
                model.project(conn, tenant, mine)
