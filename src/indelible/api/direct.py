"""A direct lane for the usual request to a hot route, past FastAPI's per-request machinery.

For a small command such as a transition, the framework's own work was most of the event
loop's time: solving the route's dependency graph (body, path, headers, the caller and its
role, the app-wide media-type check), validating the body with pydantic, serialising the
answer through the response model, and around all that the exception middleware, the
router's walk over every route and the per-request exit stacks (py-spy, benchmarks/README.md
"HTTP API (2026-12-01)").

`DirectLane` sits inside the request guard (so the key, body limits, request id, metrics
and access line apply as to any request). When a request is for a route whose endpoint is
marked `@direct(handler)`, it offers the request to `handler`, which either answers it or
returns None; None sends the request on down the usual path, unchanged, its body replayed.
A handler answers only a request it has checked the usual path would admit in every
respect — JSON media type, path, headers, the caller's role, a body that decodes into the
route's msgspec struct (api/bodies.py, property-tested against the pydantic model) — and
then runs the code the endpoint runs, with the same values. Anything else goes the usual
way, so every refusal (status, problem details, the field it names) is the one the usual
path gives. An exception raised in the lane goes to the app's own exception handlers, looked
up as Starlette's exception middleware does; the OpenAPI document still describes the route
from its FastAPI signature.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Any

import msgspec
import orjson
from fastapi import Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from indelible.store.api_keys import Principal

Handler = Callable[[Request], Awaitable[Response | None]]


def direct(handler: Handler):
    """Mark an endpoint whose usual requests `handler` answers (None: the usual path)."""
    def mark(endpoint):
        endpoint.direct_handler = handler
        return endpoint
    return mark


class DirectLane:
    """ASGI middleware offering the requests of marked routes to their direct handlers."""

    def __init__(self, app: ASGIApp, routes: Iterable[BaseRoute]):
        self.app = app
        self.lanes = [(route, route.endpoint.direct_handler) for route in routes
                      if isinstance(route, APIRoute)
                      and hasattr(route.endpoint, "direct_handler")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route, handler in self.lanes:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:  # as the router would: its route, its path params
                    scope.update(child_scope)
                    return await _offer(handler, self.app, scope, receive, send)
        await self.app(scope, receive, send)


async def _offer(handler: Handler, usual: ASGIApp, scope: Scope, receive: Receive,
                 send: Send) -> None:
    request = Request(scope, receive)
    try:
        body = await request.body()  # within the guard's limits; cached for the handler
        response = await handler(request)
    except ClientDisconnect:  # the usual path reads the disconnect again: its 400, to nobody
        return await usual(scope, receive, send)
    except Exception as e:
        response = await _handled(request, e)
    if response is None:
        return await usual(scope, _replay(body, receive), send)
    await response(scope, receive, send)


async def _handled(request: Request, error: Exception) -> Response:
    """The app's answer to `error`, as its exception middleware would give it (handlers for
    500 and Exception belong to the server-error middleware outside: re-raised to it)."""
    handlers = request.app.exception_handlers
    for kind in type(error).__mro__:
        if kind is Exception:
            break
        if kind in handlers:
            handle = handlers[kind]
            if inspect.iscoroutinefunction(handle):
                return await handle(request, error)
            return await run_in_threadpool(handle, request, error)
    raise error


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once more for the usual path, then whatever the client sends next."""
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}
    return again


def caller(request: Request, roles: Collection[str]) -> Principal | None:
    """The principal the request guard authenticated, when its role is one of `roles`."""
    who = request.scope.get("state", {}).get("principal")
    return who if who is not None and who.role in roles else None


def sent_as_json(request: Request) -> bool:
    """Plainly `application/json` (parameters and other JSON types take the usual path)."""
    return request.headers.get("content-type") == "application/json"


def optional_header(request: Request, name: str, max_length: int) -> tuple[bool, str | None]:
    """(usual, value) of a header the route takes at most once, 1..max_length characters;
    not usual when repeated or of another length."""
    values = request.headers.getlist(name)
    if not values:
        return True, None
    return len(values) == 1 and 1 <= len(values[0]) <= max_length, values[0]


async def decoded(request: Request, decoder: msgspec.json.Decoder) -> Any | None:
    """The body decoded and validated by `decoder`, or None (the usual path explains; a
    body nested past msgspec's recursion limit too: `json.loads` has its own, and that path
    answers 400 for it, or reads it)."""
    try:
        return decoder.decode(await request.body())
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None


def nested_within(value: Any, levels: int) -> bool:
    """Whether JSON `value` nests at most `levels` containers deep. A deeper one is refused
    by the domain anyway, but the usual path may refuse it first and otherwise (`json.loads`
    gives up past Python's recursion limit, a depth msgspec reads): it takes that path."""
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list):
        return True
    return levels > 0 and all(nested_within(item, levels - 1) for item in value)


def answer(content: Any, status_code: int = 200) -> Response:
    """JSON as the usual path renders a route's `dict` answer (compact, UTF-8)."""
    return Response(orjson.dumps(content), status_code=status_code,
                    media_type="application/json")
