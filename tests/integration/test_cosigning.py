"""The log side of witnessing against real PostgreSQL and a real witness HTTP server.

The witness runs in a thread of the test process (the same WitnessServer `indelible witness
serve` runs) on 127.0.0.1; the feeder talks to it over HTTP exactly as in the service.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from indelible import audit
from indelible.cosigning.client import WitnessUnreachableError
from indelible.cosigning.config import ConfiguredWitness, WitnessConfigError, parse_witnesses
from indelible.cosigning.feeder import WitnessFeeder
from indelible.cosigning.reads import NotWitnessedError, witnessed_checkpoint, witnessed_size
from indelible.proofs import (
    Cosigner,
    NoteSigner,
    NoteVerifier,
    ProofError,
    WitnessPolicy,
    check_witness_quorum,
)
from indelible.runtime import free_port
from indelible.store.appender import append_batch
from indelible.store.cosignatures import cosignatures
from indelible.store.signing import sign_checkpoint
from indelible.witness.core import Witness
from indelible.witness.server import WitnessServer
from indelible.witness.state import WitnessState

from .ledger_helpers import command

pytestmark = pytest.mark.storage


class Running:
    def __init__(self, tmp_path, name: str, log_key: str):
        self.cosigner = Cosigner.generate(name)
        self.server = WitnessServer(("127.0.0.1", 0), Witness(
            cosigner=self.cosigner, logs=[NoteVerifier.from_key_text(log_key)],
            state=WitnessState(tmp_path / name.replace("/", "_"))))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.configured = ConfiguredWitness(self.cosigner.key,
                                            f"http://127.0.0.1:{self.server.server_address[1]}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def witness(tmp_path, signer):
    running = Running(tmp_path, "witness.test/a", signer.verifier_key_text())
    yield running
    running.close()


@pytest.fixture
def feeder_of(app_url):
    made = []

    def make(configured: ConfiguredWitness) -> WitnessFeeder:
        made.append(WitnessFeeder(conninfo=app_url, witness=configured, timeout=5))
        return made[-1]
    yield make
    for feeder in made:
        feeder.stop()  # never started here: closes its connection to the witness


def _grow(conn, tenant, signer, kept, start: int, count: int):
    append_batch(conn, tenant, [command(i) for i in range(start, start + count)])
    return sign_checkpoint(conn, tenant, signer, kept)


def test_each_new_checkpoint_is_cosigned_and_served_with_its_cosignature(
        feeder_of, conn, tenant, signer, kept, witness):
    feeder = feeder_of(witness.configured)
    _grow(conn, tenant, signer, kept, 0, 10)
    assert feeder.run_once(conn) >= 1
    _grow(conn, tenant, signer, kept, 10, 25)  # from size 10, with a consistency proof
    assert feeder.run_once(conn) >= 1
    stored = cosignatures(conn, tenant, 35)
    assert [c.witness for c in stored] == [witness.cosigner.key.key_text()]
    served = audit.current_checkpoint(conn, tenant)
    assert served.size == 35 and stored[0].signature_line in served.note
    policy = WitnessPolicy((witness.cosigner.key,), 1)
    assert check_witness_quorum(served.note, policy) == {"witness.test/a": pytest.approx(
        stored[0].cosigned_at.timestamp(), abs=1)}
    assert witnessed_checkpoint(conn, tenant, policy).size == 35
    assert feeder.status.cosigned >= 2 and feeder.status.last_error is None
    assert feeder.run_once(conn) == 0 and feeder.status.behind == 0  # nothing left to submit


def test_a_feeder_that_forgot_learns_the_witness_size_from_a_409(
        feeder_of, conn, tenant, signer, kept, witness, tmp_path):
    _grow(conn, tenant, signer, kept, 0, 7)
    feeder_of(witness.configured).run_once(conn)
    _grow(conn, tenant, signer, kept, 7, 9)
    # A second instance of the log (same database) that never saw the witness's answers for
    # this tenant would start from the stored row; here the witness moves on without us:
    other = Running(tmp_path, "witness.test/b", signer.verifier_key_text())
    try:
        fresh = feeder_of(other.configured)
        fresh._known[tenant] = 3  # wrong on purpose: the witness never saw size 3
        assert fresh.run_once(conn) >= 1  # 409 "0" taught it; then cosigned from scratch
        assert [c.size for c in cosignatures(conn, tenant, 16)
                if c.witness == other.cosigner.key.key_text()] == [16]
    finally:
        other.close()


def test_a_witness_that_refuses_is_recorded_and_nothing_is_stored(
        feeder_of, conn, tenant, signer, kept, tmp_path):
    stranger = Running(tmp_path, "witness.test/x", NoteSigner.generate("elsewhere").
                       verifier_key_text())
    try:
        feeder = feeder_of(stranger.configured)
        _grow(conn, tenant, signer, kept, 0, 4)
        feeder.run_once(conn)
        assert "HTTP 404" in feeder.status.last_error and feeder.status.failures >= 1
        assert cosignatures(conn, tenant, 4) == []
        policy = WitnessPolicy((stranger.cosigner.key,), 1)
        with pytest.raises(NotWitnessedError, match="missing: witness.test/x"):
            witnessed_checkpoint(conn, tenant, policy)
        assert witnessed_size(conn, tenant, policy)[0] == 0
    finally:
        stranger.close()


def test_an_unreachable_witness_fails_fast_and_appends_go_on(feeder_of, conn, tenant, signer,
                                                             kept):
    key = Cosigner.generate("witness.test/down").key
    feeder = feeder_of(ConfiguredWitness(key, f"http://127.0.0.1:{free_port()}"))
    _grow(conn, tenant, signer, kept, 0, 3)
    with pytest.raises(WitnessUnreachableError):
        feeder.run_once(conn)
    assert _grow(conn, tenant, signer, kept, 3, 3).size == 6  # the log never waited


def test_cosignatures_are_append_only(owner_url, feeder_of, conn, tenant, signer, kept, witness):
    _grow(conn, tenant, signer, kept, 0, 2)
    feeder_of(witness.configured).run_once(conn)
    with psycopg.connect(owner_url, autocommit=True) as owner:
        for statement in ("UPDATE checkpoint_cosignatures SET size = size WHERE tenant_id = %s",
                          "DELETE FROM checkpoint_cosignatures WHERE tenant_id = %s"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                owner.execute(statement, (tenant,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="TRUNCATE refused"):
            owner.execute("TRUNCATE checkpoint_cosignatures")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        conn.execute("DELETE FROM checkpoint_cosignatures WHERE tenant_id = %s", (tenant,))


def test_a_forged_cosignature_row_counts_for_nothing(owner_url, conn, tenant, signer, kept,
                                                     witness):
    checkpoint = _grow(conn, tenant, signer, kept, 0, 5)
    forged = Cosigner.generate("witness.test/a")  # the witness's name, another key
    body = checkpoint.note[:checkpoint.note.rfind("\n\n") + 1]
    line = forged.cosign(body, 1).rstrip("\n")
    with psycopg.connect(owner_url, autocommit=True) as owner:
        owner.execute("INSERT INTO checkpoint_cosignatures (tenant_id, size, witness, "
                      "signature_line, cosigned_at) VALUES (%s, 5, %s, %s, now())",
                      (tenant, witness.cosigner.key.key_text(), line))
    with pytest.raises(NotWitnessedError, match="missing: witness.test/a"):
        witnessed_checkpoint(conn, tenant, WitnessPolicy((witness.cosigner.key,), 1))


def test_the_witnesses_file_is_parsed_strictly():
    key = Cosigner.generate("w.example/a").key.key_text()
    assert parse_witnesses(f"# ours\n{key} http://127.0.0.1:9/prefix/\n")[0].url == \
        "http://127.0.0.1:9/prefix"
    with pytest.raises(WitnessConfigError, match="line 1: expected '<witness verifier key> "
                                                  "<URL prefix>', got 1 field"):
        parse_witnesses(key)
    with pytest.raises(WitnessConfigError, match="line 1: URL prefix 'ftp://x' must be"):
        parse_witnesses(f"{key} ftp://x")
    with pytest.raises(WitnessConfigError, match="line 2: witness w.example/a is listed twice"):
        parse_witnesses(f"{key} http://a\n{key} http://b\n")
    with pytest.raises(WitnessConfigError, match="line 1: .*key type 0x01"):
        parse_witnesses(f"{NoteSigner.generate('log').verifier_key_text()} http://a")
    with pytest.raises(ProofError):
        check_witness_quorum("no signatures\n", WitnessPolicy((Cosigner.generate("w").key,), 1))


def test_a_forged_row_beyond_the_log_does_not_stop_the_feeder(owner_url, feeder_of, conn, tenant,
                                                              signer, kept, witness):
    # The stored rows are only a hint of where the witness stands: a row a superuser put at a
    # size the log never reached must not make the feeder refuse (a false split-view alarm,
    # and the witness starved of checkpoints) — the witness's 409 says where it stands.
    _grow(conn, tenant, signer, kept, 0, 5)
    with psycopg.connect(owner_url, autocommit=True) as owner:
        owner.execute("INSERT INTO checkpoint_cosignatures (tenant_id, size, witness, "
                      "signature_line, cosigned_at) VALUES (%s, 1000000, %s, %s, now())",
                      (tenant, witness.cosigner.key.key_text(), "— witness.test/a AAAA"))
    feeder = feeder_of(witness.configured)
    assert feeder.run_once(conn) >= 1, feeder.status.last_error
    assert [c.size for c in cosignatures(conn, tenant, 5)] == [5]


def test_a_malformed_row_does_not_ride_along_on_the_served_checkpoint(owner_url, conn, tenant,
                                                                      signer, kept, witness):
    # Served notes carry the stored lines; a line a superuser wrote that is not a valid
    # cosignature by its row's witness must not be served: it would make the log's own
    # signed checkpoint unreadable to every client (and hide the genuine cosignatures).
    from indelible.proofs import open_checkpoint
    checkpoint = _grow(conn, tenant, signer, kept, 0, 5)
    body = checkpoint.note[:checkpoint.note.rfind("\n\n") + 1]
    genuine = witness.cosigner.cosign(body, 1).rstrip("\n")
    stranger = Cosigner.generate("witness.test/z")
    with psycopg.connect(owner_url, autocommit=True) as owner:
        for key, line in ((witness.cosigner.key.key_text(), genuine),
                          (stranger.key.key_text(), "garbage, not a signature line")):
            owner.execute("INSERT INTO checkpoint_cosignatures (tenant_id, size, witness, "
                          "signature_line, cosigned_at) VALUES (%s, 5, %s, %s, now())",
                          (tenant, key, line))
    served = audit.current_checkpoint(conn, tenant).note
    assert "garbage" not in served and genuine in served
    open_checkpoint(served, NoteVerifier.from_key_text(signer.verifier_key_text()))
    assert witnessed_checkpoint(conn, tenant, WitnessPolicy((witness.cosigner.key,), 1)).size == 5
