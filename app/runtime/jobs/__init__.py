"""The scheduler (APScheduler 3.x) and its periodic jobs.

Exactly one scheduler acts at a time however many processes run: every job
run first takes a database lock (``app.runtime.jobs.lock``), so a second scheduler's
run of the same job is skipped.
"""

from __future__ import annotations

import logging
import threading

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from app.runtime.jobs import registry

log = logging.getLogger(__name__)

_started: dict[int, BackgroundScheduler] = {}
_lock = threading.Lock()


def start_scheduler(app: Flask) -> BackgroundScheduler | None:
    """Start the scheduler for ``app`` once per process (safe to call twice)."""
    with _lock:
        if id(app) in _started:
            return _started[id(app)]
        scheduler = BackgroundScheduler(timezone="UTC", daemon=True)
        for job in registry.JOBS:
            scheduler.add_job(
                registry.run_job,
                "interval",
                seconds=job.every_seconds,
                args=[app, job.name],
                id=job.name,
                replace_existing=True,
                max_instances=1,
                coalesce=True,
            )
        scheduler.start()
        _started[id(app)] = scheduler
        log.info("scheduler started with %d jobs", len(registry.JOBS))
        return scheduler
