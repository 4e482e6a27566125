"""Auditor commands: checkpoint, proof, verify-proof, verify."""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import click

from indelible.cli.root import EXIT_ERROR, EXIT_INVALID, EXIT_UNSIGNED, main, settings_from_env


@contextmanager
def _app_connection():
    """The database (embedded or configured) and a connection as the application role."""
    import psycopg

    from indelible.bootstrap import open_database

    with open_database(settings_from_env()) as db:
        with psycopg.connect(db.app_url, autocommit=True) as conn:
            yield db, conn


def _read_text(path: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise click.BadParameter(f"cannot read {path}: {e}") from e


def _verifier(vkey: str | None):
    """--vkey as key text or a file holding it; default: this service's own key."""
    from indelible.keys import load_signer
    from indelible.proofs import NoteVerifier, ProofError

    if vkey is None:
        settings = settings_from_env()
        if not settings.key_file.exists():
            raise click.UsageError(f"no signing key at {settings.key_file}; pass --vkey")
        vkey = load_signer(settings.key_file).verifier_key_text()
    elif Path(vkey).is_file():
        vkey = Path(vkey).read_text().strip()
    try:
        return NoteVerifier.from_key_text(vkey)
    except ProofError as e:
        raise click.BadParameter(str(e), param_hint="--vkey") from e


@main.command()
@click.option("--tenant", required=True)
def checkpoint(tenant: str) -> None:
    """Sign the tenant's log now if it grew, and print the latest checkpoint."""
    from indelible.audit import current_checkpoint
    from indelible.keys import load_or_create_signer
    from indelible.kept import KeptCheckpoints
    from indelible.store.signing import sign_checkpoint

    settings = settings_from_env()
    signer = load_or_create_signer(settings.key_file, settings.key_name)
    with _app_connection() as (_, conn):
        sign_checkpoint(conn, tenant, signer, KeptCheckpoints(settings.kept_dir))
        click.echo(current_checkpoint(conn, tenant).note, nl=False)


@main.command()
@click.option("--tenant", required=True)
@click.option("--seq", required=True, type=click.IntRange(min=0))
@click.option("--size", type=click.IntRange(min=1), help="Prove against the checkpoint of this size.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE, not stdout.")
def proof(tenant: str, seq: int, size: int | None, output: str | None) -> None:
    """Print a C2SP tlog-proof of entry SEQ against the latest checkpoint.

    The entry's canonical bytes ride in the `extra` line, so the file verifies on its own.
    """
    from indelible.audit import entry_proof

    with _app_connection() as (_, conn):
        text = entry_proof(conn, tenant, seq, size).tlog_proof()
    if output:
        Path(output).write_text(text)
    else:
        click.echo(text, nl=False)


def witness_options(command):
    """--witness VKEY ... --quorum K, or --witness-policy FILE (see proofs/cosignature.py)."""
    command = click.option("--witness-policy", "policy_file", type=click.Path(dir_okay=False),
                           help="A policy file: 'witness <verifier key>' lines and one "
                           "'quorum <K>' line.")(command)
    command = click.option("--quorum", type=click.IntRange(min=1),
                           help="Refuse a checkpoint without K valid cosignatures from the "
                           "--witness keys.")(command)
    return click.option("--witness", "witnesses", multiple=True, metavar="VKEY",
                        help="A witness verifier key (text or file), repeatable; cosignatures "
                        "from other keys are ignored.")(command)


def witness_policy(witnesses: tuple[str, ...], quorum: int | None, policy_file: str | None):
    """The auditor's witness policy, or None when none was asked for."""
    from indelible.proofs import CosignerKey, ProofError, WitnessPolicy, parse_witness_policy

    if policy_file:
        if witnesses or quorum:
            raise click.UsageError("give --witness-policy or --witness/--quorum, not both")
        try:
            return parse_witness_policy(_read_text(policy_file))
        except ProofError as e:
            raise click.BadParameter(str(e), param_hint="--witness-policy") from e
    if not witnesses and quorum is None:
        return None
    if not witnesses or quorum is None:
        raise click.UsageError("--witness and --quorum go together")
    try:
        keys = [CosignerKey.from_key_text(Path(w).read_text().strip() if Path(w).is_file()
                                          else w) for w in witnesses]
        return WitnessPolicy(tuple(keys), quorum)
    except ProofError as e:
        raise click.BadParameter(str(e), param_hint="--witness") from e
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--quorum") from e


@main.command("verify-proof")
@click.option("--vkey", required=True, help="Verifier key text, or a file holding it.")
@witness_options
@click.argument("file")
def verify_proof(vkey: str, file: str, witnesses: tuple[str, ...], quorum: int | None,
                 policy_file: str | None) -> None:
    """Check a tlog-proof FILE offline ('-' for stdin); print the entry it proves.

    With a witness policy, the proof's checkpoint must also carry K valid cosignatures.
    """
    from indelible.proofs import ProofError, check_witness_quorum, parse_tlog_proof
    from indelible.proofs import verify_tlog_proof

    verifier = _verifier(vkey)
    policy = witness_policy(witnesses, quorum, policy_file)
    text = _read_text(file)
    try:
        checkpoint, entry = verify_tlog_proof(text, verifier)
        cosigned = check_witness_quorum(parse_tlog_proof(text).checkpoint_note, policy) \
            if policy else {}
    except ProofError as e:
        click.echo(f"INVALID: {e}", err=True)
        sys.exit(EXIT_INVALID)
    try:
        shown = json.dumps(json.loads(entry), indent=2, ensure_ascii=False)
    except ValueError:
        shown = entry.decode("utf-8", "replace")
    click.echo(shown)
    click.echo(f"OK: this entry is included in {checkpoint.origin} at size {checkpoint.size}, "
               f"signed by {verifier.name}"
               + (f", cosigned by {', '.join(sorted(cosigned))}" if cosigned else ""), err=True)


@main.command()
@click.option("--tenant", required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--trusted-checkpoint", "trusted", multiple=True, type=click.Path(dir_okay=False),
              help="A signed checkpoint kept outside this database (repeatable).")
@click.option("--vkey", "vkeys", multiple=True,
              help="Verifier key text or file, repeatable: every key the log was signed with "
              "across rotations (default: this service's key, and the checkpoint it kept "
              "beside it is trusted too).")
@click.option("--workers", type=click.IntRange(min=1), help="Processes (default: all cores).")
@click.option("--no-models", is_flag=True, help="Skip the second pass (read models, snapshots, "
              "evidence files, lifecycle): check only the entries, tree and checkpoints.")
@witness_options
def verify(tenant: str, as_json: bool, trusted: tuple[str, ...], vkeys: tuple[str, ...],
           workers: int | None, no_models: bool, witnesses: tuple[str, ...],
           quorum: int | None, policy_file: str | None) -> None:
    """Recompute the tenant's whole log and check it.

    Exit 0 intact and every entry signed; 1 tampered; 2 could not run; 3 no check failed but
    some entries are covered by no signed checkpoint (not verified). With a witness policy,
    only checkpoints carrying the quorum of cosignatures count as signing anything.
    """
    from indelible.verifier import verify_log
    from indelible.verifier.models import verify_models

    policy = witness_policy(witnesses, quorum, policy_file)
    witnessing = None
    verifiers = [_verifier(vkey) for vkey in vkeys] or [_verifier(None)]
    notes = [_read_text(path) for path in trusted] + ([] if vkeys else _kept_note(tenant))
    with _app_connection() as (db, _):
        try:
            report = verify_log(db.app_url, tenant, verifiers, trusted_notes=notes,
                                workers=workers, progress=_progress())
            if not no_models:
                verify_models(db.app_url, tenant, report)
            if policy is not None:
                witnessing = _apply_witness_policy(db.app_url, tenant, policy, report)
            _verify_timestamps(db.app_url, tenant, report)
        except Exception as e:  # noqa: BLE001 - "could not run" must never read as "tampered"
            if isinstance(e, click.ClickException):
                raise
            click.echo(f"error: verification could not run: {e!r}", err=True)
            sys.exit(EXIT_ERROR)
    if as_json:
        click.echo(json.dumps({**report.to_json(), **(witnessing or {})}, indent=2))
    else:
        click.echo(report.to_text())
        if witnessing:
            click.echo(f"WITNESSES: checkpoints cosigned by {policy.quorum} of "
                       f"{len(policy.witnesses)} listed witnesses cover "
                       f"{witnessing['witnessed_size']:,} entries"
                       + (f"; {witnessing['witness_problem']}" if witnessing["witness_problem"]
                          else ""))
    sys.exit({"verified": 0, "tampered": EXIT_INVALID, "unsigned": EXIT_UNSIGNED}[report.status])


def _apply_witness_policy(url: str, tenant: str, policy, report) -> dict:
    """Entries beyond the largest checkpoint the policy accepts are not verified."""
    import psycopg

    from indelible.cosigning.reads import witnessed_size

    with psycopg.connect(url, autocommit=True) as conn:
        size, problem = witnessed_size(conn, tenant, policy)
    report.signed_size = min(report.signed_size, size)
    return {"witnessed_size": size, "witness_problem": problem}
def _verify_timestamps(conninfo: str, tenant: str, report) -> None:
    """With a TSA configured, every stored RFC 3161 token is checked against its CA."""
    settings = settings_from_env()
    if settings.tsa_ca_file is None:
        return
    from indelible.proofs.timestamp import load_checker
    from indelible.timestamping.verify import verify_tokens

    import psycopg

    from indelible.store.timestamps import status

    checker = load_checker([settings.tsa_ca_file.read_bytes()])
    checked = verify_tokens(conninfo, tenant, checker, report)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        missing = status(conn, tenant).missing
    click.echo(f"checked {checked} RFC 3161 timestamp token(s); {missing} checkpoint(s) have "
               "none yet", err=True)


def _kept_note(tenant: str) -> list[str]:
    """The checkpoint this service kept outside the database, if any: a trusted one."""
    from indelible.kept import KeptCheckpoints

    kept = KeptCheckpoints(settings_from_env().kept_dir).get(tenant)
    return [kept.note] if kept else []


def _progress():
    started, last = time.monotonic(), [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 0.5 and done < total:
            return
        last[0] = now
        rate = done / max(now - started, 1e-9)
        click.echo(f"\rverified {done:,}/{total:,} entries ({rate:,.0f}/s)", err=True,
                   nl=done >= total)

    return show


