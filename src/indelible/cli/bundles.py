"""Evidence bundles: `indelible export` and `indelible verify-bundle`."""

from __future__ import annotations

import asyncio
import sys

import click

from indelible.cli.root import EXIT_ERROR, cli_actor, known_tenant, main, settings_from_env


def _seq_or_time(conn, tenant: str, value: str | None, *, first: bool) -> int | None:
    """A seq as given, or the first (last) seq recorded at or after (before) an RFC 3339 time."""
    from datetime import datetime

    if value is None:
        return None
    if value.isdigit():
        return int(value)
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise click.BadParameter(f"{value!r} is neither a seq nor an RFC 3339 time",
                                 param_hint="--from" if first else "--to") from e
    if at.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no UTC offset", param_hint="--from/--to")
    sql = ("SELECT min(seq) FROM ledger_entries WHERE tenant_id = %s AND recorded_at >= %s"
           if first else
           "SELECT max(seq) FROM ledger_entries WHERE tenant_id = %s AND recorded_at <= %s")
    (seq,) = conn.execute(sql, (tenant, at)).fetchone()
    if seq is None:
        raise click.BadParameter(f"no entry of tenant {tenant!r} was recorded "
                                 f"{'at or after' if first else 'at or before'} {value}")
    return seq


def _progress():
    """A progress bar on a terminal; nothing when stderr is a file or a pipe."""
    if not sys.stderr.isatty():
        return None, None
    bar = click.progressbar(length=1, label="exporting entries", file=sys.stderr,
                            show_pos=True)
    done = [0]

    def show(count: int, total: int) -> None:
        bar.length = total
        bar.update(count - done[0])
        done[0] = count
    return bar, show


@main.command("export")
@click.option("--tenant", required=True)
@click.option("--from", "from_", metavar="SEQ|TIME", help="First entry: a seq or an RFC 3339 time.")
@click.option("--to", metavar="SEQ|TIME", help="Last entry: a seq or an RFC 3339 time.")
@click.option("--discrepancy", "ids", multiple=True, metavar="ID",
              help="Export every entry of this discrepancy (repeatable).")
@click.option("--prove-from", type=click.IntRange(min=1), multiple=True, metavar="SIZE",
              help="Also prove the bundle's checkpoint extends the one of this size, which an "
                   "auditor kept (repeatable).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, writable=True))
def export(tenant: str, from_: str | None, to: str | None, ids: tuple[str, ...],
           prove_from: tuple[int, ...], out: str) -> None:
    """Write an evidence bundle (a zip an auditor checks offline with `verify-bundle`).

    Select a range (--from and --to) or discrepancies (--discrepancy ID ...). The export is
    recorded in the ledger as an `evidence.exported` entry.
    """
    import psycopg

    from indelible.audit import NotFoundError
    from indelible.bootstrap import open_database, projections
    from indelible.bundles.export import BundleQuery
    from indelible.keys import load_signer
    from indelible.usecases.bundles import export_bundle
    from indelible.usecases.principal import DirectLedger, Principal

    settings = settings_from_env()
    if not settings.key_file.exists():
        raise click.UsageError(f"no signing key at {settings.key_file}: nothing was ever signed")
    key = load_signer(settings.key_file).verifier_key_text()
    with open_database(settings) as db, psycopg.connect(db.app_url, autocommit=True) as conn:
        known_tenant(conn, tenant)
        try:
            query = BundleQuery(tenant, _seq_or_time(conn, tenant, from_, first=True),
                                _seq_or_time(conn, tenant, to, first=False), tuple(ids),
                                tuple(prove_from))
        except ValueError as e:
            raise click.UsageError(str(e)) from e
        actor = cli_actor()
        who = Principal(tenant, actor.id, actor.role, actor.kind)

        async def read(fn, *args, **kwargs):
            return fn(conn, *args, **kwargs)

        bar, progress = _progress()
        try:
            with open(out, "wb") as file:
                summary, entry = asyncio.run(export_bundle(
                    DirectLedger(conn, projections()), who, read, query, file,
                    verifier_key=key, progress=progress))
        except NotFoundError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(EXIT_ERROR)
        finally:
            if bar is not None:
                bar.render_finish()
    click.echo(f"wrote {out}: {summary.entries:,} entries, {summary.files:,} files, proved "
               f"against the checkpoint of size {summary.checkpoint.size}; manifest sha256 "
               f"{summary.manifest_sha256}; recorded as seq {entry.seq}")


@main.command("verify-bundle")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--vkey", "vkeys", required=True, multiple=True,
              help="Verifier key text or a file holding it (repeatable, e.g. across rotations).")
@click.option("--trusted-checkpoint", "trusted", multiple=True, type=click.Path(dir_okay=False),
              help="A signed checkpoint you kept from earlier (repeatable).")
@click.option("--tsa-ca", multiple=True, type=click.Path(dir_okay=False),
              help="PEM certificates of the TSA you trust, to check timestamp tokens "
                   "(default: INDELIBLE_TSA_CA_FILE when set).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def verify_bundle(file: str, vkeys: tuple[str, ...], trusted: tuple[str, ...],
                  tsa_ca: tuple[str, ...], as_json: bool) -> None:
    """Check an evidence bundle offline: no database, no network.

    Exit 0 intact; 1 not intact, naming each file and what failed; 2 the bundle could not be
    checked. (`python -m indelible.auditor verify-bundle` is the same check for an auditor
    who installed only `indelible.proofs`' dependencies.)
    """
    from indelible.auditor import check_bundle

    if not tsa_ca:
        configured = settings_from_env().tsa_ca_file
        tsa_ca = (str(configured),) if configured else ()
    sys.exit(check_bundle(file, list(vkeys), trusted=list(trusted), tsa_ca=list(tsa_ca),
                          as_json=as_json))
