"""`indelible outbox`: the outbound integrations' queue, for operators."""

from __future__ import annotations

import json

import click

from indelible.cli.root import EXIT_ERROR, cli_actor, known_tenant, main, settings_from_env

INTEGRATION = click.Choice(["hub", "rag"])


class _NothingToDo(click.ClickException):
    exit_code = EXIT_ERROR  # the command could not do what it was asked (see cli/root.py)


@main.group()
def outbox() -> None:
    """Events owed to the Notification Hub and the RAG feed, and what became of them."""


class _Db:
    """The settings and a connection as the service's role, for one command."""

    def __enter__(self):
        import psycopg

        from indelible.bootstrap import open_database

        self.settings = settings_from_env()
        self._database = open_database(self.settings)
        db = self._database.__enter__()
        self.conn = psycopg.connect(db.app_url, autocommit=True)
        return self

    def __exit__(self, *exc):
        self.conn.close()
        self._database.__exit__(*exc)


def _row_json(r) -> dict:
    from indelible.entry import format_time

    return {"id": r.id, "tenant": r.tenant, "integration": r.integration, "event": r.event,
            "source_seq": r.source_seq, "stream": r.stream, "webhook_id": r.webhook_id,
            "state": r.state, "round": r.round, "attempts": r.attempts,
            "next_attempt_at": format_time(r.next_attempt_at), "last_status": r.last_status,
            "last_error": r.last_error, "created_at": format_time(r.created_at),
            "delivered_at": format_time(r.delivered_at) if r.delivered_at else None}


@outbox.command("list")
@click.option("--tenant", help="One tenant's events (default: every tenant's).")
@click.option("--state", type=click.Choice(["pending", "sending", "delivered", "parked"]))
@click.option("--integration", type=INTEGRATION)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True)
def outbox_list(tenant, state, integration, limit, as_json) -> None:
    """Counts by state, and the newest events."""
    from indelible.store import outbox as store

    with _Db() as db:
        if tenant:
            known_tenant(db.conn, tenant)
        counts = store.counts(db.conn, tenant)
        rows = store.rows(db.conn, tenant, state=state, integration=integration, limit=limit)
        disabled = store.disabled(db.conn, tenant)
    if as_json:
        click.echo(json.dumps({"counts": counts, "disabled": disabled, "events":
                               [_row_json(r) for r in rows]}, default=str, indent=2))
        return
    for name, by_state in sorted(counts.items()):
        click.echo(f"{name}: " + ", ".join(f"{n} {s}" for s, n in by_state.items()))
    for d in disabled:
        click.echo(f"DISABLED {d['integration']} for {d['tenant']} since seq {d['seq']}: "
                   f"{d['reason']} (indelible outbox enable --tenant {d['tenant']} "
                   f"--integration {d['integration']})")
    for r in rows:
        click.echo(f"{r.id:>6}  {r.tenant}  {r.integration}  {r.event:<24} seq {r.source_seq:<8} "
                   f"{r.state:<9} attempts {r.attempts}  {r.last_error or ''}".rstrip())


@outbox.command("show")
@click.argument("event_id", type=int)
def outbox_show(event_id: int) -> None:
    """One event: its state, its last answer, and the body sent (once rendered)."""
    from indelible.store import outbox as store

    with _Db() as db:
        found = store.get(db.conn, event_id)
    if found is None:
        raise click.BadParameter(f"no outbox event {event_id}; see `indelible outbox list`",
                                 param_hint="EVENT_ID")
    row, body = found
    click.echo(json.dumps({**_row_json(row), "body": json.loads(body) if body else None},
                          default=str, indent=2))


@outbox.command("retry")
@click.option("--tenant", required=True)
@click.option("--integration", type=INTEGRATION, required=True)
@click.argument("event_ids", type=int, nargs=-1)
def outbox_retry(tenant: str, integration: str, event_ids: tuple[int, ...]) -> None:
    """Send parked events again (EVENT_IDS, or every parked one): a new round of attempts,
    recorded as a ledger entry."""
    from indelible.bootstrap import projections
    from indelible.usecases.outbox import NothingToDoError, retry_parked

    with _Db() as db:
        known_tenant(db.conn, tenant)
        try:
            done = retry_parked(db.conn, projections(), tenant, cli_actor(),
                                integration=integration, ids=list(event_ids) or None)
        except NothingToDoError as e:
            raise _NothingToDo(str(e)) from e
    click.echo(f"{done.count} parked {integration} event(s) of {tenant} queued again "
               f"(recorded at seq {done.seq})")


@outbox.command("enable")
@click.option("--tenant", required=True)
@click.option("--integration", type=INTEGRATION, required=True)
@click.option("--reason", required=True, help="Why it may be sent to again; kept in the ledger.")
def outbox_enable(tenant: str, integration: str, reason: str) -> None:
    """Re-enable an integration a receiver's 410 Gone disabled for the tenant."""
    from indelible.bootstrap import projections
    from indelible.usecases.outbox import NothingToDoError, enable

    with _Db() as db:
        known_tenant(db.conn, tenant)
        try:
            done = enable(db.conn, projections(), tenant, cli_actor(), integration=integration,
                          reason=reason)
        except NothingToDoError as e:
            raise _NothingToDo(str(e)) from e
    click.echo(f"{integration} re-enabled for {tenant} (recorded at seq {done.seq})")


@outbox.command("backfill")
@click.option("--tenant", required=True)
@click.option("--integration", type=INTEGRATION, required=True)
@click.option("--from-seq", default=0, show_default=True, type=click.IntRange(min=0),
              help="Only entries from this seq on.")
def outbox_backfill(tenant: str, integration: str, from_seq: int) -> None:
    """Queue the events older entries owe an integration switched on since (each event
    once: one already queued keeps its state)."""
    from indelible.bootstrap import projections
    from indelible.usecases.outbox import backfill

    with _Db() as db:
        if not any(i.name == integration for i in db.settings.outbound.enabled):
            flag = {"hub": "INDELIBLE_NOTIFICATION_HUB_ENABLED",
                    "rag": "INDELIBLE_RAG_FEED_ENABLED"}[integration]
            raise click.UsageError(f"the {integration} integration is off ({flag}): nothing "
                                   "would deliver what a backfill queues")
        known_tenant(db.conn, tenant)
        done = backfill(db.conn, projections(), tenant, cli_actor(), integration=integration,
                        from_seq=from_seq)
    click.echo(f"{done.count} {integration} event(s) of {tenant} from seq {from_seq} on "
               f"queued (those already queued are unchanged; recorded at seq {done.seq})")


@outbox.command("new-secret")
def outbox_new_secret() -> None:
    """Print a fresh signing secret (whsec_ and 32 random bytes in base64) for
    INDELIBLE_NOTIFICATION_HUB_SECRET or INDELIBLE_RAG_FEED_SECRET, and the receiver."""
    from indelible.outbound.webhooks import new_secret

    click.echo(new_secret())
