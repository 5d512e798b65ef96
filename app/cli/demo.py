"""``flask demo ...``: demo and benchmark data."""

from __future__ import annotations

import time

import click
from flask.cli import AppGroup

from app.extensions import db
from app.inbox import seed

demo = AppGroup("demo", help="Demo and benchmark data.")


@demo.command("seed")
@click.option("--conversations", "n_conv", type=int, default=50, show_default=True)
@click.option("--messages-per-conversation", "n_msg", type=int, default=6, show_default=True)
@click.option(
    "--days", type=int, default=365, show_default=True, help="Conversations start over these days."
)
def demo_seed(n_conv: int, n_msg: int, days: int) -> None:
    """Bulk-load realistic synthetic conversations and their report facts (bulk inserts)."""
    started = time.perf_counter()
    totals = seed.seed(db.session, n_conv, n_msg, days=days)
    took = time.perf_counter() - started
    click.echo(
        f"Seeded {totals['conversations']} conversations and {totals['messages']} messages "
        f"in {took:.1f} s"
    )
