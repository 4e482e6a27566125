"""C2SP tlog-checkpoint bodies and signed checkpoints."""

from __future__ import annotations

import base64

import pytest

from indelible.proofs import (
    EMPTY_ROOT,
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    ProofError,
    leaf_hash,
    open_checkpoint,
    parse_checkpoint_body,
    sign_checkpoint,
)

ROOT = leaf_hash(b"root")
ROOT_B64 = base64.b64encode(ROOT).decode()
ORIGIN = "example.com/ledger/t1"


@pytest.fixture(scope="module")
def signer() -> NoteSigner:
    return NoteSigner.generate(ORIGIN)


@pytest.fixture(scope="module")
def verifier(signer) -> NoteVerifier:
    return NoteVerifier.from_key_text(signer.verifier_key_text())


def test_the_spec_example_body_parses_and_formats_back_exactly():
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    cp = parse_checkpoint_body(body)
    assert (cp.origin, cp.size, cp.extensions) == ("example.com/behind-the-sofa", 20852163, ())
    assert cp.to_body() == body


@pytest.mark.parametrize(
    "body",
    [
        f"{ORIGIN}\n0\n{base64.b64encode(EMPTY_ROOT).decode()}\n",
        f"{ORIGIN}\n18446744073709551615\n{ROOT_B64}\n",
        f"{ORIGIN}\n7\n{ROOT_B64}\next one\n— ext two\n",
        f"origin with spaces+plus\n1\n{ROOT_B64}\n",
    ],
)
def test_bodies_round_trip_exactly(body):
    assert parse_checkpoint_body(body).to_body() == body


def test_a_signed_checkpoint_opens_to_the_same_checkpoint(signer, verifier):
    cp = Checkpoint(ORIGIN, 42, ROOT, ("extension",))
    note = sign_checkpoint(cp, signer)
    assert note.startswith(cp.to_body() + "\n\u2014 " + ORIGIN + " ")
    assert open_checkpoint(note, verifier) == cp
    assert open_checkpoint(note, verifier, origin=ORIGIN) == cp


def test_a_checkpoint_for_another_origin_is_refused(signer, verifier):
    note = sign_checkpoint(Checkpoint("example.com/ledger/t2", 1, ROOT), signer)
    with pytest.raises(ProofError, match="origin 'example.com/ledger/t2' is not the expected origin"):
        open_checkpoint(note, verifier, origin=ORIGIN)


def test_a_checkpoint_signed_by_another_key_is_refused(verifier):
    note = sign_checkpoint(Checkpoint(ORIGIN, 1, ROOT), NoteSigner.generate(ORIGIN))
    with pytest.raises(ProofError, match="no signature from key"):
        open_checkpoint(note, verifier)


def test_a_tampered_size_is_refused(signer, verifier):
    note = sign_checkpoint(Checkpoint(ORIGIN, 10, ROOT), signer)
    with pytest.raises(ProofError, match="does not verify"):
        open_checkpoint(note.replace("\n10\n", "\n11\n"), verifier)


def test_a_signed_note_that_is_not_a_checkpoint_is_refused(signer, verifier):
    with pytest.raises(ProofError, match="checkpoint has 2 lines, expected at least 3"):
        open_checkpoint(signer.sign("hello\nworld\n"), verifier)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (f"{ORIGIN}\n1\n{ROOT_B64}", "checkpoint does not end with a newline"),
        (f"{ORIGIN}\n1\n", "checkpoint has 2 lines, expected at least 3"),
        ("", "checkpoint does not end with a newline"),
        (f"\n1\n{ROOT_B64}\n", "checkpoint line 1: origin is empty"),
        (f"{ORIGIN}\n01\n{ROOT_B64}\n", "checkpoint line 2: size '01' is not a canonical decimal"),
        (f"{ORIGIN}\n-1\n{ROOT_B64}\n", "checkpoint line 2: size '-1' is not a canonical decimal"),
        (f"{ORIGIN}\n+1\n{ROOT_B64}\n", "checkpoint line 2: size '\\+1' is not a canonical decimal"),
        (f"{ORIGIN}\n 1\n{ROOT_B64}\n", "checkpoint line 2: size ' 1' is not a canonical decimal"),
        (f"{ORIGIN}\n\n{ROOT_B64}\n", "checkpoint line 2: size '' is not a canonical decimal"),
        (f"{ORIGIN}\n\u0661\n{ROOT_B64}\n", "checkpoint line 2: size '\u0661' is not a canonical decimal"),
        (f"{ORIGIN}\n1_000\n{ROOT_B64}\n", "checkpoint line 2: size '1_000' is not a canonical decimal"),
        (f"{ORIGIN}\n18446744073709551616\n{ROOT_B64}\n", "checkpoint line 2: size 18446744073709551616 does not fit in 64 bits"),
        (f"{ORIGIN}\n1\nnot base64!\n", "checkpoint line 3: root hash is not valid base64"),
        (f"{ORIGIN}\n1\n{ROOT_B64[:-1]}\n", "checkpoint line 3: root hash is not valid base64"),
        (f"{ORIGIN}\n1\n{ROOT_B64[:-2]}9=\n", "checkpoint line 3: root hash is not canonical base64"),
        (f"{ORIGIN}\n1\n{base64.b64encode(ROOT[:31]).decode()}\n", "checkpoint line 3: root hash is 31 bytes, expected 32"),
        (f"{ORIGIN}\n1\n{ROOT_B64}\next\n\n", "checkpoint line 5: extension line is empty"),
        (f"{ORIGIN}\r\n1\n{ROOT_B64}\n", "checkpoint contains control character U\\+000D"),
        (b"bytes", "checkpoint must be a str, got bytes"),
    ],
)
def test_malformed_bodies_are_refused_naming_the_line(body, message):
    with pytest.raises(ProofError, match=message):
        parse_checkpoint_body(body)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (("", 1, ROOT), "origin '': must be a non-empty string"),
        (("a\nb", 1, ROOT), "must not contain a newline"),
        (("a\tb", 1, ROOT), "control character U\\+0009"),
        ((ORIGIN, -1, ROOT), "size must be an integer"),
        ((ORIGIN, 2**64, ROOT), "size must be an integer"),
        ((ORIGIN, True, ROOT), "size must be an integer"),
        ((ORIGIN, 1, ROOT[:31]), "root hash must be 32 bytes"),
        ((ORIGIN, 1, ROOT, ["x"]), "extensions must be a tuple"),
        ((ORIGIN, 1, ROOT, ("",)), "extension line '': must be a non-empty string"),
        ((ORIGIN, 1, ROOT, ("a\nb",)), "must not contain a newline"),
    ],
)
def test_a_checkpoint_that_could_not_be_written_is_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        Checkpoint(*fields)


def test_checkpoints_are_frozen():
    cp = Checkpoint(ORIGIN, 1, ROOT)
    with pytest.raises(AttributeError):
        cp.size = 2  # type: ignore[misc]
