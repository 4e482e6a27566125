"""RFC 9162 §2.1.1 Merkle tree hashing with SHA-256.

The leaf and node prefixes provide second-preimage resistance: a leaf can never be
confused with an interior node because their hash inputs start with different bytes.
"""

from __future__ import annotations

from hashlib import sha256

__all__ = ["EMPTY_ROOT", "HASH_SIZE", "LEAF_PREFIX", "NODE_PREFIX", "leaf_hash", "node_hash"]

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
HASH_SIZE = 32  # bytes, SHA-256
EMPTY_ROOT = sha256(b"").digest()  # RFC 9162 §2.1.1: MTH({}) = HASH()


def leaf_hash(data: bytes) -> bytes:
    """Return ``HASH(0x00 || data)``, the RFC 9162 §2.1.1 hash of one leaf."""
    return sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return ``HASH(0x01 || left || right)``, the RFC 9162 §2.1.1 interior node hash."""
    return sha256(NODE_PREFIX + left + right).digest()
