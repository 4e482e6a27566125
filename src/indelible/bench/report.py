"""`indelible bench report`: how long a compliance report takes to render, and how much
memory a very large one needs.

A fresh tenant is seeded through the real path (discrepancy decisions, `append_batch`):
`discrepancies` cases of `entries / discrepancies` entries each (opened, acknowledged,
investigated, commented, half of them resolved), and a checkpoint is signed.

1. PDF and HTML: the report document is read from the ledger once (entries folded, the
   covered range verified), then each renderer is timed on it (wall and CPU seconds).
   Baseline: reading the same entry rows raw (the report's own query) and parsing their
   JSON, in the same run: what any report over those entries must pay before laying out
   a line. Targets: PDF ≤ 5 s and HTML ≤ 1 s at 10,000 entries.
2. A large report (100,000 entries by default), generated end to end as the worker does
   (read, verify, render PDF, HTML and JSON, record `report.generated`) in a fresh process,
   whose peak RSS is reported. Baseline: the raw read of its rows.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import orjson
import psycopg

from indelible import domain
from indelible.bench.common import Measurement
from indelible.bootstrap import Database, projections
from indelible.entry import Actor
from indelible.proofs import NoteSigner, NoteVerifier
from indelible.store import discrepancies as cases
from indelible.store import report_data
from indelible.store.appender import Appended, append_batch
from indelible.store.checkpoints import latest_checkpoint
from indelible.store.logs import read_head
from indelible.store.signing import sign_checkpoint
from indelible.store.tenants import create_tenant

TARGET_PDF_S, TARGET_HTML_S = 5.0, 1.0
ANALYST = domain.Actor("key:bench-analyst", "analyst")


@dataclass(frozen=True)
class ReportOptions:
    entries: int = 10_000
    discrepancies: int = 100
    large_entries: int = 100_000  # 0: skip the large report
    large_discrepancies: int = 1_000


def run(db: Database, base_origin: str, tenant: str, signer: NoteSigner, kept,
        options: ReportOptions) -> tuple[list[Measurement], dict]:
    from indelible.usecases.reports import Signing
    key = signer.verifier_key_text()
    signing = Signing(NoteVerifier.from_key_text(key), key)
    main = _seeded(db, base_origin, f"{tenant}-{secrets.token_hex(3)}", options.discrepancies,
                   options.entries, signer, kept)
    measurements = _render(db.app_url, main, signing, options)
    extra = {"seeded_tenant": main, "load_average_1m": round(os.getloadavg()[0], 2),
             "pdf_cpu_seconds": measurements[0].details["cpu_seconds"],
             "html_cpu_seconds": measurements[1].details["cpu_seconds"]}
    if options.large_entries:
        large = _seeded(db, base_origin, f"{tenant}-large-{secrets.token_hex(3)}",
                        options.large_discrepancies, options.large_entries, signer, kept)
        measurements.append(_large(db.app_url, large, key))
        extra |= {"large_tenant": large,
                  "large_peak_rss_mib": measurements[-1].details["peak_rss_mib"]}
    return measurements, extra


def _seeded(db: Database, base_origin: str, tenant: str, count: int, entries: int,
            signer: NoteSigner, kept) -> str:
    """`count` discrepancies with `entries` entries in all, and a signed checkpoint."""
    per = max(4, entries // count)
    with psycopg.connect(db.app_url, autocommit=True) as conn:
        create_tenant(conn, tenant, base_origin=base_origin)
        ids = [cases.new_id() for _ in range(count)]
        commands = [cases.decision(d, domain.OpenDiscrepancy(
            external_ref=f"bench-{i}", source=("stripe", "paypal", "bank")[i % 3],
            kind="amount_mismatch", expected_amount=f"{1000 + i}.00", actual_amount="999.99",
            currency=("EUR", "USD", "GBP")[i % 3], detected_at="2026-11-23T05:00:00Z",
            severity=("low", "medium", "high", "critical")[i % 4]), ANALYST,
            cases.open_key("bench", f"bench-{i}")) for i, d in enumerate(ids)]
        for step in range(1, per):
            for i, d in enumerate(ids):
                commands.append(cases.decision(d, _step(step, per, i % 2 == 0), ANALYST))
        for i in range(0, len(commands), 2_000):
            for out in append_batch(conn, tenant, commands[i:i + 2_000], model=projections()):
                if not isinstance(out, Appended):
                    raise RuntimeError(f"seeding refused: {out}")
        sign_checkpoint(conn, tenant, signer, kept)
    return tenant


def _step(step: int, per: int, resolves: bool):
    if step == 1:
        return domain.Transition(to="acknowledged")
    if step == 2:
        return domain.Transition(to="investigating")
    if step == per - 1 and resolves:
        return domain.Transition(to="resolved", resolution_code="corrected_in_ledger",
                                 note="booked the processor fee after the bank statement")
    return domain.Comment(text=f"checked the statement line {step}; waiting for the bank")


def _period() -> dict:
    now = datetime.now(timezone.utc)
    return {"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(days=1)).isoformat()}


def _raw_read(app_url: str, tenant: str, request, size: int) -> tuple[float, int]:
    """The baseline: the report's own entry query, every row fetched and its JSON parsed."""
    with psycopg.connect(app_url, autocommit=True) as conn, conn.transaction():
        start = time.perf_counter()
        streams = report_data.streams_in_period(conn, tenant, size=size, start=request.period_from,
                                                end=request.period_to)
        rows = 0
        for _, _, entry, _ in report_data.stream_entries(conn, tenant, streams, size=size,
                                                         end=request.period_to):
            orjson.loads(entry)
            rows += 1
        return time.perf_counter() - start, rows


def _render(app_url: str, tenant: str, signing, options: ReportOptions) -> list[Measurement]:
    from indelible.reports.html import render_html
    from indelible.reports.pdf import render_pdf
    from indelible.reports.request import parse_request
    from indelible.usecases.reports import read_document

    request = parse_request(_period())
    with psycopg.connect(app_url, autocommit=True) as conn:
        checkpoint = latest_checkpoint(conn, tenant)
        origin = read_head(conn, tenant).origin
        _raw_read(app_url, tenant, request, checkpoint.size)  # warm-up: both read warm pages
        base_s, rows = _raw_read(app_url, tenant, request, checkpoint.size)
        start = time.perf_counter()
        document = read_document(conn, tenant, origin, request, checkpoint, signing,
                                 lambda *_: None)
        read_s = time.perf_counter() - start
    timed = {}
    for name, render in (("pdf", render_pdf), ("html", render_html)):
        wall, cpu = time.perf_counter(), time.process_time()
        content = render(document)
        timed[name] = (time.perf_counter() - wall, time.process_time() - cpu, len(content))
    details = {"entries": document["summary"]["entries"], "discrepancies":
               document["summary"]["discrepancies"], "raw_rows": rows,
               "read_and_verify_seconds": round(read_s, 3)}
    out = []
    for name, target in (("pdf", TARGET_PDF_S), ("html", TARGET_HTML_S)):
        wall, cpu, size = timed[name]
        out.append(Measurement(
            f"report_{name}", f"{name.upper()} rendering ({details['entries']:,} entries, "
            f"{details['discrepancies']} discrepancies)", "s", {"wall": base_s},
            {"wall": wall}, "the same entry rows read raw and parsed (the report's query)",
            f"render_{name} on the report document", f"≤ {target:g} s", wall <= target,
            details | {"cpu_seconds": round(cpu, 3), "bytes": size}))
    return out


def _large(app_url: str, tenant: str, key: str) -> Measurement:
    from indelible.reports.request import parse_request

    request = parse_request(_period())
    with psycopg.connect(app_url, autocommit=True) as conn:
        size = latest_checkpoint(conn, tenant).size
    base_s, rows = _raw_read(app_url, tenant, request, size)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_generate_in_child, args=(app_url, tenant, key, results))
    child.start()
    found = results.get(timeout=3_600)
    child.join()
    if "error" in found:
        raise RuntimeError(f"the large report failed: {found['error']}")
    return Measurement(
        "report_large", f"a whole report, generated end to end ({found['entries']:,} entries, "
        f"{found['discrepancies']:,} discrepancies)", "s", {"wall": base_s},
        {"wall": found["seconds"]}, "the same entry rows read raw and parsed",
        "generate: read, verify, render PDF + HTML + JSON, record report.generated",
        "completes; peak RSS reported", True,
        {"peak_rss_mib": found["peak_rss_mib"], "raw_rows": rows,
         "bytes": found["bytes"], "report_generated_seq": found["seq"]})


def _generate_in_child(app_url: str, tenant: str, key: str, results) -> None:
    """In a fresh process, so its peak RSS is the report's and not the seeding's."""
    from indelible.entry import time_ordered_ids
    from indelible.reports.request import parse_request
    from indelible.store import reports as jobs
    from indelible.usecases import reports

    try:
        report_id = str(time_ordered_ids(datetime.now(timezone.utc), 1)[0])
        actor = Actor("bench:report", "auditor", "system")
        parameters = {"request": parse_request(_period()).to_json(), "actor": actor.to_json()}
        job = jobs.Job(tenant, report_id, parameters, actor.id, datetime.now(timezone.utc),
                       "running")
        with psycopg.connect(app_url, autocommit=True) as conn:
            def append(t, command):
                (out,) = append_batch(conn, t, [command], model=projections())
                if isinstance(out, BaseException):
                    raise out
                return out
            # The seeded log's checkpoint: the report.requested entry comes after it, and no
            # checkpointer runs here to cover that one.
            size = latest_checkpoint(conn, tenant).size
            reports.record_request(append, tenant, report_id, parse_request(_period()), actor,
                                   tree_size=size)
            start = time.perf_counter()
            made = reports.generate(app_url, job, append=append, signing=reports.Signing(
                NoteVerifier.from_key_text(key), key))
            seconds = time.perf_counter() - start
        document = orjson.loads(dict((n, c) for n, _, c in made.files)["report.json"])
        results.put({"seconds": seconds, "seq": made.seq,
                     "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                     "entries": document["summary"]["entries"],
                     "discrepancies": document["summary"]["discrepancies"],
                     "bytes": {n: len(c) for n, _, c in made.files}})
    except Exception as e:  # noqa: BLE001 - reported to the parent, which fails the bench
        results.put({"error": f"{type(e).__name__}: {e}"})
