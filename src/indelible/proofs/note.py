"""C2SP signed notes (``c2sp.org/signed-note``), Ed25519 signatures only.

A note is UTF-8 text ending in a newline, a blank line, then one or more signature lines
``— <key name> <base64(key ID[4] || signature)>`` (U+2014 em dash). The Ed25519 signature
(RFC 8032) covers the note text including its final newline, not the blank line.

Keys are identified by name and a 4-byte key ID::

    key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]

Key texts (the formats of Go's ``golang.org/x/mod/sumdb/note``)::

    verifier:  <name>+<8 hex key ID>+<base64(0x01 || public key)>
    signer:    PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x01 || 32-byte seed)>

Verification policy (the spec's MUSTs, and its SHOULD to reject a bad known signature):
signatures from other keys are ignored, even when they share the name or the ID (not
both); a signature from the given key that does not verify rejects the note; a note with
no valid signature from the given key is rejected. Stricter than Go's reference, which
skips repeats: a second signature line from the given key rejects the note, since a log
signs each checkpoint once and a repeat can only come from tampering or a bug.
"""

from __future__ import annotations

import re
from hashlib import sha256

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ._text import b64decode, b64encode, check_text
from .errors import ProofError

__all__ = ["NoteSigner", "NoteVerifier", "open_note"]

ALG_ED25519 = 0x01  # signature type byte assigned by the signed-note spec
MAX_SIGNATURES = 100  # the spec requires accepting at least 16
_SIGNATURE_SIZE = 64  # bytes, Ed25519
_KEY_SIZE = 32  # bytes, Ed25519 public key or seed
_KEY_ID_HEX = re.compile(r"[0-9a-f]{8}")
_PRIVATE_PREFIX = "PRIVATE+KEY+"
_SIG_PREFIX = "\u2014 "  # em dash, space


def _name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a key name, or None: non-empty, no Unicode spaces, no '+'."""
    if type(name) is not str or not name:
        return f"key name must be a non-empty string, got {name!r}"
    try:
        check_text(name, "key name")
    except ProofError as e:
        return str(e)
    if "+" in name or any(c.isspace() for c in name):
        return f"key name {name!r} must not contain spaces or '+'"
    return None


def _check_name(name: object, where: str) -> str:
    problem = _name_problem(name)
    if problem:
        raise ProofError(f"{where}: {problem}")
    return name  # type: ignore[return-value]


def _key_id(name: str, public_key: bytes) -> bytes:
    return sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _split_key_text(text: object, parts: int, where: str) -> list[str]:
    if type(text) is not str:
        raise ProofError(f"{where} must be a str, got {type(text).__name__}")
    # Only the last field, base64, may itself contain '+'.
    fields = text.split("+", parts - 1)
    if len(fields) != parts:
        raise ProofError(f"{where} must have {parts} '+'-separated fields, has {len(fields)}")
    return fields


def _parse_key_fields(
    name: str, key_id_hex: str, key_b64: str, where: str
) -> tuple[str, bytes, bytes]:
    """Common checks of both key texts; returns (name, key ID, 32 key bytes)."""
    _check_name(name, where)
    if not _KEY_ID_HEX.fullmatch(key_id_hex):
        raise ProofError(f"{where}: key ID {key_id_hex!r} is not 8 lowercase hex digits")
    raw = b64decode(key_b64, where, "key")
    if len(raw) != 1 + _KEY_SIZE:
        raise ProofError(f"{where}: key is {len(raw)} bytes, expected {1 + _KEY_SIZE}")
    if raw[0] != ALG_ED25519:
        raise ProofError(f"{where}: key type 0x{raw[0]:02x} is not Ed25519 (0x01)")
    return name, bytes.fromhex(key_id_hex), raw[1:]


class NoteVerifier:
    """An Ed25519 note verifier key: name, key ID and public key."""

    __slots__ = ("_key_id", "_name", "_public_key")

    def __init__(self, name: str, public_key: bytes) -> None:
        problem = _name_problem(name)
        if problem:
            raise ValueError(problem)
        if type(public_key) is not bytes or len(public_key) != _KEY_SIZE:
            raise ValueError(f"an Ed25519 public key is {_KEY_SIZE} bytes")
        self._name = name
        self._key_id = _key_id(name, public_key)
        self._public_key = Ed25519PublicKey.from_public_bytes(public_key)

    @classmethod
    def from_key_text(cls, vkey: str) -> NoteVerifier:
        """Parse ``<name>+<8 hex key ID>+<base64(0x01 || public key)>``."""
        where = "verifier key"
        name, key_id, public_key = _parse_key_fields(*_split_key_text(vkey, 3, where), where)
        try:
            verifier = cls(name, public_key)
        except ValueError as e:  # cryptography refusing the key bytes
            raise ProofError(f"{where}: not an Ed25519 public key: {e}") from e
        if verifier.key_id != key_id:
            raise ProofError(
                f"{where}: key ID {key_id.hex()} does not match the key "
                f"(expected {verifier.key_id.hex()})"
            )
        return verifier

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id

    def key_text(self) -> str:
        """``<name>+<8 hex key ID>+<base64(0x01 || public key)>``: :meth:`from_key_text` inverts it."""
        raw = self._public_key.public_bytes_raw()
        return f"{self._name}+{self._key_id.hex()}+{b64encode(bytes([ALG_ED25519]) + raw)}"

    def _verify(self, text: bytes, signature: bytes) -> bool:
        try:
            self._public_key.verify(signature, text)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"NoteVerifier({self._name!r}, key_id={self._key_id.hex()})"


class NoteSigner:
    """An Ed25519 note signer key. Never log :meth:`private_key_text`."""

    __slots__ = ("_key_id", "_name", "_private_key", "_public_key")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        problem = _name_problem(name)
        if problem:
            raise ValueError(problem)
        self._name = name
        self._private_key = private_key
        self._public_key = private_key.public_key().public_bytes_raw()
        self._key_id = _key_id(name, self._public_key)

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        """A signer with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_key_text(cls, text: str) -> NoteSigner:
        """Parse ``PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x01 || seed)>``."""
        where = "private key"
        fields = _split_key_text(text, 5, where)
        if fields[0] + "+" + fields[1] + "+" != _PRIVATE_PREFIX:
            raise ProofError(f"{where} must start with {_PRIVATE_PREFIX!r}")
        name, key_id, seed = _parse_key_fields(*fields[2:], where)
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if signer.key_id != key_id:
            raise ProofError(
                f"{where}: key ID {key_id.hex()} does not match the key "
                f"(expected {signer.key_id.hex()})"
            )
        return signer

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id

    def private_key_text(self) -> str:
        """The secret key text; whoever holds it can sign as this log."""
        seed = self._private_key.private_bytes_raw()
        key = b64encode(bytes([ALG_ED25519]) + seed)
        return f"{_PRIVATE_PREFIX}{self._name}+{self._key_id.hex()}+{key}"

    def verifier_key_text(self) -> str:
        """The public key text to give verifiers."""
        key = b64encode(bytes([ALG_ED25519]) + self._public_key)
        return f"{self._name}+{self._key_id.hex()}+{key}"

    def sign(self, body: str) -> str:
        """Return the signed note: ``body``, a blank line, and this key's signature line.

        ``body`` must be valid note text: ending in a newline, with no ASCII control
        characters other than newline (``ValueError`` otherwise: the caller built it).
        """
        try:
            check_text(body, "note text")
        except ProofError as e:
            raise ValueError(str(e)) from e
        if not body.endswith("\n"):
            raise ValueError("note text must end with a newline")
        signature = self._private_key.sign(body.encode("utf-8"))
        return f"{body}\n{_SIG_PREFIX}{self._name} {b64encode(self._key_id + signature)}\n"

    def __repr__(self) -> str:
        return f"NoteSigner({self._name!r}, key_id={self._key_id.hex()})"


def open_note(text: str, verifier: NoteVerifier) -> str:
    """Verify a signed note against ``verifier`` and return its text (c2sp.org/signed-note).

    Raises :class:`ProofError` naming what is wrong.
    """
    # 1. A note is valid UTF-8 with no control characters other than newline.
    check_text(text, "note")
    if not isinstance(verifier, NoteVerifier):
        raise TypeError(f"verifier must be a NoteVerifier, got {type(verifier).__name__}")
    # 2. The text ends at the last blank line; everything after it is signature lines.
    split = text.rfind("\n\n")
    if split < 0:
        raise ProofError("note has no blank line between its text and its signatures")
    body, block = text[: split + 1], text[split + 2 :]
    if not block:
        raise ProofError("note has no signature lines")
    if not block.endswith("\n"):
        raise ProofError("note does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise ProofError(f"note has {len(lines)} signatures, more than {MAX_SIGNATURES}")
    # 3. Every line is well formed; 4. those from this key (name and ID) must verify.
    signed, verified = body.encode("utf-8"), False
    for number, line in enumerate(lines, start=1):
        where = f"note signature line {number}"
        name, key_id, signature = _parse_signature_line(line, where)
        if name != verifier.name or key_id != verifier.key_id:
            continue  # another key: ignored, as the spec requires
        if verified:
            raise ProofError(f"{where}: second signature from key {name}")
        if len(signature) != _SIGNATURE_SIZE or not verifier._verify(signed, signature):
            raise ProofError(f"{where}: signature from key {name} does not verify")
        verified = True
    # 5. At least one signature from this key.
    if not verified:
        raise ProofError(
            f"note has no signature from key {verifier.name}+{verifier.key_id.hex()}"
        )
    return body


def _parse_signature_line(line: str, where: str) -> tuple[str, bytes, bytes]:
    """``— <name> <base64(key ID || signature)>`` → (name, key ID, signature)."""
    if not line.startswith(_SIG_PREFIX):
        raise ProofError(f"{where}: does not start with an em dash and a space")
    fields = line[len(_SIG_PREFIX) :].split(" ")
    if len(fields) != 2:
        raise ProofError(f"{where}: expected '— <key name> <signature>'")
    name = _check_name(fields[0], where)
    raw = b64decode(fields[1], where, "signature")
    if len(raw) < 5:
        raise ProofError(f"{where}: signature is {len(raw)} bytes, too short for a key ID and one")
    return name, raw[:4], raw[4:]
