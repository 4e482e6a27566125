"""C2SP tlog-proof files (c2sp.org/tlog-proof@v1): format, parse, verify offline."""

from __future__ import annotations

import base64

import pytest

from indelible.proofs import (
    Checkpoint,
    CompactRange,
    NoteSigner,
    NoteVerifier,
    ProofError,
    TlogProof,
    fold_perfect,
    format_tlog_proof,
    inclusion_proof,
    leaf_hash,
    parse_tlog_proof,
    sign_checkpoint,
    verify_tlog_proof,
)

ORIGIN = "example.com/ledger/t1"

# The example from the spec; its signatures are elided ("[...]"), which parsing does
# not look at: the note is only checked when it is opened.
SPEC_EXAMPLE = """\
c2sp.org/tlog-proof@v1
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ
index 73894
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=

example.com/fancylog
109482
sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=

— example.com/fancylog hI2DJw[...]1roloI=
— witness1.example mJirIklj[...]qY9v2B/5bg==
"""


class Log:
    """A tiny in-memory log: entries, their leaf hashes and a signing key."""

    def __init__(self, size: int) -> None:
        self.entries = [b'{"seq":%d}' % i for i in range(size)]
        self.hashes = [leaf_hash(e) for e in self.entries]
        self.signer = NoteSigner.generate(ORIGIN)
        self.verifier = NoteVerifier.from_key_text(self.signer.verifier_key_text())
        frontier = CompactRange()
        frontier.extend(self.hashes)
        self.checkpoint = Checkpoint(ORIGIN, size, frontier.root())
        self.note = sign_checkpoint(self.checkpoint, self.signer)

    def subtree(self, level: int, index: int) -> bytes:
        return fold_perfect(self.hashes[index << level : (index + 1) << level])

    def proof(self, index: int, *, extra: bool = True) -> TlogProof:
        hashes = tuple(inclusion_proof(index, len(self.hashes), self.subtree))
        return TlogProof(index, hashes, self.note, self.entries[index] if extra else None)


@pytest.fixture(scope="module")
def log() -> Log:
    return Log(13)


def test_the_spec_example_parses_and_formats_back_exactly():
    proof = parse_tlog_proof(SPEC_EXAMPLE)
    assert proof.index == 73894
    assert len(proof.hashes) == 5
    assert proof.extra == base64.b64decode("YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ")
    assert proof.checkpoint_note.startswith("example.com/fancylog\n109482\n")
    assert format_tlog_proof(proof) == SPEC_EXAMPLE


def test_the_format_is_header_extra_index_hashes_blank_line_checkpoint(log):
    text = format_tlog_proof(log.proof(5))
    lines = text.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1] == "extra " + base64.b64encode(log.entries[5]).decode()
    assert lines[2] == "index 5"
    hashes = log.proof(5).hashes
    assert lines[3 : 3 + len(hashes)] == [base64.b64encode(h).decode() for h in hashes]
    assert lines[3 + len(hashes)] == ""
    assert text.endswith("\n\n" + log.note)


@pytest.mark.parametrize("index", [0, 5, 12])
@pytest.mark.parametrize("extra", [True, False])
def test_proofs_round_trip_exactly(log, index, extra):
    proof = log.proof(index, extra=extra)
    text = format_tlog_proof(proof)
    assert parse_tlog_proof(text) == proof
    assert format_tlog_proof(parse_tlog_proof(text)) == text


def test_empty_extra_data_round_trips_as_empty_not_absent(log):
    proof = TlogProof(0, log.proof(0).hashes, log.note, b"")
    text = format_tlog_proof(proof)
    assert "\nextra \n" in text
    assert parse_tlog_proof(text).extra == b""


def test_a_single_entry_log_has_a_proof_with_no_hashes():
    log = Log(1)
    text = format_tlog_proof(log.proof(0))
    assert "\nindex 0\n\n" in text
    assert verify_tlog_proof(text, log.verifier) == (log.checkpoint, log.entries[0])


@pytest.mark.parametrize("index", range(13))
def test_every_entry_verifies_offline_from_its_extra_data(log, index):
    text = format_tlog_proof(log.proof(index))
    checkpoint, entry = verify_tlog_proof(text, log.verifier, origin=ORIGIN)
    assert checkpoint == log.checkpoint
    assert entry == log.entries[index]


def test_a_given_leaf_is_proved_instead_of_the_extra_data(log):
    text = format_tlog_proof(log.proof(3, extra=False))
    assert verify_tlog_proof(text, log.verifier, leaf=log.entries[3])[1] == log.entries[3]


def test_a_proof_without_extra_data_needs_a_leaf(log):
    text = format_tlog_proof(log.proof(3, extra=False))
    with pytest.raises(ProofError, match="no extra data and no leaf was given"):
        verify_tlog_proof(text, log.verifier)


def test_a_leaf_that_is_not_at_the_index_is_refused(log):
    text = format_tlog_proof(log.proof(3))
    with pytest.raises(ProofError, match="root mismatch"):
        verify_tlog_proof(text, log.verifier, leaf=log.entries[4])


def test_tampered_extra_data_is_refused(log):
    proof = log.proof(3)
    forged = TlogProof(proof.index, proof.hashes, proof.checkpoint_note, b'{"seq":999}')
    with pytest.raises(ProofError, match="root mismatch"):
        verify_tlog_proof(format_tlog_proof(forged), log.verifier)


def test_a_tampered_proof_hash_is_refused(log):
    proof = log.proof(3)
    hashes = (leaf_hash(b"forged"),) + proof.hashes[1:]
    forged = TlogProof(proof.index, hashes, proof.checkpoint_note, proof.extra)
    with pytest.raises(ProofError, match="root mismatch"):
        verify_tlog_proof(format_tlog_proof(forged), log.verifier)


def test_an_index_moved_to_another_entry_is_refused(log):
    proof = log.proof(3)
    moved = TlogProof(2, proof.hashes, proof.checkpoint_note, proof.extra)
    with pytest.raises(ProofError, match="root mismatch"):
        verify_tlog_proof(format_tlog_proof(moved), log.verifier)


def test_an_index_beyond_the_checkpoint_is_refused(log):
    proof = log.proof(3)
    beyond = TlogProof(13, proof.hashes, proof.checkpoint_note, proof.extra)
    with pytest.raises(ProofError, match="leaf index 13 is not in a tree of size 13"):
        verify_tlog_proof(format_tlog_proof(beyond), log.verifier)


def test_a_proof_checked_with_another_logs_key_is_refused(log):
    with pytest.raises(ProofError, match="no signature from key"):
        verify_tlog_proof(format_tlog_proof(log.proof(3)), Log(2).verifier)


def test_a_proof_for_another_origin_is_refused(log):
    with pytest.raises(ProofError, match="is not the expected origin 'example.com/other'"):
        verify_tlog_proof(format_tlog_proof(log.proof(3)), log.verifier, origin="example.com/other")


def test_a_checkpoint_altered_inside_the_proof_is_refused(log):
    text = format_tlog_proof(log.proof(3)).replace("\n13\n", "\n14\n")
    with pytest.raises(ProofError, match="does not verify"):
        verify_tlog_proof(text, log.verifier)


H = base64.b64encode(leaf_hash(b"h")).decode()
NOTE = "origin\n1\n" + H + "\n\n— origin AAAAAAA=\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"bytes", "tlog-proof must be a str, got bytes"),
        ("c2sp.org/tlog-proof@v1\nindex 0\n" + H + "\n", "no empty line before the checkpoint"),
        ("c2sp.org/tlog-proof@v1\nindex 0\n\n", "no checkpoint after the empty line"),
        ("c2sp.org/tlog-proof@v2\nindex 0\n\n" + NOTE, "line 1: expected 'c2sp.org/tlog-proof@v1', got 'c2sp.org/tlog-proof@v2'"),
        ("\nc2sp.org/tlog-proof@v1\nindex 0\n\n" + NOTE, "line 1: expected 'c2sp.org/tlog-proof@v1', got ''"),
        ("c2sp.org/tlog-proof@v1\n\n" + NOTE, "line 2: expected 'index <n>', got ''"),
        ("c2sp.org/tlog-proof@v1\n" + H + "\n\n" + NOTE, "line 2: expected 'index <n>', got '" + H[:5]),
        ("c2sp.org/tlog-proof@v1\nextra AA==\n\n" + NOTE, "line 3: expected 'index <n>', got ''"),
        ("c2sp.org/tlog-proof@v1\nextra AA==\nextra AA==\nindex 0\n\n" + NOTE, "line 3: expected 'index <n>', got 'extra AA=='"),
        ("c2sp.org/tlog-proof@v1\nindex 0\nextra AA==\n\n" + NOTE, "line 3: proof hash is not valid base64"),
        ("c2sp.org/tlog-proof@v1\nextra A\nindex 0\n\n" + NOTE, "line 2: extra data is not valid base64"),
        ("c2sp.org/tlog-proof@v1\nextra AB==\nindex 0\n\n" + NOTE, "line 2: extra data is not canonical base64"),
        ("c2sp.org/tlog-proof@v1\nextra\nindex 0\n\n" + NOTE, "line 2: expected 'index <n>', got 'extra'"),
        ("c2sp.org/tlog-proof@v1\nindex\n\n" + NOTE, "line 2: expected 'index <n>', got 'index'"),
        ("c2sp.org/tlog-proof@v1\nindex 01\n\n" + NOTE, "line 2: index '01' is not a canonical decimal"),
        ("c2sp.org/tlog-proof@v1\nindex -1\n\n" + NOTE, "line 2: index '-1' is not a canonical decimal"),
        ("c2sp.org/tlog-proof@v1\nindex  1\n\n" + NOTE, "line 2: index ' 1' is not a canonical decimal"),
        ("c2sp.org/tlog-proof@v1\nindex 1 \n\n" + NOTE, "line 2: index '1 ' is not a canonical decimal"),
        ("c2sp.org/tlog-proof@v1\nindex 18446744073709551616\n\n" + NOTE, "line 2: index 18446744073709551616 does not fit in 64 bits"),
        ("c2sp.org/tlog-proof@v1\nINDEX 1\n\n" + NOTE, "line 2: expected 'index <n>', got 'INDEX 1'"),
        ("c2sp.org/tlog-proof@v1\r\nindex 1\n\n" + NOTE, "line 1: expected 'c2sp.org/tlog-proof@v1'"),
        ("c2sp.org/tlog-proof@v1\nindex 1\n" + H + "\nAAAA\n\n" + NOTE, "line 4: proof hash is 3 bytes, expected 32"),
        ("c2sp.org/tlog-proof@v1\nindex 1\n" + H + " \n\n" + NOTE, "line 3: proof hash is not valid base64"),
    ],
)
def test_malformed_proofs_are_refused_naming_the_line(text, message):
    with pytest.raises(ProofError, match=message):
        parse_tlog_proof(text)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ((-1, (), "n\n"), "index must be an integer"),
        ((2**64, (), "n\n"), "index must be an integer"),
        ((0, [], "n\n"), "hashes must be a tuple"),
        ((0, (b"short",), "n\n"), "hash 0 is not 32 bytes"),
        ((0, (), ""), "checkpoint note must be a non-empty str"),
        ((0, (), "n\n", "text"), "extra data must be bytes or None"),
    ],
)
def test_a_proof_that_could_not_be_written_is_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        TlogProof(*fields)
