"""`indelible bench bundle` at a tiny size: the real export and verify paths run end to end
and print one JSON object with every field (the figures mean nothing at this size)."""

from __future__ import annotations

import pytest

from .test_bench_cli import assert_measured, bench_tenant, env, invoke  # noqa: F401

pytestmark = pytest.mark.storage


def test_bench_bundle_reports_export_and_verify_against_raw_reads(env, bench_tenant):  # noqa: F811
    report = invoke(env, "bundle", "--tenant", bench_tenant, "--range", "600", "--repeats", "3")
    assert report["command"] == "bundle"
    assert_measured(report, {"bundle_export", "bundle_verify", "bundle_verify_one"})
    assert report["measurements"]["bundle_verify"]["details"]["entries"] == 600
    assert report["measurements"]["bundle_verify_one"]["met"] is True
