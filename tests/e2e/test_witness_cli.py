"""`indelible witness key|serve` as an operator runs them: real subprocesses on 127.0.0.1."""

from __future__ import annotations

import stat

import pytest

from indelible.proofs import (
    AddCheckpoint,
    Checkpoint,
    NoteSigner,
    fold_perfect,
    format_add_checkpoint,
    leaf_hash,
    sign_checkpoint,
    tree_root,
)
from indelible.proofs.cosignature import verify_cosignature_line

from .cli_helpers import cli_env, indelible
from .witness_helpers import make_witness

LOG = NoteSigner.generate("example.com/log")
LEAVES = [leaf_hash(b"%d" % i) for i in range(64)]


def _note(size: int) -> str:
    root = tree_root(size, lambda level, i: LEAVES[i] if level == 0 else
                     fold_perfect(LEAVES[i << level:(i + 1) << level]))
    return sign_checkpoint(Checkpoint("example.com/log/acme", size, root), LOG)


@pytest.fixture
def env(tmp_path):
    return cli_env(tmp_path / "data", None)


def test_key_generate_writes_a_private_file_and_show_prints_the_same_key(tmp_path, env):
    out = tmp_path / "w.key"
    made = indelible(env, "witness", "key", "generate", "--name", "audit.example/w", "--out",
                     str(out))
    assert made.returncode == 0 and made.stdout.startswith("audit.example/w+")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert indelible(env, "witness", "key", "show", str(out)).stdout == made.stdout
    again = indelible(env, "witness", "key", "generate", "--name", "x", "--out", str(out))
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr
    out.chmod(0o644)
    shown = indelible(env, "witness", "key", "show", str(out))
    assert shown.returncode == 2 and "chmod 600" in shown.stderr


def test_a_restarted_witness_keeps_its_state(tmp_path, env):
    witness = make_witness(tmp_path, "audit.example/w", env, LOG.verifier_key_text()).start()
    try:
        note = _note(1)
        answer = witness.add_checkpoint(format_add_checkpoint(AddCheckpoint(0, (), note)))
        assert answer.status_code == 200
        body = note[:note.rfind("\n\n") + 1]
        assert verify_cosignature_line(answer.text, witness.key, body) is not None
        witness.stop()
        witness.start()
        stale = witness.add_checkpoint(format_add_checkpoint(AddCheckpoint(0, (), _note(1))))
        assert stale.status_code == 409 and stale.text == "1\n"
        assert stale.headers["content-type"] == "text/x.tlog.size"
        unknown = format_add_checkpoint(AddCheckpoint(0, (), sign_checkpoint(
            Checkpoint("elsewhere.example/log", 1, LEAVES[0]), LOG)))
        assert witness.add_checkpoint(unknown).status_code == 404
        assert witness.add_checkpoint("garbage").status_code == 400
    finally:
        witness.stop()
