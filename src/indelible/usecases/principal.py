"""Who asks: the tenant a change is for, and the actor and role it is recorded under."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from indelible import domain
from indelible.entry import Actor
import psycopg

from indelible.store.appender import StreamModel, append_batch
from indelible.store.group_commit import GroupCommitAppender

APPEND_TIMEOUT = 30.0  # seconds a caller waits for its entry to commit


@dataclass(frozen=True)
class Principal:
    tenant: str
    actor_id: str  # e.g. "key:<api key id>", "engine:stripe", "cli:alice"
    role: str  # analyst, compliance_manager, auditor, admin, system
    kind: str = "user"  # user, system, operator: how the entry's actor is described

    def domain_actor(self) -> domain.Actor:
        return domain.Actor(self.actor_id, domain.Role(self.role))

    def entry_actor(self) -> Actor:
        return Actor(self.actor_id, self.role, self.kind)


@dataclass(frozen=True)
class Ledger:
    """The one way use cases write: the appender (group commit, decisions under the lock)."""

    appender: GroupCommitAppender
    timeout: float = APPEND_TIMEOUT

    async def append(self, tenant: str, command: Any) -> Any:
        """The committed entry, or the refusal raised. A TimeoutError leaves the outcome
        unknown to the caller: retrying with the same idempotency key is safe."""
        return await _outcome(self.appender.submit(tenant, command), self.timeout)

    async def append_all(self, tenant: str, commands: list) -> list:
        """One outcome per command (an Appended or a refusal), in order."""
        return await _outcome(self.appender.submit_batch(tenant, commands), None)


async def _outcome(submitted: Future, timeout: float | None) -> Any:
    """The appender's answer, awaited on the event loop: one loop future settled from the
    writer's thread, and one timer (asyncio.wait_for over wrap_future was a fifth of a
    transition's time on the loop). The appender's future is never cancelled, by a timeout
    or by a cancelled caller: a queued command is decided either way, and the writer must
    be free to settle its future (settling a cancelled one raises in the writer thread)."""
    loop = asyncio.get_running_loop()
    answered = loop.create_future()
    submitted.add_done_callback(lambda done: loop.call_soon_threadsafe(_settle, answered, done))
    timer = loop.call_later(timeout, _expire, answered) if timeout is not None else None
    try:
        return await answered
    finally:
        if timer is not None:
            timer.cancel()


def _settle(answered: asyncio.Future, done: Future) -> None:
    if answered.done():  # expired, or the request was cancelled
        return
    if (error := done.exception()) is not None:
        answered.set_exception(error)
    else:
        answered.set_result(done.result())


def _expire(answered: asyncio.Future) -> None:
    if not answered.done():
        answered.set_exception(TimeoutError("the ledger did not commit in time"))


@dataclass(frozen=True)
class DirectLedger:
    """For one-shot callers (a CLI command): appends on the caller's own connection, with no
    writer thread; the same decisions, under the same lock."""

    conn: psycopg.Connection
    model: StreamModel

    async def append(self, tenant: str, command: Any) -> Any:
        (outcome,) = append_batch(self.conn, tenant, [command], model=self.model)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def append_all(self, tenant: str, commands: list) -> list:
        return append_batch(self.conn, tenant, commands, model=self.model)
