"""The console's own FastAPI application, mounted by the API at /console.

A separate application because its contract differs from the API's: HTML pages and form
posts, a cookie session instead of a bearer key, errors as pages instead of problem JSON. It
shares the API's AppState (pool, appender, signer), so every read and write goes through the
same store queries and use cases with the same tenant walls.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from indelible.api.context import AppState
from indelible.console import pages, security
from indelible.console.errors import ConsoleError, SignInRequired
from indelible.console.render import render
from indelible.console.sessions import Timeouts, seal_key

STATIC = Path(__file__).parent / "static"
PREFIX = "/console"


def create_console(state: AppState, timeouts: Timeouts | None = None) -> FastAPI:
    console = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    console.state.indelible = state
    console.state.timeouts = timeouts or Timeouts()
    console.state.session_seal = seal_key(state.signer)
    console.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in pages.ROUTERS:
        console.include_router(router)
    console.add_middleware(security.SecurityHeaders)

    @console.exception_handler(SignInRequired)
    async def sign_in_first(request: Request, error: SignInRequired):
        return security.to_sign_in(request, error.reason)

    @console.exception_handler(ConsoleError)
    async def refused(request: Request, error: ConsoleError):
        return render(request, "error.html", status_code=error.status, viewer=error.viewer,
                      title=error.title, detail=error.detail)

    @console.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        return render(request, "error.html", status_code=error.status_code, viewer=None,
                      title="Not found" if error.status_code == 404 else "Refused",
                      detail=str(error.detail))
    return console
