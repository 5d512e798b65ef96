"""The periodic jobs and the lock that makes each run happen in one process only."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask, g

from app.clock import now
from app.db import insert_ignore_stmt
from app.extensions import db
from app.models import JobLock
from app.runtime import intake
from app.runtime.jobs import mail, secrets, silence, timers, uploads

log = logging.getLogger(__name__)

OWNER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Job:
    """A periodic job: a name (its deterministic id), how often, and what it runs."""

    name: str
    every_seconds: int
    func: Callable[[], object]
    max_runtime_seconds: int = 300


def acquire(name: str, every_seconds: int, ttl_seconds: int) -> bool:
    """Take the job's lock for this run; False when another process holds it or ran it just now."""
    session = db.session
    at = now()
    row = session.get(JobLock, name)
    previous = row.last_run_at if row is not None else None
    if row is None:
        session.execute(insert_ignore_stmt(session, JobLock, ["name"]), {"name": name})
        session.commit()
    result = session.execute(
        sa.update(JobLock)
        .where(
            JobLock.name == name,
            sa.or_(JobLock.locked_until.is_(None), JobLock.locked_until < at),
            sa.or_(
                JobLock.last_run_at.is_(None),
                JobLock.last_run_at <= at - timedelta(seconds=every_seconds * 0.5),
            ),
        )
        .values(owner=OWNER, locked_until=at + timedelta(seconds=ttl_seconds), last_run_at=at)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if result.rowcount == 1:
        g.job_previous_run = previous  # what "since the last run" means for this run
    return result.rowcount == 1


def previous_run():
    """When the running job last ran before this run (None: first run, or not run by the lock)."""
    return g.get("job_previous_run")


def release(name: str, error: str | None = None) -> None:
    """Free the lock after a run."""
    db.session.execute(
        sa.update(JobLock)
        .where(JobLock.name == name, JobLock.owner == OWNER)
        .values(locked_until=None, last_error=error)
    )
    db.session.commit()


def run_job(app: Flask, name: str) -> bool:
    """Run one job if this process wins its lock; returns True when it ran."""
    job = BY_NAME[name]
    with app.app_context():
        try:
            if not acquire(job.name, job.every_seconds, job.max_runtime_seconds):
                return False
        except Exception:  # noqa: BLE001 - a database hiccup skips one run
            log.exception("could not take the lock for job %s", name)
            db.session.rollback()
            return False
        error = None
        try:
            job.func()
        except Exception as exc:  # noqa: BLE001
            log.exception("job %s failed", name)
            db.session.rollback()
            error = str(exc)[:2000]
        finally:
            release(job.name, error)
            db.session.remove()
        return True


def _wake_snoozed() -> None:
    timers.wake_snoozed()


def _imap_poll() -> None:
    mail.poll_all()


def _watch_silence() -> None:
    silence.watch_silence()


def _watch_client_secrets() -> None:
    secrets.watch_client_secrets()


def _drop_unsent_uploads() -> None:
    uploads.drop_unsent_uploads()


def _intake_sweep() -> None:
    intake.drain_all()


def _timer(name: str, with_since: bool = False) -> Callable[[], object]:
    """A job that calls ``app.runtime.jobs.timers.<name>`` (with the previous run time if asked)."""

    def run() -> object:
        func = getattr(timers, name)
        return func(since=previous_run()) if with_since else func()

    run.__name__ = f"_{name}"
    return run


JOBS: list[Job] = [
    Job("intake_sweep", 15, _intake_sweep),
    Job("wake_snoozed", 30, _wake_snoozed),
    Job("watch_windows", 30, _timer("watch_windows", with_since=True)),
    Job("watch_response_due", 30, _timer("watch_response_due", with_since=True)),
    Job("follow_ups", 60, _timer("follow_ups")),
    Job("drain_queue", 30, _timer("drain_queue")),
    Job("auto_close_pending", 300, _timer("auto_close_pending")),
    Job("mark_inactive", 300, _timer("mark_inactive", with_since=True)),
    Job("imap_poll", 60, _imap_poll, max_runtime_seconds=600),
    Job("watch_silence", 600, _watch_silence),
    Job("watch_client_secrets", 3600, _watch_client_secrets),
    Job("drop_unsent_uploads", 3600, _drop_unsent_uploads),
]
BY_NAME = {job.name: job for job in JOBS}
