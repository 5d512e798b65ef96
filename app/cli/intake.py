"""``flask intake ...``: webhook bodies stored and waiting to be threaded."""

from __future__ import annotations

import click

from app.runtime import intake


@click.group("intake")
def intake_cli() -> None:
    """The webhook intake: bodies stored, waiting to be threaded into the inbox."""


@intake_cli.command("status")
def intake_status() -> None:
    """How many webhook bodies wait, and the failed ones with their errors."""
    click.echo(f"waiting: {intake.pending_count()}")
    for row in intake.rows("failed"):
        click.echo(
            f"failed #{row.id} {row.channel} received {row.received_at:%Y-%m-%d %H:%M:%S}Z "
            f"after {row.attempts} attempts: {row.error}"
        )


@intake_cli.command("retry")
def intake_retry() -> None:
    """Queue the failed bodies again and thread what is due now."""
    n = intake.retry_failed()
    done = intake.drain_all()
    click.echo(f"requeued {n}; threaded {done.rows}, failed again {done.failed}")
