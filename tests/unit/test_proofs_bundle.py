"""The bundle verifier on its own: a bundle built in memory with `indelible.proofs` alone (no
database), checked, and each broken claim named."""

from __future__ import annotations

import base64
import hashlib

import pytest

from indelible import proofs
from indelible.proofs import NoteSigner, NoteVerifier, canonical_json
from indelible.proofs import bundle as b

ORIGIN = "example.test/log/acme"


class Files(dict):
    """A dict that reads like a zipfile.ZipFile (namelist, read)."""

    def namelist(self) -> list[str]:
        return list(self)

    def read(self, name: str) -> bytes:
        return self[name]


def _entries(count: int) -> list[bytes]:
    out, prev = [], ""
    for seq in range(count):
        stream, version = ("disc/a", seq + 1) if seq < 3 else ("other/b", seq - 2)
        entry = canonical_json({"v": 1, "log": ORIGIN, "seq": seq, "prev": prev,
                                "stream": stream, "version": version, "type": "x.y",
                                "data": {"n": seq}})
        prev = base64.b64encode(proofs.leaf_hash(entry)).decode()
        out.append(entry)
    return out


def _bundle(signer: NoteSigner, count: int = 5) -> Files:
    entries = _entries(count)
    leaves = [proofs.leaf_hash(e) for e in entries]

    def subtree(level: int, index: int) -> bytes:
        if level == 0:
            return leaves[index]
        return proofs.node_hash(subtree(level - 1, 2 * index), subtree(level - 1, 2 * index + 1))

    root = proofs.tree_root(count, subtree)
    note = proofs.sign_checkpoint(proofs.Checkpoint(ORIGIN, count, root), signer)
    files = Files({b.checkpoint_name(count): note.encode(), b.KEY: signer.verifier_key_text().encode()})
    for seq, entry in enumerate(entries):
        files[b.entry_name(seq)] = entry
        files[b.proof_name(seq)] = proofs.format_tlog_proof(proofs.TlogProof(
            seq, tuple(proofs.inclusion_proof(seq, count, subtree)), note)).encode()
    predicate = {"log": ORIGIN, "query": {"kind": "range", "from_seq": 0, "to_seq": count - 1},
                 "checkpoint": {"size": count}, "entries": count, "totals": {},
                 "streams": {"disc/a": 3, "other/b": count - 3}}
    files[b.MANIFEST] = canonical_json(b.statement(
        [(n, hashlib.sha256(d).hexdigest()) for n, d in files.items()], predicate))
    return files


@pytest.fixture
def signer():
    return NoteSigner.generate(ORIGIN)


def _check(files: Files, signer: NoteSigner) -> b.BundleReport:
    return b.verify_bundle(files, [NoteVerifier.from_key_text(signer.verifier_key_text())])


def test_a_bundle_made_with_proofs_alone_verifies(signer):
    report = _check(_bundle(signer), signer)
    assert report.intact, report.to_text()
    assert report.entries == 5 and report.checkpoint.size == 5
    assert report.to_json()["status"] == "intact"


def test_a_dropped_entry_breaks_the_range_and_the_stream(signer):
    files = _bundle(signer)
    del files[b.entry_name(1)], files[b.proof_name(1)]
    report = _check(files, signer)
    named = {(f.file, f.check) for f in report.findings}
    assert (b.entry_name(1), "manifest") in named  # listed, missing
    assert (b.entry_name(1), "chain") in named  # a seq of the range is missing
    assert (b.entry_name(2), "chain") in named  # disc/a jumps from version 1 to 3


def test_a_broken_prev_link_is_named(signer):
    files = _bundle(signer)
    files[b.entry_name(3)] = files[b.entry_name(3)].replace(b'"prev":"', b'"prev":"A', 1)
    report = _check(files, signer)
    assert (b.entry_name(3), "chain") in {(f.file, f.check) for f in report.findings}
    assert (b.entry_name(3), "inclusion") in {(f.file, f.check) for f in report.findings}


def test_an_unlisted_file_and_a_wrong_key_are_named(signer):
    files = _bundle(signer)
    files["extra.txt"] = b"hello"
    files[b.KEY] = NoteSigner.generate(ORIGIN).verifier_key_text().encode()
    named = {(f.file, f.check) for f in _check(files, signer).findings}
    assert ("extra.txt", "manifest") in named and (b.KEY, "key") in named


def test_no_key_and_no_checkpoint_make_a_bundle_unusable(signer):
    with pytest.raises(b.BundleError, match="no verifier key"):
        b.verify_bundle(_bundle(signer), [])
    with pytest.raises(b.BundleError, match="no checkpoint that verifies"):
        _check(Files({b.entry_name(0): b"{}"}), signer)


def test_control_totals_follow_amendments():
    docs = [{"type": "discrepancy.opened", "stream": "disc/1", "data": {
                "currency": "EUR", "expected_amount": "10.00", "actual_amount": "12.00",
                "difference": "2.00"}},
            {"type": "discrepancy.amended", "stream": "disc/1", "data": {"after": {
                "currency": "EUR", "expected_amount": "10.00", "actual_amount": "11.00",
                "difference": "1.00"}}},
            {"type": "discrepancy.opened", "stream": "disc/2", "data": {
                "currency": "JPY", "expected_amount": "100", "actual_amount": "90",
                "difference": "-10"}}]
    totals = b.amount_totals(docs)
    assert totals["EUR"]["actual_amount"] == 11 and totals["EUR"]["discrepancies"] == 1
    assert totals["JPY"]["difference"] == -10


def _with_predicate(files: Files, change) -> Files:
    import json

    doc = json.loads(files[b.MANIFEST])
    change(doc["predicate"])
    files[b.MANIFEST] = canonical_json(doc)
    return files


@pytest.mark.parametrize("change", [
    lambda p: p.__setitem__("checkpoint", "5"),
    lambda p: p.__setitem__("query", []),
    lambda p: p["query"].pop("from_seq"),
    lambda p: p["query"].__setitem__("to_seq", "4"),
    lambda p: p.__setitem__("streams", ["disc/a"]),
], ids=["checkpoint-string", "query-list", "range-without-start", "range-string",
        "streams-list"])
def test_a_manifest_of_the_wrong_shape_is_a_finding_not_a_crash(signer, change):
    report = _check(_with_predicate(_bundle(signer), change), signer)
    assert not report.intact and report.findings


@pytest.mark.parametrize("entry", [
    b'{"seq":1,"stream":"disc/a","version":[2]}',
    b'{"seq":1,"stream":"disc/a","version":2,"type":"discrepancy.evidence_attached","data":[1]}',
    b'{"seq":1,"stream":"disc/a","version":2,"type":"report.generated","data":{"files":[1]}}',
], ids=["version-list", "evidence-data-list", "report-files-ints"])
def test_an_entry_of_the_wrong_shape_is_a_finding_not_a_crash(signer, entry):
    files = _bundle(signer)
    files[b.entry_name(1)] = entry
    report = _check(files, signer)
    assert not report.intact


def test_a_huge_claimed_range_is_counted_not_built(signer):
    # The manifest is unsigned: a range of 10**15 seqs must not become a set of 10**15 ints.
    files = _with_predicate(_bundle(signer),
                            lambda p: p["query"].__setitem__("to_seq", 10**15))
    report = _check(files, signer)
    assert not report.intact
    assert any("999,999,999,999,996 seqs of the exported range" in f.problem for f in report.findings)


@pytest.mark.parametrize("name", ["../../etc/cron.d/evil", "/etc/evil", "entries/..\\..\\x",
                                  "C:/x"])
def test_a_listed_file_with_an_unsafe_name_is_named(signer, name):
    # Listed in the manifest with its right digest, it would otherwise pass as part of the
    # bundle, and an unzip tool that trusts names could write it outside the folder.
    import json

    files = _bundle(signer)
    files[name] = b"x"
    doc = json.loads(files[b.MANIFEST])
    doc["subject"].append({"name": name, "digest": {"sha256": hashlib.sha256(b"x").hexdigest()}})
    files[b.MANIFEST] = canonical_json(doc)
    report = _check(files, signer)
    assert (name, "manifest") in {(f.file, f.check) for f in report.findings}


def test_a_trusted_checkpoint_of_another_log_is_named_as_such(signer):
    # One key signs every tenant's log; with the manifest's `log` removed, nothing else ties
    # the auditor's kept checkpoint to the bundle's log.
    files = _with_predicate(_bundle(signer), lambda p: p.pop("log"))
    other = proofs.sign_checkpoint(proofs.Checkpoint(ORIGIN + "-other", 5, b"\x01" * 32), signer)
    report = b.verify_bundle(files, [NoteVerifier.from_key_text(signer.verifier_key_text())],
                             trusted_notes=[("kept.checkpoint", other)])
    assert [(f.file, f.check) for f in report.findings] == [("kept.checkpoint", "trusted")]
    assert "of the log" in report.findings[0].problem
