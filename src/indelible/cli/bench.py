"""Benchmarks: `indelible bench append|verify|api|ingest|outbox|escalate|console` (see benchmarks/ for what they measure)."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager

import click

from indelible.cli.root import EXIT_INVALID, main, settings_from_env


@main.group()
def bench() -> None:
    """Measure the ledger against raw PostgreSQL in the same run."""


def _output(command: str, tenant: str, measurements, as_json: bool, extra: dict) -> None:
    from indelible.bench.common import report_json, report_text

    if as_json:
        click.echo(json.dumps(report_json(command, tenant, measurements, **extra), indent=2))
    else:
        click.echo(report_text(command, tenant, measurements))
        click.echo("\n" + ", ".join(f"{k}: {v}" for k, v in extra.items()))


@contextmanager
def _bench_database(tenant: str):
    """The service's database, with the tenant's log created if missing (it stays after)."""
    import psycopg

    from indelible.bench.common import BenchError
    from indelible.bootstrap import open_database
    from indelible.store.logs import InvalidTenantError, create_log

    settings = settings_from_env()
    with open_database(settings) as db:
        with psycopg.connect(db.app_url, autocommit=True) as conn:
            try:
                create_log(conn, tenant, base_origin=settings.base_origin)
            except InvalidTenantError as e:
                raise click.BadParameter(str(e), param_hint="--tenant") from e
        try:
            yield settings, db
        except BenchError as e:
            click.echo(f"FAILED: {e}", err=True)
            sys.exit(EXIT_INVALID)


_tenant = click.option("--tenant", default="bench", show_default=True,
                       help="Tenant whose log the benchmark appends to (kept afterwards).")
_json = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


_verifier_ab = click.option(
    "--verifier-ab", is_flag=True,
    help="Also measure with continuous verification off and on, in this run (A/B), and "
         "report the verifier's lag behind the head.")


def _key_text(settings) -> str:
    from indelible.keys import load_or_create_signer

    return load_or_create_signer(settings.key_file, settings.key_name).verifier_key_text()


@bench.command("append")
@_tenant
@_json
@click.option("--entries", default=200_000, show_default=True, type=click.IntRange(min=1),
              help="Entries per throughput measurement (group commit, append_batch, baseline).")
@click.option("--producers", default=4, show_default=True, type=click.IntRange(min=1),
              help="Threads submitting to the group-commit appender.")
@click.option("--batch", type=click.IntRange(min=1),
              help="Entries per commit for append_batch and the baseline [default: the "
                   "service's batch_max].")
@click.option("--latency-samples", default=2_000, show_default=True, type=click.IntRange(min=1),
              help="Sequential single appends timed one by one.")
@_verifier_ab
def bench_append(tenant: str, as_json: bool, entries: int, producers: int, batch: int | None,
                 latency_samples: int, verifier_ab: bool) -> None:
    """Append throughput and single-append latency vs raw COPY / INSERT."""
    from indelible.bench.append import AppendOptions, run

    with _bench_database(tenant) as (settings, db):
        options = AppendOptions(entries=entries, producers=producers,
                                batch=batch or settings.batch_max, batch_wait=settings.batch_wait,
                                latency_samples=latency_samples,
                                verifier_key=_key_text(settings) if verifier_ab else None)
        measurements, extra = run(db, tenant, options)
    _output("append", tenant, measurements, as_json, extra)


@bench.command("verify")
@_tenant
@_json
@click.option("--size", default=1_000_000, show_default=True, type=click.IntRange(min=1),
              help="Grow the tenant's log to at least this many entries first.")
@click.option("--proofs", "proof_count", default=2_000, show_default=True,
              type=click.IntRange(min=1), help="Random inclusion proofs timed one by one.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Verifier processes (default: all cores).")
def bench_verify(tenant: str, as_json: bool, size: int, proof_count: int,
                 workers: int | None) -> None:
    """Full verification throughput and inclusion-proof latency vs raw COPY / SELECT."""
    from indelible.bench.verify import VerifyOptions, run
    from indelible.keys import load_or_create_signer
    from indelible.kept import KeptCheckpoints

    with _bench_database(tenant) as (settings, db):
        signer = load_or_create_signer(settings.key_file, settings.key_name)
        options = VerifyOptions(size=size, proofs=proof_count, workers=workers)
        measurements, extra = run(db, tenant, signer, KeptCheckpoints(settings.kept_dir),
                                  options)
    _output("verify", tenant, measurements, as_json, extra)


@bench.command("api")
@click.option("--tenant", default="bench-api", show_default=True,
              help="Tenant the benchmark works in (kept afterwards).")
@_json
@click.option("--clients", default=64, show_default=True, type=click.IntRange(min=1),
              help="Concurrent HTTP clients.")
@click.option("--discrepancies", default=2_000, show_default=True, type=click.IntRange(min=1),
              help="Discrepancies walked acknowledged → investigating → resolved.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Service processes (`indelible up --workers`).")
@_verifier_ab
def bench_api(tenant: str, as_json: bool, clients: int, discrepancies: int, workers: int,
              verifier_ab: bool) -> None:
    """Sustained HTTP lifecycle transitions/s and latency vs the bare ledger append rate."""
    from indelible.bench.api import ApiOptions, run

    with _bench_database(tenant) as (settings, db):
        measurements, extra = run(db, settings, tenant,
                                  ApiOptions(clients=clients, discrepancies=discrepancies,
                                             workers=workers, verifier_ab=verifier_ab))
    _output("api", tenant, measurements, as_json, extra)


@bench.command("console")
@click.option("--tenant", default="bench-console", show_default=True,
              help="Tenant the benchmark fills and reads (kept afterwards; reused next time).")
@_json
@click.option("--discrepancies", default=100_000, show_default=True,
              type=click.IntRange(min=1), help="Cases the tenant holds while pages are timed.")
@click.option("--entries", default=500, show_default=True, type=click.IntRange(min=1),
              help="Ledger entries of the case whose page is timed.")
@click.option("--samples", default=50, show_default=True, type=click.IntRange(min=1),
              help="Requests timed per page.")
def bench_console(tenant: str, as_json: bool, discrepancies: int, entries: int,
                  samples: int) -> None:
    """Console pages' time to first byte vs the JSON API call reading the same data."""
    from indelible.bench.console import ConsoleOptions, run

    with _bench_database(tenant) as (settings, db):
        measurements, extra = run(db, settings, tenant, ConsoleOptions(
            discrepancies=discrepancies, entries=entries, samples=samples))
    _output("console", tenant, measurements, as_json, extra)


@bench.command("ingest")
@click.option("--tenant", default="bench-ingest", show_default=True,
              help="Tenant the messages are for (kept afterwards).")
@_json
@click.option("--messages", "count", default=20_000, show_default=True, type=click.IntRange(min=1))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Consumer processes sharing the stream, each with its own appender "
                   "(1: in this process, as one `indelible up`).")
def bench_ingest(tenant: str, as_json: bool, count: int, workers: int) -> None:
    """End-to-end ingestion messages/s vs the raw JetStream consume rate."""
    from indelible.bench.ingest import IngestOptions, run
    from indelible.ingest.service import nats_access
    from indelible.runtime import EmbeddedNats

    with _bench_database(tenant) as (settings, db):
        access = nats_access(settings)
        broker = None if access else EmbeddedNats(settings.data_dir / "bench-nats").start()
        try:
            measurements, extra = run(db, settings, access or broker.access, tenant,
                                      IngestOptions(messages=count, workers=workers))
        finally:
            if broker is not None:
                broker.stop()
    _output("ingest", tenant, measurements, as_json, extra)


@bench.command("outbox")
@click.option("--tenant", default="bench-outbox", show_default=True,
              help="Tenant the benchmark appends to (kept afterwards).")
@_json
@click.option("--events", default=2_000, show_default=True, type=click.IntRange(min=1),
              help="Events delivered for the throughput measurement.")
@click.option("--latency-samples", default=300, show_default=True, type=click.IntRange(min=1),
              help="Single appends timed, per latency measurement.")
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(min=1),
              help="Requests in flight (the dispatcher's, and the direct baseline's).")
def bench_outbox(tenant: str, as_json: bool, events: int, latency_samples: int,
                 concurrency: int) -> None:
    """Outbox delivery events/s vs direct posting; the append latency it adds, and with the
    receiver hanging. Nothing is sent anywhere but a receiver it runs on 127.0.0.1."""
    from indelible.bench.outbox import OutboxOptions, run

    with _bench_database(tenant) as (settings, db):
        measurements, extra = run(db, tenant, OutboxOptions(
            events=events, latency_samples=latency_samples, concurrency=concurrency))
    _output("outbox", tenant, measurements, as_json, extra)


@bench.command("escalate")
@_json
@click.option("--open", "open_count", default=100_000, show_default=True,
              type=click.IntRange(min=10), help="Open discrepancies (one in ten critical).")
@click.option("--rules", "rule_count", default=10, show_default=True,
              type=click.IntRange(min=1, max=100), help="Escalation rules in force.")
def bench_escalate(as_json: bool, open_count: int, rule_count: int) -> None:
    """One escalation pass: nothing due (vs a scan), and 10% due (vs plain decided appends).
    Works in a fresh tenant `bench-esc-…` (kept afterwards)."""
    from indelible.bench.escalate import EscalateOptions, run

    with _bench_database("bench") as (settings, db):
        measurements, extra = run(db, settings.base_origin,
                                  EscalateOptions(open=open_count, rules=rule_count))
    _output("escalate", extra["escalation_tenant"], measurements, as_json, extra)

@bench.command("report")
@click.option("--tenant", default="bench-report", show_default=True,
              help="Prefix of the fresh tenants the benchmark seeds (kept afterwards).")
@_json
@click.option("--entries", default=10_000, show_default=True, type=click.IntRange(min=100))
@click.option("--discrepancies", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--large-entries", default=100_000, show_default=True, type=click.IntRange(min=0),
              help="Entries of the large report whose peak RSS is reported (0: skip it).")
@click.option("--large-discrepancies", default=1_000, show_default=True,
              type=click.IntRange(min=1))
def bench_report(tenant: str, as_json: bool, entries: int, discrepancies: int,
                 large_entries: int, large_discrepancies: int) -> None:
    """Report rendering time (PDF, HTML) and a large report's peak RSS vs reading the rows raw."""
    from indelible.bench.report import ReportOptions, run
    from indelible.keys import load_or_create_signer
    from indelible.kept import KeptCheckpoints

    with _bench_database(tenant) as (settings, db):
        signer = load_or_create_signer(settings.key_file, settings.key_name)
        options = ReportOptions(entries=entries, discrepancies=discrepancies,
                                large_entries=large_entries,
                                large_discrepancies=large_discrepancies)
        measurements, extra = run(db, settings.base_origin, tenant, signer,
                                  KeptCheckpoints(settings.kept_dir), options)
    _output("report", tenant, measurements, as_json, extra)
@bench.command("witness")
@_json
@click.option("--checkpoints", default=500, show_default=True, type=click.IntRange(min=1),
              help="Sequential checkpoints timed one by one (latency).")
@click.option("--requests", "request_count", default=4_000, show_default=True,
              type=click.IntRange(min=1), help="Requests for the throughput figure.")
@click.option("--clients", default=8, show_default=True, type=click.IntRange(min=1),
              help="Concurrent connections, one log each.")
def bench_witness(as_json: bool, checkpoints: int, request_count: int, clients: int) -> None:
    """Witness cosigning latency and requests/s vs raw Ed25519 verify+sign (no database)."""
    from indelible.bench.common import BenchError
    from indelible.bench.witness import WitnessOptions, run

    try:
        measurements, extra = run(WitnessOptions(checkpoints=checkpoints,
                                                 requests=request_count, clients=clients))
    except BenchError as e:
        click.echo(f"FAILED: {e}", err=True)
        sys.exit(EXIT_INVALID)
    _output("witness", "-", measurements, as_json, extra)


@bench.command("bundle")
@click.option("--tenant", default="bench-bundle", show_default=True,
              help="Tenant whose log the benchmark grows and exports (kept afterwards).")
@_json
@click.option("--range", "size", default=100_000, show_default=True, type=click.IntRange(min=1),
              help="Entries in the exported range (the log is grown to hold them).")
@click.option("--repeats", default=20, show_default=True, type=click.IntRange(min=1),
              help="Verifications of one discrepancy's bundle.")
def bench_bundle(tenant: str, as_json: bool, size: int, repeats: int) -> None:
    """Evidence bundle export and verify-bundle throughput vs reading the same rows raw."""
    import psycopg

    from indelible.bench.bundle import BundleOptions, run
    from indelible.keys import load_or_create_signer
    from indelible.kept import KeptCheckpoints
    from indelible.store.tenants import create_tenant

    with _bench_database(tenant) as (settings, db):
        with psycopg.connect(db.app_url, autocommit=True) as conn:
            create_tenant(conn, tenant, base_origin=settings.base_origin)  # discrepancies need it
        signer = load_or_create_signer(settings.key_file, settings.key_name)
        measurements, extra = run(db, tenant, signer, KeptCheckpoints(settings.kept_dir),
                                  BundleOptions(range=size, repeats=repeats))
    _output("bundle", tenant, measurements, as_json, extra)
