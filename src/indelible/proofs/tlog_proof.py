"""C2SP transparency log proofs (``c2sp.org/tlog-proof@v1``): one entry, verifiable offline.

The format is newline-separated lines::

    c2sp.org/tlog-proof@v1
    extra <base64 opaque data>       optional; NOT authenticated by anything
    index <n>                        zero-based, ASCII decimal, no leading zeroes
    <base64 hash>                    zero or more: the RFC 6962 §2.1.1 inclusion path,
    ...                              leaf's sibling first, one SHA-256 hash per line
                                     an empty line
    <signed checkpoint note>         verbatim, per c2sp.org/tlog-checkpoint

Indelible puts the entry's canonical bytes in ``extra`` so that an auditor holding only
the proof file and the log's verifier key can check it. That data is trusted only after
its leaf hash has been proved included under the signed root.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._text import MAX_UINT64, b64decode, b64encode, decimal
from .checkpoint import Checkpoint, open_checkpoint
from .errors import ProofError
from .hashing import HASH_SIZE, leaf_hash
from .merkle import verify_inclusion
from .note import NoteVerifier

__all__ = ["HEADER", "TlogProof", "format_tlog_proof", "parse_tlog_proof", "verify_tlog_proof"]

HEADER = "c2sp.org/tlog-proof@v1"
_EXTRA = "extra "
_INDEX = "index "


@dataclass(frozen=True)
class TlogProof:
    """The parts of a tlog-proof file. Invalid fields raise ``ValueError``."""

    index: int  # zero-based leaf index
    hashes: tuple[bytes, ...]  # inclusion path, 32 bytes each, leaf's sibling first
    checkpoint_note: str  # the signed checkpoint, verbatim
    extra: bytes | None = None  # opaque, unauthenticated (Indelible: the entry bytes)

    def __post_init__(self) -> None:
        if type(self.index) is not int or not 0 <= self.index <= MAX_UINT64:
            raise ValueError(f"tlog-proof index must be an integer in [0, 2**64): {self.index!r}")
        if type(self.hashes) is not tuple:
            raise ValueError("tlog-proof hashes must be a tuple")
        for i, h in enumerate(self.hashes):
            if type(h) is not bytes or len(h) != HASH_SIZE:
                raise ValueError(f"tlog-proof hash {i} is not {HASH_SIZE} bytes")
        if type(self.checkpoint_note) is not str or not self.checkpoint_note:
            raise ValueError("tlog-proof checkpoint note must be a non-empty str")
        if self.extra is not None and type(self.extra) is not bytes:
            raise ValueError("tlog-proof extra data must be bytes or None")


def format_tlog_proof(proof: TlogProof) -> str:
    """The ``.tlog-proof`` text of ``proof``; :func:`parse_tlog_proof` inverts it exactly."""
    lines = [HEADER]
    if proof.extra is not None:
        lines.append(_EXTRA + b64encode(proof.extra))
    lines.append(f"{_INDEX}{proof.index}")
    lines.extend(b64encode(h) for h in proof.hashes)
    return "\n".join(lines) + "\n\n" + proof.checkpoint_note


def parse_tlog_proof(text: str) -> TlogProof:
    """Parse a tlog-proof strictly; :class:`ProofError` names the offending line.

    The checkpoint note is kept verbatim and checked when it is opened
    (:func:`verify_tlog_proof`).
    """
    if type(text) is not str:
        raise ProofError(f"tlog-proof must be a str, got {type(text).__name__}")
    # 1. The header lines end at the first empty line; the checkpoint note follows it.
    head, blank, note = text.partition("\n\n")
    if not blank:
        raise ProofError("tlog-proof has no empty line before the checkpoint")
    if not note:
        raise ProofError("tlog-proof has no checkpoint after the empty line")
    lines = head.split("\n")
    # 2. Line 1 is the format's header.
    if lines[0] != HEADER:
        raise ProofError(f"tlog-proof line 1: expected {HEADER!r}, got {lines[0][:80]!r}")
    # 3. An optional 'extra <base64>' line.
    n, extra = 1, None
    if n < len(lines) and lines[n].startswith(_EXTRA):
        extra = b64decode(lines[n][len(_EXTRA) :], f"tlog-proof line {n + 1}", "extra data")
        n += 1
    # 4. The 'index <n>' line.
    if n == len(lines) or not lines[n].startswith(_INDEX):
        got = lines[n][:80] if n < len(lines) else ""
        raise ProofError(f"tlog-proof line {n + 1}: expected 'index <n>', got {got!r}")
    index = decimal(lines[n][len(_INDEX) :], f"tlog-proof line {n + 1}", "index")
    # 5. One base64 SHA-256 hash per remaining line.
    hashes = []
    for number, line in enumerate(lines[n + 1 :], start=n + 2):
        digest = b64decode(line, f"tlog-proof line {number}", "proof hash")
        if len(digest) != HASH_SIZE:
            raise ProofError(
                f"tlog-proof line {number}: proof hash is {len(digest)} bytes, expected {HASH_SIZE}"
            )
        hashes.append(digest)
    return TlogProof(index, tuple(hashes), note, extra)


def verify_tlog_proof(
    text: str,
    verifier: NoteVerifier,
    *,
    leaf: bytes | None = None,
    origin: str | None = None,
) -> tuple[Checkpoint, bytes]:
    """Verify a tlog-proof offline; return the checkpoint and the proved leaf bytes.

    ``leaf`` is the entry the caller wants proved; without it the proof's ``extra`` data
    is taken as the entry (and so becomes trustworthy only once this returns). ``origin``
    pins the log identity. Raises :class:`ProofError` if anything does not hold.
    """
    # 1. Parse the file.
    proof = parse_tlog_proof(text)
    # 2. Open the checkpoint: a valid signature from the log's key (and the right origin).
    checkpoint = open_checkpoint(proof.checkpoint_note, verifier, origin=origin)
    # 3. The leaf: what the caller gave, else the extra data.
    data = leaf if leaf is not None else proof.extra
    if data is None:
        raise ProofError("tlog-proof has no extra data and no leaf was given to prove")
    if type(data) is not bytes:
        raise ProofError(f"leaf must be bytes, got {type(data).__name__}")
    # 4. The leaf is included at the index in the checkpointed tree.
    root = checkpoint.root_hash
    verify_inclusion(proof.index, checkpoint.size, leaf_hash(data), proof.hashes, root)
    return checkpoint, data
