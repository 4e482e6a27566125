"""What the witness remembers: per log (origin), the latest checkpoint it cosigned.

One file per origin, `<dir>/<sha256(origin)[:32] hex>.checkpoint`, holding that checkpoint's
note text (origin, size, root) — the origin is hashed for the file name because it may hold
any character, and kept inside the file so the directory stays readable. Files are written
whole: temporary file, fsync, rename, fsync of the directory.

The spec's race (two requests checked against the same old state, the smaller one written
last, rolling the witness back) is closed by `hold`: an exclusive flock per origin that the
caller keeps across read, check, sign and write. flock locks belong to the open file
description, so it serialises threads of one server as well as two servers sharing the
directory by mistake.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from indelible.proofs import Checkpoint, ProofError, parse_checkpoint_body


class WitnessStateError(RuntimeError):
    """A state file cannot be read or trusted: the witness must not cosign blindly."""


class WitnessState:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _stem(self, origin: str) -> str:
        return hashlib.sha256(origin.encode("utf-8")).hexdigest()[:32]

    @contextmanager
    def hold(self, origin: str) -> Iterator[None]:
        fd = os.open(self.directory / f".{self._stem(origin)}.lock", os.O_RDWR | os.O_CREAT,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def get(self, origin: str) -> Checkpoint | None:
        """The latest checkpoint cosigned for `origin`; call under `hold`."""
        path = self.directory / f"{self._stem(origin)}.checkpoint"
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            raise WitnessStateError(f"witness state {path} is unreadable: {e}") from e
        try:
            checkpoint = parse_checkpoint_body(text)
        except ProofError as e:
            raise WitnessStateError(f"witness state {path} is malformed: {e}") from e
        if checkpoint.origin != origin:
            raise WitnessStateError(f"witness state {path} is for origin "
                                    f"{checkpoint.origin!r}, not {origin!r}")
        return checkpoint

    def put(self, checkpoint: Checkpoint) -> None:
        """Record `checkpoint` as the latest cosigned; durable when this returns."""
        path = self.directory / f"{self._stem(checkpoint.origin)}.checkpoint"
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".state-")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(checkpoint.to_body())
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
