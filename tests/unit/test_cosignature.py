"""C2SP tlog-cosignature: keys, the signed message, witness policies and the quorum check.

The interoperability tests build keys, key IDs, messages and signature lines from the spec
text alone (hashlib, struct and the Ed25519 primitive), never through the module under test.
"""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from indelible.proofs import (
    Checkpoint,
    Cosigner,
    CosignerKey,
    NoteSigner,
    NoteVerifier,
    ProofError,
    WitnessPolicy,
    check_witness_quorum,
    open_checkpoint,
    parse_witness_policy,
    sign_checkpoint,
)
from indelible.proofs.cosignature import add_signature_lines, verify_cosignature_line

SEED = bytes(range(32))
BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


def _by_the_spec(name: str, seed: bytes, body: str, timestamp: int) -> tuple[str, str]:
    """(verifier key text, signature line) following tlog-cosignature and signed-note."""
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes_raw()
    key_id = hashlib.sha256(name.encode() + b"\n" + b"\x04" + public).digest()[:4]
    message = b"cosignature/v1\n" + b"time " + str(timestamp).encode() + b"\n" + body.encode()
    raw = key_id + struct.pack(">Q", timestamp) + private.sign(message)
    key = base64.b64encode(bytes([0x04]) + public).decode()
    vkey = f"{name}+{key_id.hex()}+{key}"
    return vkey, "\u2014 " + name + " " + base64.b64encode(raw).decode()


def test_a_cosignature_equals_one_built_from_the_spec_text():
    cosigner = Cosigner("witness.example.com/w1", Ed25519PrivateKey.from_private_bytes(SEED))
    vkey, line = _by_the_spec("witness.example.com/w1", SEED, BODY, 1679315147)
    assert cosigner.key.key_text() == vkey
    assert cosigner.cosign(BODY, 1679315147) == line + "\n"  # Ed25519 is deterministic


def test_a_cosignature_built_from_the_spec_text_verifies_and_yields_its_time():
    vkey, line = _by_the_spec("w.example/a", SEED, BODY, 1700000000)
    assert verify_cosignature_line(line, CosignerKey.from_key_text(vkey), BODY) == 1700000000


def test_the_spec_example_line_carries_the_example_time():
    # tlog-cosignature's example: key ID, then the big-endian timestamp 1679315147.
    raw = base64.b64decode("jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJ"
                           "sX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==")
    assert len(raw) == 4 + 8 + 64
    assert struct.unpack(">Q", raw[4:12])[0] == 1679315147


def test_the_key_type_is_0x04_and_the_log_key_type_is_refused():
    log_key = NoteSigner.generate("example.com/log").verifier_key_text()
    with pytest.raises(ProofError, match="key type 0x01 is not an Ed25519 cosignature key"):
        CosignerKey.from_key_text(log_key)


def test_key_texts_round_trip():
    cosigner = Cosigner.generate("w.example/b")
    again = Cosigner.from_private_key_text(cosigner.private_key_text())
    assert again.key == cosigner.key
    assert CosignerKey.from_key_text(cosigner.key.key_text()) == cosigner.key


@pytest.mark.parametrize("text, match", [
    ("w+abcd+AAAA", "key ID 'abcd' is not 8 lowercase hex digits"),
    ("w+00000000", "must have 3 '\\+'-separated fields"),
    ("w w+00000000+BA==", "must not contain spaces"),
    ("w+00000000+BA==", "key is 1 bytes, expected 33"),
])
def test_malformed_witness_keys_are_refused(text, match):
    with pytest.raises(ProofError, match=match):
        CosignerKey.from_key_text(text)


def test_a_key_id_that_does_not_match_the_key_is_refused():
    vkey = Cosigner.generate("w.example/c").key.key_text()
    name, _, key = vkey.split("+", 2)
    with pytest.raises(ProofError, match="does not match the key"):
        CosignerKey.from_key_text(f"{name}+00000000+{key}")


def test_a_cosignature_over_another_body_or_time_does_not_verify():
    cosigner = Cosigner.generate("w.example/d")
    line = cosigner.cosign(BODY, 5)
    with pytest.raises(ProofError, match="does not verify"):
        verify_cosignature_line(line, cosigner.key, BODY.replace("20852163", "20852164"))
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[11] ^= 1  # the timestamp is signed too
    tampered = "\u2014 w.example/d " + base64.b64encode(bytes(raw)).decode()
    with pytest.raises(ProofError, match="does not verify"):
        verify_cosignature_line(tampered, cosigner.key, BODY)


def test_a_line_from_another_key_is_not_ours():
    other = Cosigner.generate("w.example/e").cosign(BODY, 1)
    assert verify_cosignature_line(other, Cosigner.generate("w.example/e").key, BODY) is None


def _cosigned_note(*cosigners: Cosigner) -> tuple[str, NoteSigner]:
    log = NoteSigner.generate("example.com/log")
    note = sign_checkpoint(Checkpoint("example.com/log/t", 3, bytes(32)), log)
    body = note[:note.rfind("\n\n") + 1]
    return add_signature_lines(note, [c.cosign(body, 1000).rstrip("\n") for c in cosigners]), log


def test_a_quorum_of_listed_witnesses_is_accepted_and_others_are_ignored():
    a, b, stranger = (Cosigner.generate(f"w.example/{n}") for n in "abs")
    note, log = _cosigned_note(a, stranger, b)
    assert check_witness_quorum(note, WitnessPolicy((a.key, b.key), 2)) == {
        "w.example/a": 1000, "w.example/b": 1000}
    # The log's own verifier still opens the cosigned note: the witnesses' lines are ignored.
    assert open_checkpoint(note, NoteVerifier.from_key_text(log.verifier_key_text())).size == 3


def test_a_missing_quorum_names_the_missing_witnesses():
    a, b, c = (Cosigner.generate(f"w.example/{n}") for n in "abc")
    note, _ = _cosigned_note(a)
    with pytest.raises(ProofError, match="1 valid cosignature.* of the 2 required; missing: "
                                         "w.example/b, w.example/c"):
        check_witness_quorum(note, WitnessPolicy((a.key, b.key, c.key), 2))


def test_a_repeated_cosignature_counts_once():
    a, b = Cosigner.generate("w.example/a"), Cosigner.generate("w.example/b")
    note, _ = _cosigned_note(a)
    body = note[:note.rfind("\n\n") + 1]
    note += a.cosign(body, 2000)  # the same witness again, another time
    with pytest.raises(ProofError, match="missing: w.example/b"):
        check_witness_quorum(note, WitnessPolicy((a.key, b.key), 2))


def test_a_cosignature_over_another_checkpoint_does_not_count_and_is_named():
    a = Cosigner.generate("w.example/a")
    note, _ = _cosigned_note()
    forged = note + a.cosign(BODY, 7)  # a real cosignature, of a different checkpoint
    with pytest.raises(ProofError, match="missing: w.example/a .*does not verify"):
        check_witness_quorum(forged, WitnessPolicy((a.key,), 1))


@pytest.mark.parametrize("quorum", [0, 3])
def test_a_policy_fails_closed(quorum):
    keys = (Cosigner.generate("w.example/a").key, Cosigner.generate("w.example/b").key)
    with pytest.raises(ValueError, match="quorum must be between 1 and 2"):
        WitnessPolicy(keys, quorum)
    with pytest.raises(ValueError, match="at least one witness"):
        WitnessPolicy((), 1)


def test_a_policy_file_parses_and_its_errors_name_the_line():
    a, b = Cosigner.generate("w.example/a"), Cosigner.generate("w.example/b")
    text = f"# auditors' policy\nwitness {a.key.key_text()}\n\nwitness {b.key.key_text()}\nquorum 2\n"
    policy = parse_witness_policy(text)
    assert policy.witnesses == (a.key, b.key) and policy.quorum == 2
    with pytest.raises(ProofError, match="line 1: expected 'witness <key>' or 'quorum <K>'"):
        parse_witness_policy("witnesses x\n")
    with pytest.raises(ProofError, match="no 'quorum <K>' line"):
        parse_witness_policy(f"witness {a.key.key_text()}\n")
    with pytest.raises(ProofError, match="line 2: a second quorum line"):
        parse_witness_policy(f"quorum 1\nquorum 1\nwitness {a.key.key_text()}\n")
    with pytest.raises(ProofError, match="quorum must be between 1 and 1"):
        parse_witness_policy(f"witness {a.key.key_text()}\nquorum 2\n")
