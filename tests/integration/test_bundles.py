"""Evidence bundles: exported from the store, verified offline, and every tamper named."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from indelible.auditor import render_snapshot
from indelible.bundles.export import BundleQuery, NotYetSignedError
from indelible.proofs import NoteSigner, NoteVerifier
from indelible.proofs.bundle import MANIFEST, BundleError, verify_bundle
from indelible.store.signing import sign_checkpoint
from tests.integration.bundle_helpers import (export, files_of, flip, relist, resolved_case,
                                              zip_of)
from tests.integration.ledger_helpers import command, verifier_of
from indelible.store.appender import append_batch

pytestmark = pytest.mark.storage


def check(data: bytes, signer, **kwargs):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return verify_bundle(z, [verifier_of(signer)], render_snapshot=render_snapshot,
                             **kwargs)


def failed(report) -> set[tuple[str, str]]:
    return {(f.file, f.check) for f in report.findings}


@pytest.fixture
def bundle(conn, registered_tenant, signer, kept):
    case = resolved_case(conn, registered_tenant)
    data, summary, entry = export(conn, registered_tenant, signer, kept,
                                  BundleQuery(registered_tenant, discrepancies=(case,)))
    return case, data, summary, entry


def test_a_resolved_discrepancys_bundle_is_intact(bundle, signer, registered_tenant):
    case, data, summary, entry = bundle
    report = check(data, signer)
    assert report.intact, report.to_text()
    assert report.entries == summary.entries == 5  # opened, 2 moves, evidence, resolved
    names = set(files_of(data))
    assert {f"snapshots/{case}.json", "verifier-key.txt", "README.md", MANIFEST} <= names
    assert any(n.startswith("evidence/") for n in names)
    manifest = json.loads(files_of(data)[MANIFEST])
    assert manifest["_type"] == "https://in-toto.io/Statement/v1"
    assert manifest["predicate"]["totals"] == {"EUR": {
        "discrepancies": 1, "expected_amount": "9850.00", "actual_amount": "10000.00",
        "difference": "150.00"}}
    exported = json.loads(entry.entry)
    assert exported["type"] == "evidence.exported"
    assert exported["data"]["manifest_sha256"] == summary.manifest_sha256


def test_the_zip_is_deterministic(conn, registered_tenant, signer, kept, bundle):
    case, data, _, _ = bundle
    again, _, _ = export(conn, registered_tenant, signer, kept,
                         BundleQuery(registered_tenant, discrepancies=(case,)), sign=False)
    assert again == data
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = z.infolist()
    names = [i.filename for i in infos]
    assert names[-1] == MANIFEST and names[:-1] == sorted(names[:-1])
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


@pytest.mark.parametrize("victim, check_name", [
    ("entry", "inclusion"), ("proof", "inclusion"), ("checkpoint", "checkpoint"),
    ("key", "key"), ("snapshot", "snapshot"), ("evidence", "evidence"),
])
def test_one_changed_byte_is_named(bundle, signer, victim, check_name):
    case, data, _, _ = bundle
    files = files_of(data)
    name = {"entry": sorted(n for n in files if n.endswith(".json") and "entries/" in n)[2],
            "proof": sorted(n for n in files if n.endswith(".tlog-proof"))[2],
            "checkpoint": next(n for n in files if n.endswith(".checkpoint")),
            "key": "verifier-key.txt", "snapshot": f"snapshots/{case}.json",
            "evidence": next(n for n in files if n.startswith("evidence/"))}[victim]
    content = files[name]
    if victim == "proof":  # a byte of the first proof hash, not of the header
        at = content.index(b"\n", content.index(b"index ")) + 3
        files[name] = flip(content, at)
    elif victim == "key":
        files[name] = content.replace(b"+", b"-", 1)
    else:
        files[name] = flip(content)
    report = check(zip_of(files), signer)
    assert not report.intact
    assert (name, "manifest") in failed(report), report.to_text()
    assert check_name in {c for _, c in failed(report)}, report.to_text()
    # and with the manifest made to agree, the content check still names it
    report = check(zip_of(relist(files)), signer)
    assert check_name in {c for _, c in failed(report)}, report.to_text()


def test_a_changed_manifest_is_named(bundle, signer):
    _, data, _, _ = bundle
    files = files_of(data)
    doc = json.loads(files[MANIFEST])
    doc["predicate"]["totals"]["EUR"]["expected_amount"] = "9000.00"
    files[MANIFEST] = json.dumps(doc).encode()
    report = check(zip_of(files), signer)
    assert (MANIFEST, "totals") in failed(report), report.to_text()
    files[MANIFEST] = flip(files[MANIFEST], 40)
    report = check(zip_of(files), signer)
    assert any(f.file == MANIFEST for f in report.findings), report.to_text()


def test_an_entry_dropped_from_the_middle_of_a_stream_is_named(bundle, signer):
    _, data, _, _ = bundle
    files = files_of(data)
    entries = sorted(n for n in files if n.startswith("entries/") and n.endswith(".json"))
    dropped = entries[2]
    del files[dropped], files[dropped.replace(".json", ".tlog-proof")]
    report = check(zip_of(relist(files)), signer)
    assert not report.intact
    chain = [f for f in report.findings if f.check == "chain"]
    assert chain and entries[3] == chain[0].file, report.to_text()
    assert "dropped" in chain[0].problem


def test_a_range_bundle_proves_its_checkpoints_consistent(conn, registered_tenant, signer,
                                                         kept):
    append_batch(conn, registered_tenant, [command(i) for i in range(5)])
    sign_checkpoint(conn, registered_tenant, signer, kept)
    append_batch(conn, registered_tenant, [command(i) for i in range(5)])
    sign_checkpoint(conn, registered_tenant, signer, kept)
    append_batch(conn, registered_tenant, [command(i) for i in range(3)])
    data, summary, _ = export(conn, registered_tenant, signer, kept,
                              BundleQuery(registered_tenant, from_seq=2, to_seq=12))
    names = files_of(data)
    assert {n for n in names if n.startswith("consistency/")} == {
        "consistency/6-11.proof", "consistency/11-14.proof"}
    assert check(data, signer).intact
    files = dict(names)
    del files["entries/000000000007.json"], files["entries/000000000007.tlog-proof"]
    report = check(zip_of(relist(files)), signer)
    assert ("entries/000000000007.json", "chain") in failed(report), report.to_text()


def test_trusted_checkpoints_are_proved_or_refused(conn, registered_tenant, signer, kept):
    append_batch(conn, registered_tenant, [command(i) for i in range(4)])
    early = sign_checkpoint(conn, registered_tenant, signer, kept)
    append_batch(conn, registered_tenant, [command(i) for i in range(4)])
    data, _, _ = export(conn, registered_tenant, signer, kept,
                        BundleQuery(registered_tenant, from_seq=5, to_seq=7,
                                    prove_from=(early.size,)))
    report = check(data, signer, trusted_notes=[("kept.txt", early.note)])
    assert report.intact, report.to_text()
    other = NoteSigner.generate(signer.name)
    forged = other.sign(early.note.split("\n\n")[0] + "\n")
    report = check(data, signer, trusted_notes=[("forged.txt", forged)])
    assert ("forged.txt", "trusted") in failed(report)


def test_a_wrong_verifier_key_fails_every_checkpoint(bundle):
    _, data, _, _ = bundle
    stranger = NoteVerifier.from_key_text(NoteSigner.generate("x").verifier_key_text())
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        report = verify_bundle(z, [stranger])
    assert not report.intact
    assert {"key", "checkpoint"} <= {f.check for f in report.findings}, report.to_text()


def test_a_bundle_without_manifest_or_verifiable_checkpoint_is_unusable(bundle):
    _, data, _, _ = bundle
    files = {n: d for n, d in files_of(data).items() if n != MANIFEST}
    stranger = NoteVerifier.from_key_text(NoteSigner.generate("x").verifier_key_text())
    with pytest.raises(BundleError, match="no checkpoint that verifies with your key"):
        with zipfile.ZipFile(io.BytesIO(zip_of(files))) as z:
            verify_bundle(z, [stranger])


def test_unsigned_entries_are_refused_with_a_reason(conn, registered_tenant, signer, kept):
    case = resolved_case(conn, registered_tenant)
    with pytest.raises(NotYetSignedError, match="not all signed yet"):
        export(conn, registered_tenant, signer, kept,
               BundleQuery(registered_tenant, discrepancies=(case,)), sign=False)


def test_a_byte_flipped_in_the_zip_file_itself_is_named_not_unusable(bundle, signer, tmp_path):
    """No rewriting of the zip: the member's CRC-32 no longer matches either, yet the file is
    named (exit 1), because what decides is the SHA-256 the manifest lists."""
    from indelible.auditor import check_bundle

    _, data, _, _ = bundle
    files = files_of(data)
    victim = sorted(n for n in files if n.startswith("entries/") and n.endswith(".json"))[1]
    at = data.index(files[victim]) + len(files[victim]) // 2
    path = tmp_path / "flipped.zip"
    path.write_bytes(flip(data, at))
    out, err = io.StringIO(), io.StringIO()
    code = check_bundle(str(path), [signer.verifier_key_text()], out=out, err=err)
    assert code == 1, out.getvalue() + err.getvalue()
    assert f"FAILED {victim}" in out.getvalue()
    (tmp_path / "intact.zip").write_bytes(data)
    assert check_bundle(str(tmp_path / "intact.zip"), [signer.verifier_key_text()],
                        out=io.StringIO(), err=io.StringIO()) == 0


def test_a_range_bundle_carries_the_reports_generated_in_it(app_url, conn, registered_tenant,
                                                           signer, kept):
    """Reports (issue 13) recorded as report.generated entries in the range ride along, each
    file checked against the SHA-256 its entry recorded."""
    from indelible.store.logs import read_head
    from indelible.usecases import reports
    from tests.integration.report_helpers import around_now, seed
    from tests.integration.test_reports import _append, _job

    tenant = registered_tenant
    seed(conn, tenant, 3)
    key = signer.verifier_key_text()
    signing = reports.Signing(NoteVerifier.from_key_text(key), key,
                              sign_now=lambda c, t: sign_checkpoint(c, t, signer, kept))
    made = reports.generate(app_url, _job(conn, tenant, around_now()), append=_append(conn),
                            signing=signing)
    last = read_head(conn, tenant).size - 1
    data, _, _ = export(conn, tenant, signer, kept, BundleQuery(tenant, from_seq=0, to_seq=last))
    files = files_of(data)
    bundled = sorted(n for n in files if n.startswith("reports/"))
    assert [n.rsplit("/", 1)[1] for n in bundled] == sorted(n for n, _, _ in made.files)
    assert check(data, signer).intact
    files[bundled[0]] = flip(files[bundled[0]])
    report = check(zip_of(relist(files)), signer)
    assert (bundled[0], "report") in failed(report), report.to_text()
