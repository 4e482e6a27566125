"""Connections. The service works as the restricted application role, never as the owner."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from indelible.store.schema import API_ROLE, APP_ROLE


def app_conninfo(owner_url: str, app_url: str | None = None) -> str:
    """How the service connects: as the INSERT/SELECT-only role itself, never as the owner.

    `app_url` (INDELIBLE_APP_DATABASE_URL) is for servers where that role has credentials of
    its own; otherwise the owner's address is used with the role's name: the embedded
    server's `passfile` holds the role's password, and local test servers trust or peer.
    """
    return app_url or _as_role(owner_url, APP_ROLE)


def request_conninfo(owner_url: str, api_url: str | None = None) -> str:
    """How HTTP request handlers connect: the role row-level security holds to one tenant."""
    return api_url or _as_role(owner_url, API_ROLE)


def _as_role(owner_url: str, role: str) -> str:
    params = conninfo_to_dict(owner_url)
    params.pop("password", None)
    params.update(user=role, application_name="indelible")
    return make_conninfo(**params)
