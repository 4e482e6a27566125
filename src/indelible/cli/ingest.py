"""Ingestion commands: simulate, dlq."""

from __future__ import annotations

import click

from indelible.cli.root import main, settings_from_env


@main.command()
@click.option("--tenant", required=True)
@click.option("--count", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--matched-share", default=0.2, show_default=True, type=click.FloatRange(0, 1),
              help="Share of discrepancies the engine later reports as matched.")
@click.option("--wait", is_flag=True,
              help="Show progress until every message is committed or dead-lettered.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="With --wait: give up (exit 1) after this long.  [default: 600]")
def simulate(tenant: str, count: int, matched_share: float, wait: bool,
             timeout: float | None) -> None:
    """Publish realistic reconciliation messages to the service's NATS stream."""
    import asyncio

    from indelible.ingest.settlement import SettlementWatch
    from indelible.ingest.simulate import messages, publish_on
    from indelible.ingest.streams import ensure_streams, replicas_for

    if timeout is not None and not wait:
        raise click.UsageError("--timeout applies only with --wait")
    settings = settings_from_env()
    broker = _broker()
    bodies = messages(tenant, count, matched_share=matched_share)
    subject = f"{settings.subject_prefix}.{tenant}"

    async def run():
        nc = await broker.connect()
        try:
            js = nc.jetstream()
            await ensure_streams(js, settings.subject_prefix, replicas=replicas_for(nc))
            watch = SettlementWatch(js, subject)
            await watch.begin()
            published = await publish_on(js, settings.subject_prefix, bodies)
            click.echo(f"published {published.count} messages ({count} detected, "
                       f"{published.count - count} matched) to {subject} on {broker.url}")
            if wait:
                await _follow(watch, published, timeout or DEFAULT_TIMEOUT)
        finally:
            await nc.close()

    asyncio.run(run())


DEFAULT_TIMEOUT = 600.0  # seconds simulate --wait waits for ingestion
POLL_EVERY = 0.5  # seconds between looks at the stream
LINE_EVERY = 5.0  # seconds between progress lines when stderr is not a terminal


async def _follow(watch, published, timeout: float) -> None:
    """Until every published message is settled: a progress bar on a terminal, a line every
    LINE_EVERY seconds otherwise (a log file or CI output would drown in redrawn bars)."""
    import asyncio
    import time

    started = time.monotonic()
    with _Progress(published.count) as progress:
        while True:
            seen = await watch.look(published)
            progress.show(seen)
            if seen.done:
                break
            if time.monotonic() - started > timeout:
                raise click.ClickException(_stuck(seen, timeout))
            await asyncio.sleep(POLL_EVERY)
    click.echo(f"all {seen.published} messages settled in {time.monotonic() - started:.1f} s: "
               f"{seen.committed} committed, {seen.dead_lettered} dead-lettered"
               + (" (see `indelible dlq list`)" if seen.dead_lettered else ""))


def _stuck(seen, timeout: float) -> str:
    why = ("no consumer has ever read the stream: is `indelible up` running for this broker?"
           if not seen.consumer else "ingestion is stopped or slow: see the log of `indelible "
           "up` and its /readyz")
    return (f"after {timeout:g} s, {seen.pending} of {seen.published} messages are still "
            f"pending ({seen.committed} committed, {seen.dead_lettered} dead-lettered); {why}")


class _Progress:
    def __init__(self, total: int):
        import sys

        self._bar = click.progressbar(length=total, label="settling", file=sys.stderr,
                                      show_pos=True, item_show_func=lambda s: s) \
            if sys.stderr.isatty() else None
        self._line_at: float | None = None

    def __enter__(self):
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def show(self, seen) -> None:
        import time

        counts = f"{seen.committed} committed, {seen.dead_lettered} dead-lettered"
        if self._bar is not None:
            self._bar.current_item = counts
            step = max(0, seen.settled - self._bar.pos)
            if step:
                self._bar.update(step)
            else:  # nothing moved, but the counts are worth showing
                self._bar.render_progress()
            return
        now = time.monotonic()
        if self._line_at is None or now - self._line_at >= LINE_EVERY or seen.done:
            self._line_at = now
            click.echo(f"settled {seen.settled}/{seen.published}: {counts}, "
                       f"{seen.pending} pending", err=True)


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
