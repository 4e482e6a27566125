"""Pure, offline-verifiable evidence for the Indelible ledger.

Everything an auditor or a third party needs to check the ledger without trusting it:

- :mod:`.canonical` RFC 8785 canonical JSON, the bytes every entry is hashed as;
- :mod:`.hashing` RFC 9162 §2.1.1 leaf and node hashes;
- :mod:`.merkle` RFC 9162 §2.1.3-2.1.4 inclusion and consistency proofs (verify, generate);
- :mod:`.compact` the Merkle frontier a log head keeps, and perfect-subtree roots;
- :mod:`.note` C2SP signed notes (Ed25519);
- :mod:`.checkpoint` C2SP tlog-checkpoint;
- :mod:`.tlog_proof` C2SP tlog-proof, one entry's self-contained proof file;
- :mod:`.cosignature` C2SP tlog-cosignature (Ed25519, timestamped) and witness policies;
- :mod:`.tlog_witness` C2SP tlog-witness request and answer bodies;
- :mod:`.bundle` (and :mod:`.bundle_layout`) evidence bundles: their format and offline
  verification;
- :mod:`.timestamp` RFC 3161 timestamp tokens over checkpoints (needs ``rfc3161-client``,
  imported only when a token is made or checked).

This package imports nothing else from :mod:`indelible`, performs no I/O, and depends
only on the standard library and ``cryptography`` (and, for timestamp tokens only,
``rfc3161-client``): the offline verifier ships it alone.
Errors: :class:`ProofError` for evidence that does not hold, :class:`CanonicalError` for
a value that cannot be canonically encoded (see :mod:`.errors`).
"""

from .canonical import canonical_json, check_canonical
from .checkpoint import Checkpoint, open_checkpoint, parse_checkpoint_body, sign_checkpoint
from .cosignature import (
    Cosigner,
    CosignerKey,
    WitnessPolicy,
    check_witness_quorum,
    parse_witness_policy,
)
from .compact import TILE_HEIGHT, CompactRange, fold_perfect
from .errors import CanonicalError, ProofError
from .hashing import EMPTY_ROOT, HASH_SIZE, LEAF_PREFIX, NODE_PREFIX, leaf_hash, node_hash
from .merkle import (
    consistency_proof,
    inclusion_proof,
    perfect_subtrees,
    range_root,
    root_from_inclusion_proof,
    tree_root,
    verify_consistency,
    verify_inclusion,
)
from .note import NoteSigner, NoteVerifier, open_note
from .tlog_proof import TlogProof, format_tlog_proof, parse_tlog_proof, verify_tlog_proof
from .tlog_witness import AddCheckpoint, format_add_checkpoint, parse_add_checkpoint

__all__ = [
    "AddCheckpoint",
    "Cosigner",
    "CosignerKey",
    "WitnessPolicy",
    "check_witness_quorum",
    "format_add_checkpoint",
    "parse_add_checkpoint",
    "parse_witness_policy",
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LEAF_PREFIX",
    "NODE_PREFIX",
    "TILE_HEIGHT",
    "CanonicalError",
    "Checkpoint",
    "CompactRange",
    "NoteSigner",
    "NoteVerifier",
    "ProofError",
    "TlogProof",
    "canonical_json",
    "check_canonical",
    "consistency_proof",
    "fold_perfect",
    "format_tlog_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint_body",
    "parse_tlog_proof",
    "perfect_subtrees",
    "range_root",
    "root_from_inclusion_proof",
    "sign_checkpoint",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
    "verify_tlog_proof",
]
