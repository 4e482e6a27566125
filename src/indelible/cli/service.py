"""Service commands: up, migrate, signing-key, projections."""

from __future__ import annotations

import logging

import click

from indelible.cli.root import cli_actor, known_tenant, main, settings_from_env


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Service processes sharing HTTP and ingestion (one signs checkpoints).")
def up(host: str, port: int, workers: int) -> None:
    """Run the service (HTTP API, appender, checkpointer, ingestion) until Ctrl-C or SIGTERM."""
    import signal

    import uvicorn

    from indelible.bootstrap import running_service
    from indelible.ingest.status import PROGRESS_LOGGER

    # Ingestion's progress is what an operator watching `up` wants to see without -v, which
    # also turns on every library's chatter.
    logging.getLogger(PROGRESS_LOGGER).setLevel(logging.INFO)
    logging.getLogger("indelible.monitor.service").setLevel(logging.INFO)  # full runs
    json_logs = _json_logs()
    if json_logs:
        logging.getLogger("indelible.access").setLevel(logging.INFO)  # for log shippers
        logging.getLogger(SERVICE_LOGGER).setLevel(logging.INFO)

    def say(text: str) -> None:
        # With JSON logs every line on stderr is one JSON object, these included.
        if json_logs:
            logging.getLogger(SERVICE_LOGGER).info("%s", text)
        else:
            click.echo(f"indelible: {text}", err=True)

    # SIGTERM (systemd, docker stop) must unwind like Ctrl-C, so the embedded PostgreSQL and
    # nats-server are stopped too. uvicorn re-raises the signal after its own shutdown; with
    # the default action that would end the process before any cleanup ran.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    settings = settings_from_env()
    if workers > 1:
        _up_with_workers(settings, host, port, workers)
        return
    try:
        with running_service(settings, about={"serving": f"http://{host}:{port}"}) as service:
            say(f"data in {settings.data_dir}; verifier key {service.signer.verifier_key_text()}")
            if service.nats_url:
                say(f"ingesting {settings.subject_prefix}.<tenant> from {service.nats_url}")
            say(f"serving on http://{host}:{port} (Ctrl-C stops)")
            say(f"web console at http://{host}:{port}/console/ (sign in with a key from "
                "`indelible api-key create`)")
            try:
                # uvicorn stops accepting connections and lets requests in flight finish first;
                # log_config=None keeps its lines in our format (logs.py).
                # A request still unfinished after REQUEST_DRAIN seconds (a client that sent
                # half a body, then nothing) is cut off: else the drain waits for it forever.
                uvicorn.run(service.app, host=host, port=port, log_level="warning", log_config=None,
                            timeout_graceful_shutdown=REQUEST_DRAIN)
            finally:
                # Then running_service unwinds in order: ingestion finishes the batch in flight
                # and acknowledges what committed, the appender commits what is queued, the
                # verifier and the embedded servers stop.
                say("draining: no new requests; finishing what is in flight")
    finally:
        say("stopped")  # everything it started has stopped


SERVICE_LOGGER = "indelible.up"
REQUEST_DRAIN = 15.0  # seconds requests in flight get to finish after SIGTERM or Ctrl-C


def _json_logs() -> bool:
    from indelible.logs import JsonFormatter

    return any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)


def _up_with_workers(settings, host: str, port: int, count: int) -> None:
    from indelible.bootstrap import running_backends
    from indelible.workers import Workers, listening_socket

    about = {"serving": f"http://{host}:{port}", "workers": str(count)}
    with running_backends(settings, about=about) as backends:
        sock = listening_socket(host, port)
        pool = Workers(count, sock, backends.worker_environment).start()
        click.echo(f"indelible: data in {settings.data_dir}; {count} workers", err=True)
        if backends.nats_url:
            click.echo(f"indelible: ingesting {settings.subject_prefix}.<tenant> from "
                       f"{backends.nats_url}", err=True)
        click.echo(f"indelible: serving on http://{host}:{port} (Ctrl-C stops)", err=True)
        click.echo(f"indelible: web console at http://{host}:{port}/console/", err=True)
        try:
            pool.supervise()
        except KeyboardInterrupt:
            pass
        finally:
            pool.stop()
            sock.close()


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

    settings = settings_from_env()
    signer = load_or_create_signer(settings.key_file, settings.key_name)
    if Path(previous).is_file():
        previous = Path(previous).read_text().strip()
    with open_database(settings) as db, psycopg.connect(db.app_url, autocommit=True) as conn:
        known_tenant(conn, tenant)
        try:
            entry = rotate_command(previous=previous, signer=signer, reason=reason, by=cli_actor())
            check_previous(conn, tenant, previous)
        except KeyRotationError as e:
            raise click.BadParameter(str(e), param_hint="--previous") from e
        (recorded,) = append_batch(conn, tenant, [entry])
    if isinstance(recorded, Exception):
        raise click.ClickException(str(recorded))
    click.echo(f"tenant {tenant}: signing key {signer.verifier_key_text()} succeeds "
               f"{previous.strip()} (recorded at seq {recorded.seq})")


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
