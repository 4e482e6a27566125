"""The checkpoint signing key: generated on first start into the data directory (mode 0600)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from indelible.proofs import NoteSigner, ProofError


class SigningKeyError(RuntimeError):
    pass


def load_or_create_signer(path: Path, name: str) -> NoteSigner:
    if path.exists():
        return load_signer(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    signer = NoteSigner.generate(name)
    # Written whole to a private temporary file, then linked into place: a concurrent start
    # never reads a half-written key, and if two race, the first link wins for both.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".signing-", text=True)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(signer.private_key_text() + "\n")
        os.link(temporary, path)
    except FileExistsError:
        return load_signer(path)
    finally:
        os.unlink(temporary)
    return signer


def load_signer(path: Path) -> NoteSigner:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SigningKeyError(f"signing key {path} is readable by others (mode {mode:o}); "
                              "run: chmod 600 " + str(path))
    try:
        return NoteSigner.from_private_key_text(path.read_text().strip())
    except ProofError as e:
        raise SigningKeyError(f"signing key {path} is malformed: {e}") from e
