"""The gate in front of every route: who is calling, then how much they may send.

An ASGI middleware, so both are decided before any route (or FastAPI's body parsing) reads
a byte of the body:
  1. outside the few public paths, the API key is checked first: no key, or an unknown one,
     is 401 however large or malformed the body (a caller without a key learns nothing and
     costs us no memory);
  2. a declared Content-Length above the route's limit is 413 at once;
  3. a body sent without a length (chunked) is counted as it is read, and reading stops with
     413 at the first byte over the limit.
The principal found in step 1 is kept in the request state for the `principal` dependency.
"""

from __future__ import annotations

import re

import psycopg
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from indelible import logs
from indelible.api.context import authenticated
from indelible.api.problems import problem
from indelible.store import evidence

JSON_LIMIT = 1024 * 1024  # bytes: every JSON command is far smaller
MULTIPART_OVERHEAD = 64 * 1024  # bytes: a form's boundaries, headers and other fields
ROUTE_LIMITS = ((re.compile(r"^/v1/discrepancies/[^/]+/evidence$"), evidence.MAX_FILE),
                (re.compile(r"^/console/discrepancies/[^/]+/evidence$"),
                 evidence.MAX_FILE + MULTIPART_OVERHEAD))
PUBLIC = frozenset({"/healthz", "/readyz", "/metrics", "/v1/verifier-key", "/openapi.json",
                    "/docs", "/docs/oauth2-redirect", "/redoc"})
PUBLIC_PREFIXES = ("/docs-assets/",)  # the offline Swagger UI and ReDoc files
# The web console signs people in with a session cookie of its own (console/sessions.py) and
# checks it on every page; the body limits below still apply to it.
SELF_AUTHENTICATED_PREFIXES = ("/console/", )


def is_public(path: str) -> bool:
    return path in PUBLIC or path == "/console" or path.startswith(PUBLIC_PREFIXES) \
        or path.startswith(SELF_AUTHENTICATED_PREFIXES)


def body_limit(path: str) -> int:
    for pattern, limit in ROUTE_LIMITS:
        if pattern.match(path):
            return limit
    return JSON_LIMIT


class RequestGuard:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if not is_public(path):
            refusal = await _authenticate(scope)
            if refusal is not None:
                return await refusal(scope, receive, send)
        limit = body_limit(path)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            return await _too_large(limit, declared)(scope, receive, send)
        await self.app(scope, _counting(receive, limit), send)


async def _authenticate(scope: Scope):
    """None when the key is good (the principal is kept in the request state), else the
    401 response."""
    header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _unauthenticated("send an API key as `Authorization: Bearer <token>`")
    state = scope["app"].state.indelible
    try:
        found = await authenticated(state, token.strip())
    except (psycopg.Error, PoolTimeout) as e:
        return problem(503, "Storage unavailable", f"API keys cannot be checked now: {e}")
    if found is None:
        return _unauthenticated("the API key is unknown or revoked")
    scope.setdefault("state", {})["principal"] = found
    logs.TENANT.set(found.tenant)  # every log line of this request names its tenant
    return None


def _unauthenticated(detail: str):
    response = problem(401, "Unauthenticated", detail)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _too_large(limit: int, size: int | None):
    sent = f"; this one declares {size}" if size is not None else ""
    return problem(413, "Content Too Large",
                   f"request bodies on this route are limited to {limit} bytes{sent}",
                   limit=limit)


def _content_length(scope: Scope) -> int | None:
    value = dict(scope["headers"]).get(b"content-length")
    return int(value) if value is not None and value.isdigit() else None


def _counting(receive: Receive, limit: int) -> Receive:
    read = 0

    async def counted() -> Message:
        nonlocal read
        message = await receive()
        if message["type"] == "http.request":
            read += len(message.get("body", b""))
            if read > limit:
                raise HTTPException(413, f"request bodies on this route are limited to {limit} "
                                    "bytes")
        return message
    return counted
