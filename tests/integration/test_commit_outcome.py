"""A connection lost during COMMIT is reported as an unknown outcome (issue 8, item 9)."""

from __future__ import annotations

import psycopg
import pytest

from indelible.store.group_commit import GroupCommitAppender
from indelible.store.errors import CommitOutcomeUnknownError
from indelible.store.logs import read_head

from .ledger_helpers import command

pytestmark = pytest.mark.storage


@pytest.fixture
def commit_kills_the_connection(owner_url, tenant):
    """A deferred trigger fires at COMMIT and ends its own backend: the client loses the
    connection while COMMIT is in flight, as when the network drops at that moment."""
    trigger = f"kill_at_commit_{tenant.replace('-', '_')}"
    with psycopg.connect(owner_url, autocommit=True) as owner:
        owner.execute(f"""
            CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER {trigger} AFTER UPDATE ON log_heads
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
                WHEN (NEW.tenant_id = '{tenant}') EXECUTE FUNCTION {trigger}();""")
        try:
            yield
        finally:
            owner.execute(f"DROP TRIGGER {trigger} ON log_heads; DROP FUNCTION {trigger}()")


def test_a_connection_lost_during_commit_does_not_claim_nothing_was_written(
        app_url, conn, tenant, commit_kills_the_connection):
    appender = GroupCommitAppender(conninfo=app_url)
    try:
        with pytest.raises(CommitOutcomeUnknownError,
                           match="during COMMIT, so whether the batch was written is unknown"):
            appender.submit(tenant, command(1, key="unknown-1")).result(timeout=30)
    finally:
        appender.close()
    assert read_head(conn, tenant).size == 0  # here it did roll back; the caller could not know
