"""indelible.proofs stands alone: the offline verifier and third parties depend on it only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import indelible.proofs as proofs

PACKAGE = Path(proofs.__file__).parent
# rfc3161-client only inside timestamp.py's functions, for those who check RFC 3161 tokens.
ALLOWED_THIRD_PARTY = {"cryptography", "rfc3161_client"}

PUBLIC_NAMES = {
    "ProofError", "CanonicalError",
    "LEAF_PREFIX", "NODE_PREFIX", "HASH_SIZE", "EMPTY_ROOT", "leaf_hash", "node_hash",
    "verify_inclusion", "verify_consistency", "root_from_inclusion_proof", "perfect_subtrees",
    "range_root", "tree_root", "inclusion_proof", "consistency_proof", "fold_perfect",
    "CompactRange", "TILE_HEIGHT",
    "canonical_json",
    "NoteSigner", "NoteVerifier", "open_note",
    "Checkpoint", "parse_checkpoint_body", "sign_checkpoint", "open_checkpoint",
    "TlogProof", "format_tlog_proof", "parse_tlog_proof", "verify_tlog_proof",
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_the_package_imports_only_the_standard_library_and_cryptography():
    modules = sorted(PACKAGE.glob("*.py"))
    assert modules
    for path in modules:
        outside = _imports(path) - set(sys.stdlib_module_names) - ALLOWED_THIRD_PARTY
        assert not outside, f"{path.name} imports {sorted(outside)}"


def test_the_package_does_no_io():
    forbidden = {"open", "socket", "subprocess", "os", "pathlib", "io", "sqlite3", "urllib"}
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert not (_imports(path) | names) & forbidden, path.name


def test_the_package_exports_the_agreed_public_names():
    assert PUBLIC_NAMES <= set(proofs.__all__)
    for name in proofs.__all__:
        assert getattr(proofs, name) is not None


def test_the_merkle_module_also_offers_the_frontier_and_fold():
    from indelible.proofs import merkle

    assert merkle.CompactRange is proofs.CompactRange
    assert merkle.fold_perfect is proofs.fold_perfect
    assert merkle.TILE_HEIGHT == 8
