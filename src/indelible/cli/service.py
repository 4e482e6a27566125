"""Service and operator commands: up, migrate, signing-key, tenant, api-key, severity-policy,
projections, simulate, dlq."""

from __future__ import annotations

import click

from indelible.cli.root import main, settings_from_env


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
def up(host: str, port: int) -> None:
    """Run the service (HTTP API, appender, checkpointer, ingestion) until Ctrl-C or SIGTERM."""
    import signal

    import uvicorn

    from indelible.bootstrap import running_service

    # SIGTERM (systemd, docker stop) must unwind like Ctrl-C, so the embedded PostgreSQL and
    # nats-server are stopped too. uvicorn re-raises the signal after its own shutdown; with
    # the default action that would end the process before any cleanup ran.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    settings = settings_from_env()
    with running_service(settings, about={"serving": f"http://{host}:{port}"}) as service:
        click.echo(f"indelible: data in {settings.data_dir}; verifier key "
                   f"{service.signer.verifier_key_text()}", err=True)
        if service.nats_url:
            click.echo(f"indelible: ingesting {settings.subject_prefix}.<tenant> from "
                       f"{service.nats_url}", err=True)
        click.echo(f"indelible: serving on http://{host}:{port} (Ctrl-C stops)", err=True)
        uvicorn.run(service.app, host=host, port=port, log_level="warning")


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(0)


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


@signing_key.command("rotate")
@click.option("--tenant", required=True)
@click.option("--previous", required=True,
              help="Verifier key text (or a file holding it) of the key that signed so far.")
@click.option("--reason", required=True, help="Why the key changes; kept in the ledger.")
def signing_key_rotate(tenant: str, previous: str, reason: str) -> None:
    """Record on the tenant's log that this instance's key succeeds PREVIOUS.

    Until this is recorded the checkpointer refuses to sign over checkpoints another key
    signed; afterwards the previous key is retired and may not sign this log again.
    """
    from pathlib import Path

    import psycopg

    from indelible.bootstrap import open_database
    from indelible.keys import load_or_create_signer
    from indelible.store.appender import append_batch
    from indelible.store.key_rotation import KeyRotationError, check_previous, rotate_command
    from indelible.store.tenants import OPERATOR

    settings = settings_from_env()
    signer = load_or_create_signer(settings.key_file, settings.key_name)
    if Path(previous).is_file():
        previous = Path(previous).read_text().strip()
    with open_database(settings) as db, psycopg.connect(db.app_url, autocommit=True) as conn:
        _known_tenant(conn, tenant)
        try:
            entry = rotate_command(previous=previous, signer=signer, reason=reason, by=OPERATOR)
            check_previous(conn, tenant, previous)
        except KeyRotationError as e:
            raise click.BadParameter(str(e), param_hint="--previous") from e
        (recorded,) = append_batch(conn, tenant, [entry])
    if isinstance(recorded, Exception):
        raise click.ClickException(str(recorded))
    click.echo(f"tenant {tenant}: signing key {signer.verifier_key_text()} succeeds "
               f"{previous.strip()} (recorded at seq {recorded.seq})")


@main.group()
def tenant() -> None:
    """Tenants and their logs."""


@tenant.command("create")
@click.argument("name")
@click.option("--display-name", help="A human-readable name (default: NAME).")
def tenant_create(name: str, display_name: str | None) -> None:
    """Create tenant NAME (a slug such as `acme`) with its ledger log."""
    import psycopg

    from indelible.bootstrap import open_database
    from indelible.store.logs import InvalidTenantError, origin_for
    from indelible.store.tenants import create_tenant

    settings = settings_from_env()
    with open_database(settings) as db, psycopg.connect(db.app_url, autocommit=True) as conn:
        try:
            created = create_tenant(conn, name, base_origin=settings.base_origin, name=display_name)
        except InvalidTenantError as e:
            raise click.BadParameter(str(e), param_hint="NAME") from e
    state = "created" if created else "already exists"
    click.echo(f"tenant {name} {state}; log origin {origin_for(settings.base_origin, name)}")


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
    import psycopg

    from indelible.bootstrap import open_database
    from indelible.store.api_keys import ApiKeys, issue_command
    from indelible.store.appender import append_batch
    from indelible.store.tenants import OPERATOR

    with open_database(settings_from_env()) as db, psycopg.connect(db.app_url, autocommit=True) as conn:
        _known_tenant(conn, tenant)
        token, entry = issue_command(role=role, name=name, by=OPERATOR)
        (issued,) = append_batch(conn, tenant, [entry], model=ApiKeys())
    click.echo(f"key {entry.data['key_id']} ({role}) issued at seq {issued.seq}; "
               "the token is shown only now:", err=True)
    click.echo(token)


@main.group("severity-policy")
def severity_policy_group() -> None:
    """The tenant's thresholds for severity when a report gives none."""


@severity_policy_group.command("show")
@click.option("--tenant", required=True)
def severity_policy_show(tenant: str) -> None:
    """Print the policy in force as JSON."""
    import orjson
    import psycopg

    from indelible.bootstrap import open_database
    from indelible.store import severity_policy

    with open_database(settings_from_env()) as db, psycopg.connect(db.app_url, autocommit=True) as conn:
        _known_tenant(conn, tenant)
        record = severity_policy.current(conn, tenant)
    click.echo(orjson.dumps(record.to_dict(), option=orjson.OPT_INDENT_2).decode())


@severity_policy_group.command("set")
@click.option("--tenant", required=True)
@click.option("--file", "path", required=True, type=click.File("rb"),
              help='JSON: {"thresholds": {"USD": {"medium": "500.00", "high": ..., "critical": ...}}}')
@click.option("--reason", required=True, help="Why the policy changes (kept in the ledger).")
def severity_policy_set(tenant: str, path, reason: str) -> None:
    """Put a new policy in force, recorded as a ledger entry."""
    import orjson
    import psycopg

    from indelible import domain
    from indelible.bootstrap import open_database
    from indelible.store import severity_policy
    from indelible.store.appender import append_batch
    from indelible.store.errors import AppendRefusedError
    from indelible.store.tenants import OPERATOR

    try:
        policy = domain.parse_policy(orjson.loads(path.read()))
    except orjson.JSONDecodeError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint="--file") from e
    except domain.InvalidCommandError as e:
        raise click.BadParameter(str(e), param_hint="--file") from e
    with open_database(settings_from_env()) as db, psycopg.connect(db.app_url, autocommit=True) as conn:
        _known_tenant(conn, tenant)
        version = severity_policy.current(conn, tenant).version
        try:
            entry = severity_policy.change(policy, reason=reason, actor=OPERATOR,
                                           expected_version=version)
        except domain.InvalidCommandError as e:
            raise click.BadParameter(str(e), param_hint="--reason") from e
        (outcome,) = append_batch(conn, tenant, [entry])
    if isinstance(outcome, AppendRefusedError):
        raise click.ClickException(f"not changed: {outcome}")
    click.echo(f"severity policy of {tenant} is now version {outcome.version} (seq {outcome.seq})")


def _known_tenant(conn, tenant: str) -> None:
    from indelible.store.tenants import tenant_exists

    if not tenant_exists(conn, tenant):
        raise click.BadParameter(f"tenant {tenant!r} does not exist", param_hint="--tenant")


@main.group()
def projections() -> None:
    """Read models derived from the ledger."""


@projections.command("rebuild")
@click.option("--tenant", required=True)
def projections_rebuild(tenant: str) -> None:
    """Drop the tenant's read models and rebuild them from its ledger."""
    from indelible.bootstrap import open_database
    from indelible.bootstrap import projections as all_models
    from indelible.store.rebuild import READ_MODELS, rebuild_projections

    with open_database(settings_from_env()) as db:
        streams = rebuild_projections(db.owner_url, tenant, all_models())
    click.echo(f"rebuilt {', '.join(READ_MODELS)} of {tenant} from the ledger: {streams} streams")


@main.command()
@click.option("--tenant", required=True)
@click.option("--count", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--matched-share", default=0.2, show_default=True, type=click.FloatRange(0, 1),
              help="Share of discrepancies the engine later reports as matched.")
def simulate(tenant: str, count: int, matched_share: float) -> None:
    """Publish realistic reconciliation messages to the service's NATS stream."""
    import asyncio

    from indelible.ingest.streams import ensure_streams
    from indelible.ingest.simulate import messages, publish

    settings = settings_from_env()
    broker = _broker()
    bodies = messages(tenant, count, matched_share=matched_share)

    async def run() -> int:
        nc = await broker.connect()
        await ensure_streams(nc.jetstream(), settings.subject_prefix)
        await nc.close()
        return await publish(broker, settings.subject_prefix, bodies)

    sent = asyncio.run(run())
    click.echo(f"published {sent} messages ({count} detected, {sent - count} matched) to "
               f"{settings.subject_prefix}.{tenant} on {broker.url}")


@main.group()
def dlq() -> None:
    """Messages the ingestion set aside, with the reason."""


def _broker():
    """The running broker and how the service authenticates to it."""
    from indelible.ingest.service import nats_access

    access = nats_access(settings_from_env())
    if access is None:
        raise click.UsageError("no NATS server: start `indelible up`, or set INDELIBLE_NATS_URL")
    return access


@dlq.command("list")
@click.option("--tenant", help="Only this tenant's dead letters.")
@click.option("--json", "as_json", is_flag=True)
def dlq_list(tenant: str | None, as_json: bool) -> None:
    """List dead letters: sequence, original subject, attempts, reason."""
    import asyncio
    import dataclasses
    import json

    from indelible.ingest.dead_letters import list_dead_letters

    letters = asyncio.run(list_dead_letters(_broker(), tenant))
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(d) for d in letters], indent=2))
        return
    for d in letters:
        click.echo(f"{d.seq:>8}  {d.subject}  attempts={d.attempts}  {d.size} B  {d.reason}")
    click.echo(f"{len(letters)} dead letter(s)", err=True)


@dlq.command("replay")
@click.argument("seq", type=click.IntRange(min=1))
def dlq_replay(seq: int) -> None:
    """Publish dead letter SEQ to its original subject again (after fixing its cause)."""
    import asyncio

    from indelible.ingest.dead_letters import DeadLetterError, replay

    try:
        subject = asyncio.run(replay(_broker(), seq))
    except DeadLetterError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"dead letter {seq} published again to {subject}")
