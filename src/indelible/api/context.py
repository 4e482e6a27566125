"""What every request handler needs: the pool, the appender, the signer, and who is calling."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool

from indelible.api.problems import ProblemError
from indelible.ingest.status import IngestStatus
from indelible.proofs import NoteSigner
from indelible.store.api_keys import Principal, authenticate
from indelible.store.group_commit import GroupCommitAppender
from indelible.store.key_cache import KeyCache
from indelible.store.tree import SubtreeCache
from indelible.usecases.principal import Ledger
from indelible.usecases.principal import Principal as Asking

APPEND_TIMEOUT = 30.0  # seconds a request waits for its entry to commit
bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer idl_…`")


@dataclass(frozen=True)
class AppState:
    pool: ConnectionPool
    appender: GroupCommitAppender
    signer: NoteSigner
    ingest_status: IngestStatus | None = None  # None: this process does not ingest
    witnesses: tuple = ()  # cosigning/feeder.py WitnessStatus per configured witness
    metrics_public: bool = False  # serve /metrics on the API port without authentication
    # Readiness checks beyond the database and ingestion: each returns (component, what is
    # wrong) or None; /readyz runs them in order and answers 503 naming the first problem.
    readiness: tuple[Callable[[], tuple[str, str] | None], ...] = ()
    key_cache: KeyCache | None = None  # None: every request asks the database
    # Upper Merkle subtree hashes for the proofs this process serves from this pool's
    # database; SubtreeCache says why serving them is sound (the auditor checks every proof).
    subtrees: SubtreeCache = field(default_factory=SubtreeCache)

    def remembered(self, token: str) -> Principal | None:
        """The principal of a token this process may answer for from memory, else None
        (then `authenticate` asks the database); non-blocking, for the event loop."""
        return self.key_cache.remembered(token) if self.key_cache is not None else None

    def authenticate(self, token: str) -> Principal | None:
        """The principal of a bearer token (blocking: call from a worker thread)."""
        if self.key_cache is not None:
            return self.key_cache.authenticate(self.pool.connection, token)
        with self.pool.connection() as conn:
            return authenticate(conn, token)

    @contextmanager
    def tenant_connection(self, tenant: str):
        """A connection in a transaction that row-level security scopes to `tenant`."""
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))
            yield conn

    @property
    def ledger(self) -> Ledger:
        """How use cases write: through this service's appender."""
        return Ledger(self.appender, APPEND_TIMEOUT)

    def ledger_append(self, tenant: str, command: Any) -> Any:
        """Append one command through this service's appender and wait for its outcome (an
        Appended, or the exception refusing it); blocking: call from a worker thread."""
        return self.appender.submit(tenant, command).result(timeout=APPEND_TIMEOUT)

    async def read(self, tenant: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run `fn(conn, *args, **kwargs)` in a worker thread, scoped to `tenant`."""
        def run():
            with self.tenant_connection(tenant) as conn:
                return fn(conn, *args, **kwargs)
        return await run_in_threadpool(run)


def asking(who: Principal) -> Asking:
    """The use cases' principal for the caller an API key identifies."""
    actor = who.actor()
    return Asking(who.tenant, actor.id, actor.role, actor.kind)


async def authenticated(state: AppState, token: str) -> Principal | None:
    """The token's principal (None: unknown or revoked): from this process's memory when it
    may answer, else from the database in a worker thread."""
    found = state.remembered(token)
    return found if found is not None else await run_in_threadpool(state.authenticate, token)


async def app_state(request: Request) -> AppState:
    # async: FastAPI runs a plain `def` dependency in the thread pool, a hop per request
    return request.app.state.indelible


async def principal(request: Request,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
                    ) -> Principal:
    if (checked := getattr(request.state, "principal", None)) is not None:
        return checked  # the request guard already looked the key up, before the body
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ProblemError(401, "Unauthenticated", "send an API key as `Authorization: Bearer <token>`")
    found = await authenticated(request.app.state.indelible, credentials.credentials)
    if found is None:
        raise ProblemError(401, "Unauthenticated", "the API key is unknown or revoked")
    return found


def require(*roles: str):
    """A dependency admitting only `roles`; the refusal names the caller's role and the rule."""
    async def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.role not in roles:
            raise ProblemError(403, "Forbidden", f"role {who.role!r} may not do this; "
                               f"allowed: {', '.join(roles)}", role=who.role, allowed_roles=list(roles))
        return who
    return check


Caller = Annotated[Principal, Depends(principal)]
State = Annotated[AppState, Depends(app_state)]
