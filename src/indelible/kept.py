"""The last checkpoint this instance signed, per tenant, kept beside the signing key.

The database is what the checkpointer guards, so what it has already signed must not be
read back from it: a superuser could delete checkpoint rows and rewrite the tail. Each
tenant's latest signed note is kept as one file, `<dir>/<tenant>.checkpoint` (the C2SP
signed note exactly as published, so an operator can hand it to `indelible verify
--trusted-checkpoint`). Files are written whole: temporary file, fsync, rename, fsync of the
directory, mode 0600 in a 0700 directory. Signers of one directory serialize on a per-tenant
lock file (`hold`), so two processes sharing it never move the kept state backwards.
"""

from __future__ import annotations

import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from indelible.proofs import Checkpoint, ProofError, parse_checkpoint_body
from indelible.store.logs import check_tenant

SUFFIX = ".checkpoint"


class KeptStateError(RuntimeError):
    """The kept checkpoint file cannot be trusted or read."""


@dataclass(frozen=True)
class KeptCheckpoint:
    checkpoint: Checkpoint  # origin, size, root as signed
    note: str  # the signed note, as published

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root_hash(self) -> bytes:
        return self.checkpoint.root_hash

    @classmethod
    def from_note(cls, note: str) -> KeptCheckpoint:
        split = note.rfind("\n\n")
        if split < 0:
            raise ProofError("note has no blank line between its text and its signatures")
        return cls(parse_checkpoint_body(note[:split + 1]), note)


class KeptCheckpoints:
    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def path(self, tenant: str) -> Path:
        return self.directory / (check_tenant(tenant) + SUFFIX)

    def get(self, tenant: str) -> KeptCheckpoint | None:
        path = self.path(tenant)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            return None
        if stat.S_IMODE(mode) & 0o022:
            raise KeptStateError(f"kept checkpoint {path} is writable by others (mode "
                                 f"{stat.S_IMODE(mode):o}); run: chmod 600 {path}")
        try:
            return KeptCheckpoint.from_note(path.read_text())
        except (OSError, UnicodeDecodeError, ProofError) as e:
            raise KeptStateError(f"kept checkpoint {path} is unreadable: {e}") from e

    def put(self, tenant: str, note: str) -> KeptCheckpoint:
        """Replace the tenant's kept checkpoint; durable when this returns."""
        kept = KeptCheckpoint.from_note(note)
        path = self._ready().joinpath(check_tenant(tenant) + SUFFIX)
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{tenant}-", text=True)
        try:
            with os.fdopen(fd, "w") as f:  # mkstemp creates it 0600
                f.write(note)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._sync_directory()
        return kept

    @contextmanager
    def hold(self, tenant: str) -> Iterator[None]:
        """Exclusive, per tenant, across processes: read, sign, write, publish as one step."""
        lock = self._ready() / f".{check_tenant(tenant)}.lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _ready(self) -> Path:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.directory

    def _sync_directory(self) -> None:
        # The rename is durable only once the directory entry is on disk.
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
