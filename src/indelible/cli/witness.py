"""`indelible witness serve|key`: a C2SP tlog-witness an audit firm runs on its own machine."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from indelible.cli.root import EXIT_ERROR, main


@main.group()
def witness() -> None:
    """Run a witness that cosigns a log's checkpoints only if they extend what it saw."""


@witness.group()
def key() -> None:
    """The witness's own key."""


def _load(file: str):
    from indelible.witness.keyfile import WitnessKeyError, load_key

    try:
        return load_key(Path(file))
    except WitnessKeyError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_ERROR)


@key.command("generate")
@click.option("--name", required=True, help="The witness's name, a schema-less URL such as "
              "witness.example.com/w1.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Where to write the private key (mode 0600; never overwritten).")
def key_generate(name: str, out: str) -> None:
    """Write a new witness key to FILE and print its verifier key (type 0x04)."""
    from indelible.witness.keyfile import WitnessKeyError, generate_key

    try:
        cosigner = generate_key(Path(out), name)
    except WitnessKeyError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(cosigner.key.key_text())


@key.command("show")
@click.argument("file", type=click.Path(dir_okay=False))
def key_show(file: str) -> None:
    """Print the verifier key of the witness key in FILE."""
    click.echo(_load(file).key.key_text())


def _log_key(value: str):
    from indelible.proofs import NoteVerifier, ProofError

    text = Path(value).read_text().strip() if Path(value).is_file() else value
    try:
        return NoteVerifier.from_key_text(text)
    except ProofError as e:
        raise click.BadParameter(str(e), param_hint="--log") from e


def _listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}", param_hint="--listen")
    return host.strip("[]"), int(port)


@witness.command("serve")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False),
              help="The witness's private key file (`indelible witness key generate`).")
@click.option("--state", required=True, type=click.Path(file_okay=False),
              help="Directory for the latest cosigned checkpoint of each log.")
@click.option("--log", "logs", required=True, multiple=True,
              help="Verifier key (text or file) of a log to witness, repeatable. It covers "
              "the origin equal to its name and every origin under <name>/.")
@click.option("--listen", default="127.0.0.1:8380", show_default=True, help="HOST:PORT.")
def serve(key_file: str, state: str, logs: tuple[str, ...], listen: str) -> None:
    """Serve POST /add-checkpoint (C2SP tlog-witness) until interrupted."""
    from indelible.witness.core import Witness
    from indelible.witness.server import WitnessServer
    from indelible.witness.state import WitnessState

    cosigner = _load(key_file)
    verifiers = [_log_key(v) for v in logs]
    address = _listen(listen)
    try:
        server = WitnessServer(address, Witness(cosigner=cosigner, logs=verifiers,
                                                state=WitnessState(Path(state))))
    except OSError as e:
        click.echo(f"error: cannot listen on {listen}: {e}", err=True)
        sys.exit(EXIT_ERROR)
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop: close cleanly
    host, port = server.server_address[:2]
    click.echo(f"witness {cosigner.key.key_text()} listening on http://{host}:{port} "
               f"for {', '.join(v.name for v in verifiers)}", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
