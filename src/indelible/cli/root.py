"""The `indelible` command.

Exit codes: 0 success; 1 a verification found the log or a proof invalid; 2 the command
could not run (bad input, no database, missing key); 3 `verify` found nothing wrong but some
entries are covered by no signed checkpoint, so they are not verified.
"""

from __future__ import annotations

import logging

import click

from indelible.config import ConfigError, Settings

EXIT_INVALID, EXIT_ERROR, EXIT_UNSIGNED = 1, 2, 3


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
                WeakIsolationError, DataDirError, psycopg.OperationalError) as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(EXIT_ERROR)


@click.group(cls=_Group)
@click.version_option(package_name="indelible", prog_name="indelible",
                      message="%(prog)s %(version)s")
@click.option("-v", "--verbose", is_flag=True, help="Log progress of the service itself.")
def main(verbose: bool) -> None:
    """Indelible: a compliance ledger nobody can edit."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


