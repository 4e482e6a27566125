"""The operator's and the auditor's commands, run as real subprocesses."""

from __future__ import annotations

import json
import re
import secrets
import stat

import psycopg
import pytest

from indelible.store.appender import append_batch
from indelible.store.schema import MIGRATIONS
from tests.integration.ledger_helpers import command, superuser

from .cli_helpers import cli_env, indelible


@pytest.fixture
def env(tmp_path, owner_url):
    return cli_env(tmp_path / "data", owner_url)


@pytest.fixture
def acme(env, app_url):
    """A tenant (entry 0: its creation) with 40 more entries and a signed checkpoint."""
    name = f"acme-{secrets.token_hex(3)}"
    created = indelible(env, "tenant", "create", name)
    assert created.returncode == 0, created.stderr
    assert f"tenant {name} created; log origin test.indelible.local/log/{name}" in created.stdout
    with psycopg.connect(app_url, autocommit=True) as conn:
        append_batch(conn, name, [command(i) for i in range(40)])
    assert indelible(env, "checkpoint", "--tenant", name).returncode == 0
    return name


def _vkey(env) -> str:
    shown = indelible(env, "signing-key", "show")
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.strip()


def test_the_signing_key_is_created_private_and_shown_as_a_verifier_key(env, tmp_path):
    key = _vkey(env)
    assert re.fullmatch(r"test\.indelible\.local/log\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}", key)
    mode = stat.S_IMODE((tmp_path / "data" / "signing.key").stat().st_mode)
    assert mode == 0o600
    assert _vkey(env) == key  # generated once, then reused


def test_migrate_reports_the_schema_version(env):
    result = indelible(env, "migrate")
    assert result.returncode == 0 and f"schema at version {MIGRATIONS[-1][0]}" in result.stdout


def test_an_invalid_tenant_name_is_refused_with_the_rule(env):
    result = indelible(env, "tenant", "create", "Not A Slug")
    assert result.returncode == 2 and "is not a valid slug" in result.stderr


def test_a_proof_file_verifies_offline_and_prints_its_entry(env, acme, tmp_path):
    proof = tmp_path / "entry-7.proof"
    made = indelible(env, "proof", "--tenant", acme, "--seq", "7", "--output", str(proof))
    assert made.returncode == 0, made.stderr
    assert proof.read_text().startswith("c2sp.org/tlog-proof@v1\n")

    checked = indelible(env, "verify-proof", "--vkey", _vkey(env), str(proof))
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["seq"] == 7
    assert f"included in test.indelible.local/log/{acme} at size 41" in checked.stderr


def test_a_doctored_proof_file_or_a_foreign_key_is_rejected(env, acme, tmp_path):
    text = indelible(env, "proof", "--tenant", acme, "--seq", "7").stdout
    doctored = tmp_path / "doctored.proof"
    doctored.write_text(text.replace('\\"n\\":7', '\\"n\\":8') if '\\"n\\":7' in text
                        else _flip_first_hash(text))
    rejected = indelible(env, "verify-proof", "--vkey", _vkey(env), str(doctored))
    assert rejected.returncode == 1 and "INVALID" in rejected.stderr

    other = cli_env(tmp_path / "other", None)
    stranger = indelible(other, "signing-key", "show").stdout.strip()
    foreign = indelible(env, "verify-proof", "--vkey", stranger, "-", input=text)
    assert foreign.returncode == 1 and "INVALID" in foreign.stderr


def _flip_first_hash(text: str) -> str:
    lines = text.split("\n")
    index = next(i for i, line in enumerate(lines) if i > 1 and not line.startswith(("extra", "index")))
    lines[index] = ("B" if lines[index][0] == "A" else "A") + lines[index][1:]
    return "\n".join(lines)


def test_verify_passes_on_an_intact_log_and_reports_json(env, acme):
    result = indelible(env, "verify", "--tenant", acme, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["entries_checked"] == 41 and report["first_bad_seq"] is None
    assert "verified 41/41 entries" in result.stderr  # progress


def test_verify_names_the_tampered_seq_and_exits_1(env, acme, owner_url):
    with superuser(owner_url) as rogue:
        rogue.execute("UPDATE ledger_entries SET actor_id = 'someone-else' "
                      "WHERE tenant_id = %s AND seq = 21", (acme,))
    result = indelible(env, "verify", "--tenant", acme)
    assert result.returncode == 1
    assert "first bad seq: 21" in result.stdout and "column actor_id" in result.stdout


def test_verify_checks_a_checkpoint_the_auditor_kept(env, acme, tmp_path):
    kept = tmp_path / "kept.checkpoint"
    kept.write_text(indelible(env, "checkpoint", "--tenant", acme).stdout)
    result = indelible(env, "verify", "--tenant", acme, "--trusted-checkpoint", str(kept), "--json")
    # Two: the auditor's copy, and the checkpoint the service kept beside its key.
    assert result.returncode == 0 and json.loads(result.stdout)["trusted_checkpoints_checked"] == 2


def test_verify_does_not_call_unsigned_entries_verified_and_exits_3(env, app_url):
    name = f"unsigned-{secrets.token_hex(3)}"
    assert indelible(env, "tenant", "create", name).returncode == 0
    with psycopg.connect(app_url, autocommit=True) as conn:
        append_batch(conn, name, [command(i) for i in range(9)])
    _vkey(env)  # the service's key exists; it has signed nothing yet
    result = indelible(env, "verify", "--tenant", name)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "every check holds" not in result.stdout
    assert "UNSIGNED: 10 entries (seq 0..9) are covered by no signed checkpoint" in result.stdout

    assert indelible(env, "checkpoint", "--tenant", name).returncode == 0
    with psycopg.connect(app_url, autocommit=True) as conn:
        append_batch(conn, name, [command(9)])
    report = json.loads(indelible(env, "verify", "--tenant", name, "--json").stdout)
    assert (report["status"], report["signed_size"], report["unsigned_entries"]) == (
        "unsigned", 10, 1)


def test_signing_key_rotate_records_the_change_so_the_new_key_may_sign(env, acme, tmp_path, owner_url):
    old = _vkey(env)
    new_env = cli_env(tmp_path / "new-instance", owner_url)  # a second instance, its own key
    refused = indelible(new_env, "checkpoint", "--tenant", acme)
    assert refused.returncode == 2 and "INTEGRITY ALARM" in refused.stderr
    with psycopg.connect(owner_url, autocommit=True) as conn:
        append_batch(conn, acme, [command(99)])
    assert indelible(new_env, "checkpoint", "--tenant", acme).returncode == 2

    rotated = indelible(new_env, "signing-key", "rotate", "--tenant", acme, "--previous", old,
                        "--reason", "the service moved to a new host")
    assert rotated.returncode == 0, rotated.stderr
    assert "recorded at seq 42" in rotated.stdout
    signed = indelible(new_env, "checkpoint", "--tenant", acme)
    assert signed.returncode == 0, signed.stderr
    assert "\n43\n" in signed.stdout
    assert indelible(env, "checkpoint", "--tenant", acme).returncode == 2  # the old key is retired

    # The log now holds checkpoints by both keys: an auditor given both finds it intact, and
    # one given only the new key is told which checkpoints it could not open.
    both = indelible(new_env, "verify", "--tenant", acme, "--vkey", old, "--vkey", _vkey(new_env))
    assert both.returncode == 0, both.stdout + both.stderr
    only_new = indelible(new_env, "verify", "--tenant", acme, "--vkey", _vkey(new_env))
    assert only_new.returncode == 1 and "not valid under the trusted key" in only_new.stdout


def test_verify_exits_2_when_it_cannot_run(env):
    no_key = indelible(env, "verify", "--tenant", "no-such-tenant")
    assert no_key.returncode == 2 and "no signing key" in no_key.stderr

    _vkey(env)
    no_log = indelible(env, "verify", "--tenant", "no-such-tenant")
    assert no_log.returncode == 2 and "has no ledger log" in no_log.stderr


def test_an_api_key_is_issued_for_a_tenant_and_its_token_printed_once(env, app_url):
    name = f"keys-{secrets.token_hex(3)}"
    assert indelible(env, "tenant", "create", name).returncode == 0
    issued = indelible(env, "api-key", "create", "--tenant", name, "--role", "auditor",
                       "--name", "external auditor")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert token.startswith("idl_") and "shown only now" in issued.stderr
    from indelible.store.api_keys import authenticate

    with psycopg.connect(app_url) as conn:
        assert authenticate(conn, token).role == "auditor"

    unknown = indelible(env, "api-key", "create", "--tenant", "nope", "--role", "analyst")
    assert unknown.returncode == 2 and "tenant 'nope' does not exist" in unknown.stderr


def test_projections_are_rebuilt_from_the_ledger_by_the_cli(env, app_url):
    name = f"rebuild-{secrets.token_hex(3)}"
    indelible(env, "tenant", "create", name)
    token = indelible(env, "api-key", "create", "--tenant", name, "--role", "analyst").stdout.strip()
    rebuilt = indelible(env, "projections", "rebuild", "--tenant", name)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert f"rebuilt api_keys, discrepancies, escalation_watch of {name} from the ledger: " \
        "1 streams" in rebuilt.stdout
    from indelible.store.api_keys import authenticate

    with psycopg.connect(app_url) as conn:
        assert authenticate(conn, token).tenant == name  # the rebuilt key still works
