"""C2SP signed notes: the Go reference example, round trips, and every refusal."""

from __future__ import annotations

import base64

import pytest

from indelible.proofs import NoteSigner, NoteVerifier, ProofError, open_note

# The example key and note of golang.org/x/mod/sumdb/note (the format's reference code).
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_NOTE = GO_TEXT + "\n" + GO_SIG


@pytest.fixture(scope="module")
def signer() -> NoteSigner:
    return NoteSigner.generate("example.com/log")


@pytest.fixture(scope="module")
def verifier(signer) -> NoteVerifier:
    return NoteVerifier.from_key_text(signer.verifier_key_text())


def signature_line(note: str) -> str:
    return note[note.rindex("\n\n") + 2 :]


# --- interoperability with the reference implementation ----------------------------------


def test_signing_with_the_go_example_key_reproduces_the_go_example_note():
    signer = NoteSigner.from_private_key_text(GO_SKEY)
    assert signer.name == "PeterNeumann"
    assert signer.key_id == bytes.fromhex("c74f20a3")
    assert signer.sign(GO_TEXT) == GO_NOTE


def test_the_go_example_note_opens_with_the_go_example_verifier_key():
    verifier = NoteVerifier.from_key_text(GO_VKEY)
    assert (verifier.name, verifier.key_id.hex()) == ("PeterNeumann", "c74f20a3")
    assert open_note(GO_NOTE, verifier) == GO_TEXT


def test_key_texts_round_trip_exactly():
    signer = NoteSigner.from_private_key_text(GO_SKEY)
    assert signer.private_key_text() == GO_SKEY
    assert signer.verifier_key_text() == GO_VKEY


@pytest.mark.parametrize(
    ("note", "message"),
    [
        (GO_TEXT, "no blank line between its text and its signatures"),
        (GO_TEXT + "\n", "no signature lines"),
        (GO_TEXT + "\n" + GO_SIG[:-1], "does not end with a newline"),
        ("\x01" + GO_NOTE, "control character U\\+0001 at offset 0"),
        ("\udcff" + GO_NOTE, "not valid UTF-8"),
        (GO_TEXT + "\n" + GO_SIG.replace("PeterNeumann", "Bad Name"), "line 1: expected '— <key name> <signature>'"),
        (GO_NOTE + "Unexpected line.\n", "line 2: does not start with an em dash"),
    ],
)
def test_the_go_reference_bad_notes_are_refused(note, message):
    with pytest.raises(ProofError, match=message):
        open_note(note, NoteVerifier.from_key_text(GO_VKEY))


def test_a_key_of_the_wrong_length_is_refused():
    with pytest.raises(ProofError, match="verifier key: key is not canonical base64"):
        NoteVerifier.from_key_text(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )


def test_a_key_of_another_algorithm_is_refused():
    with pytest.raises(ProofError, match="key type 0x65 is not Ed25519"):
        NoteVerifier.from_key_text("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


# --- round trips and verification policy -----------------------------------------------


@pytest.mark.parametrize("body", ["a\n", "\n", "two\nlines\n", "has\n\nblank lines\n\n", "— looks like a signature\n", "Zürich ✓ 😀\n"])
def test_a_signed_note_opens_to_exactly_its_text(signer, verifier, body):
    note = signer.sign(body)
    assert note.startswith(body + "\n\u2014 example.com/log ")
    assert open_note(note, verifier) == body


def test_a_note_signed_by_another_key_is_refused(verifier):
    other = NoteSigner.generate("example.com/other")
    with pytest.raises(ProofError, match="no signature from key example.com/log\\+"):
        open_note(other.sign("x\n"), verifier)


def test_a_key_with_the_same_name_but_another_id_is_ignored_and_not_sufficient(verifier):
    impostor = NoteSigner.generate("example.com/log")
    with pytest.raises(ProofError, match="no signature from key"):
        open_note(impostor.sign("x\n"), verifier)


def test_a_tampered_text_does_not_verify(signer, verifier):
    note = signer.sign("size 10\n")
    with pytest.raises(ProofError, match="line 1: signature from key example.com/log does not verify"):
        open_note(note.replace("size 10", "size 11"), verifier)


def test_signatures_from_other_keys_are_ignored_in_any_position(signer, verifier):
    other = NoteSigner.generate("witness.example/w1")
    body = "cosigned\n"
    mine, theirs = signature_line(signer.sign(body)), signature_line(other.sign(body))
    assert open_note(body + "\n" + theirs + mine, verifier) == body
    assert open_note(body + "\n" + mine + theirs, verifier) == body


def test_an_unverifiable_signature_from_other_keys_is_ignored(signer, verifier):
    body = "x\n"
    junk = "\u2014 witness.example/w1 " + base64.b64encode(b"\0" * 68).decode() + "\n"
    assert open_note(body + "\n" + junk + signature_line(signer.sign(body)), verifier) == body


def test_a_second_signature_from_the_same_key_is_refused(signer, verifier):
    note = signer.sign("x\n")
    with pytest.raises(ProofError, match="line 2: second signature from key example.com/log"):
        open_note(note + signature_line(note), verifier)


def test_a_bad_signature_from_the_key_rejects_the_note_even_beside_a_good_one(signer, verifier):
    note = signer.sign("x\n")
    raw = base64.b64decode(signature_line(note).split(" ")[2])
    bad = "\u2014 example.com/log " + base64.b64encode(raw[:4] + bytes(64)).decode() + "\n"
    body, good = note[: note.rindex("\n\n") + 1], signature_line(note)
    with pytest.raises(ProofError, match="line 1: signature from key example.com/log does not verify"):
        open_note(body + "\n" + bad + good, verifier)
    with pytest.raises(ProofError, match="line 2: second signature from key example.com/log"):
        open_note(body + "\n" + good + bad, verifier)


def test_a_signature_of_the_wrong_length_from_the_key_does_not_verify(signer, verifier):
    short = "\u2014 example.com/log " + base64.b64encode(signer.key_id + bytes(10)).decode() + "\n"
    with pytest.raises(ProofError, match="line 1: signature from key example.com/log does not verify"):
        open_note("x\n\n" + short, verifier)


def test_more_than_100_signatures_are_refused(verifier):
    line = "\u2014 other " + base64.b64encode(bytes(68)).decode() + "\n"
    with pytest.raises(ProofError, match="101 signatures, more than 100"):
        open_note("x\n\n" + line * 101, verifier)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("- example.com/log AAAAAAA=", "line 1: does not start with an em dash and a space"),
        ("\u2014example.com/log AAAAAAA=", "line 1: does not start with an em dash"),
        ("\u2014 example.com/log", "line 1: expected '— <key name> <signature>'"),
        ("\u2014 a b AAAAAAA=", "line 1: expected '— <key name> <signature>'"),
        ("\u2014  AAAAAAA=", "line 1: key name must be a non-empty string"),
        ("\u2014 a+b AAAAAAA=", "line 1: key name 'a\\+b' must not contain spaces or '\\+'"),
        ("\u2014 a\u00a0b AAAAAAA=", "line 1: key name .* must not contain spaces"),
        ("\u2014 a AAAA*AA=", "line 1: signature is not valid base64"),
        ("\u2014 a AAAAAAB=", "line 1: signature is not canonical base64"),
        ("\u2014 a AAAAAA==", "line 1: signature is 4 bytes, too short"),
        ("\u2014 a ", "line 1: signature is 0 bytes, too short"),
    ],
)
def test_malformed_signature_lines_are_refused(verifier, line, message):
    with pytest.raises(ProofError, match=message):
        open_note("x\n\n" + line + "\n", verifier)


def test_only_str_notes_are_accepted(verifier):
    with pytest.raises(ProofError, match="note must be a str, got bytes"):
        open_note(b"x\n\n", verifier)


# --- key texts -------------------------------------------------------------------------------


def test_generated_key_texts_round_trip(signer):
    again = NoteSigner.from_private_key_text(signer.private_key_text())
    assert again.verifier_key_text() == signer.verifier_key_text()
    assert again.key_id == signer.key_id and again.name == signer.name


def test_a_verifier_key_with_a_mismatched_key_id_is_refused():
    bad = GO_VKEY.replace("c74f20a3", "c74f20a4")
    with pytest.raises(ProofError, match="key ID c74f20a4 does not match the key \\(expected c74f20a3\\)"):
        NoteVerifier.from_key_text(bad)


def test_a_private_key_with_a_mismatched_key_id_is_refused():
    bad = GO_SKEY.replace("c74f20a3", "00000000")
    with pytest.raises(ProofError, match="private key: key ID 00000000 does not match"):
        NoteSigner.from_private_key_text(bad)


def test_a_key_renamed_without_its_key_id_is_refused():
    with pytest.raises(ProofError, match="does not match the key"):
        NoteVerifier.from_key_text(GO_VKEY.replace("PeterNeumann", "PeterNeumann2"))


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        ("PeterNeumann+c74f20a3", "must have 3 '\\+'-separated fields, has 2"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key name must be a non-empty"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "must not contain spaces"),
        ("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key ID 'C74F20A3' is not 8 lowercase hex"),
        ("PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "is not 8 lowercase hex"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T", "key is not valid base64"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n", "key is not valid base64"),
        (b"PeterNeumann", "verifier key must be a str, got bytes"),
    ],
)
def test_malformed_verifier_keys_are_refused(vkey, message):
    with pytest.raises(ProofError, match=message):
        NoteVerifier.from_key_text(vkey)


@pytest.mark.parametrize(
    ("skey", "message"),
    [
        (GO_SKEY.replace("PRIVATE+KEY+", "PUBLIC+KEY+"), "must start with 'PRIVATE\\+KEY\\+'"),
        (GO_SKEY.replace("PRIVATE+KEY+", ""), "must have 5 '\\+'-separated fields"),
        (GO_SKEY.replace("+AYEK", "+AoEK"), "key type 0x02 is not Ed25519"),
        (GO_SKEY[:-4], "key is 30 bytes, expected 33"),
        (GO_VKEY, "must have 5 '\\+'-separated fields, has 3"),
    ],
)
def test_malformed_private_keys_are_refused(skey, message):
    with pytest.raises(ProofError, match=message):
        NoteSigner.from_private_key_text(skey)


# --- signing refuses text that would not be a valid note ------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("no newline", "must end with a newline"),
        ("", "must end with a newline"),
        ("tab\there\n", "control character U\\+0009"),
        ("cr\r\n", "control character U\\+000D"),
        ("bad \ud800\n", "not valid UTF-8"),
        (b"bytes\n", "must be a str"),
    ],
)
def test_signing_refuses_invalid_note_text(signer, body, message):
    with pytest.raises(ValueError, match=message):
        signer.sign(body)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\tname", "nl\n"])
def test_invalid_key_names_are_refused_when_generating(name):
    with pytest.raises(ValueError, match="key name"):
        NoteSigner.generate(name)
