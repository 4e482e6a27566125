"""C2SP transparency log cosignatures (``c2sp.org/tlog-cosignature``), Ed25519 type only.

A cosignature is a signed-note signature line from a witness over a checkpoint::

    — <witness name> base64(key ID[4] || timestamp[8, big-endian] || Ed25519 signature[64])

    key ID  = SHA-256(<name> || 0x0A || 0x04 || 32-byte public key)[:4]
    message = "cosignature/v1\\n" "time <timestamp>\\n" || the whole checkpoint note body

The timestamp is POSIX seconds (at most 2^63 - 1) as an ASCII decimal without leading
zeroes. Key texts are the signed-note formats with signature type 0x04::

    verifier:  <name>+<8 hex key ID>+<base64(0x04 || public key)>
    signer:    PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x04 || 32-byte seed)>

A :class:`WitnessPolicy` (which witnesses, how many must cosign) is checked by
:func:`check_witness_quorum`: cosignatures from keys outside the policy are ignored, as the
signed-note spec requires; a listed witness counts once, and only with a cosignature that
verifies. Fail closed: a policy with no witnesses, or a quorum of 0 or above the number
listed, cannot be built.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from hashlib import sha256

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ._text import b64decode, b64encode, check_text, decimal
from .errors import ProofError
from .note import _check_name, _name_problem, _parse_signature_line

__all__ = [
    "ALG_COSIGNATURE_V1",
    "Cosigner",
    "CosignerKey",
    "WitnessPolicy",
    "add_signature_lines",
    "check_witness_quorum",
    "cosignature_message",
    "parse_witness_policy",
    "split_note",
    "verify_cosignature_line",
]

ALG_COSIGNATURE_V1 = 0x04  # signed-note signature type of an Ed25519 cosignature/v1
MAX_TIMESTAMP = (1 << 63) - 1
_KEY_SIZE = 32  # bytes, Ed25519 public key or seed
_SIGNATURE_SIZE = 8 + 64  # timestamp, Ed25519 signature
_KEY_ID_HEX = re.compile(r"[0-9a-f]{8}")
_PRIVATE_PREFIX = "PRIVATE+KEY+"
_SIG_PREFIX = "\u2014 "


def _key_id(name: str, public_key: bytes) -> bytes:
    return sha256(name.encode("utf-8") + b"\n" + bytes([ALG_COSIGNATURE_V1])
                  + public_key).digest()[:4]


def cosignature_message(body: str, timestamp: int) -> bytes:
    """The bytes an Ed25519 cosignature/v1 signs: header line, time line, checkpoint body."""
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


def _parse_key(text: object, fields: int, where: str) -> tuple[list[str], bytes]:
    if type(text) is not str:
        raise ProofError(f"{where} must be a str, got {type(text).__name__}")
    parts = text.split("+", fields - 1)  # only the base64 field may itself contain '+'
    if len(parts) != fields:
        raise ProofError(f"{where} must have {fields} '+'-separated fields, has {len(parts)}")
    name, key_id_hex, key_b64 = parts[-3:]
    _check_name(name, where)
    if not _KEY_ID_HEX.fullmatch(key_id_hex):
        raise ProofError(f"{where}: key ID {key_id_hex!r} is not 8 lowercase hex digits")
    raw = b64decode(key_b64, where, "key")
    if len(raw) != 1 + _KEY_SIZE:
        raise ProofError(f"{where}: key is {len(raw)} bytes, expected {1 + _KEY_SIZE}")
    if raw[0] != ALG_COSIGNATURE_V1:
        raise ProofError(f"{where}: key type 0x{raw[0]:02x} is not an Ed25519 cosignature "
                         f"key (0x{ALG_COSIGNATURE_V1:02x})")
    return parts, raw[1:]


class CosignerKey:
    """A witness's public key: name, key ID (type 0x04) and Ed25519 public key."""

    __slots__ = ("_key_id", "_name", "_public", "_raw")

    def __init__(self, name: str, public_key: bytes) -> None:
        problem = _name_problem(name)
        if problem:
            raise ValueError(problem)
        if type(public_key) is not bytes or len(public_key) != _KEY_SIZE:
            raise ValueError(f"an Ed25519 public key is {_KEY_SIZE} bytes")
        self._name, self._raw = name, public_key
        self._key_id = _key_id(name, public_key)
        self._public = Ed25519PublicKey.from_public_bytes(public_key)

    @classmethod
    def from_key_text(cls, vkey: str) -> CosignerKey:
        """Parse ``<name>+<8 hex key ID>+<base64(0x04 || public key)>``."""
        where = "witness key"
        (name, key_id_hex, _), public_key = _parse_key(vkey, 3, where)
        try:
            key = cls(name, public_key)
        except ValueError as e:
            raise ProofError(f"{where}: not an Ed25519 public key: {e}") from e
        if key.key_id.hex() != key_id_hex:
            raise ProofError(f"{where}: key ID {key_id_hex} does not match the key "
                             f"(expected {key.key_id.hex()})")
        return key

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id

    def key_text(self) -> str:
        raw = b64encode(bytes([ALG_COSIGNATURE_V1]) + self._raw)
        return f"{self._name}+{self._key_id.hex()}+{raw}"

    def verify(self, body: str, signature: bytes) -> int:
        """Check ``signature`` (timestamp || Ed25519) over ``body``; return the timestamp."""
        if type(signature) is not bytes or len(signature) != _SIGNATURE_SIZE:
            raise ProofError(f"cosignature from {self._name} is {len(signature)} bytes, "
                             f"expected {_SIGNATURE_SIZE}")
        (timestamp,) = struct.unpack(">Q", signature[:8])
        if timestamp > MAX_TIMESTAMP:
            raise ProofError(f"cosignature from {self._name}: timestamp exceeds 2^63 - 1")
        try:
            self._public.verify(signature[8:], cosignature_message(body, timestamp))
        except InvalidSignature as e:
            raise ProofError(f"cosignature from {self._name} does not verify") from e
        return timestamp

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CosignerKey) and (self._name, self._raw) == (other._name,
                                                                              other._raw)

    def __hash__(self) -> int:
        return hash((self._name, self._raw))

    def __repr__(self) -> str:
        return f"CosignerKey({self._name!r}, key_id={self._key_id.hex()})"


class Cosigner:
    """A witness's private key. Never log :meth:`private_key_text`."""

    __slots__ = ("_key", "_private")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self._key = CosignerKey(name, private_key.public_key().public_bytes_raw())

    @classmethod
    def generate(cls, name: str) -> Cosigner:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_key_text(cls, text: str) -> Cosigner:
        """Parse ``PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x04 || seed)>``."""
        where = "witness private key"
        parts, seed = _parse_key(text, 5, where)
        if parts[0] + "+" + parts[1] + "+" != _PRIVATE_PREFIX:
            raise ProofError(f"{where} must start with {_PRIVATE_PREFIX!r}")
        cosigner = cls(parts[2], Ed25519PrivateKey.from_private_bytes(seed))
        if cosigner.key.key_id.hex() != parts[3]:
            raise ProofError(f"{where}: key ID {parts[3]} does not match the key")
        return cosigner

    @property
    def key(self) -> CosignerKey:
        return self._key

    def private_key_text(self) -> str:
        seed = b64encode(bytes([ALG_COSIGNATURE_V1]) + self._private.private_bytes_raw())
        return f"{_PRIVATE_PREFIX}{self._key.name}+{self._key.key_id.hex()}+{seed}"

    def cosign(self, body: str, timestamp: int) -> str:
        """The signature line (with its newline) cosigning checkpoint ``body`` at ``timestamp``."""
        if type(timestamp) is not int or not 0 <= timestamp <= MAX_TIMESTAMP:
            raise ValueError(f"timestamp must be an integer in [0, 2^63), got {timestamp!r}")
        signature = self._private.sign(cosignature_message(body, timestamp))
        raw = self._key.key_id + struct.pack(">Q", timestamp) + signature
        return f"{_SIG_PREFIX}{self._key.name} {b64encode(raw)}\n"


def verify_cosignature_line(line: str, key: CosignerKey, body: str) -> int | None:
    """The timestamp of ``line`` if it is ``key``'s cosignature of ``body``; None for another
    key's line. A line of ``key``'s that does not verify raises :class:`ProofError`."""
    name, key_id, signature = _parse_signature_line(line.rstrip("\n"), "cosignature line")
    if (name, key_id) != (key.name, key.key_id):
        return None
    return key.verify(body, signature)


def split_note(text: str) -> tuple[str, list[str]]:
    """A signed note → (its text with final newline, its signature lines without newlines)."""
    check_text(text, "note")
    split = text.rfind("\n\n")
    if split < 0:
        raise ProofError("note has no blank line between its text and its signatures")
    block = text[split + 2:]
    if not block or not block.endswith("\n"):
        raise ProofError("note has no signature lines ending in a newline")
    return text[:split + 1], block[:-1].split("\n")


def add_signature_lines(note: str, lines: list[str]) -> str:
    """``note`` with the given signature lines appended (those already present are skipped)."""
    body, present = split_note(note)
    extra = [line for line in dict.fromkeys(lines) if line not in present]
    return note + "".join(line + "\n" for line in extra)


@dataclass(frozen=True)
class WitnessPolicy:
    """Which witnesses an auditor trusts, and how many of them must cosign a checkpoint."""

    witnesses: tuple[CosignerKey, ...]
    quorum: int

    def __post_init__(self) -> None:
        if type(self.witnesses) is not tuple or not self.witnesses:
            raise ValueError("a witness policy needs at least one witness")
        if not all(isinstance(w, CosignerKey) for w in self.witnesses):
            raise ValueError("witnesses must be CosignerKey values")
        if len({(w.name, w.key_id) for w in self.witnesses}) != len(self.witnesses):
            raise ValueError("a witness policy lists the same witness twice")
        if type(self.quorum) is not int or not 1 <= self.quorum <= len(self.witnesses):
            raise ValueError(f"quorum must be between 1 and {len(self.witnesses)} (the "
                             f"witnesses listed), got {self.quorum!r}")


def parse_witness_policy(text: str) -> WitnessPolicy:
    """A policy file: ``witness <verifier key>`` lines and one ``quorum <K>`` line.

    Blank lines and lines starting with ``#`` are comments.
    """
    witnesses, quorum = [], None
    for number, raw in enumerate(check_text(text, "witness policy").split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        where = f"witness policy line {number}"
        if word == "witness":
            try:
                witnesses.append(CosignerKey.from_key_text(rest.strip()))
            except ProofError as e:
                raise ProofError(f"{where}: {e}") from e
        elif word == "quorum":
            if quorum is not None:
                raise ProofError(f"{where}: a second quorum line")
            quorum = decimal(rest.strip(), where, "quorum")
        else:
            raise ProofError(f"{where}: expected 'witness <key>' or 'quorum <K>', got {word!r}")
    if quorum is None:
        raise ProofError("witness policy has no 'quorum <K>' line")
    try:
        return WitnessPolicy(tuple(witnesses), quorum)
    except ValueError as e:
        raise ProofError(f"witness policy: {e}") from e


def check_witness_quorum(note: str, policy: WitnessPolicy) -> dict[str, int]:
    """Check the note's cosignatures against ``policy``; return {witness name: timestamp}.

    Only the cosignatures are checked here: open the checkpoint with the log's key too.
    Raises :class:`ProofError` naming the witnesses whose valid cosignature is missing.
    """
    if not isinstance(policy, WitnessPolicy):
        raise TypeError(f"policy must be a WitnessPolicy, got {type(policy).__name__}")
    # 1. Split the note; every signature line must be well formed.
    body, lines = split_note(note)
    listed = {(w.name, w.key_id): w for w in policy.witnesses}
    # 2. Verify each line from a listed witness; lines from other keys are ignored.
    valid: dict[CosignerKey, int] = {}
    bad: list[str] = []
    for number, line in enumerate(lines, start=1):
        name, key_id, signature = _parse_signature_line(line, f"note signature line {number}")
        witness = listed.get((name, key_id))
        if witness is None or witness in valid:
            continue
        try:
            valid[witness] = witness.verify(body, signature)
        except ProofError as e:
            bad.append(str(e))
    # 3. At least `quorum` distinct listed witnesses.
    if len(valid) < policy.quorum:
        missing = [w.name for w in policy.witnesses if w not in valid]
        why = f" ({'; '.join(bad)})" if bad else ""
        raise ProofError(f"checkpoint has {len(valid)} valid cosignature(s) of the "
                         f"{policy.quorum} required; missing: {', '.join(missing)}{why}")
    return {w.name: timestamp for w, timestamp in valid.items()}
