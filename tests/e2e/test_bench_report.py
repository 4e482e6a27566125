"""`indelible bench report` at a tiny size: the real paths run end to end and every field is
printed (the figures mean nothing at this size)."""

from __future__ import annotations

import secrets

import pytest

from .test_bench_cli import assert_measured, invoke

pytestmark = pytest.mark.storage


def test_bench_report_measures_pdf_html_and_a_large_report_against_the_raw_read(owner_url,
                                                                                 tmp_path):
    env = {"INDELIBLE_DATABASE_URL": owner_url, "INDELIBLE_DATA_DIR": str(tmp_path)}
    report = invoke(env, "report", "--tenant", f"bench-{secrets.token_hex(4)}", "--entries", "200",
                    "--discrepancies", "4", "--large-entries", "400", "--large-discrepancies", "8")
    assert_measured(report, {"report_pdf", "report_html", "report_large"})
    pdf = report["measurements"]["report_pdf"]
    assert pdf["details"]["entries"] == 200 and pdf["details"]["discrepancies"] == 4
    assert report["measurements"]["report_large"]["details"]["peak_rss_mib"] > 0
    assert report["large_peak_rss_mib"] > 0 and "load_average_1m" in report
