"""Service and operator commands: up, migrate, signing-key, tenant."""

from __future__ import annotations

import click

from indelible.cli.root import main, settings_from_env


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
def up(host: str, port: int) -> None:
    """Run the service (HTTP API, appender, checkpointer) until Ctrl-C."""
    import uvicorn

    from indelible.api.app import create_app
    from indelible.bootstrap import running_service

    settings = settings_from_env()
    with running_service(settings) as service:
        click.echo(f"indelible: data in {settings.data_dir}; verifier key "
                   f"{service.signer.verifier_key_text()}", err=True)
        click.echo(f"indelible: serving on http://{host}:{port} (Ctrl-C stops)", err=True)
        app = create_app(conninfo=service.db.app_url, signer=service.signer)
        uvicorn.run(app, host=host, port=port, log_level="warning")


@main.command()
def migrate() -> None:
    """Apply the schema migrations (also done on every start)."""
    from indelible.bootstrap import open_database
    from indelible.store.schema import current_version

    with open_database(settings_from_env()) as db:
        click.echo(f"schema at version {current_version(db.owner_url)}")


@main.group("signing-key")
def signing_key() -> None:
    """The checkpoint signing key."""


@signing_key.command("show")
def signing_key_show() -> None:
    """Print the verifier key text auditors use: <name>+<key id>+<base64 key>."""
    from indelible.keys import load_or_create_signer

    settings = settings_from_env()
    click.echo(load_or_create_signer(settings.key_file, settings.key_name).verifier_key_text())


@main.group()
def tenant() -> None:
    """Tenants and their logs."""


@tenant.command("create")
@click.argument("name")
def tenant_create(name: str) -> None:
    """Create tenant NAME with an empty ledger log."""
    import psycopg

    from indelible.bootstrap import open_database
    from indelible.store.logs import InvalidTenantError, create_log, origin_for

    settings = settings_from_env()
    with open_database(settings) as db, psycopg.connect(db.app_url, autocommit=True) as conn:
        try:
            created = create_log(conn, name, base_origin=settings.base_origin)
        except InvalidTenantError as e:
            raise click.BadParameter(str(e), param_hint="NAME") from e
    state = "created" if created else "already exists"
    click.echo(f"tenant {name} {state}; log origin {origin_for(settings.base_origin, name)}")
