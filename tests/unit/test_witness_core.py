"""The witness's add-checkpoint decision (C2SP tlog-witness), and its request format."""

from __future__ import annotations

import base64
import hashlib
import struct
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from indelible.proofs import (
    AddCheckpoint,
    Checkpoint,
    Cosigner,
    NoteSigner,
    NoteVerifier,
    ProofError,
    consistency_proof,
    fold_perfect,
    format_add_checkpoint,
    leaf_hash,
    parse_add_checkpoint,
    sign_checkpoint,
    tree_root,
)
from indelible.proofs.cosignature import verify_cosignature_line
from indelible.proofs.tlog_witness import parse_size_body
from indelible.witness.core import Witness
from indelible.witness.state import WitnessState

LOG = NoteSigner.generate("example.com/log")
ORIGIN = "example.com/log/acme"


class Tree:
    def __init__(self, prefix: str = "entry"):
        self.leaves = [leaf_hash(f"{prefix} {i}".encode()) for i in range(1000)]

    def subtree(self, level: int, index: int) -> bytes:
        span = self.leaves[index << level:(index + 1) << level]
        return fold_perfect(span) if level else span[0]

    def root(self, size: int) -> bytes:
        return tree_root(size, self.subtree)

    def note(self, size: int, signer: NoteSigner = LOG, origin: str = ORIGIN) -> str:
        return sign_checkpoint(Checkpoint(origin, size, self.root(size)), signer)

    def request(self, old: int, size: int, **kw) -> str:
        proof = consistency_proof(old, size, self.subtree) if 0 < old < size else []
        return format_add_checkpoint(AddCheckpoint(old, tuple(proof), self.note(size, **kw)))


@pytest.fixture
def witness(tmp_path):
    return Witness(cosigner=Cosigner.generate("witness.example/w1"),
                   logs=[NoteVerifier.from_key_text(LOG.verifier_key_text())],
                   state=WitnessState(tmp_path / "state"), clock=lambda: 1_700_000_000)


def test_a_first_checkpoint_is_cosigned_and_the_cosignature_verifies(witness):
    tree = Tree()
    answer = witness.add_checkpoint(tree.request(0, 10))
    assert answer.status == 200 and answer.body.startswith("\u2014 witness.example/w1 ")
    body = tree.note(10)[:tree.note(10).rfind("\n\n") + 1]
    assert verify_cosignature_line(answer.body, witness.cosigner.key, body) == 1_700_000_000


def test_the_witness_answer_verifies_by_the_spec_text_alone(witness):
    # Independent of the cosignature module: key ID, message and layout as tlog-cosignature
    # and signed-note define them.
    tree = Tree()
    answer = witness.add_checkpoint(tree.request(0, 4)).body
    name, encoded = answer.removeprefix("\u2014 ").removesuffix("\n").split(" ")
    raw = base64.b64decode(encoded)
    public = witness.cosigner.key.key_text().split("+", 2)[2]
    public = base64.b64decode(public)[1:]
    assert name == "witness.example/w1"
    assert raw[:4] == hashlib.sha256(name.encode() + b"\n\x04" + public).digest()[:4]
    assert struct.unpack(">Q", raw[4:12])[0] == 1_700_000_000
    note = tree.note(4)
    message = b"cosignature/v1\ntime 1700000000\n" + note[:note.rfind("\n\n") + 1].encode()
    Ed25519PublicKey.from_public_bytes(public).verify(raw[12:], message)  # raises if not


def test_a_consistent_extension_is_cosigned(witness):
    tree = Tree()
    assert witness.add_checkpoint(tree.request(0, 10)).status == 200
    assert witness.add_checkpoint(tree.request(10, 17)).status == 200
    assert witness.add_checkpoint(tree.request(17, 17)).status == 200  # same tree again


def test_a_stale_old_size_gets_409_with_the_witness_size(witness):
    tree = Tree()
    witness.add_checkpoint(tree.request(0, 10))
    answer = witness.add_checkpoint(tree.request(0, 12))
    assert answer.status == 409 and answer.content_type == "text/x.tlog.size"
    assert parse_size_body(answer.body) == 10


def test_a_fork_is_refused_422_with_a_proof_and_409_at_the_same_size(witness):
    real, fork = Tree(), Tree("forged")
    witness.add_checkpoint(real.request(0, 10))
    assert witness.add_checkpoint(fork.request(10, 12)).status == 422
    assert witness.add_checkpoint(fork.request(10, 10)).status == 409
    assert witness.add_checkpoint(real.request(10, 12)).status == 200  # state unharmed


def test_an_unknown_origin_is_404_and_an_untrusted_signature_403(witness):
    tree = Tree()
    assert witness.add_checkpoint(tree.request(0, 3, origin="other.example/log")).status == 404
    impostor = NoteSigner.generate("example.com/log")  # same name, another key
    assert witness.add_checkpoint(tree.request(0, 3, signer=impostor)).status == 403


@pytest.mark.parametrize("body, match", [
    ("old 1\n\n", "no checkpoint"),
    ("old 01\n\nx\n", "not a canonical decimal"),
    ("new 1\n\nx\n", "expected 'old <size>'"),
    ("old 0\n", "no empty line"),
])
def test_malformed_requests_are_400_naming_the_problem(witness, body, match):
    answer = witness.add_checkpoint(body)
    assert answer.status == 400 and __import__("re").search(match, answer.body)


def test_an_old_size_above_the_checkpoint_is_400(witness):
    tree = Tree()
    note = tree.note(5)
    answer = witness.add_checkpoint(format_add_checkpoint(AddCheckpoint(6, (), note)))
    assert answer.status == 400 and "larger than the checkpoint size" in answer.body


def test_state_survives_a_new_witness_on_the_same_directory(witness, tmp_path):
    tree = Tree()
    witness.add_checkpoint(tree.request(0, 10))
    again = Witness(cosigner=witness.cosigner, logs=[NoteVerifier.from_key_text(
        LOG.verifier_key_text())], state=WitnessState(tmp_path / "state"))
    assert parse_size_body(again.add_checkpoint(tree.request(0, 11)).body) == 10


def test_racing_requests_never_roll_the_state_back(witness):
    tree = Tree()
    witness.add_checkpoint(tree.request(0, 1))
    sizes = list(range(2, 60))
    requests = {n: tree.request(1, n) for n in sizes}  # all claim old size 1: one may win
    answers = {}

    def submit(n):
        answers[n] = witness.add_checkpoint(requests[n]).status

    threads = [threading.Thread(target=submit, args=(n,)) for n in sizes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [n for n, status in answers.items() if status == 200]
    assert len(winners) == 1 and all(s in (200, 409) for s in answers.values())
    answer = witness.add_checkpoint(tree.request(0, 60))
    assert parse_size_body(answer.body) == winners[0]


def test_request_bodies_round_trip():
    request = AddCheckpoint(3, (bytes(32), bytes([1]) * 32), "o\n5\n" + "A" * 43 + "=\n\n\u2014 k x\n")
    assert parse_add_checkpoint(format_add_checkpoint(request)) == request


def test_more_than_63_proof_lines_are_refused():
    text = "old 1\n" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" * 64 + "\nx\n"
    with pytest.raises(ProofError, match="64 proof lines, more than 63"):
        parse_add_checkpoint(text)
