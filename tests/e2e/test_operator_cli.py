"""What an operator reaches for, run as real subprocesses: listing tenants and keys, revoking a
key, changing the severity policy without overwriting a colleague's change, and a ledger
that names who ran each command."""

from __future__ import annotations

import re
import secrets

import orjson
import psycopg
import pytest

from indelible.store.api_keys import authenticate
from indelible.store.appender import append_batch
from tests.integration.ledger_helpers import command

from .cli_helpers import cli_env, indelible

USD = {"medium": "500.00", "high": "10000.00", "critical": "250000.00"}


@pytest.fixture
def env(tmp_path, owner_url):
    return {**cli_env(tmp_path / "data", owner_url), "LOGNAME": "ops-bob"}


@pytest.fixture
def tenant(env):
    name = f"ops-{secrets.token_hex(3)}"
    made = indelible(env, "tenant", "create", name, "--display-name", "Ops Ltd")
    assert made.returncode == 0, made.stderr
    return name


def _ok(env, *args: str):
    result = indelible(env, *args)
    assert result.returncode == 0, result.stderr
    return result


def _actors(app_url: str, tenant: str) -> list[tuple[str, dict]]:
    """(entry type, actor) of every entry of the tenant's log, in order."""
    with psycopg.connect(app_url) as conn:
        rows = conn.execute("SELECT type, entry FROM ledger_entries WHERE tenant_id = %s "
                            "ORDER BY seq", (tenant,)).fetchall()
    return [(t, orjson.loads(entry)["actor"]) for t, entry in rows]


def test_tenant_list_shows_names_creation_log_size_and_latest_checkpoint(env, tenant, app_url):
    with psycopg.connect(app_url, autocommit=True) as conn:
        append_batch(conn, tenant, [command(i) for i in range(6)])
    _ok(env, "checkpoint", "--tenant", tenant)
    with psycopg.connect(app_url, autocommit=True) as conn:
        append_batch(conn, tenant, [command(6)])
    unsigned = f"ops-{secrets.token_hex(3)}"
    _ok(env, "tenant", "create", unsigned)

    listed = _ok(env, "tenant", "list")
    lines = listed.stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["TENANT", "DISPLAY NAME", "CREATED", "LOG SIZE",
                                            "CHECKPOINT SIZE"]
    rows = {cells[0]: cells for cells in (re.split(r"\s{2,}", line) for line in lines[1:])}
    assert rows[tenant][1] == "Ops Ltd" and rows[tenant][3:] == ["8", "7"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows[tenant][2])
    assert rows[unsigned][1:2] == [unsigned] and rows[unsigned][3:] == ["1", "none"]
    assert re.search(r"\d+ tenant\(s\)", listed.stderr)


def test_an_api_key_is_listed_and_revoked_by_the_cli_and_stops_authenticating(env, tenant,
                                                                              app_url):
    token = _ok(env, "api-key", "create", "--tenant", tenant, "--role", "auditor",
                "--name", "external auditor").stdout.strip()
    with psycopg.connect(app_url) as conn:
        key_id = authenticate(conn, token).key_id

    listed = _ok(env, "api-key", "list", "--tenant", tenant).stdout
    (row,) = [line for line in listed.splitlines() if line.startswith(key_id)]
    assert "auditor" in row and "external auditor" in row and "by cli:ops-bob" in row
    assert row.rstrip().endswith("active")

    revoked = _ok(env, "api-key", "revoke", "--tenant", tenant, key_id.upper())
    assert f"key {key_id} of {tenant} revoked at seq" in revoked.stdout
    with psycopg.connect(app_url) as conn:
        assert authenticate(conn, token) is None
    listed = _ok(env, "api-key", "list", "--tenant", tenant).stdout
    assert re.search(rf"{key_id}.*revoked seq \d+ \S+Z by cli:ops-bob", listed)

    again = indelible(env, "api-key", "revoke", "--tenant", tenant, key_id)
    assert again.returncode == 1 and f"API key {key_id} was already revoked at seq" in again.stderr
    stranger = indelible(env, "api-key", "revoke", "--tenant", tenant,
                         "0190b8a4-0000-7000-8000-000000000000")
    assert stranger.returncode == 1 and "does not exist in this tenant" in stranger.stderr
    garbled = indelible(env, "api-key", "revoke", "--tenant", tenant, "key-1")
    assert garbled.returncode == 2 and "not a key id (a UUID): 'key-1'" in garbled.stderr


def test_a_stale_expected_version_is_refused_naming_the_version_in_force(env, tenant, tmp_path):
    path = tmp_path / "policy.json"
    path.write_bytes(orjson.dumps({"thresholds": {"USD": USD}}))
    first = _ok(env, "severity-policy", "set", "--tenant", tenant, "--file", str(path),
                "--reason", "risk committee", "--expected-version", "0")
    assert "is now version 1" in first.stdout

    stale = indelible(env, "severity-policy", "set", "--tenant", tenant, "--file", str(path),
                      "--reason", "a colleague's older view", "--expected-version", "0")
    assert stale.returncode == 1
    assert f"the policy of {tenant} is at version 1, not 0" in stale.stderr
    assert "--expected-version 1" in stale.stderr
    shown = orjson.loads(_ok(env, "severity-policy", "show", "--tenant", tenant).stdout)
    assert (shown["version"], shown["reason"]) == (1, "risk committee")

    current = _ok(env, "severity-policy", "set", "--tenant", tenant, "--file", str(path),
                  "--reason", "whatever is in force")  # no flag: the version in force
    assert "is now version 2" in current.stdout


def test_cli_changes_name_who_ran_them_as_an_operator_with_the_admin_role(env, app_url,
                                                                           tmp_path):
    name = f"ops-{secrets.token_hex(3)}"
    _ok(env, "--actor", "alice", "tenant", "create", name)
    token = _ok(env, "--actor", "alice", "api-key", "create", "--tenant", name,
                "--role", "analyst").stdout.strip()
    with psycopg.connect(app_url) as conn:
        key_id = authenticate(conn, token).key_id
    _ok(env, "api-key", "revoke", "--tenant", name, key_id)  # the OS user: LOGNAME
    path = tmp_path / "policy.json"
    path.write_bytes(orjson.dumps({"thresholds": {"USD": USD}}))
    _ok(env, "--actor", "Carol Q", "severity-policy", "set", "--tenant", name,
        "--file", str(path), "--reason", "r")

    assert _actors(app_url, name) == [
        ("tenant.created", {"id": "cli:alice", "kind": "operator", "role": "admin"}),
        ("api_key.issued", {"id": "cli:alice", "kind": "operator", "role": "admin"}),
        ("api_key.revoked", {"id": "cli:ops-bob", "kind": "operator", "role": "admin"}),
        ("tenant.severity_policy_set", {"id": "cli:Carol Q", "kind": "operator",
                                        "role": "admin"})]

    for bad in ("", " padded", "line\nbreak", "x" * 197):
        refused = indelible(env, "--actor", bad, "tenant", "create",
                            f"ops-{secrets.token_hex(3)}")
        assert refused.returncode == 2 and "Invalid value for --actor: 1..196 printable" in refused.stderr
