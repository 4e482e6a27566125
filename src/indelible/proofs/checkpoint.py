"""C2SP transparency log checkpoints (``c2sp.org/tlog-checkpoint``).

A checkpoint is a signed note whose text is at least three non-empty lines::

    <origin>                 the log's identity, e.g. example.com/log42
    <tree size>              ASCII decimal, no leading zeroes ("0" for the empty tree)
    <base64 root hash>       RFC 6962 / RFC 9162 root of the tree at that size
    [extension lines ...]    opaque, each non-empty (not recommended)

The spec recommends, without requiring, that the origin contain no spaces or '+' and that
the log's key name equal the origin; neither is enforced here, since clients MUST NOT
assume it. Callers pin the origin they expect with ``open_checkpoint(..., origin=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._text import MAX_UINT64, b64decode, b64encode, check_text, decimal
from .errors import ProofError
from .hashing import HASH_SIZE
from .note import NoteSigner, NoteVerifier, open_note

__all__ = ["Checkpoint", "open_checkpoint", "parse_checkpoint_body", "sign_checkpoint"]


def _line_problem(line: object) -> str | None:
    """Why ``line`` cannot be one line of a checkpoint, or None if it can."""
    if type(line) is not str or not line:
        return "must be a non-empty string"
    if "\n" in line:
        return "must not contain a newline"
    try:
        check_text(line, "it")
    except ProofError as e:
        return str(e)
    return None


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed statement of its tree head. Invalid fields raise ``ValueError``."""

    origin: str
    size: int  # leaves
    root_hash: bytes  # 32 bytes, RFC 9162 §2.1.1 MTH
    extensions: tuple[str, ...] = ()  # opaque extension lines, without newlines

    def __post_init__(self) -> None:
        problem = _line_problem(self.origin)
        if problem:
            raise ValueError(f"checkpoint origin {self.origin!r}: {problem}")
        if type(self.size) is not int or not 0 <= self.size <= MAX_UINT64:
            raise ValueError(f"checkpoint size must be an integer in [0, 2**64), got {self.size!r}")
        if type(self.root_hash) is not bytes or len(self.root_hash) != HASH_SIZE:
            raise ValueError(f"checkpoint root hash must be {HASH_SIZE} bytes")
        if type(self.extensions) is not tuple:
            raise ValueError("checkpoint extensions must be a tuple of lines")
        for line in self.extensions:
            problem = _line_problem(line)
            if problem:
                raise ValueError(f"checkpoint extension line {line!r}: {problem}")

    def to_body(self) -> str:
        """The note text: origin, size, base64 root, extension lines; each ends in a newline."""
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "\n".join(lines) + "\n"


def parse_checkpoint_body(body: str) -> Checkpoint:
    """Parse checkpoint note text strictly; :class:`ProofError` names the offending line."""
    # 1. Valid note text ending in a newline, with at least three lines.
    check_text(body, "checkpoint")
    if not body.endswith("\n"):
        raise ProofError("checkpoint does not end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise ProofError(f"checkpoint has {len(lines)} lines, expected at least 3")
    # 2. Line 1: a non-empty origin.
    if not lines[0]:
        raise ProofError("checkpoint line 1: origin is empty")
    # 3. Line 2: the tree size as a canonical decimal.
    size = decimal(lines[1], "checkpoint line 2", "size")
    # 4. Line 3: the root hash, 32 bytes of base64.
    root = b64decode(lines[2], "checkpoint line 3", "root hash")
    if len(root) != HASH_SIZE:
        raise ProofError(f"checkpoint line 3: root hash is {len(root)} bytes, expected {HASH_SIZE}")
    # 5. Any further lines are non-empty extension lines.
    for number, line in enumerate(lines[3:], start=4):
        if not line:
            raise ProofError(f"checkpoint line {number}: extension line is empty")
    return Checkpoint(lines[0], size, root, tuple(lines[3:]))


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    """The checkpoint as a note signed by ``signer``."""
    return signer.sign(checkpoint.to_body())


def open_checkpoint(
    note_text: str, verifier: NoteVerifier, *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint and parse it; :class:`ProofError` if anything fails.

    ``origin``, when given, is the log identity the caller trusts ``verifier`` for; a
    checkpoint for any other origin is refused even if its signature is valid.
    """
    # 1. The note carries a valid signature from the verifier's key.
    body = open_note(note_text, verifier)
    # 2. Its text is a well-formed checkpoint.
    checkpoint = parse_checkpoint_body(body)
    # 3. It is for the log the caller expects.
    if origin is not None and checkpoint.origin != origin:
        raise ProofError(
            f"checkpoint origin {checkpoint.origin!r} is not the expected origin {origin!r}"
        )
    return checkpoint
