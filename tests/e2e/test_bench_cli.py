"""`indelible bench append|verify` at tiny sizes, against the suite's PostgreSQL.

The figures are meaningless at this size; what is checked is that both commands run the
real paths end to end, print one JSON object with every field, and leave a log that
`indelible verify` accepts.
"""

from __future__ import annotations

import json
import secrets

import psycopg
import pytest
from click.testing import CliRunner

from indelible.cli import main

pytestmark = pytest.mark.storage

FIELDS = {"title", "unit", "baseline", "ours", "ratio", "baseline_what", "ours_what", "target",
          "met", "details"}


@pytest.fixture
def env(owner_url, tmp_path):
    # The data dir holds only the signing key here: the database is the suite's server.
    return {"INDELIBLE_DATABASE_URL": owner_url, "INDELIBLE_DATA_DIR": str(tmp_path)}


@pytest.fixture
def bench_tenant():
    return f"bench-{secrets.token_hex(4)}"


def invoke(env: dict, *args: str) -> dict:
    result = CliRunner().invoke(main, ["bench", *args, "--json"], env=env)
    assert result.exit_code == 0, result.output + (result.stderr or "")
    return json.loads(result.stdout)


def assert_measured(report: dict, names: set[str]) -> None:
    assert set(report["measurements"]) == names
    for measurement in report["measurements"].values():
        assert FIELDS <= set(measurement)
        assert measurement["baseline"].keys() == measurement["ours"].keys()
        assert all(r > 0 for r in measurement["ratio"].values())
    assert report["machine"]["cpus"] >= 1


def test_bench_append_reports_throughput_and_latency_against_raw_postgres(env, bench_tenant):
    report = invoke(env, "append", "--tenant", bench_tenant, "--entries", "300",
                    "--latency-samples", "20", "--batch", "100")

    assert report["command"] == "append" and report["tenant"] == bench_tenant
    assert_measured(report, {"append_group_commit", "append_batch", "append_latency"})
    assert set(report["measurements"]["append_latency"]["ours"]) == {"p50", "p99"}
    assert report["entry_bytes_mean"] > 300


def test_bench_append_leaves_the_entries_in_the_tenant_log(env, bench_tenant, owner_url):
    invoke(env, "append", "--tenant", bench_tenant, "--entries", "50",
           "--latency-samples", "5")

    with psycopg.connect(owner_url) as conn:
        (size,) = conn.execute("SELECT size FROM log_heads WHERE tenant_id = %s",
                               (bench_tenant,)).fetchone()
    assert size == 50 + 50 + 5


def test_bench_verify_grows_the_log_signs_it_and_verifies_it(env, bench_tenant):
    report = invoke(env, "verify", "--tenant", bench_tenant, "--size", "600",
                    "--proofs", "30", "--workers", "1")

    assert report["log_size"] == 600 and report["entries_seeded_now"] == 600
    assert_measured(report, {"verify_throughput", "proof_latency"})
    assert report["measurements"]["verify_throughput"]["details"]["entries"] == 600
    result = CliRunner().invoke(main, ["verify", "--tenant", bench_tenant], env=env)
    assert result.exit_code == 0, result.output


def test_bench_refuses_an_invalid_tenant_name(env):
    result = CliRunner().invoke(main, ["bench", "append", "--tenant", "Not A Slug"], env=env)

    assert result.exit_code == 2
    assert "not a valid slug" in result.output


def test_bench_api_walks_discrepancies_over_http_against_the_bare_ledger(tmp_path, owner_url):
    from click.testing import CliRunner

    from indelible.cli import main

    # The service it starts must not verify the suite's database: other tests tamper with
    # their logs there on purpose (test_continuous_verification.py runs the A/B on its own).
    env = {"INDELIBLE_DATA_DIR": str(tmp_path / "data"), "INDELIBLE_DATABASE_URL": owner_url,
           "INDELIBLE_CONTINUOUS_VERIFY": "false"}
    result = CliRunner().invoke(main, ["bench", "api", "--json", "--tenant", "bench-api-t",
                                       "--clients", "4", "--discrepancies", "12"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    rate = report["measurements"]["api_transitions_rate"]
    assert rate["details"]["transitions"] == 36 and rate["ours"]["rate"] > 0
    assert rate["details"]["service_cpu_ms_per_transition"] > 0  # read from /proc
    latency = report["measurements"]["api_transitions_latency"]
    assert latency["ours"]["p99"] >= latency["ours"]["p50"] > 0


def test_bench_ingest_compares_end_to_end_ingestion_with_raw_consumption(tmp_path, owner_url):
    from click.testing import CliRunner

    from indelible.cli import main

    env = {"INDELIBLE_DATA_DIR": str(tmp_path / "data"), "INDELIBLE_DATABASE_URL": owner_url}
    result = CliRunner().invoke(main, ["bench", "ingest", "--json", "--tenant", "bench-ingest-t",
                                       "--messages", "300"], env=env)
    assert result.exit_code == 0, result.output
    measured = json.loads(result.output)["measurements"]["ingest_end_to_end"]
    assert measured["ours"]["rate"] > 0 and measured["baseline"]["rate"] > 0


def test_bench_console_times_the_pages_first_byte_against_the_json_api(env, bench_tenant):
    env = {**env, "INDELIBLE_INGEST_ENABLED": "false"}
    report = invoke(env, "console", "--tenant", bench_tenant, "--discrepancies", "120",
                    "--entries", "30", "--samples", "3")

    assert_measured(report, {"console_list", "console_list_filtered", "console_dashboard",
                              "console_case"})
    assert report["discrepancies"] == 121  # the ones asked for, and the long case
    case = report["measurements"]["console_case"]
    assert case["baseline_what"].startswith("GET /v1/discrepancies/{id}/history")
    assert set(case["ours"]) == {"p50", "p99"}
