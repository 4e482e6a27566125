"""The `indelible` command.

Exit codes: 0 success; 1 a verification found the log or a proof invalid; 2 the command
could not run (bad input, no database, missing key); 3 `verify` found nothing wrong but some
entries are covered by no signed checkpoint, so they are not verified.
"""

from __future__ import annotations

import logging

import click

from indelible.config import ConfigError, Settings
from indelible.entry import MAX_NAME, Actor

EXIT_INVALID, EXIT_ERROR, EXIT_UNSIGNED = 1, 2, 3
ACTOR_PREFIX = "cli:"


def settings_from_env() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as e:
        raise click.UsageError(str(e)) from e


class _Group(click.Group):
    """Turns the errors an operator can act on into one line and exit code 2."""

    def invoke(self, ctx: click.Context):
        import psycopg

        from indelible.kept import KeptStateError
        from indelible.datadir import DataDirError
        from indelible.keys import SigningKeyError
        from indelible.runtime import EmbeddedServerError
        from indelible.store.errors import StoreError
        from indelible.store.isolation import WeakIsolationError

        try:
            return super().invoke(ctx)
        except (StoreError, SigningKeyError, KeptStateError, EmbeddedServerError,
                WeakIsolationError, DataDirError, psycopg.OperationalError,
                ConfigError) as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(EXIT_ERROR)


@click.group(cls=_Group)
@click.version_option(package_name="indelible", prog_name="indelible",
                      message="%(prog)s %(version)s")
@click.option("-v", "--verbose", is_flag=True, help="Log progress of the service itself.")
@click.option("--actor", metavar="NAME", callback=lambda ctx, param, value: _actor_name(value),
              help="Who runs the command: the ledger entries it appends name the actor "
                   "cli:NAME.  [default: the OS user]")
def main(verbose: bool, actor: str) -> None:
    """Indelible: a compliance ledger nobody can edit."""
    from indelible import logs
    from indelible.config import log_format

    try:
        format = log_format()
    except ConfigError as e:
        raise click.UsageError(str(e)) from e
    logs.configure(level=logging.INFO if verbose else logging.WARNING, format=format)


def cli_actor() -> Actor:
    """The actor of the entries this command appends: the person (or account) who ran it,
    an administrator acting from the operator's seat, never an anonymous "operator"."""
    name = click.get_current_context().find_root().params["actor"]
    return Actor(ACTOR_PREFIX + name, "admin", "operator")


def _actor_name(value: str | None) -> str:
    import getpass
    import os

    if value is None:
        try:
            value = getpass.getuser()
        except (OSError, KeyError):  # no login name and no passwd entry (some containers)
            value = f"uid-{os.getuid()}"
    limit = MAX_NAME - len(ACTOR_PREFIX)
    if not 0 < len(value) <= limit or not value.isprintable() or value != value.strip():
        raise click.BadParameter(f"1..{limit} printable characters, no leading or trailing "
                                 f"space; got {value!r}", param_hint="--actor")
    return value


def known_tenant(conn, tenant: str) -> None:
    from indelible.store.tenants import tenant_exists

    if not tenant_exists(conn, tenant):
        raise click.BadParameter(f"tenant {tenant!r} does not exist; see `indelible tenant "
                                 "list`", param_hint="--tenant")


