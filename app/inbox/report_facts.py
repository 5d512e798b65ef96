"""Facts for reports, recorded as they happen, so a report never re-reads the history.

The receivers here listen to the domain's signals (:mod:`app.inbox.wiring`) and write
two tables (:mod:`app.models.report`):

- ``report_events``: a conversation started (``new``), was ``closed`` (with its
  resolution time, from its start or its last reopening), ``reopened`` (by an agent or
  by the customer writing again) or ``assigned``.
- ``report_waits``: each wait of a customer for an answer, from their first unanswered
  message (the platform's send time) to the first human reply, in wall-clock seconds and
  in seconds inside the inbox's business hours; a reply window that closed on it and a
  response target it passed are marked on it.

All times are UTC; reports apply a time zone when they read them.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, object_session

from app.clock import aware, now
from app.inbox import hours
from app.models import Conversation, Inbox, ReportEvent, ReportWait, User
from app.models.report import slot_of


def record_event(
    session: Session,
    kind: str,
    conv: Conversation,
    at: datetime,
    user_id: int | None = None,
    seconds: int | None = None,
) -> ReportEvent:
    """Store one conversation event (``new``, ``closed``, ``reopened``, ``assigned``)."""
    at = aware(at)
    event = ReportEvent(
        kind=kind,
        at=at,
        slot=slot_of(at),
        conversation_id=conv.id,
        inbox_id=conv.inbox_id,
        user_id=user_id,
        seconds=seconds,
    )
    session.add(event)
    return event


def _open_waits(session: Session, conv: Conversation) -> list[ReportWait]:
    return list(
        session.scalars(
            sa.select(ReportWait)
            .where(ReportWait.conversation_id == conv.id, ReportWait.answered_at.is_(None))
            .order_by(ReportWait.started_at, ReportWait.id)
        )
    )


def wait_started(session: Session, conv: Conversation) -> None:
    """The customer waits for an answer since ``conv.waiting_since``: open (or move) its wait."""
    since = aware(conv.waiting_since)
    if since is None:
        return
    waits = _open_waits(session, conv)
    if not waits:
        session.add(ReportWait(conversation_id=conv.id, inbox_id=conv.inbox_id, started_at=since))
    elif since < aware(waits[0].started_at):  # a message that arrived late was sent earlier
        waits[0].started_at = since


def answered(session: Session, conv: Conversation, at: datetime, by: User | None) -> None:
    """A person replied at ``at``: the customer's open waits end, timed in and out of hours."""
    waits = _open_waits(session, conv)
    if not waits:
        return
    before = session.scalar(
        sa.select(ReportWait.id)
        .where(ReportWait.conversation_id == conv.id, ReportWait.answered_at.is_not(None))
        .limit(1)
    )
    schedule = conv.inbox.setting("business_hours")
    at = aware(at)
    for wait in waits:
        started = aware(wait.started_at)
        wait.answered_at = at
        wait.agent_id = by.id if by is not None else conv.assignee_id
        wait.wait_s = max(0, int((at - started).total_seconds()))
        wait.business_s = hours.open_seconds(schedule, started, at)
        wait.first = before is None
        before = True


def _mark_open_wait(session: Session, conv: Conversation, **values) -> None:
    """Mark the customer's open waits (or, where none was recorded, a new one)."""
    waits = _open_waits(session, conv)
    if not waits:
        since = aware(conv.waiting_since)
        if since is None:
            return
        waits = [ReportWait(conversation_id=conv.id, inbox_id=conv.inbox_id, started_at=since)]
        session.add(waits[0])
    for wait in waits:
        for column, value in values.items():
            if getattr(wait, column) is None:
                setattr(wait, column, value)
        if wait.agent_id is None:
            wait.agent_id = conv.assignee_id


def _opened_at(session: Session, conv: Conversation) -> datetime:
    """When the conversation last began: its last reopening, else its start."""
    reopened = session.scalar(
        sa.select(sa.func.max(ReportEvent.at)).where(
            ReportEvent.conversation_id == conv.id, ReportEvent.kind == "reopened"
        )
    )
    return aware(reopened) if reopened is not None else aware(conv.created_at)


# --------------------------------------------------------------------------- receivers


def on_conversation_created(conv: Conversation, *, session: Session, **_) -> None:
    """Receiver of ``signals.conversation_created``: a new conversation."""
    record_event(session, "new", conv, conv.created_at or now())


def on_customer_wrote(
    inbox: Inbox,
    *,
    session: Session,
    conversations: list[Conversation],
    reopened: set[int] = frozenset(),
    at: datetime,
    **_,
) -> None:
    """Receiver of ``signals.customer_wrote``: the customers' waits start; reopenings."""
    for conv in conversations:
        if conv.id in reopened:
            record_event(session, "reopened", conv, at)
        wait_started(session, conv)


def on_agent_replied(conv: Conversation, *, at: datetime, by: User | None = None, **_) -> None:
    """Receiver of ``signals.agent_replied``: the waits it answers end."""
    session = object_session(conv)
    if session is not None and conv.id is not None:
        answered(session, conv, at, by)


def on_status_changed(conv: Conversation, *, session: Session, previous: str, **_) -> None:
    """Receiver of ``signals.status_changed``: closed (resolution time) or reopened."""
    if conv.status == "closed" and previous != "closed":
        at = aware(conv.closed_at) or now()
        seconds = max(0, int((at - _opened_at(session, conv)).total_seconds()))
        record_event(session, "closed", conv, at, conv.assignee_id, seconds)
    elif previous == "closed" and conv.status != "closed":
        record_event(session, "reopened", conv, now())


def on_assigned(conv: Conversation, *, session: Session, assignee: User | None, **_) -> None:
    """Receiver of ``signals.assigned``: an assignment (to nobody: not counted)."""
    if assignee is not None:
        record_event(session, "assigned", conv, now(), assignee.id)


def on_reply_window_missed(conv: Conversation, *, session: Session, at: datetime, **_) -> None:
    """Receiver of ``signals.reply_window_missed``: the wait lost its reply window."""
    _mark_open_wait(session, conv, window_missed_at=aware(at))


def on_response_breached(conv: Conversation, *, session: Session, due_at: datetime, **_) -> None:
    """Receiver of ``signals.response_breached``: the wait passed its response target."""
    _mark_open_wait(session, conv, breached_at=aware(due_at))
