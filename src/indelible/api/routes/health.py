"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from indelible.api.context import State
from indelible.api.problems import ProblemError, problem_responses

router = APIRouter(tags=["health"], responses=problem_responses(503))


@router.get("/healthz")
async def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: State) -> dict:
    """The database answers: the service can take requests."""
    def ping():
        with state.pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")
    try:
        await run_in_threadpool(ping)
    except Exception as e:  # any failure to reach the database means not ready
        raise ProblemError(503, "Not ready", f"database unreachable: {e}") from e
    return {"status": "ready"}
