"""Connections. The service works as the restricted application role, never as the owner."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from indelible.store.schema import APP_ROLE


def app_conninfo(owner_url: str) -> str:
    """The owner's URL, switched at connect time to the INSERT/SELECT-only role."""
    options = conninfo_to_dict(owner_url).get("options") or ""
    return make_conninfo(owner_url, options=f"{options} -c role={APP_ROLE}".strip(),
                         application_name="indelible")
