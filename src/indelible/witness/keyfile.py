"""The witness's key: a private key text file (mode 0600) and the verifier key it prints."""

from __future__ import annotations

import os
from pathlib import Path

from indelible.proofs import Cosigner, ProofError


class WitnessKeyError(RuntimeError):
    """The key file is missing, malformed, or readable by others."""


def generate_key(path: Path, name: str) -> Cosigner:
    """Write a new key to `path` (refusing to overwrite one) and return it."""
    try:
        cosigner = Cosigner.generate(name)
    except ValueError as e:
        raise WitnessKeyError(f"witness name {name!r}: {e}") from e
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise WitnessKeyError(f"{path} exists; refusing to overwrite a witness key") from e
    with os.fdopen(fd, "w") as f:
        f.write(cosigner.private_key_text() + "\n")
        f.flush()
        os.fsync(f.fileno())
    return cosigner


def load_key(path: Path) -> Cosigner:
    try:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise WitnessKeyError(f"witness key {path} is readable by others (mode {mode:o}); "
                                  f"run: chmod 600 {path}")
        return Cosigner.from_private_key_text(path.read_text().strip())
    except OSError as e:
        raise WitnessKeyError(f"cannot read witness key {path}: {e}") from e
    except ProofError as e:
        raise WitnessKeyError(f"witness key {path} is malformed: {e}") from e
