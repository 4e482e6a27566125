"""`indelible bench console`: time to first byte of the console's heaviest pages.

Ours: `indelible up` as its own process, a session signed in through the sign-in form; the
discrepancy list (first page, newest first; and a filtered page, oldest first), the
dashboard and the page of one case with `entries` ledger entries, each requested `samples` times one after another,
the clock stopping at the first byte of the body (the page is rendered whole before it is
sent, so this is the whole server-side cost). The tenant holds `discrepancies` cases,
opened through the same decisions ingestion appends.
Baseline, same run, same service: the JSON API call that reads the same data
(`GET /v1/discrepancies?limit=50`, `GET /v1/discrepancies/{id}/history?limit=500`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import httpx
import psycopg

from indelible import domain
from indelible.bench.api import _service
from indelible.bench.common import BenchError, Measurement, latency_ms
from indelible.bootstrap import Database, projections
from indelible.config import Settings
from indelible.entry import Actor
from indelible.store.api_keys import ApiKeys, issue_command
from indelible.store import discrepancies as store
from indelible.store.appender import append_batch
from indelible.store.tenants import create_tenant
from indelible.usecases import discrepancies
from indelible.usecases.principal import Principal

TARGET_MS = 200.0  # first byte, p99
SEED_BATCH = 2_000  # reports per appended batch while seeding
WARM_UP = 3  # untimed requests before each page is timed (pool connections, caches)


@dataclass(frozen=True)
class ConsoleOptions:
    discrepancies: int = 100_000
    entries: int = 500  # ledger entries of the one case whose page is timed
    samples: int = 50  # requests per page


def run(db: Database, settings: Settings, tenant: str,
        options: ConsoleOptions) -> tuple[list[Measurement], dict]:
    token, case_id, seeded = _setup(db, settings, tenant, options)
    with _service(db, settings) as url:
        with httpx.Client(base_url=url, timeout=60) as browser, \
                httpx.Client(base_url=url, timeout=60,
                             headers={"Authorization": f"Bearer {token}"}) as api:
            _sign_in(browser, token)
            pages = [
                ("console_list", "discrepancy list, first page (newest first)",
                 "/console/discrepancies", "/v1/discrepancies?limit=50",
                 "GET /v1/discrepancies?limit=50 (JSON)"),
                ("console_list_filtered", "discrepancy list, open ones oldest first",
                 "/console/discrepancies?status=open&sort=oldest",
                 "/v1/discrepancies?limit=50&status=open",
                 "GET /v1/discrepancies?status=open&limit=50 (JSON)"),
                ("console_dashboard", "dashboard (counts, ageing, integrity)",
                 "/console/dashboard", "/v1/discrepancy-counts",
                 "GET /v1/discrepancy-counts (JSON: counts by status and by severity)"),
                ("console_case", f"case page with {options.entries} entries",
                 f"/console/discrepancies/{case_id}",
                 f"/v1/discrepancies/{case_id}/history?limit=500",
                 "GET /v1/discrepancies/{id}/history?limit=500 (JSON)"),
            ]
            measurements = []
            for name, title, page, baseline, baseline_what in pages:
                base = latency_ms(_first_bytes(api, baseline, options.samples))
                ours = latency_ms(_first_bytes(browser, page, options.samples))
                measurements.append(Measurement(
                    name, f"First byte: {title}", "ms", base, ours, baseline_what,
                    f"GET {page.replace(case_id, '{id}')} (HTML, signed-in session)",
                    f"p99 <= {TARGET_MS:g} ms", ours["p99"] <= TARGET_MS,
                    {"discrepancies": seeded, "samples": options.samples}))
    return measurements, {"discrepancies": seeded, "case_entries": options.entries}


def _setup(db: Database, settings: Settings, tenant: str,
           options: ConsoleOptions) -> tuple[str, str, int]:
    """A key, the tenant filled up to `discrepancies` cases, and one case with `entries`
    entries (opened, then commented on)."""
    with psycopg.connect(db.app_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM tenants WHERE tenant_id = %s", (tenant,)).fetchone():
            create_tenant(conn, tenant, base_origin=settings.base_origin)
        token, entry = issue_command(role="analyst", name="bench console",
                                     by=Actor("bench", "admin", "operator"))
        append_batch(conn, tenant, [entry], model=ApiKeys())
        who = Principal(tenant, "engine:bench", "system", "system")
        model = projections()
        (have,) = conn.execute("SELECT count(*) FROM discrepancies WHERE tenant_id = %s",
                               (tenant,)).fetchone()
        run = f"{time.time_ns():x}"
        for start in range(have, options.discrepancies, SEED_BATCH):
            batch = [discrepancies.report_decision(who, _report(run, i))
                     for i in range(start, min(start + SEED_BATCH, options.discrepancies))]
            _all_appended(append_batch(conn, tenant, batch, model=model))
        case_id = _long_case(conn, tenant, model, run, options.entries)
        (seeded,) = conn.execute("SELECT count(*) FROM discrepancies WHERE tenant_id = %s",
                                 (tenant,)).fetchone()
    return token, case_id, seeded


def _report(run: str, i: int) -> domain.OpenDiscrepancy:
    return domain.OpenDiscrepancy(
        external_ref=f"bench-{run}-{i}", source=("bank-feed", "erp", "card-processor")[i % 3],
        kind="amount_mismatch", expected_amount="100.00", actual_amount=f"{100 + i % 9000}.25",
        currency=("EUR", "USD", "GBP")[i % 3], detected_at="2026-11-23T05:00:00Z",
        severity=None, metadata={}, transaction_refs=())


def _long_case(conn, tenant: str, model, run: str, entries: int) -> str:
    analyst = Principal(tenant, "key:bench", "analyst", "user")
    opened = _all_appended(append_batch(conn, tenant, [discrepancies.report_decision(
        analyst, _report(run, -1))], model=model))[0]
    case_id = opened.stream.removeprefix("disc/")
    comments = [store.decision(case_id, domain.Comment(text=f"note {n}"), analyst.domain_actor())
                for n in range(entries - 1)]
    for start in range(0, len(comments), SEED_BATCH):
        _all_appended(append_batch(conn, tenant, comments[start:start + SEED_BATCH], model=model))
    return case_id


def _all_appended(outcomes: list) -> list:
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise BenchError(f"seeding was refused: {outcome}")
    return outcomes


def _sign_in(client: httpx.Client, token: str) -> None:
    page = client.get("/console/sign-in")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if csrf is None:
        raise BenchError(f"the sign-in page has no form: {page.status_code}")
    signed = client.post("/console/sign-in", data={"api_key": token, "csrf_token": csrf[1],
                                                   "next": "/console/dashboard"})
    if signed.status_code != 303:
        raise BenchError(f"sign-in answered {signed.status_code}: {signed.text[:300]}")


def _first_bytes(client: httpx.Client, path: str, samples: int) -> list[float]:
    """Seconds from sending each request to the first byte of its body (after WARM_UP)."""
    times = []
    for n in range(samples + WARM_UP):
        started = time.perf_counter()
        with client.stream("GET", path) as response:
            if response.status_code != 200:
                raise BenchError(f"GET {path} answered {response.status_code}")
            chunks = response.iter_raw()
            next(chunks, b"")
            elapsed = time.perf_counter() - started
            for _ in chunks:  # the rest of the body, so the connection is reused
                pass
        if n >= WARM_UP:
            times.append(elapsed)
    return times
