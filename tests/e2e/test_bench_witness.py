"""`indelible bench witness` at a tiny size: it runs a real witness end to end and prints
both measurements with their same-run baselines (the figures mean nothing at this size)."""

from __future__ import annotations

import json

from .cli_helpers import cli_env, indelible


def test_bench_witness_prints_latency_and_throughput_with_baselines(tmp_path):
    result = indelible(cli_env(tmp_path, None), "bench", "witness", "--json", "--checkpoints",
                       "5", "--requests", "8", "--clients", "2")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    latency = report["measurements"]["witness_cosign_latency"]
    assert set(latency["ours"]) == set(latency["baseline"]) == {"p50", "p99"}
    assert latency["details"]["checkpoints"] == 5
    rate = report["measurements"]["witness_requests_per_second"]
    assert rate["ours"]["rate"] > 0 and rate["baseline"]["rate"] > 0
    assert rate["details"]["requests"] == 8
