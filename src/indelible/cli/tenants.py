"""Tenant administration: tenant, api-key, severity-policy.

Every change is a ledger entry whose actor is whoever ran the command (`--actor`, default
the OS user), as an administrator.
"""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
from datetime import datetime, timezone

import click

from indelible.cli.root import cli_actor, known_tenant, main, settings_from_env


@contextmanager
def _connection(settings=None):
    """The database (embedded or configured) and a connection as the application role."""
    import psycopg

    from indelible.bootstrap import open_database

    with open_database(settings or settings_from_env()) as db:
        with psycopg.connect(db.app_url, autocommit=True) as conn:
            yield conn


@contextmanager
def _ledger(tenant: str):
    """The use cases' ledger on a connection of this command, and the operator as principal."""
    from indelible.bootstrap import projections
    from indelible.usecases.principal import DirectLedger, Principal

    with _connection() as conn:
        known_tenant(conn, tenant)
        actor = cli_actor()
        yield DirectLedger(conn, projections()), Principal(tenant, actor.id, actor.role, actor.kind)


@main.group()
def tenant() -> None:
    """Tenants and their logs."""


@tenant.command("create")
@click.argument("name")
@click.option("--display-name", help="A human-readable name (default: NAME).")
def tenant_create(name: str, display_name: str | None) -> None:
    """Create tenant NAME (a slug such as `acme`) with its ledger log."""
    from indelible.store.logs import InvalidTenantError, origin_for
    from indelible.store.tenants import create_tenant

    settings = settings_from_env()
    with _connection(settings) as conn:
        try:
            created = create_tenant(conn, name, base_origin=settings.base_origin,
                                    name=display_name, by=cli_actor())
        except InvalidTenantError as e:
            raise click.BadParameter(str(e), param_hint="NAME") from e
    state = "created" if created else "already exists"
    click.echo(f"tenant {name} {state}; log origin {origin_for(settings.base_origin, name)}")


@tenant.command("list")
def tenant_list() -> None:
    """Name, display name, creation time, log size and latest signed checkpoint size."""
    from indelible.store.tenants import list_tenants

    with _connection() as conn:
        tenants = list_tenants(conn)
    rows = [(t.tenant, t.name, _time(t.created_at), str(t.log_size),
             "none" if t.checkpoint_size is None else str(t.checkpoint_size)) for t in tenants]
    _table(("TENANT", "DISPLAY NAME", "CREATED", "LOG SIZE", "CHECKPOINT SIZE"), rows)
    click.echo(f"{len(rows)} tenant(s)", err=True)


def _time(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Columns as wide as their widest cell; nothing when there are no rows."""
    if not rows:
        return
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


@main.group("api-key")
def api_key() -> None:
    """API keys (bearer tokens) of a tenant."""


@api_key.command("create")
@click.option("--tenant", required=True)
@click.option("--role", required=True, type=click.Choice(
    ["analyst", "compliance_manager", "auditor", "admin", "system"]))
@click.option("--name", help="A label for the key, e.g. who holds it.")
def api_key_create(tenant: str, role: str, name: str | None) -> None:
    """Issue a key and print its token once: it is stored only as a hash."""
    from indelible.store.api_keys import InvalidKeyRequestError
    from indelible.store.errors import AppendRefusedError
    from indelible.usecases import keys

    with _ledger(tenant) as (ledger, who):
        try:
            issued = asyncio.run(keys.issue_key(ledger, who, role=role, name=name))
        except InvalidKeyRequestError as e:
            raise click.BadParameter(str(e), param_hint="--name") from e
        except AppendRefusedError as e:
            raise click.ClickException(f"not issued: {e}") from e
    click.echo(f"key {issued.key_id} ({role}) issued at seq {issued.seq}; "
               "the token is shown only now:", err=True)
    click.echo(issued.token)


@api_key.command("list")
@click.option("--tenant", required=True)
def api_key_list(tenant: str) -> None:
    """Every key of the tenant: id, role, name, issued (seq, time, by) and revoked."""
    from indelible.store.api_keys import list_keys

    with _connection() as conn:
        known_tenant(conn, tenant)
        keys = list_keys(conn, tenant)
    rows = [(k.key_id, k.role, k.name, f"seq {k.issued_seq} {_time(k.issued_at)} by {k.issued_by}",
             "active" if k.revoked_seq is None else
             f"revoked seq {k.revoked_seq} {_time(k.revoked_at)} by {k.revoked_by}") for k in keys]
    _table(("KEY ID", "ROLE", "NAME", "ISSUED", "STATE"), rows)
    click.echo(f"{len(rows)} key(s), {sum(k.revoked_seq is None for k in keys)} active", err=True)


@api_key.command("revoke")
@click.option("--tenant", required=True)
@click.argument("key_id")
def api_key_revoke(tenant: str, key_id: str) -> None:
    """Revoke key KEY_ID of the tenant: it stops authenticating at once."""
    import uuid

    from indelible.store.errors import AppendRefusedError
    from indelible.usecases import keys

    try:
        key_id = str(uuid.UUID(key_id))
    except ValueError as e:
        raise click.BadParameter(f"not a key id (a UUID): {key_id!r}; see `indelible api-key "
                                 "list`", param_hint="KEY_ID") from e
    with _ledger(tenant) as (ledger, who):
        try:
            outcome = asyncio.run(keys.revoke_key(ledger, who, key_id))
        except AppendRefusedError as e:
            raise click.ClickException(f"not revoked: {e}") from e
    click.echo(f"key {key_id} of {tenant} revoked at seq {outcome.seq}")


@main.group("severity-policy")
def severity_policy_group() -> None:
    """The tenant's thresholds for severity when a report gives none."""


@severity_policy_group.command("show")
@click.option("--tenant", required=True)
def severity_policy_show(tenant: str) -> None:
    """Print the policy in force as JSON."""
    import orjson

    from indelible.store import severity_policy

    with _connection() as conn:
        known_tenant(conn, tenant)
        record = severity_policy.current(conn, tenant)
    click.echo(orjson.dumps(record.to_dict(), option=orjson.OPT_INDENT_2).decode())


@severity_policy_group.command("set")
@click.option("--tenant", required=True)
@click.option("--file", "path", required=True, type=click.File("rb"),
              help='JSON: {"thresholds": {"USD": {"medium": "500.00", "high": ..., "critical": ...}}}')
@click.option("--reason", required=True, help="Why the policy changes (kept in the ledger).")
@click.option("--expected-version", type=click.IntRange(min=0),
              help="The `version` this change replaces (see `show`); refused if the policy "
                   "changed since.  [default: whatever version is in force]")
def severity_policy_set(tenant: str, path, reason: str, expected_version: int | None) -> None:
    """Put a new policy in force, recorded as a ledger entry."""
    from indelible import domain
    from indelible.store import severity_policy
    from indelible.store.errors import AppendRefusedError, VersionConflictError
    from indelible.usecases.policy import set_severity_policy

    policy = _read_policy(path)
    with _ledger(tenant) as (ledger, who):
        version = expected_version
        if version is None:
            version = severity_policy.current(ledger.conn, tenant).version
        try:
            record = asyncio.run(set_severity_policy(ledger, who, policy, reason=reason,
                                                     expected_version=version))
        except domain.InvalidCommandError as e:
            raise click.BadParameter(str(e), param_hint="--reason") from e
        except VersionConflictError as e:
            raise click.ClickException(
                f"not changed: the policy of {tenant} is at version {e.actual}, not "
                f"{e.expected}; someone changed it since. Read it again (`indelible "
                f"severity-policy show --tenant {tenant}`) and set it with --expected-version "
                f"{e.actual}") from e
        except AppendRefusedError as e:
            raise click.ClickException(f"not changed: {e}") from e
    click.echo(f"severity policy of {tenant} is now version {record.version} (seq {record.policy.seq})")


def _read_policy(path):
    import orjson

    from indelible import domain

    try:
        return domain.parse_policy(orjson.loads(path.read()))
    except orjson.JSONDecodeError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint="--file") from e
    except domain.InvalidCommandError as e:
        raise click.BadParameter(str(e), param_hint="--file") from e
