"""The web console in a real browser (Debian's chromium through Playwright), against
`indelible up` on the suite's PostgreSQL with its own nats-server: one service and one
browser for the module, a fresh cookie jar per person.

Set INDELIBLE_CONSOLE_SCREENSHOTS=<folder> to save the README's screenshots as the walk runs.
"""

from __future__ import annotations

import asyncio
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
import os
import re
import secrets
from pathlib import Path

import httpx
import psycopg
import pytest

from indelible.bootstrap import projections
from indelible.store.tenants import create_tenant
from indelible.usecases import keys
from indelible.usecases.principal import DirectLedger, Principal
from tests.e2e.cli_helpers import indelible
from tests.e2e.test_http import running_service

STATEMENT = b"%PDF-1.4 processor statement: fee line 150.00 EUR"


@pytest.fixture(scope="module")
def service(tmp_path_factory, owner_url, app_url):
    _APP_URL[:] = [app_url]
    folder = tmp_path_factory.mktemp("console")
    with running_service(folder, owner_url, app_url, "con") as s:
        other = f"{s.tenant}-x"
        with psycopg.connect(app_url, autocommit=True) as conn:
            create_tenant(conn, other, base_origin="test.indelible.local/log")
        sent = indelible(s.env, "simulate", "--tenant", s.tenant, "--count", "6",
                         "--matched-share", "0", "--wait", "--timeout", "60")
        assert sent.returncode == 0, sent.stderr
        log = (folder / "service.log").read_text()
        assert f"web console at {s.base}/console/" in log  # `indelible up` tells where
        yield s


def cli_token(service, role: str) -> str:
    """A key as a new user gets it: from `indelible api-key create`."""
    made = indelible(service.env, "api-key", "create", "--tenant", service.tenant,
                     "--role", role, "--name", f"{role.replace('_', ' ').title()} Tester")
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


_TOKENS: dict[tuple[str, str], str] = {}
_APP_URL: list[str] = []  # the service role's conninfo, set by the service fixture


def token(service, role: str, tenant: str | None = None) -> str:
    """A key of `role`, issued once per module through the same use case the CLI calls (in
    this process: a CLI subprocess per key would cost seconds each)."""
    tenant = tenant or service.tenant
    if (tenant, role) not in _TOKENS:
        with psycopg.connect(_APP_URL[0], autocommit=True) as conn:
            ledger = DirectLedger(conn, projections())
            operator = Principal(tenant, "cli:browser-tests", "admin", "operator")
            issue = keys.issue_key(ledger, operator, role=role,
                                   name=f"{role.replace('_', ' ').title()} Tester")
            # Playwright's sync API holds an event loop in this thread: run it beside it.
            with ThreadPoolExecutor(1) as thread:
                issued = thread.submit(asyncio.run, issue).result()
        _TOKENS[tenant, role] = issued.token
    return _TOKENS[tenant, role]


def api(service, key: str) -> httpx.Client:
    return service.client(key)


def sign_in(page, service, key: str, then: str = "/console/dashboard"):
    page.goto(f"{service.base}{then}")
    assert "/console/sign-in" in page.url  # not signed in yet: sent to sign in first
    page.get_by_label("Your API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(then)))
    return page


def shoot(page, name: str) -> None:
    folder = os.environ.get("INDELIBLE_CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def an_ingested_case(service, key: str, status: str = "open") -> dict:
    items = api(service, key).get("/v1/discrepancies", params={"status": status}).json()["items"]
    ingested = [d for d in items if d["source"] != "console-test"]
    assert ingested, "ingestion opened no discrepancy"
    return ingested[0]


def move(page, to: str, **fields) -> None:
    page.get_by_role("radio", name=to).check()
    for label, value in fields.items():
        control = page.get_by_label(label, exact=True)
        if control.evaluate("e => e.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)
    page.get_by_role("button", name="Record the move").click()
    page.wait_for_selector("text=Moved.")


def test_an_analyst_works_an_ingested_case_from_open_to_resolved(service, pages):
    analyst = cli_token(service, "analyst")
    case = an_ingested_case(service, analyst)
    page = sign_in(pages(), service, analyst)
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    shoot(page, "dashboard")

    page.get_by_role("link", name="Discrepancies", exact=True).click()
    page.get_by_label("External reference contains").fill(case["external_ref"])
    page.get_by_role("button", name="Show").click()
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 1
    shoot(page, "list")
    rows.get_by_role("link", name=case["external_ref"]).click()
    assert page.get_by_role("heading", name=re.compile(case["external_ref"])).is_visible()
    assert case["currency"] in page.locator("dl.facts").inner_text()

    move(page, "acknowledged")
    move(page, "investigating")
    page.get_by_label("Comment").fill("Processor fee not booked <script>window.pwned=1</script>")
    page.get_by_role("button", name="Add comment").click()
    page.wait_for_selector("text=Comment recorded.")
    assert page.evaluate("window.pwned") is None  # shown as text, never run
    page.get_by_label("Attach a file").set_input_files(
        files=[{"name": "statement.pdf", "mimeType": "application/pdf", "buffer": STATEMENT}])
    page.get_by_role("button", name="Attach", exact=True).click()
    page.wait_for_selector("text=Evidence attached.")
    with page.expect_download() as download:
        page.get_by_role("link", name="statement.pdf").click()
    assert Path(download.value.path()).read_bytes() == STATEMENT
    shoot(page, "case")

    move(page, "resolved", **{"Resolution code (to resolve)": "corrected_in_ledger",
                              "Resolution note (to resolve)": "Fee booked on 30 Nov"})
    frozen = page.locator("section.frozen")
    assert "Frozen at resolution" in frozen.inner_text()
    assert "Fee booked on 30 Nov" in frozen.inner_text()
    assert page.get_by_role("button", name="Record the move").count() == 0  # terminal
    # The evidence bundle, once a checkpoint covers the resolution (checkpoints every 0.2 s).
    time.sleep(1)
    with page.expect_download() as bundle:
        page.get_by_role("link", name="Download the evidence bundle (zip)").click()
    with zipfile.ZipFile(bundle.value.path()) as archive:
        assert any(n.endswith("statement.pdf") or STATEMENT in archive.read(n)
                   for n in archive.namelist())
    timeline = page.locator("table.timeline tbody tr")
    assert timeline.count() == 6  # opened, acknowledged, investigating, comment, evidence, resolved
    assert re.search(r"[A-Za-z0-9+/]{43}=", timeline.last.inner_text())  # the leaf hash
    time_el = page.locator("time[data-localised]").first
    assert "UTC" in time_el.get_attribute("title")  # local time shown, UTC on hover
    shoot(page, "resolved")

    history = api(service, analyst).get(f"/v1/discrepancies/{case['id']}/history").json()
    assert [e["status_after"] for e in history["entries"]][-1] == "resolved"
    assert history["entries"][1]["actor"].startswith("key:")  # recorded as the key, as over the API


def test_an_analyst_sees_no_escalate_button_and_a_forged_escalation_is_refused(service, pages):
    analyst = token(service, "analyst")
    case = an_ingested_case(service, analyst)
    page = sign_in(pages(), service, analyst, then=f"/console/discrepancies/{case['id']}")
    assert page.get_by_role("radio", name="acknowledged").count() == 1
    assert page.get_by_role("radio", name="escalated").count() == 0
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    forged = page.request.post(f"{service.base}/console/discrepancies/{case['id']}/transitions",
                               form={"csrf_token": csrf, "to": "escalated",
                                     "reason": "forged by hand"})
    assert forged.status == 409, forged.text()
    assert re.search(r"analyst.*acknowledged, investigating", forged.text()), forged.text()
    assert api(service, analyst).get(f"/v1/discrepancies/{case['id']}").json()["status"] == "open"


def a_resolved_case(service, key: str) -> dict:
    """An ingested case walked to resolved over the API, with the statement attached (so this
    test does not depend on the browser walk having run first)."""
    client, case = api(service, key), an_ingested_case(service, key)
    path = f"/v1/discrepancies/{case['id']}"
    for body in ({"to": "acknowledged"}, {"to": "investigating"}):
        assert client.post(f"{path}/transitions", json=body).status_code == 200
    assert client.post(f"{path}/evidence", params={"name": "statement.pdf"}, content=STATEMENT,
                       headers={"Content-Type": "application/pdf"}).status_code == 201
    done = client.post(f"{path}/transitions", json={
        "to": "resolved", "resolution_code": "corrected_in_ledger", "note": "Fee booked"})
    assert done.status_code == 200, done.text
    return done.json()


def test_an_auditor_reads_and_downloads_but_changes_nothing(service, pages):
    analyst, auditor = token(service, "analyst"), token(service, "auditor")
    resolved = a_resolved_case(service, analyst)
    page = sign_in(pages(), service, auditor, then=f"/console/discrepancies/{resolved['id']}")
    for control in ("Record the move", "Add comment", "Attach", "Assign", "Change severity"):
        assert page.get_by_role("button", name=control, exact=True).count() == 0, control
    with page.expect_download() as download:
        page.get_by_role("link", name="statement.pdf").click()
    assert Path(download.value.path()).read_bytes() == STATEMENT
    with page.expect_download() as snapshot:
        page.get_by_role("link", name="Download the snapshot (JSON)").click()
    assert b'"digest_sha256"' in Path(snapshot.value.path()).read_bytes()

    page.goto(f"{service.base}/console/auditor")
    assert "+" in page.get_by_label("Verifier key text").inner_text()
    assert page.get_by_role("heading", name="Witness cosignatures").is_visible()
    page.get_by_label("Entry (seq)").fill("3")
    page.get_by_role("button", name="Show proof").click()
    assert page.get_by_text("Inclusion proof").is_visible()
    with page.expect_download() as proof:
        page.get_by_role("link", name="Download as a tlog-proof file").click()
    assert Path(proof.value.path()).read_text().startswith("c2sp.org/tlog-proof@v1")
    shoot(page, "auditor")

    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    forged = page.request.post(f"{service.base}/console/discrepancies/{resolved['id']}/comments",
                               form={"csrf_token": csrf, "text": "auditor was here"})
    assert forged.status == 403 and "auditor may not comment" in forged.text()
    seqs = api(service, auditor).get(f"/v1/discrepancies/{resolved['id']}/history").json()
    assert all(e["role"] != "auditor" for e in seqs["entries"])


def test_another_tenants_case_is_not_found(service, pages):
    case = an_ingested_case(service, token(service, "analyst"))
    stranger = token(service, "analyst", tenant=f"{service.tenant}-x")
    page = sign_in(pages(), service, stranger)
    response = page.goto(f"{service.base}/console/discrepancies/{case['id']}")
    assert response.status == 404
    assert f"no discrepancy {case['id']} in this tenant" in page.content()
    assert page.goto(f"{service.base}/console/evidence/{'0' * 64}").status == 404


def test_forms_without_the_sessions_csrf_token_are_refused(service, pages):
    analyst = token(service, "analyst")
    case = an_ingested_case(service, analyst)
    page = sign_in(pages(), service, analyst)
    path = f"{service.base}/console/discrepancies/{case['id']}/transitions"
    missing = page.request.post(path, form={"to": "acknowledged"})
    wrong = page.request.post(path, form={"to": "acknowledged", "csrf_token": "x" * 43})
    assert (missing.status, wrong.status) == (403, 403)
    assert "CSRF token" in missing.text()
    cross_site = page.request.post(path, form={"to": "acknowledged"},
                                   headers={"Sec-Fetch-Site": "cross-site"})
    assert cross_site.status == 403
    sign_in_without = page.request.post(f"{service.base}/console/sign-in",
                                        form={"api_key": analyst})
    assert sign_in_without.status == 403
    assert api(service, analyst).get(f"/v1/discrepancies/{case['id']}").json()["status"] == "open"


def test_the_content_security_policy_is_strict_and_blocks_inline_script(service, pages):
    page = pages()
    page.goto(f"{service.base}/console")  # the address `indelible up` prints, less its slash
    assert "/console/sign-in" in page.url
    response = page.goto(f"{service.base}/console/sign-in")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert response.headers["x-frame-options"] == "DENY"

    # The server's CSP, not the page's good manners, must stop an injected inline script:
    # the page is fetched for real and an inline script added before the browser sees it.
    def inject(route):
        real = route.fetch()
        body = real.text().replace("</body>", "<script>window.injected = 1</script></body>")
        route.fulfill(response=real, body=body)
    blocked = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text
            else None)
    page.route("**/console/sign-in", inject)
    page.goto(f"{service.base}/console/sign-in")
    assert page.evaluate("window.injected") is None
    assert blocked, "the browser did not report the inline script as blocked"


def test_sign_out_revokes_the_session_and_the_cookie_is_locked_down(service, pages):
    analyst = token(service, "analyst")
    page = sign_in(pages(), service, analyst)
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "indelible_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile("/console/sign-in"))

    replay = pages()  # someone who copied the cookie before sign-out
    replay.context.add_cookies([cookie])
    replay.goto(f"{service.base}/console/dashboard")
    assert "/console/sign-in" in replay.url


def test_a_manager_changes_the_severity_policy_and_an_analyst_may_only_read_it(service, pages):
    manager = token(service, "compliance_manager")
    page = sign_in(pages(), service, manager, then="/console/severity-policy")
    page.get_by_label("New currency, row 1").fill("EUR")
    page.get_by_label("medium threshold, row 1").fill("50.00")
    page.get_by_label("high threshold, row 1").fill("5000.00")
    page.get_by_label("critical threshold, row 1").fill("500000.00")
    page.get_by_label("Reason for the change (kept in the ledger)").fill("Tighter for EUR")
    page.get_by_role("button", name="Put this policy in force").click()
    page.wait_for_selector("text=Policy changed.")
    assert "Tighter for EUR" in page.locator("#versions + table").inner_text()
    shoot(page, "policy")

    analyst = sign_in(pages(), service, token(service, "analyst"), then="/console/severity-policy")
    assert analyst.get_by_role("button", name="Put this policy in force").count() == 0
    csrf = analyst.locator("input[name=csrf_token]").first.get_attribute("value")
    forged = analyst.request.post(f"{service.base}/console/severity-policy", form={
        "csrf_token": csrf, "rows": "1", "currency_0": "EUR", "medium_0": "1.00",
        "high_0": "2.00", "critical_0": "3.00", "reason": "x", "expected_version": "1"})
    assert forged.status == 403 and "analyst may not set the severity policy" in forged.text()


def test_a_manager_previews_and_changes_the_escalation_rules_an_analyst_only_reads(service,
                                                                                   pages):
    manager = token(service, "compliance_manager")
    page = sign_in(pages(), service, manager, then="/console/escalation-rules")
    rules = page.get_by_label("Rules (JSON list)")
    assert '"high-24h-escalate"' in rules.input_value()  # the built-in set, editable
    edited = rules.input_value().replace('"P1D"', '"PT12H"', 1)
    rules.fill(edited)
    page.get_by_role("button", name="Preview what would fire").click()
    assert page.get_by_role("heading", name="Preview (nothing was written)").is_visible()
    assert '"PT12H"' in page.get_by_label("Rules (JSON list)").input_value()  # kept
    page.get_by_label("Reason for the change (kept in the ledger)").fill("Escalate sooner")
    page.get_by_role("button", name="Put these rules in force").click()
    page.wait_for_selector("text=Rules put in force.")
    assert "Escalate sooner" in page.locator("#history + table").inner_text()
    shoot(page, "rules")

    analyst = sign_in(pages(), service, token(service, "analyst"), then="/console/escalation-rules")
    assert analyst.get_by_role("button", name="Put these rules in force").count() == 0
    csrf = analyst.locator("input[name=csrf_token]").first.get_attribute("value")
    forged = analyst.request.post(f"{service.base}/console/escalation-rules", form={
        "csrf_token": csrf, "rules": edited, "reason": "x", "expected_version": "1",
        "action": "set"})
    assert forged.status == 403 and "analyst may not change the escalation rules" in forged.text()


def test_a_manager_asks_for_a_report_watches_it_and_downloads_it(service, pages):
    from datetime import date, timedelta

    manager = token(service, "compliance_manager")
    page = sign_in(pages(), service, manager, then="/console/reports")
    today = date.today()
    page.get_by_label("From (inclusive)").fill((today - timedelta(days=7)).isoformat())
    page.get_by_label("To (exclusive)").fill((today + timedelta(days=1)).isoformat())
    page.get_by_label("HTML").uncheck()
    page.get_by_role("button", name="Ask for the report").click()
    page.wait_for_url(re.compile(r"/console/reports/[0-9a-f-]{36}$"))
    # The page refreshes itself until the worker has rendered and recorded the report.
    page.get_by_role("heading", name="Status: done").wait_for(timeout=60_000)
    with page.expect_download() as pdf:
        page.get_by_role("link", name=re.compile(r"\.pdf$")).click()
    assert Path(pdf.value.path()).read_bytes().startswith(b"%PDF")
    assert page.get_by_role("link", name=re.compile(r"\.html$")).count() == 0
    shoot(page, "report")

    analyst = sign_in(pages(), service, token(service, "analyst"))
    assert analyst.get_by_role("link", name="Reports").count() == 0
    assert analyst.goto(f"{service.base}/console/reports").status == 403


def test_no_serious_accessibility_violations_on_any_page(service, pages):
    from axe_playwright_python.sync_playwright import Axe

    manager = token(service, "compliance_manager")
    case = an_ingested_case(service, manager)
    page = pages()
    paths = ["/console/sign-in"]
    axe, found = Axe(), {}
    page.goto(f"{service.base}{paths[0]}")
    sign_in(page, service, manager)
    paths += ["/console/dashboard", "/console/discrepancies", f"/console/discrepancies/{case['id']}",
              "/console/severity-policy", "/console/escalation-rules", "/console/reports",
              "/console/auditor?seq=1"]
    for path in paths:
        if path != "/console/sign-in":
            page.goto(f"{service.base}{path}")
        else:
            continue
        results = axe.run(page)
        serious = [v for v in results.response["violations"]
                   if v["impact"] in ("serious", "critical")]
        if serious:
            found[path] = [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3])
                           for v in serious]
    anonymous = pages()
    anonymous.goto(f"{service.base}/console/sign-in")
    serious = [v["id"] for v in Axe().run(anonymous).response["violations"]
               if v["impact"] in ("serious", "critical")]
    if serious:
        found["/console/sign-in"] = serious
    assert not found, found
