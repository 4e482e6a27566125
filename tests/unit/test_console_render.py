"""The console's pure helpers: amounts at the currency's scale, times for the viewer's zone,
timeline rows escaped, and post-sign-in destinations kept inside the console."""

from __future__ import annotations

import pytest

from indelible.console import timeline
from indelible.console.render import amount, when
from indelible.console.security import safe_next
from indelible.store.discrepancies import HistoryItem


@pytest.mark.parametrize(("value", "currency", "shown"), [
    ("1234.5", "EUR", "1,234.50 EUR"), ("-5952", "JPY", "-5,952 JPY"),
    ("1.25", "KWD", "1.250 KWD"), ("0", "USD", "0.00 USD")])
def test_amounts_are_shown_at_the_currencys_scale_with_the_currency(value, currency, shown):
    assert amount(value, currency) == shown


def test_an_amount_in_an_unknown_currency_is_shown_as_recorded():
    assert amount("12.3", "XXX") == "12.3 XXX"


def test_times_are_utc_in_the_text_and_the_title_for_the_script_to_localise():
    html = str(when("2026-11-23T06:00:00+01:00"))
    assert html == ('<time datetime="2026-11-23T05:00:00Z" title="2026-11-23 05:00:00 UTC">'
                    "2026-11-23 05:00:00 UTC</time>")
    assert str(when(None)) == "—"


@pytest.mark.parametrize(("target", "kept"), [
    ("/console/discrepancies?status=open", "/console/discrepancies?status=open"),
    ("https://evil.example/", "/console/"), ("//evil.example/console/", "/console/"),
    ("/console//evil.example", "/console/"), ("/console/\\evil", "/console/"),
    ("/v1/discrepancies", "/console/"), (None, "/console/")])
def test_only_a_console_path_is_a_destination_after_sign_in(target, kept):
    assert safe_next(target) == kept


def test_timeline_rows_escape_what_people_wrote():
    item = HistoryItem(7, "2026-11-23T05:00:00Z", "discrepancy.commented", "key:k1", "analyst",
                       "open", "open", b"\x00" * 32, {"text": "<script>alert(1)</script>"})
    html = str(timeline.rows([item], {"key:k1": "Ana <admin>"}))
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Ana &lt;admin&gt;" in html and 'title="key:k1"' in html
    assert 'href="/console/auditor?seq=7"' in html
    assert "A" * 43 + "=" in html  # the leaf hash, base64


def test_timeline_rows_show_an_entrys_short_facts_as_markup():
    item = HistoryItem(8, "2026-11-23T05:00:00Z", "discrepancy.evidence_attached", "key:k1",
                       "analyst", "open", "open", b"\x00" * 32,
                       {"name": "a<b>.pdf", "size": 49, "metadata": {"nested": 1}})
    html = str(timeline.rows([item], {}))
    assert 'evidence attached<br><span class="hint">name: a&lt;b&gt;.pdf</span>' in html
    assert '<span class="hint">size: 49</span>' in html and "nested" not in html


@pytest.mark.parametrize(("scheme", "secure"), [("https", True), ("http", False)])
def test_the_session_cookie_is_secure_over_tls_and_always_httponly_and_strict(scheme, secure):
    from datetime import timedelta

    from fastapi import Response
    from starlette.requests import Request

    from indelible.console import sessions

    request = Request({"type": "http", "scheme": scheme, "method": "GET", "path": "/console/",
                       "headers": [(b"host", b"example.test")], "query_string": b"",
                       "server": ("example.test", 443)})
    response = Response()
    sessions.set_cookie(response, request, "value", sessions.Timeouts(absolute=timedelta(hours=1)))
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Max-Age=3600" in cookie
    assert ("Secure" in cookie) is secure
