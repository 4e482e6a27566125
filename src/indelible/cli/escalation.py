"""Escalation from the command line: `rules show|set|preview`, `calendar show|set`,
`escalate` (a pass now). Changes are ledger entries whose actor is whoever ran the command."""

from __future__ import annotations

import asyncio
from datetime import date, datetime

import click

from indelible.cli.root import known_tenant, main
from indelible.cli.tenants import _connection, _ledger


def _echo_json(document) -> None:
    import orjson

    click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())


def read_document(path) -> dict:
    """A JSON or YAML file (YAML is a superset of JSON; dates become YYYY-MM-DD text)."""
    import yaml

    try:
        document = yaml.safe_load(path.read())
    except yaml.YAMLError as e:
        raise click.BadParameter(f"neither JSON nor YAML: {e}", param_hint="--file") from e
    return _plain(document)


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def _parse(parser, document):
    from indelible import domain

    try:
        return parser(document)
    except domain.InvalidCommandError as e:
        raise click.BadParameter(str(e), param_hint="--file") from e


def _as_of(value: str | None) -> dict:
    if value is None:
        return {}
    if value.isascii() and value.isdigit() and int(value) <= 2**62:
        return {"seq": int(value)}
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise click.BadParameter("a seq or an RFC 3339 time", param_hint="--as-of") from e
    if moment.tzinfo is None:
        raise click.BadParameter("the time needs a UTC offset", param_hint="--as-of")
    return {"at": moment}


@main.group("rules")
def rules_group() -> None:
    """The tenant's escalation rules."""


AS_OF = click.option("--as-of", help="The set in force after this seq, or at this RFC 3339 time.")


@rules_group.command("show")
@click.option("--tenant", required=True)
@AS_OF
def rules_show(tenant: str, as_of: str | None) -> None:
    """Print the rule set in force as JSON (its version, and the entry that set it)."""
    from indelible.store import escalation as store

    with _connection() as conn:
        known_tenant(conn, tenant)
        _echo_json(store.current_rules(conn, tenant, **_as_of(as_of)).to_dict())


@rules_group.command("set")
@click.option("--tenant", required=True)
@click.option("--file", "path", required=True, type=click.File("rb"),
              help='JSON or YAML: {"rules": [{"id": ..., "after": "PT4H", "action": ...}]}')
@click.option("--reason", required=True, help="Why the rules change (kept in the ledger).")
@click.option("--expected-version", type=click.IntRange(min=0),
              help="The `version` this change replaces; refused if the rules changed since. "
                   " [default: the version in force]")
def rules_set(tenant: str, path, reason: str, expected_version: int | None) -> None:
    """Put a new rule set in force, recorded as a ledger entry."""
    from indelible.escalation.rules import parse_rules
    from indelible.store import escalation as store
    from indelible.store.errors import VersionConflictError
    from indelible.usecases import escalation

    rules = _parse(parse_rules, read_document(path))
    with _ledger(tenant) as (ledger, who):
        version = expected_version
        if version is None:
            version = store.current_rules(ledger.conn, tenant).version

        async def read(fn):
            return fn(ledger.conn, tenant)
        try:
            record = asyncio.run(escalation.set_rules(ledger, who, read, rules, reason=reason,
                                                      expected_version=version))
        except VersionConflictError as e:
            raise click.ClickException(
                f"not changed: the rules of {tenant} are at version {e.actual}, not "
                f"{e.expected}; read them again (`indelible rules show --tenant {tenant}`) and "
                f"set them with --expected-version {e.actual}") from e
        except Exception as e:  # noqa: BLE001 - a refusal, said in one line
            from indelible import domain
            if isinstance(e, domain.InvalidCommandError):
                raise click.BadParameter(str(e), param_hint="--reason") from e
            raise click.ClickException(f"not changed: {e}") from e
    click.echo(f"escalation rules of {tenant} are now version {record.version} (seq {record.seq})")


@rules_group.command("preview")
@click.option("--tenant", required=True)
@click.option("--file", "path", required=True, type=click.File("rb"))
def rules_preview(tenant: str, path) -> None:
    """What a proposed rule set would fire against the current discrepancies, when and why
    (JSON). Writes nothing."""
    from indelible.escalation.rules import parse_rules
    from indelible.usecases import escalation

    rules = _parse(parse_rules, read_document(path))
    with _connection() as conn:
        known_tenant(conn, tenant)
        _echo_json(escalation.preview(conn, tenant, rules))


@main.group("calendar")
def calendar_group() -> None:
    """The tenant's business calendar (for rules counted in business hours)."""


@calendar_group.command("show")
@click.option("--tenant", required=True)
@AS_OF
def calendar_show(tenant: str, as_of: str | None) -> None:
    from indelible.store import escalation as store

    with _connection() as conn:
        known_tenant(conn, tenant)
        _echo_json(store.current_calendar(conn, tenant, **_as_of(as_of)).to_dict())


@calendar_group.command("set")
@click.option("--tenant", required=True)
@click.option("--file", "path", required=True, type=click.File("rb"),
              help='JSON or YAML: {"time_zone": "Europe/Vienna", "working_days": [...], '
                   '"working_hours": {"start": "08:00", "end": "17:00"}, "holidays": [...]}')
@click.option("--reason", required=True)
@click.option("--expected-version", type=click.IntRange(min=0))
def calendar_set(tenant: str, path, reason: str, expected_version: int | None) -> None:
    """Put a new business calendar in force, recorded as a ledger entry."""
    from indelible.escalation.calendar import parse_calendar
    from indelible.store import escalation as store
    from indelible.store.errors import VersionConflictError
    from indelible.usecases import escalation

    calendar = _parse(parse_calendar, read_document(path))
    with _ledger(tenant) as (ledger, who):
        version = expected_version
        if version is None:
            version = store.current_calendar(ledger.conn, tenant).version
        try:
            record = asyncio.run(escalation.set_calendar(ledger, who, calendar, reason=reason,
                                                         expected_version=version))
        except VersionConflictError as e:
            raise click.ClickException(f"not changed: the calendar is at version {e.actual}, "
                                       f"not {e.expected}") from e
    click.echo(f"business calendar of {tenant} is now version {record.version} (seq {record.seq})")


@main.command("escalate")
@click.option("--tenant", required=True)
def escalate(tenant: str) -> None:
    """Run one escalation pass for TENANT now and print what fired (JSON)."""
    from indelible.usecases import escalation

    with _ledger(tenant) as (ledger, _):
        conn = ledger.conn

        async def read(fn, *args):
            with conn.transaction():
                conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))
                return fn(conn, tenant, *args)
        result = asyncio.run(escalation.run_pass(ledger, read, tenant))
    _echo_json(result.to_dict())
