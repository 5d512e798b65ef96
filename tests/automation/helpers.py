"""Helpers for the timer, automation and assignment tests (fixtures are in conftest.py)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

#: A fixed Monday morning (UTC) most timelines start from.
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def online(session, *users, until: timedelta = timedelta(days=60)) -> None:
    """Mark users online with a live presence that outlasts the test's time travel."""
    from app.clock import now

    for user in users:
        user.availability = "online"
        user.online_until = now() + until
    session.commit()


def run(app, name: str) -> bool:
    """Run a scheduled job through the lock, as the scheduler does."""
    from app.extensions import db
    from app.runtime.jobs import registry

    ran = registry.run_job(app, name)
    db.session.expire_all()
    return ran


def run_concurrently(app, name: str, threads: int = 6) -> list[bool]:
    """Start ``threads`` schedulers' runs of one job at the same instant."""
    from app.runtime.jobs import registry

    barrier = threading.Barrier(threads)
    results: list[bool] = []
    errors: list[BaseException] = []

    def worker():
        try:
            barrier.wait(5)
            results.append(registry.run_job(app, name))
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    assert not errors, errors
    from app.extensions import db

    db.session.expire_all()
    return results


def notes(session, kind: str | None = None, user=None) -> list:
    """Stored notifications (optionally of one kind / for one user), oldest first."""
    from app.models import Notification

    q = sa.select(Notification).order_by(Notification.id)
    if kind:
        q = q.where(Notification.kind == kind)
    if user is not None:
        q = q.where(Notification.user_id == user.id)
    session.expire_all()
    return list(session.scalars(q))


def outbound(session, conv_id: int | None = None, automated: bool | None = None) -> list:
    """Outbound messages (the outbox's sends), oldest first."""
    from app.models import Message

    q = sa.select(Message).where(Message.direction == "outbound").order_by(Message.id)
    if conv_id is not None:
        q = q.where(Message.conversation_id == conv_id)
    if automated is not None:
        q = q.where(Message.automated.is_(automated))
    session.expire_all()
    return list(session.scalars(q))


def conv_of(session, msg):
    """The conversation of an ingested message, fresh from the database."""
    from app.models import Conversation

    session.expire_all()
    return session.get(Conversation, msg.conversation_id)


def reply(session, conv, user, body: str = "Thanks, we are on it."):
    """An agent's reply through the real send path (queued in the outbox)."""
    from app.inbox import replies

    msg, _ = replies.post_message(session, conv, user, body)
    session.commit()
    return msg


@dataclass
class FakeGraph:
    """A Graph API that records message sends and answers like Meta."""

    sends: list[dict] = field(default_factory=list)
    actions: list[dict] = field(default_factory=list)

    def messages(self, request):
        body = json.loads(request.body)
        if "sender_action" in body:
            self.actions.append(body)
            return 200, {}, json.dumps({"recipient_id": body["recipient"]["id"]})
        self.sends.append(body)
        mid = f"m_sent_{len(self.sends)}"
        return 200, {}, json.dumps({"recipient_id": body["recipient"]["id"], "message_id": mid})

    def texts(self) -> list[str]:
        return [s["message"].get("text") for s in self.sends]


def deliver(app, limit: int = 100) -> int:
    """Run the outbox worker once in its own app context (as the worker thread does)."""
    from app.extensions import db
    from app.runtime.worker import run_once

    with app.app_context():
        handled = run_once(limit=limit)
    db.session.expire_all()
    return handled


def fresh_conv(session, conv_id: int):
    """A conversation reloaded from the database."""
    from app.models import Conversation

    session.expire_all()
    return session.get(Conversation, conv_id)
