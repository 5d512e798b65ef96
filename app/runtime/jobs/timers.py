"""Timer jobs: they read the precomputed timer columns through their indexes.

Each job looks only at the slice of an index that crossed a moment since its last
run (``since``, from the job lock, with a small overlap), plus conversations
active since then (``ix_conv_activity``) for messages that arrived late; never at
every conversation. What they store is idempotent (notification dedupe keys, the
breach table's unique key, activity lines keyed by ``client_id``), so a job run
twice, or by two processes at once, acts once.

- :func:`wake_snoozed`: snoozed conversations reopen at ``snooze_until``.
- :func:`watch_windows`: warnings before a reply window closes (per inbox
  ``window_warnings_minutes``), and the live update when it closes.
- :func:`watch_response_due`: a warning before the response target
  (``response_warning_minutes``) and the breach (recorded in ``response_breaches``).
- :func:`follow_ups`: our reply was last and the customer is quiet: remind, or send
  the inbox's follow-up message.
- :func:`auto_close_pending`: pending conversations close after the inbox's days.
- :func:`mark_inactive`: no interaction for ``inactive_days``: inactive.
- :func:`drain_queue`: the unassigned queue goes to agents who have room.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import aware, iso, now
from app.db import insert_ignore
from app.extensions import db
from app.inbox import (
    activity,
    assignment,
    automation,
    conversations,
    events,
    notifications,
    signals,
    windows,
)
from app.inbox.activity import add_activity
from app.models import Conversation, Inbox, Message, ResponseBreach, User

log = logging.getLogger(__name__)

LIVE = ("open", "pending", "snoozed")
OVERLAP = timedelta(minutes=2)  # scheduling jitter and clock skew between processes
FIRST_RUN = timedelta(days=1)  # how far back a first run (or a direct call) looks
NOTIFY_STALE = timedelta(days=1)  # older breaches found after downtime are recorded silently
BATCH = 500


def _lower(since: datetime | None, at: datetime) -> datetime:
    return (aware(since) if since else at - FIRST_RUN) - OVERLAP


def _scan(
    session: Session, col, lo: datetime | None, hi: datetime, *conds
) -> Iterator[Conversation]:
    """Conversations with ``lo < col <= hi`` (and ``conds``) in index order, batch by batch."""
    last_value, last_id = lo, 0
    while True:
        q = sa.select(Conversation).where(*conds, col <= hi)
        if last_value is not None:
            q = q.where(
                sa.or_(col > last_value, sa.and_(col == last_value, Conversation.id > last_id))
            )
        rows = list(session.scalars(q.order_by(col, Conversation.id).limit(BATCH)).unique())
        yield from rows
        if len(rows) < BATCH:
            return
        last_value, last_id = getattr(rows[-1], col.key), rows[-1].id


def _recent(session: Session, lower: datetime, *conds) -> list[Conversation]:
    """Conversations active since ``lower`` (late arrivals whose moment passed before)."""
    return list(
        session.scalars(
            sa.select(Conversation).where(Conversation.last_activity_at > lower, *conds).limit(5000)
        ).unique()
    )


def _entering(
    session: Session,
    col,
    at: datetime,
    minutes: list[int],
    scan_from: datetime,
    recent_since: datetime,
    *conds,
) -> dict[int, Conversation]:
    """Conversations whose ``col`` came within one of the ``minutes`` thresholds of ``at``.

    Those that crossed a threshold since ``scan_from`` (index scans), plus those active
    since ``recent_since`` that are already inside the largest threshold (late arrivals).
    """
    found: dict[int, Conversation] = {}
    for m in minutes:
        step = timedelta(minutes=m)
        for conv in _scan(session, col, scan_from + step, at + step, *conds):
            found[conv.id] = conv
    if minutes:
        horizon = at + timedelta(minutes=minutes[-1])
        for conv in _recent(session, recent_since, *conds, col > at, col <= horizon):
            found[conv.id] = conv
    return found


def _left(delta: timedelta) -> str:
    minutes = max(1, int(delta.total_seconds() // 60))
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes % 60 else f"{minutes // 60} h"


def _publish(session: Session, conv: Conversation) -> None:
    events.changed(session, "conversation.updated", conv, ("inbox", conv.inbox_id))


# --------------------------------------------------------------------------- snooze


def wake_snoozed(batch: int = 500) -> int:
    """Reopen conversations whose snooze time has come; returns how many."""
    session = db.session
    at = now()
    convs = list(
        session.scalars(
            sa.select(Conversation)
            .where(Conversation.status == "snoozed", Conversation.snooze_until <= at)
            .limit(batch)
        )
    )
    for conv in convs:
        conv.status = "open"
        conv.snooze_until = None
        conv.last_activity_at = at
        add_activity(session, conv, activity.line(activity.SNOOZE_ENDED), event="woken")
        events.changed(session, "conversation.updated", conv, ("inbox", conv.inbox_id))
        events.publish(
            session, "counts.updated", {"inbox_id": conv.inbox_id}, ("inbox", conv.inbox_id)
        )
    session.commit()
    return len(convs)


# --------------------------------------------------------------------------- reply windows


def _window_inboxes(session: Session) -> dict[int, Inbox]:
    names = list(windows.policies())
    return {i.id: i for i in session.scalars(sa.select(Inbox).where(Inbox.channel.in_(names)))}


def _thresholds(inbox: Inbox) -> list[int]:
    return sorted({int(m) for m in (inbox.setting("window_warnings_minutes") or []) if m})


def watch_windows(since: datetime | None = None) -> dict:
    """Warn before reply windows close; push the change when a window closes.

    A conversation gets one warning per threshold it enters (the most urgent one when a
    late message skipped some), sent to its assignee, or to the inbox's members when
    unassigned, and only while the customer waits for an answer.
    """
    session = db.session
    at = now()
    lower = max(_lower(since, at), at - FIRST_RUN)
    inboxes = _window_inboxes(session)
    done = {"warned": 0, "closed": 0, "human_agent": 0}
    if not inboxes:
        return done
    col = Conversation.window_expires_at
    waiting = (
        Conversation.status.in_(LIVE),
        Conversation.waiting_since.is_not(None),
        Conversation.inbox_id.in_(list(inboxes)),
    )
    all_minutes = sorted({m for i in inboxes.values() for m in _thresholds(i)})
    candidates = _entering(session, col, at, all_minutes, lower, lower, *waiting)
    for conv in candidates.values():
        inbox = inboxes[conv.inbox_id]
        expires = aware(conv.window_expires_at)
        left = expires - at
        crossed = [m for m in _thresholds(inbox) if left <= timedelta(minutes=m)]
        if left <= timedelta(0) or not crossed:
            continue
        if windows.closed_by_platform(conv.context, conv.last_inbound_at):
            continue
        minutes = min(crossed)
        rule = windows.reply_window(
            inbox.channel, conv.last_inbound_at, bool(inbox.setting("human_agent")), at
        ).rule
        name = notifications.isolate(conv.contact.display_name())
        done["warned"] += notifications.notify_many(
            session,
            notifications.assignee_or_members(session, conv),
            "window_closing",
            conv,
            f"window:{conv.id}:{notifications.stamp(expires)}:{minutes}",
            text=f"Reply to {name} within {_left(left)}: the {rule} closes at {expires:%H:%M} UTC",
            expires_at=iso(expires),
            minutes=minutes,
            rule=rule,
        )
    # closed since the last run: the list and the thread change state live (the activity
    # line is keyed, so only the live push uses the exact last run time, without overlap)
    pushed_since = max(aware(since), at - FIRST_RUN) if since else lower
    for conv in _scan(
        session,
        col,
        lower,
        at,
        Conversation.status.in_(LIVE),
        Conversation.inbox_id.in_(list(inboxes)),
    ):
        if conv.waiting_since is not None:
            _window_closed_line(session, conv, aware(conv.window_expires_at))
        if aware(conv.window_expires_at) > pushed_since:
            done["closed"] += 1
            _publish(session, conv)
    # the standard window ended but a human agent reply stays possible (Messenger 7 days)
    for channel, policy in windows.policies().items():
        if policy.human_agent is None:
            continue
        ids = [i.id for i in inboxes.values() if i.channel == channel and i.setting("human_agent")]
        if not ids:
            continue
        shift = policy.human_agent - policy.standard
        for conv in _scan(
            session,
            col,
            pushed_since + shift,
            at + shift,
            Conversation.status.in_(LIVE),
            Conversation.inbox_id.in_(ids),
        ):
            done["human_agent"] += 1
            _publish(session, conv)
    session.commit()
    return done


def _window_closed_line(session: Session, conv: Conversation, expires: datetime) -> None:
    """ "The window closed before anyone replied", once per window (keyed by client_id)."""
    inbox = conv.inbox
    rule = windows.reply_window(
        inbox.channel, conv.last_inbound_at, bool(inbox.setting("human_agent")), expires
    ).rule
    text = f"The {rule.replace(' has ended', '')} closed before anyone replied"
    new_id = insert_ignore(
        session,
        Message,
        {
            "conversation_id": conv.id,
            "inbox_id": conv.inbox_id,
            "direction": "activity",
            "body": text,
            "status": "received",
            "client_id": f"window-closed:{notifications.stamp(expires)}",
            "meta": {"event": "window_closed", "expires_at": iso(expires)},
            "created_at": now(),
            "updated_at": now(),
        },
        ["conversation_id", "client_id"],
    )
    if new_id is not None:
        events.changed(
            session, "message.created", session.get(Message, new_id), ("inbox", conv.inbox_id)
        )
        signals.reply_window_missed.send(conv, session=session, at=expires)  # reports


# --------------------------------------------------------------------------- response due


def _warning_minutes(inbox: Inbox) -> int:
    return int(inbox.setting("response_warning_minutes") or 0)


def watch_response_due(since: datetime | None = None) -> dict:
    """Warn before the response target; record and announce breaches.

    The warning goes to the assignee (the inbox's members when unassigned); the breach
    notice to the assignee and the inbox's leads. A breach is one row per conversation
    and due time in ``response_breaches``; a human reply fills its ``answered_at``.
    """
    session = db.session
    at = now()
    lower = _lower(since, at)
    col = Conversation.response_due_at
    live = (Conversation.status.in_(LIVE), Conversation.waiting_since.is_not(None))
    done = {"warned": 0, "breached": 0}
    inboxes = {i.id: i for i in session.scalars(sa.select(Inbox))}
    minutes = sorted({_warning_minutes(i) for i in inboxes.values()} - {0})
    candidates = _entering(session, col, at, minutes, max(lower, at - FIRST_RUN), lower, *live)
    for conv in candidates.values():
        due = aware(conv.response_due_at)
        m = _warning_minutes(inboxes[conv.inbox_id])
        if not m or not (at < due <= at + timedelta(minutes=m)):
            continue
        done["warned"] += notifications.notify_many(
            session,
            notifications.assignee_or_members(session, conv),
            "response_due_soon",
            conv,
            f"due:{conv.id}:{notifications.stamp(due)}",
            text=f"{notifications.isolate(conv.contact.display_name())} is waiting: answer within {_left(due - at)} "
            "to meet the response target",
            due_at=iso(due),
        )
    breached: dict[int, Conversation] = {}
    for conv in _scan(session, col, lower, at, *live):
        breached[conv.id] = conv
    for conv in _recent(session, lower, *live, col <= at):
        breached[conv.id] = conv
    for conv in breached.values():
        due = aware(conv.response_due_at)
        new_id = insert_ignore(
            session,
            ResponseBreach,
            {
                "conversation_id": conv.id,
                "inbox_id": conv.inbox_id,
                "assignee_id": conv.assignee_id,
                "due_at": due,
                "breached_at": at,
                "answered_at": None,
            },
            ["conversation_id", "due_at"],
        )
        if new_id is None:
            continue
        done["breached"] += 1
        signals.response_breached.send(conv, session=session, due_at=due)  # reports
        _publish(session, conv)
        if due < at - NOTIFY_STALE:
            continue
        people = [conv.assignee] if conv.assignee and conv.assignee.active else []
        people += notifications.inbox_leads(session, conv.inbox_id)
        people = people or notifications.inbox_members(session, conv.inbox_id)  # a team of agents
        late = _left(at - aware(conv.waiting_since))
        notifications.notify_many(
            session,
            people,
            "response_overdue",
            conv,
            f"breach:{conv.id}:{notifications.stamp(due)}",
            text=f"{notifications.isolate(conv.contact.display_name())} has waited {late} without an answer: the "
            "response target was missed",
            due_at=iso(due),
            assignee_id=conv.assignee_id,
        )
    session.commit()
    return done


# --------------------------------------------------------------------------- follow-ups


def _last_replier(session: Session, conv: Conversation) -> User | None:
    user_id = session.scalar(
        sa.select(Message.sender_user_id)
        .where(
            Message.conversation_id == conv.id,
            Message.direction == "outbound",
            Message.sender_user_id.is_not(None),
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
    user = session.get(User, user_id) if user_id else None
    return user if user is not None and user.active else None


def follow_ups() -> dict:
    """Our reply was the last message and the customer has not answered in time.

    Each due conversation is claimed by a conditional UPDATE (``follow_up_due_at``
    cleared, ``follow_up_done_at`` set), then: the inbox's follow-up message goes out
    when ``follow_up_auto`` is on and every send rule allows it (the reply window
    above all); otherwise the assignee (or the agent who replied) gets a reminder.
    """
    session = db.session
    at = now()
    done = {"reminded": 0, "sent": 0, "skipped": 0}
    col = Conversation.follow_up_due_at
    for conv in list(_scan(session, col, None, at, col.is_not(None))):
        due = aware(conv.follow_up_due_at)
        claimed = (
            session.execute(
                sa.update(Conversation)
                .where(Conversation.id == conv.id, col == due)
                .values(follow_up_due_at=None, follow_up_done_at=at)
                .execution_options(synchronize_session=False)
            ).rowcount
            == 1
        )
        if not claimed:
            continue
        conv.follow_up_due_at, conv.follow_up_done_at = None, at
        if (
            conv.status == "closed"
            or conv.waiting_since is not None
            or conv.last_message_direction != "outbound"
        ):
            done["skipped"] += 1
            continue
        inbox = conv.inbox
        text = inbox.setting("follow_up_message")
        auto = inbox.setting("follow_up_auto") and text
        key = f"auto:follow-up:{notifications.stamp(due)}"
        if auto and automation.send_automatic(session, conv, text, key, "follow_up"):
            done["sent"] += 1
            continue
        if not inbox.setting("follow_up_reminders"):
            done["skipped"] += 1
            continue
        people = [conv.assignee] if conv.assignee and conv.assignee.active else []
        people = people or [u for u in [_last_replier(session, conv)] if u]
        people = people or notifications.inbox_members(session, conv.inbox_id)
        quiet = _left(at - aware(conv.last_outbound_at)) if conv.last_outbound_at else "a day"
        done["reminded"] += notifications.notify_many(
            session,
            people,
            "follow_up",
            conv,
            f"follow:{conv.id}:{notifications.stamp(due)}",
            text=f"{notifications.isolate(conv.contact.display_name())} has not answered for {quiet}: follow up?",
        )
        _publish(session, conv)
    session.commit()
    return done


# --------------------------------------------------------------------------- pending, inactive


def auto_close_pending() -> int:
    """Close pending conversations with no activity for the inbox's ``auto_close_pending_days``."""
    session = db.session
    at = now()
    closed = 0
    for inbox in list(session.scalars(sa.select(Inbox).order_by(Inbox.id))):
        days = inbox.setting("auto_close_pending_days")
        if not days:
            continue
        cutoff = at - timedelta(days=float(days))
        convs = list(
            session.scalars(
                sa.select(Conversation)
                .where(
                    Conversation.inbox_id == inbox.id,
                    Conversation.status == "pending",
                    Conversation.last_activity_at <= cutoff,
                )
                .order_by(Conversation.last_activity_at, Conversation.id)
                .limit(BATCH)
            ).unique()
        )
        for conv in convs:
            conversations.set_status(
                session,
                conv,
                "closed",
                None,
                note=activity.line(activity.AUTO_CLOSED, days=f"{days:g}"),
            )
            closed += 1
        session.commit()
    return closed


def mark_inactive(since: datetime | None = None) -> int:
    """Flag conversations with no interaction for ``inactive_days`` (15 by default).

    Looks at the ``last_activity_at`` index between the last run's cutoff and this
    run's (a first run looks at everything older). The customer writing or an agent
    replying clears the flag (``app.inbox.automation``).
    """
    session = db.session
    at = now()
    by_days: dict[float, list[int]] = {}
    for inbox in session.scalars(sa.select(Inbox)):
        days = float(inbox.setting("inactive_days") or 0)
        if days:
            by_days.setdefault(days, []).append(inbox.id)
    marked = 0
    col = Conversation.last_activity_at
    for days, inbox_ids in by_days.items():
        span = timedelta(days=days)
        lo = aware(since) - OVERLAP - span if since else None
        for conv in list(
            _scan(
                session,
                col,
                lo,
                at - span,
                Conversation.status.in_(LIVE),
                Conversation.inactive_since.is_(None),
                Conversation.inbox_id.in_(inbox_ids),
            )
        ):
            conv.inactive_since = aware(conv.last_activity_at) + span
            add_activity(
                session, conv, activity.line(activity.INACTIVE, days=f"{days:g}"), event="inactive"
            )
            _publish(session, conv)
            events.publish(
                session, "counts.updated", {"inbox_id": conv.inbox_id}, ("inbox", conv.inbox_id)
            )
            marked += 1
    session.commit()
    return marked


# --------------------------------------------------------------------------- queue


def drain_queue() -> int:
    """Hand the unassigned queue of auto-assigning inboxes to agents with room, oldest first."""
    session = db.session
    assigned = assignment.drain_queue(session)
    session.commit()
    return assigned
