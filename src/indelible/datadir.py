"""One service per data directory.

The embedded PostgreSQL cluster, the nats-server's JetStream store, the signing key and the
kept checkpoints all live in the data directory; two services on one directory would run two
brokers over one store. `hold` takes an exclusive lock on `<data dir>/service.lock` for the
service's lifetime and writes who holds it there, so a second start is refused at once with
a message naming the first. The lock is an flock: the kernel drops it when the holder dies,
however it dies (kill -9 included), so a crash never leaves the directory locked. Servers a
crashed holder left running are dealt with by their own start-up (runtime.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = "service.lock"


class DataDirError(RuntimeError):
    """The data directory cannot be held: another service holds it, or others may write it."""


@contextmanager
def hold(data_dir: Path, **about: str) -> Iterator[Path]:
    """Hold the data directory exclusively; `about` (e.g. the HTTP address) is recorded for
    the message a second service gets."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _refuse_if_others_can_write(data_dir)
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirError(f"{data_dir} is in use by {_holder(path)}; stop that "
                                    "service first, or set INDELIBLE_DATA_DIR to another "
                                    "directory") from None
        record = {"pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  **about}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode() + b"\n", 0)
        yield path
    finally:
        os.close(fd)  # releases the lock; the record stays, read only while someone holds it


def _refuse_if_others_can_write(data_dir: Path) -> None:
    """Whoever may write the directory may delete or replace the signing key and the kept
    checkpoints in it — the very state that keeps a rewritten history from being signed."""
    info = data_dir.stat()
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise DataDirError(
            f"{data_dir} must belong to the user running indelible (uid {os.geteuid()}) and "
            f"be writable by nobody else; it is uid {info.st_uid}, mode "
            f"{info.st_mode & 0o777:o} (run: chmod go-w {data_dir})")


def _holder(path: Path) -> str:
    try:
        record = json.loads(path.read_text())
        parts = [f"pid {record['pid']}"] + [f"{k} {v}" for k, v in record.items() if k != "pid"]
        return "another indelible service (" + ", ".join(parts) + ")"
    except (OSError, ValueError, KeyError, TypeError):
        return "another indelible service"
