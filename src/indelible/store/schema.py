"""Versioned schema migrations, applied in order on start and by `indelible migrate`.

Migrations run as the owner of the database (the configured URL's user). The service itself
then works as `indelible_app`, a role that may only INSERT and SELECT on evidence tables;
triggers additionally refuse UPDATE, DELETE and TRUNCATE there, even for the owner. Neither
stops a superuser who disables triggers: that is what verification is for.
"""

from __future__ import annotations

import psycopg

from indelible.store.logs import TENANT_PATTERN

APP_ROLE = "indelible_app"  # the service's own work: appender, checkpointer, verifier, CLI
API_ROLE = "indelible_api"  # HTTP request handlers: reads under fail-closed row-level security
MIGRATION_LOCK = 0x1DE1_1B1E  # advisory lock id: one migrator at a time across processes

# Tables whose rows are evidence: append-only for everyone, forever.
EVIDENCE_TABLES = ("ledger_entries", "merkle_nodes", "checkpoints")  # of the ledger core

_V1_LEDGER = """
CREATE FUNCTION indelible_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

-- One row per tenant log: the only mutable row on the append path. The appender locks it
-- FOR UPDATE, which serialises appends of one tenant across every process.
CREATE TABLE log_heads (
    tenant_id      text PRIMARY KEY CHECK (tenant_id ~ '""" + TENANT_PATTERN + """'),
    origin         text NOT NULL UNIQUE,
    size           bigint NOT NULL DEFAULT 0 CHECK (size >= 0),
    last_leaf_hash bytea CHECK (octet_length(last_leaf_hash) = 32),
    frontier       bytea NOT NULL,  -- compact range of [0, size): root of any size in O(log n)
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ledger_entries (
    tenant_id       text NOT NULL,
    seq             bigint NOT NULL CHECK (seq >= 0),  -- the Merkle leaf index
    entry           bytea NOT NULL,                    -- the exact canonical bytes hashed
    leaf_hash       bytea NOT NULL CHECK (octet_length(leaf_hash) = 32),
    -- copied out of the entry for indexing; the verifier checks they agree with it
    event_id        uuid NOT NULL,
    stream_id       text NOT NULL,
    stream_version  bigint NOT NULL CHECK (stream_version >= 1),
    type            text NOT NULL,
    recorded_at     timestamptz NOT NULL,
    actor_id        text NOT NULL,
    idempotency_key text,
    PRIMARY KEY (tenant_id, seq),
    UNIQUE (tenant_id, event_id),
    UNIQUE (tenant_id, stream_id, stream_version),
    UNIQUE (tenant_id, idempotency_key)
);

-- Hashes of perfect subtrees at levels 8, 16, 24, ... (every 2^8, 2^16, ... leaves). With
-- the leaf hashes in ledger_entries, any subtree hash needs at most one 256-row range read
-- per level group, so proofs cost O(log n) reads at any size.
CREATE TABLE merkle_nodes (
    tenant_id text NOT NULL,
    level     smallint NOT NULL CHECK (level > 0 AND level % 8 = 0),
    idx       bigint NOT NULL CHECK (idx >= 0),
    hash      bytea NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (tenant_id, level, idx)
);

CREATE TABLE checkpoints (
    tenant_id text NOT NULL,
    size      bigint NOT NULL CHECK (size >= 0),
    root_hash bytea NOT NULL CHECK (octet_length(root_hash) = 32),
    note      text NOT NULL,       -- the C2SP signed note, exactly as published
    key_id    bytea NOT NULL,      -- which key signed it (4 bytes, C2SP key id)
    signed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, size)
);
"""


def _append_only_triggers(table: str) -> str:
    return f"""
CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION indelible_refuse_change();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION indelible_refuse_change();
"""


def _grants() -> str:
    evidence = ", ".join(EVIDENCE_TABLES)
    return f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        CREATE ROLE {APP_ROLE} NOLOGIN;
    END IF;
END $$;
GRANT {APP_ROLE} TO CURRENT_USER;
GRANT USAGE ON SCHEMA public TO {APP_ROLE};
GRANT SELECT, INSERT ON {evidence} TO {APP_ROLE};
GRANT SELECT, INSERT, UPDATE ON log_heads TO {APP_ROLE};
"""


# Read models of issue 3. They are projections of the ledger (rebuildable from it), so they
# may be updated; row-level security keeps each tenant's rows behind the tenant setting.
_V2_READ_MODELS = f"""
CREATE TABLE tenants (
    tenant_id  text PRIMARY KEY REFERENCES log_heads (tenant_id),
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    tenant_id   text NOT NULL REFERENCES tenants (tenant_id),
    key_id      uuid NOT NULL,
    name        text NOT NULL,
    role        text NOT NULL,
    token_hash  bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    issued_seq  bigint NOT NULL,
    issued_at   timestamptz NOT NULL,
    issued_by   text NOT NULL,
    revoked_seq bigint,
    revoked_at  timestamptz,
    revoked_by  text,
    PRIMARY KEY (tenant_id, key_id)
);

CREATE TABLE discrepancies (
    tenant_id     text NOT NULL REFERENCES tenants (tenant_id),
    id            uuid NOT NULL,
    external_ref  text NOT NULL,
    source        text NOT NULL,
    kind          text NOT NULL,
    currency      char(3) NOT NULL,
    expected_amount numeric NOT NULL,
    actual_amount   numeric NOT NULL,
    difference      numeric NOT NULL,
    severity      text NOT NULL,
    status        text NOT NULL,
    assignee      text,
    detected_at   timestamptz NOT NULL,
    opened_at     timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    version       integer NOT NULL,
    last_seq      bigint NOT NULL,
    state         jsonb NOT NULL,  -- the whole domain state, as evolve() left it
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, source, external_ref)
);
CREATE INDEX discrepancies_listing ON discrepancies (tenant_id, status, severity, opened_at, id);

-- The one query that must run before the tenant is known: which key is this token?
CREATE FUNCTION indelible_authenticate(hash bytea)
RETURNS TABLE (tenant_id text, key_id uuid, role text, name text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT k.tenant_id, k.key_id, k.role, k.name FROM api_keys k
    WHERE k.token_hash = hash AND k.revoked_at IS NULL
$$;
REVOKE ALL ON FUNCTION indelible_authenticate(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indelible_authenticate(bytea) TO {APP_ROLE};

GRANT SELECT, INSERT ON tenants TO {APP_ROLE};
GRANT SELECT, INSERT, UPDATE ON api_keys, discrepancies TO {APP_ROLE};
""" + "".join(f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
CREATE POLICY {table}_tenant ON {table}
    USING (tenant_id = current_setting('indelible.tenant', true))
    WITH CHECK (tenant_id = current_setting('indelible.tenant', true));
""" for table in ("api_keys", "discrepancies"))


# Evidence: the discrepancy as it stood the day it was decided. Never updated.
_V3_SNAPSHOTS = f"""
CREATE TABLE resolution_snapshots (
    tenant_id      text NOT NULL REFERENCES tenants (tenant_id),
    discrepancy_id uuid NOT NULL,
    seq            bigint NOT NULL,   -- the entry that resolved or auto-closed it
    snapshot       bytea NOT NULL,    -- canonical JSON of the rendered discrepancy
    history_digest bytea NOT NULL CHECK (octet_length(history_digest) = 32),
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, discrepancy_id)
);
GRANT SELECT, INSERT ON resolution_snapshots TO {APP_ROLE};
ALTER TABLE resolution_snapshots ENABLE ROW LEVEL SECURITY;
CREATE POLICY resolution_snapshots_tenant ON resolution_snapshots
    USING (tenant_id = current_setting('indelible.tenant', true))
    WITH CHECK (tenant_id = current_setting('indelible.tenant', true));
""" + _append_only_triggers("resolution_snapshots")


# Evidence files, content-addressed: the attach entry in the ledger names the SHA-256, so a
# file's bytes are proved by the ledger and can never be swapped.
_V4_EVIDENCE_FILES = f"""
CREATE TABLE evidence_files (
    tenant_id  text NOT NULL REFERENCES tenants (tenant_id),
    sha256     bytea NOT NULL CHECK (octet_length(sha256) = 32),
    size       bigint NOT NULL CHECK (size >= 0),
    content    bytea NOT NULL,
    stored_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sha256),
    CHECK (octet_length(content) = size)
);
GRANT SELECT, INSERT ON evidence_files TO {APP_ROLE};
ALTER TABLE evidence_files ENABLE ROW LEVEL SECURITY;
CREATE POLICY evidence_files_tenant ON evidence_files
    USING (tenant_id = current_setting('indelible.tenant', true))
    WITH CHECK (tenant_id = current_setting('indelible.tenant', true));
""" + _append_only_triggers("evidence_files")


# The planner judges `tenant_id = $1` by sampled statistics. A tenant that arrived after the
# last ANALYZE looks empty, every index led by tenant_id then looks equally cheap, and it was
# seen walking all of a tenant's entries for one stream. The default (re-analyze after 10 %
# growth) is far too lazy for an append-only table that grows by a few % a day; sampling is
# cheap (30,000 rows whatever the size). Partitioning by tenant is the structural answer.
_V5_PLANNER_STATISTICS = """
ALTER TABLE ledger_entries SET (autovacuum_analyze_scale_factor = 0.002,
                                autovacuum_analyze_threshold = 5000);
"""


# The second wall on the ledger tables. Requests and appends always set the tenant: then a
# query sees, and may insert, only that tenant's rows. Cross-tenant system work (the
# checkpointer's scan, verification, operator commands) runs with no tenant set and sees all.
# Not on ledger_entries: PostgreSQL refuses COPY FROM into a table under row-level security,
# and binary COPY is the append path; its reads keep the explicit tenant filter only.
_V6_LEDGER_RLS = "".join(f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
CREATE POLICY {table}_tenant ON {table}
    USING (tenant_id = coalesce(nullif(current_setting('indelible.tenant', true), ''), tenant_id))
    WITH CHECK (tenant_id = coalesce(nullif(current_setting('indelible.tenant', true), ''), tenant_id));
""" for table in ("log_heads", "merkle_nodes", "checkpoints"))


# Two doors closed. The token lookup runs with its owner's rights, so its search path must
# not let a caller's temporary table stand in for api_keys (pg_temp is searched first unless
# placed last). And the service logs in as its own role instead of switching to it from the
# owner's session, which a `SET ROLE` could undo.
_V7_HARDENING = f"""
CREATE OR REPLACE FUNCTION indelible_authenticate(hash bytea)
RETURNS TABLE (tenant_id text, key_id uuid, role text, name text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT k.tenant_id, k.key_id, k.role, k.name FROM public.api_keys k
    WHERE k.token_hash = hash AND k.revoked_at IS NULL
$$;
ALTER ROLE {APP_ROLE} LOGIN;
"""


# The request path gets a role of its own that row-level security holds to the request's
# tenant, fail-closed, on every tenant table including ledger_entries: code serving a request
# cannot see another tenant's rows even if it forgets a filter. The service's internal role
# (appender, checkpointer, verifier) works across tenants and must binary-COPY into
# ledger_entries, which PostgreSQL allows under row-level security only to BYPASSRLS roles;
# granting that takes a superuser. Without one, the earlier policies stay (see store/isolation.py).
TENANT_TABLES = ("log_heads", "ledger_entries", "merkle_nodes", "checkpoints", "tenants",
                 "api_keys", "discrepancies", "resolution_snapshots", "evidence_files")


def fail_closed_policies() -> str:
    """Row-level security on every tenant table that shows no rows when no tenant is set."""
    return "ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;\n" \
        "ALTER TABLE ledger_entries ENABLE ROW LEVEL SECURITY;\n" + "".join(f"""
DROP POLICY IF EXISTS {t}_tenant ON {t};
CREATE POLICY {t}_tenant ON {t}
    USING (tenant_id = current_setting('indelible.tenant', true))
    WITH CHECK (tenant_id = current_setting('indelible.tenant', true));""" for t in TENANT_TABLES)


_V8_REQUEST_ROLE = f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{API_ROLE}') THEN
        CREATE ROLE {API_ROLE} LOGIN;
    END IF;
END $$;
GRANT USAGE ON SCHEMA public TO {API_ROLE};
GRANT SELECT ON {", ".join(TENANT_TABLES)} TO {API_ROLE};
GRANT INSERT ON evidence_files TO {API_ROLE};
GRANT EXECUTE ON FUNCTION indelible_authenticate(bytea) TO {API_ROLE};
DO $$ BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        ALTER ROLE {APP_ROLE} BYPASSRLS;
        {fail_closed_policies()}
    ELSE
        -- Left open; store/isolation.py closes it once the grant exists, and the service
        -- refuses to start until then unless the operator accepts the gap.
        RAISE WARNING 'indelible: % is not a superuser, so {APP_ROLE} cannot be given BYPASSRLS: '
            'ledger_entries keeps the explicit tenant filter only, and log_heads, merkle_nodes '
            'and checkpoints stay visible when no tenant is set', current_user;
    END IF;
END $$;
"""


# discrepancies.last_seq was derived state nothing read, paid for by a subquery per upsert.
_V9_DROP_LAST_SEQ = "ALTER TABLE discrepancies DROP COLUMN last_seq;"


# Clients' Idempotency-Keys, each bound to the entry its first request produced. The key
# and the request's SHA-256 are in that entry's meta (hashed evidence); this table is only
# their index, so a reuse is found under the log-head lock and compared with the original
# request, whichever instance or restart it meets. Service keys (one fact, recorded once)
# keep the ledger_entries column; a client key is a different promise (one request, answered
# once) and may sit beside one, e.g. on the entry that opened a discrepancy.
_V10_REQUEST_KEYS = f"""
CREATE TABLE request_keys (
    tenant_id   text NOT NULL REFERENCES tenants (tenant_id),
    request_key text NOT NULL,
    seq         bigint NOT NULL,  -- the entry the key's first request produced
    PRIMARY KEY (tenant_id, request_key)
);
GRANT SELECT, INSERT ON request_keys TO {APP_ROLE};
ALTER TABLE request_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY request_keys_tenant ON request_keys
    USING (tenant_id = current_setting('indelible.tenant', true))
    WITH CHECK (tenant_id = current_setting('indelible.tenant', true));
""" + _append_only_triggers("request_keys")


# Authentication decides from the ledger, not from the api_keys row alone (issue 8, item 3).
# Anyone holding the owner's login could otherwise un-revoke a key or promote its role by an
# UPDATE that nothing would notice until the next verification: a window in which the key
# works. The row now only finds the key (by the indexed token hash); its issuing entry must
# name this token hash and key, gives the role and name, and any later entry on the key's
# stream (the only one there is: its revocation) refuses it. Those entries are hash-chained
# and signed, so changing them is caught by `indelible verify`; failing closed, a key whose
# entries were deleted stops working instead of gaining anything. Two index probes per call.
_V11_AUTHENTICATE_FROM_LEDGER = f"""
CREATE OR REPLACE FUNCTION indelible_authenticate(hash bytea)
RETURNS TABLE (tenant_id text, key_id uuid, role text, name text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT k.tenant_id, k.key_id, e.doc->'data'->>'role', e.doc->'data'->>'name'
    FROM public.api_keys k
    JOIN public.ledger_entries i ON i.tenant_id = k.tenant_id
        AND i.stream_id = 'apikey/' || k.key_id::text AND i.stream_version = 1
    CROSS JOIN LATERAL (SELECT convert_from(i.entry, 'UTF8')::jsonb AS doc) e
    WHERE k.token_hash = hash
      AND e.doc->>'type' = 'api_key.issued'
      AND e.doc->>'stream' = i.stream_id
      AND e.doc->'data'->>'key_id' = k.key_id::text
      AND e.doc->'data'->>'token_sha256' = encode(hash, 'hex')
      AND NOT EXISTS (SELECT 1 FROM public.ledger_entries r
                      WHERE r.tenant_id = k.tenant_id AND r.stream_id = i.stream_id
                        AND r.stream_version > 1)
$$;
REVOKE ALL ON FUNCTION indelible_authenticate(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indelible_authenticate(bytea) TO {APP_ROLE}, {API_ROLE};
"""


# Evidence files are now written in the appending transaction, as the service's own role;
# the request role no longer needs to insert them.
_V12_REQUEST_ROLE_READS_ONLY = f"REVOKE INSERT ON evidence_files FROM {API_ROLE};"


# Escalation (issue 11): where the engine looks. Per discrepancy its watched period and a
# lower bound of when a rule may next fall due; a pass with nothing due is one probe of the
# partial index. A read model (rebuilt from the ledger), never what a firing is decided on.
ESCALATION_MARKS = ("'discrepancy.opened', 'discrepancy.transitioned', 'escalation.paused', "
                    "'escalation.resumed'")
_V13_ESCALATION_WATCH = f"""
CREATE TABLE escalation_watch (
    tenant_id      text NOT NULL REFERENCES tenants (tenant_id),
    discrepancy_id uuid NOT NULL,
    status         text NOT NULL,
    severity       text NOT NULL,
    period_seq     bigint NOT NULL,       -- the entry that began the current status
    period_at      timestamptz NOT NULL,  -- when it was recorded
    paused_until   timestamptz,           -- an escalation pause in force
    next_check_at  timestamptz,           -- NULL: no rule watches this period
    stamp          bigint NOT NULL DEFAULT 0,  -- bumped when the bound is reset
    PRIMARY KEY (tenant_id, discrepancy_id)
);
CREATE INDEX escalation_watch_due ON escalation_watch (tenant_id, next_check_at)
    WHERE next_check_at IS NOT NULL;
-- The entries that begin a period or pause one, per stream: the watch row and firing
-- decisions find the latest in a probe or two, however many comments came after it.
CREATE INDEX ledger_entries_escalation_marks ON ledger_entries (tenant_id, stream_id, stream_version)
    WHERE type IN ({ESCALATION_MARKS});
GRANT SELECT, INSERT, UPDATE, DELETE ON escalation_watch TO {APP_ROLE};
GRANT SELECT, UPDATE (next_check_at) ON escalation_watch TO {API_ROLE};  -- POST /v1/escalations/run
ALTER TABLE escalation_watch ENABLE ROW LEVEL SECURITY;
CREATE POLICY escalation_watch_tenant ON escalation_watch
    USING (tenant_id = current_setting('indelible.tenant', true))
    WITH CHECK (tenant_id = current_setting('indelible.tenant', true));
"""
# Compliance reports (issue 13). Jobs and schedules are operational rows (the queue the
# report worker claims from, and when each schedule next runs); what a report *is* lives in
# the ledger (`report.generated`, `report.schedule_set`) and in `report_files`, whose bytes
# that entry hashes: append-only like every evidence table.
_V15_REPORTS = f"""
CREATE TABLE report_jobs (
    tenant_id    text NOT NULL REFERENCES tenants (tenant_id),
    report_id    uuid NOT NULL,
    parameters   jsonb NOT NULL,
    requested_by text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    schedule_id  uuid,
    status       text NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    claimed_by   text,
    progress     text,
    finished_at  timestamptz,
    failure      text,
    entry_seq    bigint,
    PRIMARY KEY (tenant_id, report_id)
);
CREATE INDEX report_jobs_pending ON report_jobs (requested_at) WHERE status IN ('queued', 'running');

CREATE TABLE report_files (
    tenant_id  text NOT NULL REFERENCES tenants (tenant_id),
    report_id  uuid NOT NULL,
    name       text NOT NULL,
    media_type text NOT NULL,
    sha256     bytea NOT NULL CHECK (octet_length(sha256) = 32),
    size       bigint NOT NULL CHECK (size >= 0),
    content    bytea NOT NULL,
    stored_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, report_id, name),
    CHECK (octet_length(content) = size)
);

CREATE TABLE report_schedules (
    tenant_id   text NOT NULL REFERENCES tenants (tenant_id),
    schedule_id uuid NOT NULL,
    every       text NOT NULL CHECK (every IN ('weekly', 'monthly', 'quarterly')),
    parameters  jsonb NOT NULL,   -- formats and filters; the period comes from `every`
    set_seq     bigint NOT NULL,  -- the report.schedule_set entry
    next_run_at timestamptz NOT NULL,
    cancelled   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, schedule_id)
);

-- `indelible report verify FILE` looks for the report.generated entry naming a file's hash:
-- a partial index keeps that to the report entries, not a scan of every tenant's ledger.
CREATE INDEX ledger_entries_report_generated ON ledger_entries (tenant_id, seq)
    WHERE type = 'report.generated';

GRANT SELECT, INSERT, UPDATE ON report_jobs, report_schedules TO {APP_ROLE};
GRANT SELECT, INSERT ON report_files TO {APP_ROLE};
GRANT SELECT ON report_jobs, report_files, report_schedules TO {API_ROLE};
GRANT INSERT ON report_jobs TO {API_ROLE};
""" + "".join(f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
CREATE POLICY {table}_tenant ON {table}
    USING (tenant_id = current_setting('indelible.tenant', true))
    WITH CHECK (tenant_id = current_setting('indelible.tenant', true));
""" for table in ("report_jobs", "report_files", "report_schedules")) + _append_only_triggers("report_files")
# RFC 3161 timestamp tokens over checkpoints (issue 14): the TSA's whole TimeStampResp, kept
# beside the checkpoint it dates, append-only like it. A token is fetched after the checkpoint
# is signed (a TSA that is down never blocks signing), so a checkpoint without one is visible
# as such. Fail-closed row-level security: the timestamper sets the tenant it works on.
_V16_CHECKPOINT_TIMESTAMPS = f"""
CREATE TABLE checkpoint_timestamps (
    tenant_id text NOT NULL,
    size      bigint NOT NULL,
    token     bytea NOT NULL,          -- DER TimeStampResp, as the TSA sent it
    tsa_url   text NOT NULL,
    gen_time  timestamptz NOT NULL,    -- the TSA's time, read from the token when it was checked
    stored_at timestamptz NOT NULL DEFAULT now(),
    -- No foreign key to checkpoints: it would make TRUNCATE of checkpoints fail on the key
    -- before the append-only trigger names the refusal. Only the timestamper inserts, for a
    -- checkpoint it just read; verification checks each token against its checkpoint's note.
    PRIMARY KEY (tenant_id, size)
);
GRANT SELECT, INSERT ON checkpoint_timestamps TO {APP_ROLE};
GRANT SELECT ON checkpoint_timestamps TO {API_ROLE};
ALTER TABLE checkpoint_timestamps ENABLE ROW LEVEL SECURITY;
CREATE POLICY checkpoint_timestamps_tenant ON checkpoint_timestamps
    USING (tenant_id = current_setting('indelible.tenant', true))
    WITH CHECK (tenant_id = current_setting('indelible.tenant', true));
""" + _append_only_triggers("checkpoint_timestamps")
# Witness cosignatures (issue 15), append-only beside the checkpoints they cosign. Each row is
# one witness's C2SP tlog-cosignature line, verified against that witness's key before it was
# stored; a checkpoint's cosigned note is its signed note plus these lines.
_V17_COSIGNATURES = f"""
CREATE TABLE checkpoint_cosignatures (
    tenant_id      text NOT NULL,
    size           bigint NOT NULL,
    witness        text NOT NULL,   -- the witness's verifier key text (name+id+key)
    signature_line text NOT NULL,   -- '— <name> <base64>', as the witness sent it
    cosigned_at    timestamptz NOT NULL,  -- the timestamp the witness signed
    received_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, size, witness)
    -- No foreign key to checkpoints: it would turn TRUNCATE checkpoints into a foreign-key
    -- error instead of the append-only refusal. Rows are inserted only for a stored
    -- checkpoint, and a quorum is always decided by verifying the lines over its note.
);
GRANT SELECT, INSERT ON checkpoint_cosignatures TO {APP_ROLE};
GRANT SELECT ON checkpoint_cosignatures TO {API_ROLE};
ALTER TABLE checkpoint_cosignatures ENABLE ROW LEVEL SECURITY;
CREATE POLICY checkpoint_cosignatures_tenant ON checkpoint_cosignatures
    USING (tenant_id = current_setting('indelible.tenant', true))
    WITH CHECK (tenant_id = current_setting('indelible.tenant', true));
""" + _append_only_triggers("checkpoint_cosignatures")


# The outbound integrations' delivery queue (issue 12). Operational, not evidence: a row is
# written in the transaction of the entry that causes it and then moves through its states
# (pending → sending → delivered | parked), so it is updated; every outcome is a ledger entry.
# The service's role sees every tenant's rows (the dispatcher works across tenants, also where
# it cannot bypass row-level security); the request role sees its tenant's only, fail-closed.
_V14_OUTBOX = f"""
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES log_heads (tenant_id),
    -- 'bench': `indelible bench outbox`'s own lane, which no service dispatcher ever claims
    integration     text NOT NULL CHECK (integration IN ('hub', 'rag', 'bench')),
    event           text NOT NULL,      -- what the receiver is told, e.g. escalation.notify
    source_seq      bigint NOT NULL,    -- the entry that caused it
    stream_id       text NOT NULL,      -- that entry's stream (where outcomes are recorded)
    webhook_id      text NOT NULL UNIQUE,  -- the same on every attempt: receivers de-duplicate
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'delivered', 'parked')),
    round           integer NOT NULL DEFAULT 1,  -- an operator's retry starts a new round
    attempts        integer NOT NULL DEFAULT 0,  -- in this round
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,        -- a sender that died: the row is taken again after it
    body            bytea,              -- as rendered from the ledger for the first attempt
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (tenant_id, integration, source_seq)
);
CREATE INDEX outbox_due ON outbox (integration, next_attempt_at) WHERE state IN ('pending', 'sending');
CREATE INDEX outbox_listing ON outbox (tenant_id, state, id);

-- An integration a receiver answered 410 Gone for, per tenant, until an operator re-enables it.
CREATE TABLE outbox_disabled (
    tenant_id   text NOT NULL REFERENCES log_heads (tenant_id),
    integration text NOT NULL,
    seq         bigint NOT NULL,  -- the outbox.integration_disabled entry
    reason      text NOT NULL,
    disabled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, integration)
);
GRANT SELECT, INSERT, UPDATE ON outbox TO {APP_ROLE};
GRANT SELECT, INSERT, DELETE ON outbox_disabled TO {APP_ROLE};
GRANT USAGE ON SEQUENCE outbox_id_seq TO {APP_ROLE};
GRANT SELECT ON outbox, outbox_disabled TO {API_ROLE};
""" + "".join(f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
CREATE POLICY {table}_service ON {table} TO {APP_ROLE} USING (true) WITH CHECK (true);
CREATE POLICY {table}_tenant ON {table} TO {API_ROLE}
    USING (tenant_id = current_setting('indelible.tenant', true));
""" for table in ("outbox", "outbox_disabled"))


# The web console's sign-in sessions (issue 18). Operational state, not evidence: a row says
# which identity a browser proved (for an API key, the key's token hash, re-checked against
# the ledger at every request) and when the session ends. The request role never touches the
# table: it opens, resumes and revokes sessions only through these functions, which also hold
# the idle and absolute timeouts, so a page cannot forget to check them.
_V20_CONSOLE_SESSIONS = f"""
CREATE TABLE console_sessions (
    session_hash bytea PRIMARY KEY CHECK (octet_length(session_hash) = 32),  -- SHA-256 of the cookie
    tenant_id    text NOT NULL REFERENCES tenants (tenant_id),
    method       text NOT NULL,   -- how the person signed in: 'api_key' (later e.g. 'oidc')
    subject      text NOT NULL,   -- the identity that method re-checks at each request
    csrf_token   text NOT NULL,   -- every form of the session carries it
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,  -- the absolute timeout
    revoked_at   timestamptz            -- sign-out
);
REVOKE ALL ON console_sessions FROM PUBLIC;

CREATE FUNCTION indelible_console_session_open(hash bytea, tenant text, method text,
                                               subject text, csrf text, lifetime interval)
RETURNS timestamptz LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
    -- The tenant's ended sessions are kept a day (for a person asking why they were signed
    -- out), no longer.
    DELETE FROM public.console_sessions WHERE tenant_id = $2  -- $2: tenant
        AND (expires_at < now() - interval '1 day' OR revoked_at < now() - interval '1 day');
    INSERT INTO public.console_sessions (session_hash, tenant_id, method, subject, csrf_token,
                                         expires_at)
    VALUES (hash, tenant, method, subject, csrf, now() + lifetime)
    RETURNING expires_at;
$$;

-- The live session under this hash, its idle clock restarted; nothing once it was idle longer
-- than `idle`, outlived its absolute timeout or was revoked. last_seen_at is written at most
-- every 10 s, so a page with many requests costs one row version, not one per request.
CREATE FUNCTION indelible_console_session_resume(hash bytea, idle interval)
RETURNS TABLE (tenant_id text, method text, subject text, csrf_token text,
               expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE s public.console_sessions;
BEGIN
    SELECT * INTO s FROM public.console_sessions c WHERE c.session_hash = hash
        AND c.revoked_at IS NULL AND c.expires_at > now() AND c.last_seen_at > now() - idle;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF s.last_seen_at < now() - interval '10 seconds' THEN
        UPDATE public.console_sessions c SET last_seen_at = now() WHERE c.session_hash = hash;
    END IF;
    RETURN QUERY SELECT s.tenant_id, s.method, s.subject, s.csrf_token, s.expires_at;
END $$;

CREATE FUNCTION indelible_console_session_revoke(tenant text, hash bytea)
RETURNS boolean LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
    UPDATE public.console_sessions SET revoked_at = now()
    WHERE tenant_id = $1 AND session_hash = hash AND revoked_at IS NULL  -- $1: tenant
    RETURNING true;
$$;

-- A key exchanged for a session is re-checked (role and revocation from the ledger) at each
-- page: the same function the API calls with a bearer token's hash.
REVOKE ALL ON FUNCTION indelible_console_session_open(bytea, text, text, text, text, interval),
    indelible_console_session_resume(bytea, interval),
    indelible_console_session_revoke(text, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    indelible_console_session_open(bytea, text, text, text, text, interval),
    indelible_console_session_resume(bytea, interval),
    indelible_console_session_revoke(text, bytea) TO {APP_ROLE}, {API_ROLE};

-- The console lists a tenant's discrepancies oldest or newest first without filters: without
-- this index that sorts every row of the tenant.
CREATE INDEX discrepancies_by_opened ON discrepancies (tenant_id, opened_at, id);
"""


# As migration 5 for the log: until statistics know a new tenant's discrepancies, the planner
# takes the tenant for a handful of rows and may probe a read-model row by skipping through
# discrepancies_by_opened (every opening time of the tenant) instead of its primary key.
# PostgreSQL's default re-analyzes after 10 % of the table changed; here after 5,000 rows.
_V21_DISCREPANCY_STATISTICS = """
ALTER TABLE discrepancies SET (autovacuum_analyze_scale_factor = 0.002,
                               autovacuum_analyze_threshold = 5000);
"""


MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "ledger core: log heads, entries, merkle nodes, checkpoints",
     _V1_LEDGER + "".join(_append_only_triggers(t) for t in EVIDENCE_TABLES) + _grants()),
    (2, "tenants, API keys, discrepancies; row-level security on read models", _V2_READ_MODELS),
    (3, "resolution snapshots (append-only evidence)", _V3_SNAPSHOTS),
    (4, "evidence files, content-addressed (append-only)", _V4_EVIDENCE_FILES),
    (5, "re-analyze the ledger often enough for new tenants", _V5_PLANNER_STATISTICS),
    (6, "row-level security on the ledger tables", _V6_LEDGER_RLS),
    (7, "token lookup search path; the service role logs in", _V7_HARDENING),
    (8, "a request role under fail-closed row-level security on every tenant table",
     _V8_REQUEST_ROLE),
    (9, "drop discrepancies.last_seq (never read)", _V9_DROP_LAST_SEQ),
    (10, "clients' Idempotency-Keys, indexed to the entry they produced", _V10_REQUEST_KEYS),
    (11, "authentication decides revocation and role from the ledger entries",
     _V11_AUTHENTICATE_FROM_LEDGER),
    (12, "the request role only reads evidence files", _V12_REQUEST_ROLE_READS_ONLY),
    (13, "escalation watch index (where the escalation engine looks)", _V13_ESCALATION_WATCH),
    (14, "the outbound integrations' outbox (operational queue)", _V14_OUTBOX),
    (15, "compliance reports: jobs, schedules, append-only report files", _V15_REPORTS),
    (16, "RFC 3161 timestamp tokens beside checkpoints (append-only)", _V16_CHECKPOINT_TIMESTAMPS),
    (17, "witness cosignatures of checkpoints (append-only)", _V17_COSIGNATURES),
    (20, "web console sessions; discrepancies indexed by opening time", _V20_CONSOLE_SESSIONS),
    (21, "re-analyze the discrepancies often enough for new tenants", _V21_DISCREPANCY_STATISTICS),
]


def migrate(conninfo: str) -> list[int]:
    """Apply every migration not yet applied; returns the versions applied now."""
    applied_now = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                version int PRIMARY KEY, name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())""")
            done = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
            for version, name, sql in MIGRATIONS:
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql)
                    conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                                 (version, name))
                applied_now.append(version)
            from indelible.store.isolation import close_gaps

            close_gaps(conn)  # a grant given since an earlier migration takes effect now
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return applied_now


def current_version(conninfo: str) -> int:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return row[0] or 0
