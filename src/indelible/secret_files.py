"""Secrets the embedded servers need, kept in the data directory: private to the user running
indelible (mode 0600), written whole (a reader never sees half a file), never logged.

Passwords are 256 random bits in URL-safe base64, so they need no quoting in a pgpass line or
anywhere else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

SCRAM_ITERATIONS = 4096  # PostgreSQL's own default for scram-sha-256


class SecretFileError(RuntimeError):
    """A secret file is missing, unreadable, malformed or open to other users."""


def new_password() -> str:
    return secrets.token_urlsafe(32)


def write_private(path: Path, text: str, *, exclusive: bool = False) -> bool:
    """Write `text` to `path` with mode 0600, atomically. With `exclusive`, an existing file
    wins (two processes racing at first start end up with the same secret): False then."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")  # mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if not exclusive:
            os.replace(temporary, path)
            return True
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def read_private(path: Path) -> str:
    """The file's text, refused if group or others may read it (as libpq and ssh refuse),
    if another user owns it, or if it is a symbolic link (someone who could plant one would
    choose what we read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise SecretFileError(f"cannot read {path}: {e.strerror}") from e
    with os.fdopen(fd) as f:
        info = os.fstat(fd)
        mode = info.st_mode & 0o777
        if mode & 0o077:
            raise SecretFileError(f"{path} is readable by others (mode {mode:o}); "
                                  f"run: chmod 600 {path}")
        if info.st_uid != os.geteuid():
            raise SecretFileError(f"{path} belongs to uid {info.st_uid}, not to the user "
                                  f"running indelible (uid {os.geteuid()})")
        return f.read()


def scram_sha256_verifier(password: str, *, salt: bytes | None = None) -> str:
    """What PostgreSQL stores for a scram-sha-256 password (RFC 5802/7677 StoredKey and
    ServerKey). Sending this instead of the password keeps the password itself out of every
    statement, log line and error the server could produce. The password is ASCII, which
    SASLprep leaves as it is."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return (f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}$"
            f"{b64(hashlib.sha256(client_key).digest())}:{b64(server_key)}")
