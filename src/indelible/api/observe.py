"""The outermost layer of every HTTP request: its id, its latency, its access line.

A request id comes from the caller's `X-Request-ID` when it is a plain token (so a trace
can cross services), else a fresh one; it is echoed in the response header and set in the
logging context (logs.py), so every line the request causes carries it, and its tenant once
the request guard has checked the key. Latency goes to `indelible_http_request_seconds` by
route *template* (never the path: ids in paths would make one series per discrepancy).
The access line (logger `indelible.access`, INFO) is written when that level is on.
"""

from __future__ import annotations

import logging
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from indelible import logs, metrics

access = logging.getLogger("indelible.access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_METHODS = frozenset("GET HEAD POST PUT PATCH DELETE OPTIONS".split())


def _new_request_id() -> str:
    # 128 random bits as 32 hex digits, like uuid4().hex without building a UUID (2.9 µs
    # against 0.5 µs per request); random, so an id tells a caller nothing of the traffic.
    return os.urandom(16).hex()


class RequestObserver:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.fullmatch(given) else _new_request_id()
        tokens = logs.REQUEST_ID.set(request_id), logs.TENANT.set(None)
        status = 500  # unless a response starts

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "other"  # bounded
            metrics.REQUEST_SECONDS.labels(method, template,
                                           f"{status // 100}xx").observe(seconds)
            if access.isEnabledFor(logging.INFO):
                access.info("%s %s %d %.1f ms", scope["method"], scope["path"], status,
                            seconds * 1000)
            logs.REQUEST_ID.reset(tokens[0])
            logs.TENANT.reset(tokens[1])
