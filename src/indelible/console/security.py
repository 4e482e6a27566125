"""The console's browser-facing defences: response headers, CSRF checks, the session gate.

- Every response carries a strict Content-Security-Policy: scripts, styles, images and form
  targets from this origin only, no inline script or style, no framing, no <base>; plus
  nosniff, no referrer, and no caching of pages that show a tenant's cases.
- Every form post carries the session's CSRF token (a synchronizer token kept server-side
  with the session) and is refused without it, or with another; a post a browser marks as
  cross-site (Sec-Fetch-Site) is refused before that. The sign-in form, which has no session
  yet, uses a double-submit token in a SameSite=Strict cookie of its own.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import quote

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from indelible.console import sessions
from indelible.console.errors import ConsoleError, SignInRequired

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
SIGN_IN_COOKIE = "indelible_console_signin"
SESSION_ENDED = "Your session ended (signed out, idle too long, or expired). Sign in again."
SIGNED_OUT = "You are signed out."
# The only notices the sign-in page shows from its query: any other text would let a link
# put an attacker's words ("send your key to ...") on the genuine sign-in page.
SIGN_IN_REASONS = frozenset({SESSION_ENDED, SIGNED_OUT})


class SecurityHeaders:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
                if not static:  # case data must not linger in shared or back-button caches
                    headers["cache-control"] = "no-store"
            await send(message)
        await self.app(scope, receive, with_headers)


async def viewer(request: Request) -> sessions.Viewer:
    """The signed-in viewer of this request, or SignInRequired."""
    cookie = request.cookies.get(sessions.COOKIE)
    if not cookie:
        raise SignInRequired()
    state, timeouts = request.app.state.indelible, request.app.state.timeouts

    def resume():
        with state.pool.connection() as conn:
            return sessions.resume(conn, cookie, timeouts, seal=request.app.state.session_seal)
    found = await run_in_threadpool(resume)
    if found is None:
        raise SignInRequired(SESSION_ENDED)
    return found


async def posting_viewer(request: Request) -> sessions.Viewer:
    """The viewer of a form post, after the CSRF checks."""
    refuse_cross_site(request)
    who = await viewer(request)
    form = await request.form()
    sent = form.get("csrf_token")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, who.csrf_token):
        raise ConsoleError(403, "Form refused", "the form did not carry this session's CSRF "
                           "token; reload the page and send it again", viewer=who)
    return who


def refuse_cross_site(request: Request) -> None:
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise ConsoleError(403, "Form refused", "a form posted from another site is refused")


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(32)


def check_sign_in_token(request: Request, sent: object) -> None:
    kept = request.cookies.get(SIGN_IN_COOKIE)
    if not (isinstance(sent, str) and kept and hmac.compare_digest(sent, kept)):
        raise ConsoleError(403, "Form refused", "the sign-in form's CSRF token is missing or "
                           "wrong; reload the sign-in page and try again")


def to_sign_in(request: Request, reason: str = "") -> RedirectResponse:
    target = request.url.path if request.method == "GET" else "/console/"
    if request.url.query and request.method == "GET":
        target += "?" + request.url.query
    query = f"?next={quote(target, safe='')}" + (f"&reason={quote(reason)}" if reason else "")
    response = RedirectResponse("/console/sign-in" + query, status_code=303)
    if reason:
        sessions.clear_cookie(response, request)
    return response


def safe_next(target: str | None) -> str:
    """Only a console path may be a post-sign-in destination (no open redirect)."""
    if target and target.startswith("/console/") and not target.startswith("/console//") \
            and "\\" not in target:
        return target
    return "/console/"
