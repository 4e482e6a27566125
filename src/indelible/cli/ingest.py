"""Ingestion commands: simulate, dlq."""

from __future__ import annotations

import click

from indelible.cli.root import main, settings_from_env


@main.command()
@click.option("--tenant", required=True)
@click.option("--count", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--matched-share", default=0.2, show_default=True, type=click.FloatRange(0, 1),
              help="Share of discrepancies the engine later reports as matched.")
def simulate(tenant: str, count: int, matched_share: float) -> None:
    """Publish realistic reconciliation messages to the service's NATS stream."""
    import asyncio

    from indelible.ingest.streams import ensure_streams
    from indelible.ingest.simulate import messages, publish

    settings = settings_from_env()
    broker = _broker()
    bodies = messages(tenant, count, matched_share=matched_share)

    async def run() -> int:
        nc = await broker.connect()
        await ensure_streams(nc.jetstream(), settings.subject_prefix)
        await nc.close()
        return await publish(broker, settings.subject_prefix, bodies)

    sent = asyncio.run(run())
    click.echo(f"published {sent} messages ({count} detected, {sent - count} matched) to "
               f"{settings.subject_prefix}.{tenant} on {broker.url}")


@main.group()
def dlq() -> None:
    """Messages the ingestion set aside, with the reason."""


def _broker():
    """The running broker and how the service authenticates to it."""
    from indelible.ingest.service import nats_access

    access = nats_access(settings_from_env())
    if access is None:
        raise click.UsageError("no NATS server: start `indelible up`, or set INDELIBLE_NATS_URL")
    return access


@dlq.command("list")
@click.option("--tenant", help="Only this tenant's dead letters.")
@click.option("--json", "as_json", is_flag=True)
def dlq_list(tenant: str | None, as_json: bool) -> None:
    """List dead letters: sequence, original subject, attempts, reason."""
    import asyncio
    import dataclasses
    import json

    from indelible.ingest.dead_letters import list_dead_letters, readable_reason

    letters = asyncio.run(list_dead_letters(_broker(), tenant))
    if as_json:  # as recorded, for tools
        click.echo(json.dumps([dataclasses.asdict(d) for d in letters], indent=2))
        return
    for d in letters:
        click.echo(f"{d.seq:>8}  {d.subject}  attempts={d.attempts}  {d.size} B  "
                   f"{readable_reason(d.reason)}")
    click.echo(f"{len(letters)} dead letter(s)", err=True)


@dlq.command("replay")
@click.argument("seq", type=click.IntRange(min=1))
def dlq_replay(seq: int) -> None:
    """Publish dead letter SEQ to its original subject again (after fixing its cause)."""
    import asyncio

    from indelible.ingest.dead_letters import DeadLetterError, replay

    try:
        subject = asyncio.run(replay(_broker(), seq))
    except DeadLetterError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"dead letter {seq} published again to {subject}")
