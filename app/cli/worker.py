"""``flask worker``: the background process of the scale-out layout."""

from __future__ import annotations

import click
from flask import current_app

from app.runtime import intake
from app.runtime.jobs import start_scheduler
from app.runtime.worker import WorkerThread, run_once


@click.command("worker")
@click.option("--once", is_flag=True, help="Process what is due and exit.")
def worker(once: bool) -> None:
    """The background process: delivery worker and scheduler (scale-out layout)."""
    app = current_app._get_current_object()
    if once:
        threaded = intake.drain_all().rows
        click.echo(f"processed {run_once(limit=500)}; webhook bodies threaded {threaded}")
        return
    start_scheduler(app)
    thread = WorkerThread(app)
    thread.start()
    click.echo("Switchboard worker running (Ctrl+C to stop)")
    try:
        while thread.is_alive():
            thread.join(1.0)
    except KeyboardInterrupt:
        thread.stop()
