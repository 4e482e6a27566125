"""Every RFC 6962 / RFC 9162 proof vector in ../shared/vectors/merkle (see its NOTICE.md).

The vectors are transparency-dev/merkle's `testdata/` (Apache-2.0); they are not copied into
this repository. On a public clone, without `shared/` beside it, these tests skip and say
where to get them. CI sets INDELIBLE_REQUIRE_VECTORS=1 (see `.ci/run`): there a missing
folder fails, so the vectors never silently stop running.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from indelible.proofs import ProofError, verify_consistency, verify_inclusion

# tests/unit/<this file> -> parents[3] is the folder holding both the repo and shared/.
VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "merkle"
MISSING = (f"Merkle test vectors not found at {VECTORS}: they are the testdata/ folder of "
           "github.com/transparency-dev/merkle (inclusion/ and consistency/); place them there")
REQUIRED = os.environ.get("INDELIBLE_REQUIRE_VECTORS") == "1"


def _missing() -> None:
    if REQUIRED:
        pytest.fail(MISSING)
    pytest.skip(MISSING)


def _vector_files(kind: str) -> list:
    files = sorted((VECTORS / kind).rglob("*.json")) if (VECTORS / kind).is_dir() else []
    if not files:
        return [pytest.param(None, id=f"{kind}-vectors-missing")]
    return [pytest.param(f, id=str(f.relative_to(VECTORS))) for f in files]


def _load(path: Path | None) -> dict:
    if path is None:
        _missing()
    return json.loads(path.read_text())


def _hashes(values: list[str] | None) -> list[bytes]:
    return [base64.b64decode(v) for v in values or []]


def test_the_vector_folders_hold_inclusion_and_consistency_vectors():
    if not VECTORS.is_dir():
        _missing()
    for kind in ("inclusion", "consistency"):
        assert (VECTORS / kind).is_dir(), MISSING
        assert len(list((VECTORS / kind).rglob("*.json"))) > 10, MISSING


@pytest.mark.parametrize("path", _vector_files("inclusion"))
def test_inclusion_vector_is_accepted_or_refused_as_the_vector_says(path):
    v = _load(path)
    args = (
        v["leafIdx"],
        v["treeSize"],
        base64.b64decode(v["leafHash"]),
        _hashes(v["proof"]),
        base64.b64decode(v["root"]),
    )
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", _vector_files("consistency"))
def test_consistency_vector_is_accepted_or_refused_as_the_vector_says(path):
    v = _load(path)
    args = (
        v["size1"],
        v["size2"],
        _hashes(v["proof"]),
        base64.b64decode(v["root1"]),
        base64.b64decode(v["root2"]),
    )
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)
