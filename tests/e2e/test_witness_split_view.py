"""The split-view test (issue 15): two real witnesses on 127.0.0.1 and `indelible up`.

The service's checkpoints are cosigned by both; a witness that was offline catches up from
the size it last cosigned; then a forked history, signed with the log's real key, is offered
to both witnesses, which refuse it, and a verifier with quorum 2 refuses the fork's proof
even though the log's signature on it is valid.
"""

from __future__ import annotations

import json
import secrets
import time

import httpx
import psycopg
import pytest

from indelible import proofs
from indelible.keys import load_or_create_signer
from indelible.proofs import AddCheckpoint, Checkpoint, format_add_checkpoint
from indelible.store.appender import append_batch
from indelible.store.tenants import create_tenant
from tests.integration.ledger_helpers import command

from .cli_helpers import cli_env, indelible
from .test_http import _interrupt, _start
from .witness_helpers import make_witness

ORIGIN_BASE = "test.indelible.local/log"
WAIT = 60  # seconds for a cosignature to arrive (the feeder backs off up to 30 s)


def _wait_for(what: str, check, timeout: float = WAIT):
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _status(client: httpx.Client, tenant: str) -> dict:
    return client.get(f"/v1/logs/{tenant}/witnesses").json()


def _cosigned_by(client, tenant, names: set[str], size: int | None = None):
    def check():
        body = _status(client, tenant)
        done = {w["name"] for w in body["witnesses"] if not w["missing"]}
        ok = body["checkpoint_size"] and names <= done and \
            (size is None or body["checkpoint_size"] >= size)
        return body if ok else None
    return _wait_for(f"cosignatures of {sorted(names)}", check)


def _fork(app_url: str, tenant: str, size: int, rewrite: int) -> list[bytes]:
    """The log's first `size` entries with entry `rewrite` changed and every later `prev`
    re-linked: a history that hashes and chains correctly, but is not the one published."""
    with psycopg.connect(app_url, autocommit=True) as conn:
        rows = conn.execute("SELECT entry FROM ledger_entries WHERE tenant_id = %s AND seq < %s "
                            "ORDER BY seq", (tenant, size)).fetchall()
    entries, forked, prev = [json.loads(bytes(r[0])) for r in rows], [], None
    for seq, entry in enumerate(entries):
        if seq == rewrite:
            entry["data"]["amount"] = "999999.99"
        if prev is not None and seq > rewrite:
            entry["prev"] = prev
        raw = proofs.canonical_json(entry)
        prev = __import__("base64").b64encode(proofs.leaf_hash(raw)).decode()
        forked.append(raw)
    return forked


def _subtree(leaves: list[bytes]):
    return lambda level, i: leaves[i] if level == 0 else \
        proofs.fold_perfect(leaves[i << level:(i + 1) << level])


@pytest.fixture
def deployment(tmp_path, owner_url, app_url):
    env = cli_env(tmp_path / "data", owner_url)
    env["INDELIBLE_CHECKPOINT_INTERVAL"] = "0.2"
    env["INDELIBLE_METRICS_PUBLIC"] = "true"  # /metrics on the API port, as enabled
    signer = load_or_create_signer(tmp_path / "data" / "signing.key", ORIGIN_BASE)
    vkey = signer.verifier_key_text()
    witnesses = [make_witness(tmp_path, f"witness.test/{n}", env, vkey).start()
                 for n in ("alpha", "beta")]
    (tmp_path / "witnesses").write_text("".join(f"{w.key.key_text()} {w.url}\n"
                                                for w in witnesses))
    env["INDELIBLE_WITNESSES"] = str(tmp_path / "witnesses")
    tenant = f"wit-{secrets.token_hex(3)}"
    with psycopg.connect(app_url, autocommit=True) as conn:
        create_tenant(conn, tenant, base_origin=ORIGIN_BASE)
        append_batch(conn, tenant, [command(i) for i in range(40)])
    process, base = _start(env, tmp_path / "service.log")
    token = indelible(env, "api-key", "create", "--tenant", tenant, "--role", "auditor")
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token.stdout.strip()}"})
    try:
        yield env, signer, witnesses, tenant, client, tmp_path
    finally:
        client.close()
        assert _interrupt(process) == 0
        for w in witnesses:
            w.stop()


def test_a_fork_signed_with_the_real_key_is_refused_by_the_witnesses_and_the_verifier(
        deployment, app_url):
    env, signer, (alpha, beta), tenant, client, tmp_path = deployment
    names = {alpha.name, beta.name}
    quorum = ["--witness", alpha.key.key_text(), "--witness", beta.key.key_text(),
              "--quorum", "2"]

    # 1. Checkpoints are cosigned by both witnesses, and a quorum-2 proof verifies offline.
    _cosigned_by(client, tenant, names)
    proof = client.get(f"/v1/logs/{tenant}/entries/5",
                       params={"format": "tlog-proof", "quorum": 2})
    assert proof.status_code == 200, proof.text
    (tmp_path / "witnessed.proof").write_text(proof.text)
    checked = indelible(env, "verify-proof", "--vkey", signer.verifier_key_text(), *quorum,
                        str(tmp_path / "witnessed.proof"))
    assert checked.returncode == 0, checked.stderr
    assert "cosigned by witness.test/alpha, witness.test/beta" in checked.stderr
    too_many = client.get(f"/v1/logs/{tenant}/checkpoint", params={"quorum": 3})
    assert too_many.status_code == 422 and "quorum must be between 1 and 2" in too_many.text
    junk = client.get(f"/v1/logs/{tenant}/checkpoint", params={"quorum": 1, "witness": "junk"})
    assert junk.status_code == 422 and junk.json()["errors"][0]["field"] == "query.witness"

    # 2. A witness goes offline: new checkpoints lack its cosignature, visibly.
    beta.stop()
    with psycopg.connect(app_url, autocommit=True) as conn:
        append_batch(conn, tenant, [command(i) for i in range(40, 60)])
    body = _wait_for("beta missing", lambda: (s := _status(client, tenant))["checkpoint_size"]
                     >= 61 and any(w["name"] == beta.name and w["missing"]
                                   for w in s["witnesses"]) and
                     not any(w["name"] == alpha.name and w["missing"] for w in s["witnesses"])
                     and s)
    assert body["cosigned_by"] == 1
    down = f'indelible_witness_up{{witness="{beta.name}"}} 0.0'
    _wait_for("beta's metric to show it down", lambda: down in client.get("/metrics").text)
    latest = client.get(f"/v1/logs/{tenant}/entries/50", params={"format": "tlog-proof"}).text
    (tmp_path / "latest.proof").write_text(latest)
    refused = indelible(env, "verify-proof", "--vkey", signer.verifier_key_text(), *quorum,
                        str(tmp_path / "latest.proof"))
    assert refused.returncode == 1 and "missing: witness.test/beta" in refused.stderr
    missing = client.get(f"/v1/logs/{tenant}/entries/50", params={"quorum": 2})
    assert missing.status_code == 409 and "witness.test/beta" in missing.json()["detail"]
    behind = indelible(env, "verify", "--tenant", tenant, "--no-models", *quorum)
    assert behind.returncode == 3, behind.stdout + behind.stderr  # not verified, not tampered
    assert "missing: witness.test/beta" in behind.stdout

    # 3. Restarted on its state, it kept its size and catches up from it.
    beta.start()
    stale = beta.add_checkpoint(format_add_checkpoint(AddCheckpoint(
        0, (), client.get(f"/v1/logs/{tenant}/checkpoint").text)))
    assert stale.status_code == 409 and int(stale.text) >= 41
    size = _status(client, tenant)["checkpoint_size"]
    _cosigned_by(client, tenant, names, size)

    # 4. A forked history signed with the real key: both witnesses refuse it.
    forked = _fork(app_url, tenant, size, rewrite=3)
    leaves = [proofs.leaf_hash(e) for e in forked]
    fork_note = proofs.sign_checkpoint(Checkpoint(
        f"{ORIGIN_BASE}/{tenant}", size, proofs.tree_root(size, _subtree(leaves))), signer)
    for witness in (alpha, beta):
        same_size = witness.add_checkpoint(format_add_checkpoint(AddCheckpoint(size, (),
                                                                               fork_note)))
        assert same_size.status_code == 409, same_size.text
        from_scratch = witness.add_checkpoint(format_add_checkpoint(AddCheckpoint(0, (),
                                                                                  fork_note)))
        assert from_scratch.status_code == 409 and int(from_scratch.text) == size
    smaller = size - 1  # claim the witnesses' size, with a proof from the forked tree
    small_note = proofs.sign_checkpoint(Checkpoint(
        f"{ORIGIN_BASE}/{tenant}", smaller, proofs.tree_root(smaller, _subtree(leaves))), signer)
    grown = leaves + [proofs.leaf_hash(b"appended by the forger")]
    grown_note = proofs.sign_checkpoint(Checkpoint(
        f"{ORIGIN_BASE}/{tenant}", size + 1, proofs.tree_root(size + 1, _subtree(grown))), signer)
    for witness in (alpha, beta):
        wrong = witness.add_checkpoint(format_add_checkpoint(AddCheckpoint(
            size, tuple(proofs.consistency_proof(size, size + 1, _subtree(grown))), grown_note)))
        assert wrong.status_code == 422, wrong.text
        assert witness.add_checkpoint(format_add_checkpoint(AddCheckpoint(
            0, (), small_note))).status_code == 409

    # 5. The fork's proof verifies under the log key alone, but not with quorum 2, even
    #    carrying the real checkpoint's cosignatures copied over.
    real = client.get(f"/v1/logs/{tenant}/checkpoint").text
    copied = [line for line in real[real.rfind("\n\n") + 2:].splitlines()
              if line.startswith("\u2014 witness.test/")]
    forged_note = proofs.cosignature.add_signature_lines(fork_note, copied)
    forged_proof = proofs.format_tlog_proof(proofs.TlogProof(
        3, tuple(proofs.inclusion_proof(3, size, _subtree(leaves))), forged_note, forked[3]))
    (tmp_path / "forged.proof").write_text(forged_proof)
    alone = indelible(env, "verify-proof", "--vkey", signer.verifier_key_text(),
                      str(tmp_path / "forged.proof"))
    assert alone.returncode == 0 and "999999.99" in alone.stdout  # what witnesses are for
    caught = indelible(env, "verify-proof", "--vkey", signer.verifier_key_text(), *quorum,
                       str(tmp_path / "forged.proof"))
    assert caught.returncode == 1
    assert "missing: witness.test/alpha, witness.test/beta" in caught.stderr

    # 6. The whole log verifies under the same policy.
    _cosigned_by(client, tenant, names, _status(client, tenant)["checkpoint_size"])
    verified = indelible(env, "verify", "--tenant", tenant, "--no-models", *quorum)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "cosigned by 2 of 2 listed witnesses" in verified.stdout
