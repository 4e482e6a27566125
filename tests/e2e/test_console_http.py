"""The web console attacked over plain HTTP (httpx, no browser) against `indelible up` on the
suite's PostgreSQL: what a hostile field, a forged form or a database insider can try."""

from __future__ import annotations

import hashlib
import re

import httpx
import psycopg
import pytest

from indelible.store.tenants import create_tenant
from tests.e2e.cli_helpers import indelible
from tests.e2e.test_discrepancy_walk import OPEN
from tests.e2e.test_http import running_service

XSS = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'&'
RAW = ("<script>alert(1)</script>", "<img src=x")  # either, unescaped, would be an injection


@pytest.fixture(scope="module")
def service(tmp_path_factory, owner_url, app_url):
    with running_service(tmp_path_factory.mktemp("console-http"), owner_url, app_url,
                         "conh") as s:
        yield s


def token(service, role: str, tenant: str | None = None) -> str:
    made = indelible(service.env, "api-key", "create", "--tenant", tenant or service.tenant,
                     "--role", role, "--name", XSS)  # the key's name is shown on every page
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def csrf_of(page: httpx.Response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def signed_in(service, key: str) -> httpx.Client:
    browser = httpx.Client(base_url=service.base)
    service.clients.append(browser)
    csrf = csrf_of(browser.get("/console/sign-in"))
    done = browser.post("/console/sign-in", data={"api_key": key, "csrf_token": csrf,
                                                  "next": "/console/dashboard"})
    assert done.status_code == 303, done.text
    return browser


@pytest.fixture(scope="module")
def analyst(service):
    return token(service, "analyst")


@pytest.fixture(scope="module")
def case(service, analyst):
    opened = service.client(analyst).post("/v1/discrepancies", json={
        **OPEN, "external_ref": XSS, "metadata": {XSS: XSS}})
    assert opened.status_code == 201, opened.text
    return opened.json()["id"]


def test_every_field_a_user_or_a_message_controls_is_escaped(service, analyst, case):
    browser = signed_in(service, analyst)
    csrf = csrf_of(browser.get(f"/console/discrepancies/{case}"))
    sent = browser.post(f"/console/discrepancies/{case}/comments",
                        data={"text": XSS, "csrf_token": csrf})
    assert sent.status_code == 303, sent.text
    for path in (f"/console/discrepancies/{case}", "/console/discrepancies",
                 "/console/dashboard", "/console/auditor"):
        page = browser.get(path)
        assert page.status_code == 200 and "&lt;script&gt;alert(1)" in page.text, path
        assert not any(raw in page.text for raw in RAW), path
    for path, params in ((f"/console/discrepancies/{case}", {"done": XSS}),
                         ("/console/discrepancies", {"q": XSS}),
                         ("/console/sign-in", {"reason": XSS, "next": XSS})):
        page = browser.get(path, params=params)
        assert page.status_code == 200 and not any(raw in page.text for raw in RAW), path


def test_an_uploaded_html_file_is_downloaded_never_rendered(service, analyst, case):
    browser = signed_in(service, analyst)
    csrf = csrf_of(browser.get(f"/console/discrepancies/{case}"))
    script = b"<html><script>alert(document.cookie)</script></html>"
    sent = browser.post(f"/console/discrepancies/{case}/evidence", data={"csrf_token": csrf},
                        files={"file": ("statement.html", script, "text/html")})
    assert sent.status_code == 303, sent.text
    page = browser.get(f"/console/discrepancies/{case}").text
    (link,) = re.findall(r'href="(/console/evidence/[0-9a-f]{64}\?name=[^"]+)"', page)
    got = browser.get(link.replace("&amp;", "&"))
    assert got.status_code == 200 and got.content == script
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"].startswith("attachment;")
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in got.headers["content-security-policy"]


def test_errors_and_static_files_carry_the_same_defences(service, analyst):
    browser = signed_in(service, analyst)
    for path, status in (("/console/no-such-page", 404), ("/console/static/console.css", 200),
                         ("/console/static/../app.py", 404),
                         (f"/console/discrepancies/{'0' * 8}-0000-0000-0000-{'0' * 12}", 404),
                         ("/console/discrepancies?status=nope", 422)):
        got = browser.get(path)
        assert got.status_code == status, path
        assert "frame-ancestors 'none'" in got.headers["content-security-policy"], path
        assert got.headers["x-frame-options"] == "DENY", path


def test_an_auditor_forging_forms_changes_nothing(service, analyst, case):
    auditor = signed_in(service, token(service, "auditor"))
    csrf = csrf_of(auditor.get(f"/console/discrepancies/{case}"))
    for path, data in (("transitions", {"to": "acknowledged"}), ("comments", {"text": "hi"}),
                       ("assignment", {"assignee": "me"}),
                       ("severity", {"severity": "low", "reason": "forged"})):
        got = auditor.post(f"/console/discrepancies/{case}/{path}",
                           data={**data, "csrf_token": csrf})
        assert got.status_code in (403, 409), (path, got.status_code)
    uploaded = auditor.post(f"/console/discrepancies/{case}/evidence", data={"csrf_token": csrf},
                            files={"file": ("x.txt", b"forged", "text/plain")})
    assert uploaded.status_code == 403
    now = service.client(analyst).get(f"/v1/discrepancies/{case}").json()
    assert now["status"] == "open" and now["assignee"] is None and now["severity"] == "medium"


def test_another_tenants_ids_are_not_found(service, analyst, case, app_url):
    other = f"{service.tenant}-y"
    with psycopg.connect(app_url, autocommit=True) as conn:
        create_tenant(conn, other, base_origin="test.indelible.local/log")
    stranger = signed_in(service, token(service, "admin", tenant=other))
    csrf = csrf_of(stranger.get("/console/discrepancies"))
    assert stranger.get(f"/console/discrepancies/{case}").status_code == 404
    assert stranger.get(f"/console/discrepancies/{case}/bundle").status_code == 404
    assert stranger.post(f"/console/discrepancies/{case}/comments",
                         data={"text": "x", "csrf_token": csrf}).status_code == 404
    mine = signed_in(service, analyst).get(f"/console/discrepancies/{case}").text
    for link in re.findall(r'href="(/console/evidence/[0-9a-f]{64})', mine):
        assert stranger.get(link).status_code == 404


def test_a_database_insider_cannot_mint_a_console_session(service, analyst, owner_url):
    """The session table holds the key's token hash, which the database also holds: a row
    written by hand, for a cookie the writer chose, must not sign anyone in as that key."""
    admin = token(service, "admin")
    chosen = "insider-chosen-cookie-value"
    with psycopg.connect(owner_url, autocommit=True) as owner:
        owner.execute(
            "INSERT INTO console_sessions (session_hash, tenant_id, method, subject, csrf_token,"
            " expires_at) VALUES (%s, %s, 'api_key', %s, 'forged', now() + interval '1 hour')",
            (hashlib.sha256(chosen.encode()).digest(), service.tenant,
             hashlib.sha256(admin.encode()).hexdigest()))
    for cookie in (chosen, chosen + "." + "0" * 64):
        forged = httpx.Client(base_url=service.base, cookies={"indelible_console": cookie})
        service.clients.append(forged)
        got = forged.get("/console/dashboard")
        assert got.status_code == 303 and "/console/sign-in" in got.headers["location"], cookie


def test_the_sign_in_page_shows_only_its_own_notices(service):
    """A link to the genuine sign-in page must not carry an attacker's words onto it."""
    visitor = httpx.Client(base_url=service.base)
    service.clients.append(visitor)
    lure = "Security check: email your API key to help@evil.example"
    assert lure not in visitor.get("/console/sign-in", params={"reason": lure}).text
    visitor.cookies.set("indelible_console", "stale.cookie")
    ended = visitor.get("/console/dashboard", follow_redirects=True)
    assert "/console/sign-in" in str(ended.url) and "Your session ended" in ended.text
