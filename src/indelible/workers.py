"""`indelible up --workers N`: one supervisor and N service processes sharing the work.

Why processes: one Python process runs request parsing, authentication, the appender's
writer and the ingestion consumer under one GIL, which on its own keeps one core busy while
PostgreSQL waits (benchmarks/README.md). N processes each run the whole service but the
checkpointer: their own HTTP server, appender and ingestion consumer.

How they share the work, and why that is safe:
- HTTP: the supervisor binds the listening socket once and every worker accepts on it (the
  kernel hands each connection to one of them).
- Ingestion: every worker pulls from the same durable JetStream consumer; the broker hands
  each message to one of them and redelivers it if that worker dies before acknowledging.
- The ledger: each worker's appender locks the tenant's log head `FOR UPDATE` for the whole
  append transaction, and decides every command against state read under that lock, so
  appends from any number of processes form one gap-free chain, and two processes racing the
  same move produce one entry and one refusal.
- Signing: only the supervisor runs the checkpointer (a checkpoint must extend the one kept in
  the data directory; two signers could race).

A worker that dies is started again (after a short pause, so a worker that cannot start does
not spin); Ctrl-C or SIGTERM stops every worker, then the servers.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time

log = logging.getLogger(__name__)

RESTART_PAUSE = 1.0  # seconds before a dead worker is started again
STOP_GRACE = 30.0  # seconds a worker gets to finish its requests and commits on shutdown


def listening_socket(host: str, port: int) -> socket.socket:
    sock = socket.create_server((host, port), backlog=2048)
    sock.set_inheritable(True)
    return sock


class Workers:
    """N `python -m indelible.workers` processes, each given the listening socket's fd."""

    def __init__(self, count: int, sock: socket.socket, environment: dict[str, str]):
        self._count = count
        self._sock = sock
        self._env = {**os.environ, **environment}
        self.processes: list[subprocess.Popen | None] = [None] * count

    def start(self) -> Workers:
        for index in range(self._count):
            self._spawn(index)
        return self

    def _spawn(self, index: int) -> None:
        fd = self._sock.fileno()
        self.processes[index] = subprocess.Popen(
            [sys.executable, "-m", "indelible.workers", str(fd), str(index)],
            env=self._env, pass_fds=(fd,))

    def supervise(self) -> None:
        """Restart workers that die, until interrupted."""
        while True:
            time.sleep(0.5)
            for index, process in enumerate(self.processes):
                if process is not None and process.poll() is not None:
                    log.warning("worker %d (pid %d) exited with %s; starting it again",
                                index, process.pid, process.returncode)
                    time.sleep(RESTART_PAUSE)
                    self._spawn(index)

    def stop(self) -> None:
        live = [p for p in self.processes if p is not None and p.poll() is None]
        for process in live:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for process in live:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker pid %d did not stop within %.0f s; killing it",
                            process.pid, STOP_GRACE)
                process.kill()
                process.wait()


def _worker_main(fd: int, index: int) -> None:
    """One worker: the service without the checkpointer, serving on the inherited socket."""
    import uvicorn

    from indelible.bootstrap import running_service
    from indelible.config import Settings

    # Like `indelible up`: SIGTERM unwinds like Ctrl-C, so commits in flight finish.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    logging.basicConfig(level=logging.WARNING,
                        format=f"indelible worker {index}: %(levelname)s %(name)s: %(message)s")
    sock = socket.socket(fileno=fd)
    with running_service(Settings.from_env(), checkpointer=False, hold=False) as service:
        from indelible.cli.service import REQUEST_DRAIN

        config = uvicorn.Config(service.app, log_level="warning",
                                timeout_graceful_shutdown=REQUEST_DRAIN)
        uvicorn.Server(config).run(sockets=[sock])


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    try:
        _worker_main(int(sys.argv[1]), int(sys.argv[2]))
    except KeyboardInterrupt:
        pass
