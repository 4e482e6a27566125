"""One service per data directory; nothing left behind after a crash (issue 9, item 3)."""

from __future__ import annotations

import signal
import subprocess
import sys

from .cli_helpers import cli_env, indelible
from .test_http import _interrupt, _processes_of, _running, _start


def test_a_second_up_on_the_same_data_directory_exits_at_once_naming_the_first(tmp_path):
    env = cli_env(tmp_path / "data", None)
    first, base = _start(env, tmp_path / "first.log")
    try:
        second = subprocess.run([sys.executable, "-m", "indelible", "up", "--port", "1"],
                                env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert f"pid {first.pid}" in second.stderr and base in second.stderr
        assert "serving on" not in second.stderr
        assert len(_processes_of("nats-server", tmp_path / "data")) == 1
    finally:
        assert _interrupt(first) == 0


def test_after_kill_9_a_restart_adopts_or_stops_what_the_crash_left_and_loses_nothing(tmp_path):
    data = tmp_path / "data"
    env = cli_env(data, None)
    crashed, _ = _start(env, tmp_path / "crashed.log")
    assert indelible(env, "tenant", "create", "kept").returncode == 0
    crashed.send_signal(signal.SIGKILL)
    crashed.wait(30)
    assert _processes_of("nats-server", data) and _processes_of("postgres", data)  # orphans

    restarted, _ = _start(env, tmp_path / "restarted.log")
    try:
        assert len(_processes_of("nats-server", data)) == 1
        assert len([p for p in _processes_of("postgres", data)
                    if _is_postmaster(p)]) == 1
        listed = indelible(env, "verify", "--tenant", "kept")
        assert listed.returncode in (0, 3), listed.stderr  # the tenant's entry survived
    finally:
        assert _interrupt(restarted) == 0
    leftovers = [p for p in _processes_of("nats-server", data) + _processes_of("postgres", data)
                 if _running(p)]
    assert leftovers == []


def _is_postmaster(pid: int) -> bool:
    """The postmaster's parent is not another postgres process (its children's is)."""
    with open(f"/proc/{pid}/stat") as f:
        parent = int(f.read().rsplit(")", 1)[1].split()[1])
    try:
        with open(f"/proc/{parent}/comm") as f:
            return f.read().strip() != "postgres"
    except FileNotFoundError:
        return True
