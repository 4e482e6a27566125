"""Run the real `indelible` command in a subprocess, against the suite's PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys


def cli_env(data_dir, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INDELIBLE_")}
    env["INDELIBLE_DATA_DIR"] = str(data_dir)
    env["INDELIBLE_ORIGIN"] = "test.indelible.local/log"
    # The suite's database holds logs other tests tampered with on purpose: a service that
    # verified them all would raise their alarms in every test. Tests of continuous
    # verification switch it on, over a database of their own.
    env["INDELIBLE_CONTINUOUS_VERIFY"] = "false"
    if database_url:
        env["INDELIBLE_DATABASE_URL"] = database_url
    return env


def indelible(env: dict[str, str], *args: str, input: str | None = None, timeout: float = 120):
    return subprocess.run([sys.executable, "-m", "indelible", *args], env=env, input=input,
                          capture_output=True, text=True, timeout=timeout)
