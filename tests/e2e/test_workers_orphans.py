"""`indelible up --workers N` whose supervisor is killed outright (SIGKILL, the OOM killer):
its workers must not live on as orphans — serving, appending and holding the port with no
checkpointer and nobody to restart or stop them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from indelible.runtime import EmbeddedNats, free_port

from .cli_helpers import cli_env
from .test_workers import _alive_pids, _wait_for, _workers


def test_workers_exit_when_their_supervisor_is_killed(tmp_path, owner_url):
    env = cli_env(tmp_path / "data", owner_url)
    port = free_port()
    log = tmp_path / "service.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "indelible", "up", "--port", str(port),
                                    "--workers", "2"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    workers: set[int] = set()
    try:
        def started():  # not waiting for them to serve: a worker may still be starting
            assert process.poll() is None, log.read_text()
            return len(_workers(process.pid)) == 2
        _wait_for(started, "two worker processes")
        workers = _workers(process.pid)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        _wait_for(lambda: not _alive_pids(workers), "the orphaned workers to exit", timeout=60)
    finally:
        for pid in _alive_pids(workers):
            os.kill(pid, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
        # The killed supervisor's embedded broker lives on, as the next `indelible up` on
        # this data directory would find it; stop it as that start would.
        EmbeddedNats(tmp_path / "data" / "nats")._stop_orphan()
