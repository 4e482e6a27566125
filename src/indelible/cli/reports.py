"""`indelible report`: make a compliance report from the command line, and tie a report file
back to the ledger entry that recorded it (`indelible report verify FILE`)."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from indelible.cli.root import EXIT_ERROR, EXIT_INVALID, cli_actor, known_tenant, main, settings_from_env


class _Bar:
    """A progress bar on a terminal (stderr); nothing when output is a pipe or a file."""

    def __init__(self):
        self.on = sys.stderr.isatty()
        self.last = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.on:
            return
        width = 30
        filled = width * done // total if total else 0
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {stage} ({done}/{total})"
        sys.stderr.write(line.ljust(len(self.last)))
        sys.stderr.flush()
        self.last = line

    def close(self) -> None:
        if self.on and self.last:
            sys.stderr.write("\n")


def _list(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@main.group(invoke_without_command=True)
@click.option("--tenant", help="The tenant the report is about.")
@click.option("--from", "start", metavar="DATE", help="Start of the period: 2026-10-01 (midnight "
              "UTC) or an RFC 3339 time; inclusive.")
@click.option("--to", "end", metavar="DATE", help="End of the period; exclusive.")
@click.option("--format", "formats", default="pdf,html,json", show_default=True,
              help="Comma-separated: pdf, html, json.")
@click.option("--status", multiple=True, help="Only discrepancies in this status at the end "
              "of the period (repeatable, or comma-separated).")
@click.option("--severity", multiple=True, help="Only this severity (repeatable).")
@click.option("--source", multiple=True, help="Only this source (repeatable).")
@click.option("--currency", multiple=True, help="Only this ISO 4217 currency (repeatable).")
@click.option("--discrepancy", "ids", multiple=True, help="Only this discrepancy id (repeatable).")
@click.option("--tree-size", type=click.IntRange(min=1), help="Cover exactly the entries below "
              "this signed checkpoint's size: regenerates a recorded report byte for byte.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Directory the files are written to.")
@click.pass_context
def report(ctx, tenant, start, end, formats, status, severity, source, currency, ids, tree_size,
           out) -> None:
    """Make a compliance report (PDF, HTML, JSON) over a period, record it in the ledger
    (`report.generated`, with each file's SHA-256) and write the files to --out.

    `indelible report verify FILE` names the ledger entry a report file matches."""
    if ctx.invoked_subcommand is not None:
        return
    missing = [name for name, v in (("--tenant", tenant), ("--from", start), ("--to", end),
                                    ("--out", out)) if not v]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)}")
    body = {"from": start, "to": end, "formats": _list((formats,)),
            "filters": {"status": _list(status), "severity": _list(severity),
                        "source": _list(source), "currency": _list(currency),
                        "discrepancy_ids": _list(ids)}}
    made = _generate(tenant, body, tree_size)
    out.mkdir(parents=True, exist_ok=True)
    import hashlib
    for name, _, content in made.files:
        path = out / name
        path.write_bytes(content)
        click.echo(f"{path}  sha256 {hashlib.sha256(content).hexdigest()}  {len(content):,} bytes")
    click.echo(f"recorded as report.generated at seq {made.seq} (report {made.report_id}, "
               f"covering entries 0-{made.tree_size - 1})")


def _generate(tenant: str, body: dict, tree_size: int | None):
    import psycopg

    from indelible.bootstrap import open_database, projections
    from indelible.entry import time_ordered_ids
    from indelible.keys import load_or_create_signer
    from indelible.kept import KeptCheckpoints
    from indelible.proofs import NoteVerifier
    from indelible.reports.request import InvalidReportError, parse_request
    from indelible.store import reports as store
    from indelible.store.appender import append_batch
    from indelible.store.signing import sign_checkpoint
    from indelible.usecases import reports

    settings = settings_from_env()
    try:
        request = parse_request(body)
    except InvalidReportError as e:
        raise click.UsageError("; ".join(f"{_option(f)}: {r}" for f, r in e.errors)) from e
    signer = load_or_create_signer(settings.key_file, settings.key_name)
    key = signer.verifier_key_text()
    kept = KeptCheckpoints(settings.kept_dir)
    signing = reports.Signing(NoteVerifier.from_key_text(key), key, sign_now=lambda conn, t:
                              sign_checkpoint(conn, t, signer, kept))
    actor = cli_actor()
    report_id = str(time_ordered_ids(datetime.now(timezone.utc), 1)[0])
    parameters = {"request": request.to_json(), "actor": actor.to_json()}
    job = store.Job(tenant, report_id, parameters, actor.id, datetime.now(timezone.utc), "running")
    with open_database(settings) as db, psycopg.connect(db.app_url, autocommit=True) as conn:
        known_tenant(conn, tenant)

        def append(t, command):
            (outcome,) = append_batch(conn, t, [command], model=projections())
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        # The request goes into the ledger first: generate takes what it renders, and in
        # whose name, from that entry.
        reports.record_request(append, tenant, report_id, request, actor, tree_size=tree_size)
        bar = _Bar()
        try:
            made = reports.generate(db.app_url, job, append=append, signing=signing,
                                    progress=bar)
        except reports.ReportError as e:
            bar.close()
            click.echo(f"error: {e}", err=True)
            sys.exit(EXIT_ERROR)
        bar.close()
        store.record_finished(conn, tenant, report_id, parameters, actor.id, made.seq)
    return made


def _option(field: str) -> str:
    return {"from": "--from", "to": "--to", "formats": "--format"}.get(
        field, "--" + field.removeprefix("filters.").replace("discrepancy_ids", "discrepancy"))


@report.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tenant", help="Look only in this tenant's ledger.")
def verify(file: Path, tenant: str | None) -> None:
    """Name the report.generated ledger entry that recorded FILE's exact bytes (exit 0), or
    say that none does (exit 1)."""
    import psycopg

    from indelible.bootstrap import open_database
    from indelible.keys import load_or_create_signer
    from indelible.proofs import NoteVerifier
    from indelible.usecases.reports import verify_report_file

    content = file.read_bytes()
    settings = settings_from_env()
    verifier = NoteVerifier.from_key_text(
        load_or_create_signer(settings.key_file, settings.key_name).verifier_key_text())
    with open_database(settings) as db, \
            psycopg.connect(db.app_url, autocommit=True) as conn:
        matches = verify_report_file(conn, content, tenant, verifier)
    import hashlib
    digest = hashlib.sha256(content).hexdigest()
    if not matches:
        click.echo(f"NO MATCH: no report.generated entry records a file with sha256 {digest} "
                   f"({len(content):,} bytes)" + (f" in tenant {tenant}" if tenant else ""))
        sys.exit(EXIT_INVALID)
    for m in matches:
        p = m.parameters
        click.echo(f"OK: {file.name} is {m.name} of report {m.report_id}, recorded by the "
                   f"report.generated entry at seq {m.seq} of tenant {m.tenant} ({m.at}, by "
                   f"{m.actor}); period {p['from']} to {p['to']}, covering entries 0-"
                   f"{m.tree_size - 1}; sha256 {digest}"
                   + ("" if m.proof in (None, "proved") else f" (the entry is {m.proof})"))
