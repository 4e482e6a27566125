"""The C2SP tlog-witness ``add-checkpoint`` request and ``409`` response bodies.

Request body (``POST <submission prefix>/add-checkpoint``)::

    old <size>                 the size the client believes the witness last cosigned
    <base64 hash>              zero to 63 lines: RFC 6962 consistency proof old -> new
                               an empty line
    <signed checkpoint note>   verbatim, may carry several signatures

A ``409 Conflict`` answer carries ``<size>\\n`` as ``text/x.tlog.size``: the size the
witness last cosigned, from which the client retries.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._text import MAX_UINT64, b64decode, b64encode, check_text, decimal
from .errors import ProofError
from .hashing import HASH_SIZE

__all__ = ["MAX_PROOF_LINES", "SIZE_MEDIA_TYPE", "AddCheckpoint", "format_add_checkpoint",
           "parse_add_checkpoint", "parse_size_body"]

MAX_PROOF_LINES = 63  # the spec's limit on consistency proof lines
SIZE_MEDIA_TYPE = "text/x.tlog.size"
_OLD = "old "


@dataclass(frozen=True)
class AddCheckpoint:
    old_size: int
    proof: tuple[bytes, ...]  # consistency proof old_size -> the checkpoint's size
    note: str  # the signed checkpoint, verbatim

    def __post_init__(self) -> None:
        if type(self.old_size) is not int or not 0 <= self.old_size <= MAX_UINT64:
            raise ValueError(f"old size must be an integer in [0, 2**64): {self.old_size!r}")
        if type(self.proof) is not tuple or len(self.proof) > MAX_PROOF_LINES:
            raise ValueError(f"proof must be a tuple of at most {MAX_PROOF_LINES} hashes")
        if any(type(h) is not bytes or len(h) != HASH_SIZE for h in self.proof):
            raise ValueError(f"every proof hash must be {HASH_SIZE} bytes")
        if type(self.note) is not str or not self.note:
            raise ValueError("the checkpoint note must be a non-empty str")


def format_add_checkpoint(request: AddCheckpoint) -> str:
    lines = [f"{_OLD}{request.old_size}", *(b64encode(h) for h in request.proof)]
    return "\n".join(lines) + "\n\n" + request.note


def parse_add_checkpoint(text: str) -> AddCheckpoint:
    """Parse a request body strictly; :class:`ProofError` names the offending line."""
    check_text(text, "add-checkpoint body")
    head, blank, note = text.partition("\n\n")
    if not blank:
        raise ProofError("add-checkpoint body has no empty line before the checkpoint")
    if not note:
        raise ProofError("add-checkpoint body has no checkpoint after the empty line")
    lines = head.split("\n")
    if not lines[0].startswith(_OLD):
        raise ProofError(f"add-checkpoint line 1: expected 'old <size>', got {lines[0][:80]!r}")
    old = decimal(lines[0][len(_OLD):], "add-checkpoint line 1", "old size")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise ProofError(f"add-checkpoint body has {len(lines) - 1} proof lines, more than "
                         f"{MAX_PROOF_LINES}")
    proof = []
    for number, line in enumerate(lines[1:], start=2):
        digest = b64decode(line, f"add-checkpoint line {number}", "proof hash")
        if len(digest) != HASH_SIZE:
            raise ProofError(f"add-checkpoint line {number}: proof hash is {len(digest)} "
                             f"bytes, expected {HASH_SIZE}")
        proof.append(digest)
    return AddCheckpoint(old, tuple(proof), note)


def parse_size_body(text: str) -> int:
    """The body of a 409 answer: one decimal size and a newline."""
    if type(text) is not str or not text.endswith("\n"):
        raise ProofError("tlog size body must be a decimal followed by a newline")
    return decimal(text[:-1], "tlog size body", "size")
