"""A direct lane for the usual request to a hot route, past FastAPI's per-request machinery.

For a small command such as a transition, FastAPI's own work is most of the event loop's
time: solving the route's dependency graph (body, path, headers, the caller and its role,
the app-wide media-type check), validating the body with pydantic and serialising the
answer through the response model (py-spy, benchmarks/README.md "HTTP API (2026-12-01)").

A route of a `DirectRoute` router whose endpoint is marked `@direct(handler)` first offers
each request to `handler`, which either answers it or returns None; None sends the request
down FastAPI's usual path, unchanged. A handler answers only a request it has checked the
usual path would admit in every respect — JSON media type, path, headers, the caller's
role, a body that decodes into the route's msgspec struct (api/bodies.py, property-tested
against the pydantic model) — and then runs the code the endpoint runs, with the same
values. Anything else goes the usual way, so every refusal (status, problem details, the
field it names) is the one the usual path gives; exceptions raised by the shared code
reach the same exception handlers (the lane runs inside the route, under the middleware
and the exception handling of the app), and the OpenAPI document still describes the route
from its FastAPI signature.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any

import msgspec
import orjson
from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from indelible.store.api_keys import Principal

Handler = Callable[[Request], Awaitable[Response | None]]


def direct(handler: Handler):
    """Mark an endpoint whose usual requests `handler` answers (None: the usual path)."""
    def mark(endpoint):
        endpoint.direct_handler = handler
        return endpoint
    return mark


class DirectRoute(APIRoute):
    """An APIRoute that offers each request to its endpoint's direct handler first."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        usual = super().get_route_handler()
        handler: Handler | None = getattr(self.endpoint, "direct_handler", None)
        if handler is None:
            return usual

        async def offered(request: Request) -> Response:
            answer = await handler(request)
            # The usual path re-reads the body the handler read: Request caches it.
            return answer if answer is not None else await usual(request)
        return offered


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
    """The body decoded and validated by `decoder`, or None (the usual path explains)."""
    try:
        return decoder.decode(await request.body())
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def answer(content: Any, status_code: int = 200) -> Response:
    """JSON as the usual path renders a route's `dict` answer (compact, UTF-8)."""
    return Response(orjson.dumps(content), status_code=status_code,
                    media_type="application/json")
