"""Trusted time: RFC 3161 tokens from a real local TSA, kept beside checkpoints, bundled and
checked offline."""

from __future__ import annotations

import io
import zipfile

import psycopg
import pytest

from indelible.auditor import render_snapshot
from indelible.bundles.export import BundleQuery
from indelible.proofs.bundle import verify_bundle
from indelible.proofs.timestamp import load_checker
from indelible.store import timestamps
from indelible.store.signing import sign_checkpoint
from indelible.timestamping.client import TsaClient, TsaError
from indelible.timestamping.worker import Timestamper
from tests.integration.bundle_helpers import export, files_of, flip, relist, resolved_case, zip_of
from tests.integration.ledger_helpers import verifier_of
from tests.tsa import local_tsa  # noqa: F401 - the fixture

pytestmark = pytest.mark.storage


@pytest.fixture
def checker(local_tsa):
    return load_checker([local_tsa.ca_file.read_bytes()])


@pytest.fixture
def stamper(local_tsa, checker, app_url):
    local_tsa.up = True
    yield Timestamper(conninfo=app_url, client=TsaClient(local_tsa.url, checker))
    local_tsa.up = True


def test_each_checkpoint_gets_a_token_over_its_signed_note(conn, registered_tenant, signer, kept,
                                                           stamper, checker):
    case = resolved_case(conn, registered_tenant)
    cp = sign_checkpoint(conn, registered_tenant, signer, kept)
    assert stamper.run_once(conn) >= 1
    token = timestamps.token(conn, registered_tenant, cp.size)
    assert token is not None
    assert checker(token, cp.note.encode()).startswith("20")
    with pytest.raises(Exception, match="Mismatch between messages"):
        checker(token, cp.note.encode() + b" ")
    data, _, _ = export(conn, registered_tenant, signer, kept,
                        BundleQuery(registered_tenant, discrepancies=(case,)), sign=False)
    files = files_of(data)
    assert f"checkpoints/{cp.size}.tsr" in files
    report = _check(data, signer, checker)
    assert report.intact and cp.size in report.timestamps, report.to_text()
    # The TSA's time moved by one digit: its GeneralizedTime (tag 0x18, 15 bytes) is signed.
    tsr = files[f"checkpoints/{cp.size}.tsr"]
    files[f"checkpoints/{cp.size}.tsr"] = flip(tsr, tsr.index(b"\x18\x0f") + 10)
    report = _check(zip_of(relist(files)), signer, checker)
    assert (f"checkpoints/{cp.size}.tsr", "timestamp") in {(f.file, f.check)
                                                          for f in report.findings}


def test_a_tsa_that_is_down_never_blocks_signing_and_is_caught_up(conn, registered_tenant,
                                                                  signer, kept, stamper,
                                                                  local_tsa):
    resolved_case(conn, registered_tenant)
    local_tsa.up = False
    cp = sign_checkpoint(conn, registered_tenant, signer, kept)
    assert cp is not None
    with pytest.raises(TsaError, match="HTTP 503"):
        stamper.run_once(conn)
    status = timestamps.status(conn, registered_tenant)
    assert status.latest_checkpoint == cp.size and status.missing == 1
    assert status.latest_timestamped is None
    local_tsa.up = True
    stamper.run_once(conn)
    status = timestamps.status(conn, registered_tenant)
    assert status.missing == 0 and status.latest_timestamped == cp.size


def test_tokens_are_append_only(conn, registered_tenant, signer, kept, stamper):
    resolved_case(conn, registered_tenant)
    cp = sign_checkpoint(conn, registered_tenant, signer, kept)
    stamper.run_once(conn)
    with pytest.raises(psycopg.Error, match="append-only|permission denied"):
        with conn.transaction():
            conn.execute("SELECT set_config('indelible.tenant', %s, true)", (registered_tenant,))
            conn.execute("UPDATE checkpoint_timestamps SET token = 'x' WHERE tenant_id = %s AND "
                         "size = %s", (registered_tenant, cp.size))


def test_a_token_from_a_tsa_nobody_trusts_is_not_kept(conn, registered_tenant, signer, kept,
                                                      local_tsa, app_url, tmp_path):
    from tests.tsa import make_tsa_certificates

    make_tsa_certificates(tmp_path)
    stranger = load_checker([(tmp_path / "ca.pem").read_bytes()])
    resolved_case(conn, registered_tenant)
    cp = sign_checkpoint(conn, registered_tenant, signer, kept)
    with pytest.raises(TsaError, match="does not hold"):
        Timestamper(conninfo=app_url, client=TsaClient(local_tsa.url, stranger)).run_once(conn)
    assert timestamps.token(conn, registered_tenant, cp.size) is None


def _check(data: bytes, signer, checker):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return verify_bundle(z, [verifier_of(signer)], check_token=checker,
                             render_snapshot=render_snapshot)


def test_indelible_verify_names_a_token_a_superuser_changed(conn, owner_url, app_url,
                                                            registered_tenant, signer, kept,
                                                            stamper, checker):
    from indelible.timestamping.verify import verify_tokens
    from indelible.verifier.report import VerificationReport
    from tests.integration.ledger_helpers import superuser

    resolved_case(conn, registered_tenant)
    cp = sign_checkpoint(conn, registered_tenant, signer, kept)
    stamper.run_once(conn)
    report = VerificationReport(registered_tenant, "origin")
    assert verify_tokens(app_url, registered_tenant, checker, report) == 1 and report.ok
    token = timestamps.token(conn, registered_tenant, cp.size)
    with superuser(owner_url) as rogue:
        at = token.index(b"\x18\x0f") + 10  # a digit of the TSA's time
        rogue.execute("UPDATE checkpoint_timestamps SET token = %s WHERE tenant_id = %s AND "
                      "size = %s", (flip(token, at), registered_tenant, cp.size))
    verify_tokens(app_url, registered_tenant, checker, report)
    assert [f.check for f in report.findings] == ["timestamp"]
    assert f"size {cp.size}" in report.findings[0].detail


def test_a_checkpoint_row_a_superuser_wrote_is_not_sent_to_the_tsa(conn, owner_url, app_url,
                                                                   registered_tenant, signer,
                                                                   kept, local_tsa, checker):
    from indelible.proofs import Checkpoint, NoteSigner, NoteVerifier, sign_checkpoint as sign
    tenant = registered_tenant
    resolved_case(conn, tenant)
    cp = sign_checkpoint(conn, tenant, signer, kept)
    origin = conn.execute("SELECT origin FROM log_heads WHERE tenant_id = %s",
                          (tenant,)).fetchone()[0]
    forged = sign(Checkpoint(origin, cp.size + 100, b"\x07" * 32),
                  NoteSigner.generate(signer.verifier_key_text().split("+")[0]))
    with psycopg.connect(owner_url, autocommit=True) as rogue:
        rogue.execute("INSERT INTO checkpoints (tenant_id, size, root_hash, note, key_id) "
                      "SELECT tenant_id, %s, %s, %s, key_id FROM checkpoints "
                      "WHERE tenant_id = %s AND size = %s",
                      (cp.size + 100, b"\x07" * 32, forged, tenant, cp.size))
    stamper = Timestamper(conninfo=app_url, client=TsaClient(local_tsa.url, checker),
                          verifier=NoteVerifier.from_key_text(signer.verifier_key_text()))
    local_tsa.up = True
    assert stamper.run_once(conn) >= 1
    assert timestamps.token(conn, tenant, cp.size) is not None
    assert timestamps.token(conn, tenant, cp.size + 100) is None  # never dated by the TSA
