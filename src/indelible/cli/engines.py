"""`indelible engine-credentials create|list|revoke`: per-tenant NATS credentials for
reconciliation engines, on the embedded nats-server (see nats_auth.py).

Issuing and revoking are ledger entries on the tenant's stream `engine-credential/<public
key>` (the public key and name, never the seed), as every other state change is.
"""

from __future__ import annotations

import click

from indelible.cli.root import cli_actor, known_tenant, main, settings_from_env

STREAM_PREFIX = "engine-credential/"
MAX_NAME = 100


@main.group("engine-credentials")
def engine_credentials() -> None:
    """NATS credentials that let an engine publish to its own tenant's subject only."""


def _embedded_store(settings):
    from indelible.ingest.service import nats_dir

    if settings.nats_url:
        raise click.UsageError(
            f"INDELIBLE_NATS_URL points to an external server ({settings.nats_url}): indelible "
            "does not manage its users. Configure that server's authorization yourself: give "
            f"each engine a user that may publish only to {settings.subject_prefix}.<tenant>.")
    return nats_dir(settings)


def _record(tenant: str, entry_type: str, data: dict) -> int:
    """Append the issuance or revocation to the tenant's ledger; returns its seq."""
    import psycopg

    from indelible.bootstrap import open_database
    from indelible.entry import NewEntry
    from indelible.store.appender import append_batch
    from indelible.store.errors import AppendRefusedError

    entry = NewEntry(stream=STREAM_PREFIX + data["public_key"], type=entry_type, actor=cli_actor(),
                     data=data, expected_version=0 if entry_type.endswith("issued") else None)
    with open_database(settings_from_env()) as db, psycopg.connect(db.app_url, autocommit=True) as conn:
        (outcome,) = append_batch(conn, tenant, [entry])
    if isinstance(outcome, AppendRefusedError):
        raise click.ClickException(f"not recorded: {outcome}")
    return outcome.seq


def _known_tenant(tenant: str) -> None:
    import psycopg

    from indelible.bootstrap import open_database

    with open_database(settings_from_env()) as db, psycopg.connect(db.app_url, autocommit=True) as conn:
        known_tenant(conn, tenant)


@engine_credentials.command("create")
@click.option("--tenant", required=True)
@click.option("--name", help="A label, e.g. which engine holds it (default: engine of TENANT).")
def create(tenant: str, name: str | None) -> None:
    """Issue a credential and print its nkey seed once: only the public key is kept."""
    from indelible import nats_auth
    from indelible.runtime import EmbeddedNats

    settings = settings_from_env()
    store = _embedded_store(settings)
    name = name or f"engine of {tenant}"
    if not 0 < len(name) <= MAX_NAME or any(ord(c) < 0x20 for c in name):
        raise click.BadParameter(f"1..{MAX_NAME} characters, no control characters",
                                 param_hint="--name")
    _known_tenant(tenant)
    seed, credential = nats_auth.engine_credential(store, tenant=tenant, name=name,
                                                   prefix=settings.subject_prefix)
    try:
        seq = _record(tenant, "engine_credential.issued",
                      {"public_key": credential.public_key, "name": name,
                       "subject": credential.subject})
    except BaseException:
        nats_auth.remove_engine(store, credential.public_key)  # unrecorded: never active
        raise
    live = EmbeddedNats.reload_config(store)
    click.echo(f"engine credential {credential.public_key} for {tenant} issued at seq {seq}; "
               f"it may publish only to {credential.subject}, and its client must use the inbox "
               f"prefix {credential.inbox_prefix} (publish acknowledgements arrive there). "
               + ("The running nats-server accepts it now. " if live else
                  "It takes effect when the service starts. ")
               + "Its nkey seed is shown only now:", err=True)
    click.echo(seed)


@engine_credentials.command("list")
@click.option("--tenant", help="Only this tenant's credentials.")
def list_(tenant: str | None) -> None:
    """Public key, tenant, subject, name and issue time of every active credential."""
    from indelible import nats_auth

    shown = [e for e in nats_auth.engines(_embedded_store(settings_from_env()))
             if tenant is None or e.tenant == tenant]
    for e in shown:
        click.echo(f"{e.public_key}  {e.tenant}  {e.subject}  {e.issued_at}  {e.name}")
    click.echo(f"{len(shown)} engine credential(s)", err=True)


@engine_credentials.command("revoke")
@click.argument("public_key")
def revoke(public_key: str) -> None:
    """Revoke credential PUBLIC_KEY: the running nats-server drops its connections."""
    from indelible import nats_auth
    from indelible.runtime import EmbeddedNats

    store = _embedded_store(settings_from_env())
    removed = nats_auth.remove_engine(store, public_key)
    if removed is None:
        raise click.BadParameter(f"no active engine credential {public_key}; see "
                                 "`indelible engine-credentials list`", param_hint="PUBLIC_KEY")
    EmbeddedNats.reload_config(store)
    seq = _record(removed.tenant, "engine_credential.revoked",
                  {"public_key": public_key, "name": removed.name})
    click.echo(f"engine credential {public_key} of {removed.tenant} revoked at seq {seq}")
