"""The exceptions raised by :mod:`indelible.proofs`.

Exception tree::

    Exception
     └── ProofError          a proof, note, checkpoint or tlog-proof does not hold
    ValueError
     └── CanonicalError      a value cannot be encoded as RFC 8785 canonical JSON

Every verification and parse failure is a :class:`ProofError` whose message says
exactly what is wrong, so an auditor reading it knows which line or which hash to
look at. Misuse by a caller (for example asking for an inclusion proof of a leaf
that is not in the tree) raises :class:`ValueError` instead: that is a bug in the
calling code, not bad evidence.
"""

from __future__ import annotations

__all__ = ["CanonicalError", "ProofError"]


class ProofError(Exception):
    """Evidence failed to verify or to parse; the message names what is wrong."""


class CanonicalError(ValueError):
    """A value was refused for canonical encoding; the message names its JSON path."""
