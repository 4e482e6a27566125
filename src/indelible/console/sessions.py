"""Who is looking at a console page: sign-in methods, server-side sessions, the cookie.

A person proves who they are once, with a sign-in method, and gets a session: a random
cookie value whose SHA-256 names a row holding the tenant, the method, the method's subject
and the session's CSRF token (store/console_sessions.py; the database functions hold the idle
and absolute timeouts). The cookie also carries a seal (an HMAC under a key derived from the
service's signing key) over that row, so a row written by hand is worth nothing. At every
page the session is resumed and the method re-checks its subject, so a key revoked or re-roled in the ledger takes effect on the next click.

Pages see only a :class:`Viewer` (the principal the API would see, plus the CSRF token). A
new method — single sign-on with OIDC, say — is one more :class:`SignInMethod` with its own
sign-in routes that call :func:`start`; no page changes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

import psycopg
from fastapi import Request, Response

from indelible.store import console_sessions
from indelible.store.api_keys import Principal, authenticate_hash, token_hash
from indelible.usecases.principal import Principal as Asking

COOKIE = "indelible_console"
SEAL_CONTEXT = b"indelible console session seal v1\0"
COOKIE_PATH = "/console"


@dataclass(frozen=True)
class Timeouts:
    idle: timedelta = timedelta(minutes=30)  # without a page view, the session ends
    absolute: timedelta = timedelta(hours=12)  # whatever happens, it ends this long after sign-in

    @classmethod
    def of(cls, settings) -> Timeouts:
        """The timeouts the operator configured (config.Settings)."""
        return cls(idle=timedelta(seconds=settings.console_idle_timeout),
                   absolute=timedelta(seconds=settings.console_session_lifetime))


@dataclass(frozen=True)
class Viewer:
    """The signed-in person, as every page sees them."""

    principal: Principal  # tenant, key id, role, name: what the API's bearer check yields
    csrf_token: str
    method: str
    expires_at: datetime

    @property
    def tenant(self) -> str:
        return self.principal.tenant

    @property
    def role(self) -> str:
        return self.principal.role

    def asking(self) -> Asking:
        """The use cases' principal: recorded exactly as the same key over the API."""
        actor = self.principal.actor()
        return Asking(self.principal.tenant, actor.id, actor.role, actor.kind)


class SignInMethod(Protocol):
    name: str

    def recheck(self, conn: psycopg.Connection, tenant: str, subject: str) -> Principal | None:
        """The principal the subject stands for now, or None if it no longer may sign in."""


class ApiKeySignIn:
    """A personal API key (as `indelible api-key create` prints it), exchanged for a session.
    The session keeps the token's hash, never the token; the hash is checked against the
    ledger as the API checks a bearer token."""

    name = "api_key"

    def exchange(self, conn: psycopg.Connection, token: str) -> tuple[Principal, str] | None:
        hashed = token_hash(token.strip())
        found = authenticate_hash(conn, hashed)
        return (found, hashed.hex()) if found else None

    def recheck(self, conn: psycopg.Connection, tenant: str, subject: str) -> Principal | None:
        found = authenticate_hash(conn, bytes.fromhex(subject))
        return found if found is not None and found.tenant == tenant else None


METHODS: dict[str, SignInMethod] = {ApiKeySignIn.name: ApiKeySignIn()}


def seal_key(signer) -> bytes:
    """The service's key for sealing sessions, derived from its signing key: every worker
    holds it, the database never does."""
    return hashlib.sha256(SEAL_CONTEXT + signer.private_key_text().encode("utf-8")).digest()


def _seal(key: bytes, sid: str, tenant: str, method: str, subject: str, csrf: str,
          expires_at: datetime) -> str:
    """Why a session row is not enough: the row holds only what the database already knows
    (for an API key, its token hash), so anyone who can write the table could otherwise mint a
    session for any key, or re-point their own at an admin's. The cookie carries a MAC over
    the row's identity and absolute timeout under a key the database never sees."""
    fields = [sid, tenant, method, subject, csrf,
              expires_at.astimezone(timezone.utc).isoformat()]
    return hmac.new(key, "\0".join(fields).encode("utf-8"), hashlib.sha256).hexdigest()


def session_id(cookie: str) -> str:
    """The part of the cookie the table is keyed by (its SHA-256); the rest is the seal."""
    return cookie.split(".", 1)[0]


def start(conn: psycopg.Connection, *, principal: Principal, method: str, subject: str,
          timeouts: Timeouts, seal: bytes) -> tuple[str, Viewer]:
    """A new session for a person a method just verified: (cookie value, viewer)."""
    sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = console_sessions.open_session(conn, sid, tenant=principal.tenant, method=method,
                                            subject=subject, csrf_token=csrf,
                                            lifetime=timeouts.absolute)
    cookie = f"{sid}.{_seal(seal, sid, principal.tenant, method, subject, csrf, expires)}"
    return cookie, Viewer(principal, csrf, method, expires)


def resume(conn: psycopg.Connection, cookie: str, timeouts: Timeouts, *,
           seal: bytes) -> Viewer | None:
    """The viewer behind a cookie, or None: no such live session, a row the service did not
    write (its seal does not match), or its identity lapsed (then the session is revoked, so
    a later reinstatement does not revive it silently)."""
    sid, _, sent = cookie.partition(".")
    if not sent:
        return None
    stored = console_sessions.resume_session(conn, sid, idle=timeouts.idle)
    if stored is None:
        return None
    expected = _seal(seal, sid, stored.tenant, stored.method, stored.subject, stored.csrf_token,
                     stored.expires_at)
    if not hmac.compare_digest(sent, expected):
        return None
    method = METHODS.get(stored.method)
    principal = method.recheck(conn, stored.tenant, stored.subject) if method else None
    if principal is None:
        console_sessions.revoke_session(conn, stored.tenant, sid)
        return None
    return Viewer(principal, stored.csrf_token, stored.method, stored.expires_at)


def end(conn: psycopg.Connection, viewer: Viewer, cookie: str) -> None:
    console_sessions.revoke_session(conn, viewer.tenant, session_id(cookie))


def set_cookie(response: Response, request: Request, cookie: str, timeouts: Timeouts) -> None:
    """HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it), Secure
    when the console is served over TLS, and scoped to the console's paths."""
    response.set_cookie(COOKIE, cookie, max_age=int(timeouts.absolute.total_seconds()),
                        path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
