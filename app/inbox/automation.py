"""Automation on the message flow: greeting, away message, follow-up timer, inactive and
declined states, and returning an away agent's conversations to the queue.

Automatic messages go out through :func:`app.inbox.replies.post_message` with no
user and ``automated=True``: they never answer the customer (``waiting_since`` and
the response target stay), every send rule applies (a refusal such as a closed
reply window skips the message), a message the customer's side sent automatically
(auto-reply, bounce, mailing list) never gets one, and each is claimed by a
conditional UPDATE of its marker column (``greeted_at``, ``away_sent_at``,
``follow_up_done_at``) in the same transaction, so it is never sent twice.

Inbox settings used here (defaults in :data:`app.models.inbox.DEFAULT_SETTINGS`): ``greeting``,
``away_message``, ``business_hours``, ``away_interval_hours``, ``away_skip_minutes``,
``follow_up_hours``, ``follow_up_reminders``, ``follow_up_auto``,
``follow_up_message``, ``inactive_days``, ``auto_close_pending_days``,
``response_warning_minutes``, ``return_to_queue_when_away``, ``auto_reply_interval_minutes``.

Automatic replies are rate limited per contact, as RFC 3834 asks: the greeting goes to a
contact's first conversation only, and an away message is not sent when another conversation
of the same contact in the inbox got an automatic message within
``auto_reply_interval_minutes``, so a sender who opens many conversations at once (a flood,
a mail loop) gets one answer. Within one conversation the greeting's and away message's own
rules apply as before (a first message out of hours may get both).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, object_session

from app.clock import aware, now
from app.inbox import activity, assignment, events, hours, notifications, replies
from app.inbox.conversations import set_status
from app.models import Conversation, Inbox, Message, ResponseBreach, User

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- automatic messages


def _claim(session: Session, conv: Conversation, column: str, condition, at: datetime) -> bool:
    """Set a marker column with a conditional UPDATE; True when this transaction won it."""
    col = getattr(Conversation, column)
    result = session.execute(
        sa.update(Conversation)
        .where(Conversation.id == conv.id, condition(col))
        .values({column: at})
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        setattr(conv, column, at)
        return True
    return False


def send_automatic(
    session: Session, conv: Conversation, body: str, client_id: str, kind: str
) -> Message | None:
    """Queue an automatic message if every send rule allows it now; None when refused."""
    try:
        replies.check_send(session, conv, now())
        msg, created = replies.post_message(
            session, conv, None, body, automated=True, client_id=client_id[:100]
        )
    except (replies.SendRefused, replies.InvalidMessage) as exc:
        log.info("automatic %s for conversation %s not sent: %s", kind, conv.id, exc)
        return None
    if created:
        msg.meta = {**(msg.meta or {}), "automation": kind}
    return msg if created else None


def _first_conversation(session: Session, conv: Conversation) -> bool:
    other = session.scalar(
        sa.select(Conversation.id)
        .where(
            Conversation.inbox_id == conv.inbox_id,
            Conversation.contact_id == conv.contact_id,
            Conversation.id < conv.id,  # one batch may start several: the oldest is first
        )
        .limit(1)
    )
    return other is None


def replied_to_contact_recently(session: Session, conv: Conversation, at: datetime) -> bool:
    """True when another of the contact's conversations in the inbox got an automatic
    message within ``auto_reply_interval_minutes`` of ``at``."""
    minutes = float(conv.inbox.setting("auto_reply_interval_minutes") or 0)
    if minutes <= 0:
        return False
    recent = session.scalar(
        sa.select(Message.id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Conversation.contact_id == conv.contact_id,
            Conversation.inbox_id == conv.inbox_id,
            Conversation.id != conv.id,
            Message.direction == "outbound",
            Message.automated.is_(True),
            Message.created_at > at - timedelta(minutes=minutes),
        )
        .limit(1)
    )
    return recent is not None


def greet(session: Session, conv: Conversation, at: datetime) -> Message | None:
    """The inbox's greeting, once, on the contact's first conversation in the inbox."""
    text = conv.inbox.setting("greeting")
    if not text or conv.greeted_at is not None or not _first_conversation(session, conv):
        return None
    try:
        replies.check_send(session, conv, at)
    except replies.SendRefused:
        return None
    if not _claim(session, conv, "greeted_at", lambda c: c.is_(None), at):
        return None
    return send_automatic(session, conv, text, "auto:greeting", "greeting")


def _agent_replied_since(session: Session, conv: Conversation, since: datetime) -> bool:
    return (
        session.scalar(
            sa.select(Message.id)
            .where(
                Message.conversation_id == conv.id,
                Message.direction == "outbound",
                Message.automated.is_(False),
                Message.created_at >= since,
            )
            .limit(1)
        )
        is not None
    )


def away(session: Session, conv: Conversation, at: datetime) -> Message | None:
    """The away message when the customer writes outside business hours.

    At most once per conversation per ``away_interval_hours``; not when an agent
    replied in the last ``away_skip_minutes`` (someone is there after all).
    """
    inbox = conv.inbox
    text = inbox.setting("away_message")
    schedule = inbox.setting("business_hours")
    if not text or not schedule or hours.is_open(schedule, at):
        return None
    interval = timedelta(hours=float(inbox.setting("away_interval_hours") or 0))
    if conv.away_sent_at is not None and aware(conv.away_sent_at) > at - interval:
        return None
    skip = timedelta(minutes=float(inbox.setting("away_skip_minutes") or 0))
    if skip and _agent_replied_since(session, conv, at - skip):
        return None
    if replied_to_contact_recently(session, conv, at):
        return None
    try:
        replies.check_send(session, conv, at)
    except replies.SendRefused:
        return None
    cutoff = at - interval
    if not _claim(session, conv, "away_sent_at", lambda c: sa.or_(c.is_(None), c <= cutoff), at):
        return None
    return send_automatic(session, conv, text, f"auto:away:{notifications.stamp(at)}", "away")


# --------------------------------------------------------------------------- the customer wrote


def on_customer_wrote(
    inbox: Inbox,
    *,
    session: Session,
    conversations: list[Conversation],
    created: set[int],
    at: datetime,
    **_,
) -> None:
    """Receiver of ``signals.customer_wrote`` (ingest, at the end of a batch, before commit).

    For each conversation where the customer (not a machine) wrote: clear the
    follow-up timer, the inactive flag and a declined state (the conversation reopened);
    return it to the queue when its assignee is away (inbox option); then the greeting
    and the away message (notifications tell the inbox of a new conversation).
    """
    for conv in conversations:
        customer_wrote(session, conv, at)
        if conv.id in created:
            greet(session, conv, at)
        away(session, conv, at)


def customer_wrote(session: Session, conv: Conversation, at: datetime) -> None:
    """The customer wrote: no follow-up due, active again, not declined, maybe re-queued."""
    changed = False
    if conv.follow_up_due_at is not None:
        conv.follow_up_due_at = None
    if conv.inactive_since is not None:
        conv.inactive_since = None
        changed = True
    if conv.declined_at is not None and conv.status != "closed":
        said = activity.line(activity.UNDECLINED, reason=conv.declined_reason)
        activity.add_activity(session, conv, said, event="undeclined")
        conv.declined_at = None
        conv.declined_reason = None
        changed = True
    assignee = conv.assignee
    if (
        assignee is not None
        and conv.status != "closed"
        and conv.inbox.setting("return_to_queue_when_away")
        and not notifications.is_online(assignee, at)
    ):
        assignment.assign(
            session,
            conv,
            None,
            reason=activity.line(activity.BACK_TO_QUEUE, name=assignee.name),
        )
        notifications.notify(
            session,
            assignee,
            "returned_to_queue",
            conv,
            text=f"Your conversation with {notifications.isolate(conv.contact.display_name())} "
            "went back to the queue "
            "while you were away",
        )
        assignment.auto_assign(session, conv)
        changed = False  # assign() published the conversation
    if changed:
        events.changed(session, "conversation.updated", conv, ("inbox", conv.inbox_id))


# --------------------------------------------------------------------------- a person replied


def on_agent_replied(conv: Conversation, *, at: datetime, **_) -> None:
    """Receiver of ``signals.agent_replied``: see :func:`human_replied`."""
    human_replied(conv, at)


def human_replied(conv: Conversation, at: datetime) -> None:
    """A person answered (an agent's reply, or one sent from the platform's own inbox):
    breaches answered, the follow-up timer starts, and the conversation is active again."""
    session = object_session(conv)
    inbox = conv.inbox
    follow = inbox.setting("follow_up_reminders") or (
        inbox.setting("follow_up_auto") and inbox.setting("follow_up_message")
    )
    hours_ = inbox.setting("follow_up_hours")
    conv.follow_up_due_at = at + timedelta(hours=float(hours_)) if follow and hours_ else None
    conv.follow_up_done_at = None
    conv.inactive_since = None
    if session is not None and conv.id is not None:
        session.execute(
            sa.update(ResponseBreach)
            .where(ResponseBreach.conversation_id == conv.id, ResponseBreach.answered_at.is_(None))
            .values(answered_at=at)
            .execution_options(synchronize_session=False)
        )


# --------------------------------------------------------------------------- declined


class InvalidDecline(ValueError):
    """A decline request the API refuses (no reason, not declined ...)."""


def decline(session: Session, conv: Conversation, reason: str, by: User | None) -> bool:
    """Decline a conversation with a reason: it is closed and flagged (reversible).

    Declining closes the conversation (it leaves the Open list and its timers stop);
    ``status=declined`` lists it. :func:`undecline` reopens it. The customer writing
    again within the inbox's reopen period reopens it and clears the flag.
    """
    reason = " ".join(str(reason or "").split())
    if not reason:
        raise InvalidDecline("Give a reason for declining.")
    if len(reason) > 300:
        raise InvalidDecline("The reason is longer than 300 characters.")
    if conv.declined_at is not None and conv.declined_reason == reason:
        return False
    at = now()
    conv.declined_at = at
    conv.declined_reason = reason
    who = by.name if by else "Switchboard"
    said = activity.line(activity.DECLINED, who=who, reason=reason)
    if not set_status(session, conv, "closed", by, note=said):
        activity.add_activity(session, conv, said, event="declined")
        events.changed(session, "conversation.updated", conv, ("inbox", conv.inbox_id))
    return True


def undecline(session: Session, conv: Conversation, by: User | None) -> bool:
    """Reverse a decline: the flag is cleared and the conversation is open again."""
    if conv.declined_at is None:
        raise InvalidDecline("This conversation is not declined.")
    reason = conv.declined_reason
    conv.declined_at = None
    conv.declined_reason = None
    who = by.name if by else "Switchboard"
    said = activity.line(activity.REACTIVATED, who=who, reason=reason)
    if not set_status(session, conv, "open", by, note=said):
        activity.add_activity(session, conv, said, event="undeclined")
        events.changed(session, "conversation.updated", conv, ("inbox", conv.inbox_id))
    return True
