"""The signing key file: created once, private, never half-written."""

from __future__ import annotations

import stat
import threading

import pytest

from indelible.keys import SigningKeyError, load_or_create_signer


def test_concurrent_first_starts_agree_on_one_key(tmp_path):
    path, signers = tmp_path / "signing.key", []
    threads = [threading.Thread(target=lambda: signers.append(load_or_create_signer(path, "n")))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({s.verifier_key_text() for s in signers}) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["signing.key"]  # no temporary files left


def test_a_key_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "signing.key"
    load_or_create_signer(path, "n")
    path.chmod(0o644)
    with pytest.raises(SigningKeyError, match="readable by others"):
        load_or_create_signer(path, "n")
