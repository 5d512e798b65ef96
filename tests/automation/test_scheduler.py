"""The scheduler: deterministic jobs, one run at a time across processes, effects once.

Concurrent schedulers are threads with their own database connections calling
``registry.run_job`` at the same instant; with ``TEST_DATABASE_URL`` set this runs on
PostgreSQL, where they race for real.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.inbox import assignment
from app.models import JobLock, ResponseBreach
from app.runtime.jobs import registry, start_scheduler, timers
from tests.automation.helpers import T0, conv_of, notes, online, run, run_concurrently

MY_JOBS = [
    "wake_snoozed",
    "watch_windows",
    "watch_response_due",
    "follow_ups",
    "drain_queue",
    "auto_close_pending",
    "mark_inactive",
]


def test_jobs_have_deterministic_ids_and_start_once_per_process(app):
    assert set(MY_JOBS) <= set(registry.BY_NAME)
    first = start_scheduler(app)
    try:
        assert start_scheduler(app) is first
        assert {j.id for j in first.get_jobs()} == set(registry.BY_NAME)
        periods = {j.id: j.trigger.interval.total_seconds() for j in first.get_jobs()}
        assert periods["watch_windows"] <= 30  # a warning within a minute of being due
        assert all(j.max_instances == 1 and j.coalesce for j in first.get_jobs())
    finally:
        first.shutdown(wait=False)
        from app.runtime.jobs import _started

        _started.pop(id(app), None)


@pytest.mark.parametrize("name", MY_JOBS)
def test_each_job_runs_in_exactly_one_of_several_concurrent_schedulers(app, clock, name):
    clock.to(T0)
    results = run_concurrently(app, name, threads=6)
    assert sorted(results) == [False] * 5 + [True]
    clock.shift(seconds=registry.BY_NAME[name].every_seconds * 0.5 - 1)
    assert run(app, name) is False  # ran less than half a period ago
    clock.shift(seconds=2)
    assert run(app, name) is True


def test_a_crashed_run_frees_the_lock_and_records_the_error(app, clock, session, monkeypatch):
    clock.to(T0)

    def boom(**_kw):
        raise RuntimeError("database went away")

    monkeypatch.setattr(timers, "watch_windows", boom)
    assert run(app, "watch_windows") is True
    row = session.get(JobLock, "watch_windows")
    assert row.locked_until is None and "database went away" in row.last_error


def test_window_warning_is_stored_and_pushed_once_under_concurrent_schedulers(
    app, make, session, clock, captured_events
):
    agent = make.user()
    inbox = make.inbox("messenger", members=[agent])
    clock.to(T0)
    conv = conv_of(session, make.inbound(inbox, contact="9001"))
    assignment.assign(session, conv, agent)
    session.commit()
    clock.to(T0 + timedelta(hours=23, minutes=45))
    captured_events.clear()
    run_concurrently(app, "watch_windows", threads=6)
    assert len(notes(session, "window_closing")) == 1
    assert len([e for e in captured_events if e.name == "notification.created"]) == 1


def _concurrent_direct(app, func, threads: int = 4) -> None:
    """Call a job function from several threads at once, bypassing the lock entirely."""
    from app.extensions import db

    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker():
        with app.app_context():
            try:
                barrier.wait(5)
                func()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                db.session.remove()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    assert not errors, errors


def test_breach_and_notices_are_stored_once_even_without_the_lock(
    app, make, session, clock, captured_events
):
    """Belt and braces: the effects themselves are idempotent (unique keys, insert-ignore)."""
    agent, lead = make.user(), make.user("lead")
    inbox = make.inbox("messenger", members=[agent, lead], settings={"response_due_hours": 1})
    online(session, agent)
    clock.to(T0)
    conv = conv_of(session, make.inbound(inbox, contact="9002"))
    assignment.assign(session, conv, agent)
    session.commit()
    clock.to(T0 + timedelta(hours=1, minutes=1))
    captured_events.clear()
    _concurrent_direct(app, timers.watch_response_due)
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count()).select_from(ResponseBreach)) == 1
    assert sorted(n.user_id for n in notes(session, "response_overdue")) == sorted(
        [agent.id, lead.id]
    )
    assert len([e for e in captured_events if e.name == "notification.created"]) == 2


def test_greeting_is_sent_once_when_two_deliveries_of_one_message_race(app, make, session, clock):
    """Meta retries a webhook while the first delivery is still being stored."""
    from app.extensions import db
    from app.inbox.ingest import ingest
    from app.models import Inbox
    from connectors.base import InboundMessage
    from tests.automation.helpers import outbound

    inbox = make.inbox("messenger", settings={"greeting": "Welcome!"})
    clock.to(T0)
    ev = InboundMessage(
        inbox_key=inbox.route_key, external_id="m_dup", contact_id="9003", sent_at=T0, text="hi"
    )

    def deliver_once():
        ingest(db.session, db.session.get(Inbox, inbox.id), [ev])

    _concurrent_direct(app, deliver_once, threads=4)
    sent = outbound(session, automated=True)
    assert [m.body for m in sent] == ["Welcome!"]
