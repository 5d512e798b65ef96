"""Inbox health: an incident opens when an inbox starts failing and closes when it works again.

Who reports what:

- the outbox worker: the provider refused the inbox's credentials (a send answered
  "auth failed", a token expired: the inbox is paused until reconnected), or replies keep
  failing (:data:`SEND_FAILURES` attempts in a row);
- the IMAP poll: the mail server refused the login (at once), or the mailbox could not be
  read :data:`IMAP_FAILURES` polls in a row;
- the silence job (``app.runtime.jobs.health``): a busy inbox received nothing for its
  ``silence_alert_hours``.

An inbox has at most one incident at a time, kept in ``inbox.state["incident"]``::

    {"number": 3, "reason": "auth_refused", "source": "send",
     "message": "SMTP server: (535, b'5.7.8 Authentication failed')", "since": "...Z"}

:func:`inbox_failing` opens it (once: a second failure while it is open changes nothing),
logs a warning with the inbox id and the reason, publishes ``inbox.updated`` and sends
:data:`app.inbox.signals.inbox_failing` (admins are notified: once per incident, its
``number`` is the notification's dedupe key). :func:`inbox_recovered` closes it when the
source that opened it works again (a send or a poll succeeds), or whatever opened it when
the credentials are replaced (:func:`app.inbox.credentials.reconnect`).

A reply that cannot go out because its inbox is paused is *held*
(:func:`hold_reply`): the message says why (``status_reason``) and it no longer
counts as an answer, so the conversation waits (and its response target shows)
until the reply really goes out (:func:`release_reply`). No Flask here.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import aware, iso, now
from app.inbox import events, signals, windows
from app.models import Conversation, Inbox, Message, ResponseBreach, User

log = logging.getLogger(__name__)

SEND_FAILURES = 3  # attempts of one reply failing for a passing reason before it is an incident
IMAP_FAILURES = 3  # polls in a row that could not read the mailbox (a refused login: at once)

#: reason -> what the banner and the notification say (the browser translates it)
REASONS: dict[str, str] = {
    "auth_refused": "The provider refused the inbox's credentials: it needs reconnecting",
    "sending_failing": "Replies from this inbox keep failing",
    "login_refused": "The mail server refused the login",
    "mailbox_failing": "The mailbox cannot be read",
    "silent": "Nothing received for a long time on a busy inbox",
}

#: why a queued reply is held -> what the message says
HELD = {"inbox_needs_reconnect": "Waiting: the inbox needs reconnecting"}


# --------------------------------------------------------------------------- incidents


def incident(inbox: Inbox) -> dict | None:
    """The inbox's open incident, or None."""
    found = (inbox.state or {}).get("incident")
    return dict(found) if isinstance(found, dict) else None


def incident_dict(inbox: Inbox) -> dict | None:
    """The API's ``incident`` of an inbox object: ``{reason, title, message, since, source}``."""
    found = incident(inbox)
    if found is None:
        return None
    reason = found.get("reason") or "sending_failing"
    return {
        "reason": reason,
        "title": REASONS.get(reason, reason),
        "message": found.get("message"),
        "since": found.get("since"),
        "source": found.get("source"),
    }


def inbox_failing(
    session: Session,
    inbox: Inbox,
    reason: str,
    message: str | None = None,
    *,
    source: str,
    at: datetime | None = None,
) -> bool:
    """Open an incident on ``inbox`` unless one is open; True when this call opened it.

    ``source`` (``send``, ``imap``, ``silence``) is what closes it again. While one is
    open, a new reason from the same source replaces the shown one (nobody is told again).
    """
    found = incident(inbox)
    state = dict(inbox.state or {})
    if found is not None:
        if found.get("source") == source and found.get("reason") != reason:
            found.update(reason=reason, message=(message or "")[:500] or None)
            inbox.state = {**state, "incident": found}
            events.publish(session, "inbox.updated", {"id": inbox.id}, ("inbox", inbox.id))
        return False
    at = at or now()
    number = int(state.get("incidents") or 0) + 1
    found = {
        "number": number,
        "reason": reason,
        "source": source,
        "message": (message or "")[:500] or None,
        "since": iso(at),
    }
    inbox.state = {**state, "incidents": number, "incident": found}  # a new dict: JSON sees it
    log.warning(
        "inbox %s (%s) is failing: %s%s",
        inbox.id,
        inbox.channel,
        reason,
        f": {message}" if message else "",
    )
    events.publish(session, "inbox.updated", {"id": inbox.id}, ("inbox", inbox.id))
    signals.inbox_failing.send(inbox, session=session, incident=found)
    return True


def inbox_recovered(session: Session, inbox: Inbox, source: str | None = None) -> bool:
    """Close the inbox's incident (only one opened by ``source``, when given); True if closed."""
    found = incident(inbox)
    if found is None or (source is not None and found.get("source") != source):
        return False
    state = dict(inbox.state or {})
    state.pop("incident", None)
    inbox.state = state
    log.info("inbox %s (%s) works again after %s", inbox.id, inbox.channel, found.get("reason"))
    events.publish(session, "inbox.updated", {"id": inbox.id}, ("inbox", inbox.id))
    signals.inbox_recovered.send(inbox, session=session, incident=found)
    return True


# --------------------------------------------------------------------------- held replies


def held_reason(msg: Message) -> dict | None:
    """The message object's ``status_reason``: why a queued reply waits, or None."""
    code = (msg.meta or {}).get("held")
    if msg.status != "queued" or code not in HELD:
        return None
    return {"code": code, "text": HELD[code]}


def answered_waiting(msg: Message, conv: Conversation) -> None:
    """Remember, on a reply being queued, what it answers (:func:`hold_reply` may undo it)."""
    if conv.waiting_since is not None:
        msg.meta = {**(msg.meta or {}), "answered_waiting_since": iso(conv.waiting_since)}


def hold_reply(
    session: Session, msg: Message, conv: Conversation, reason: str = "inbox_needs_reconnect"
) -> bool:
    """The reply cannot go out until its inbox works again: say so on it, and the customer
    is not answered yet (the wait and its response target come back). True when it changed.

    The caller publishes the message and conversation events.
    """
    meta = dict(msg.meta or {})
    if meta.get("held") == reason:
        return False
    meta["held"] = reason
    msg.meta = meta
    answered = meta.get("answered_waiting_since")
    if answered:
        since = aware(datetime.fromisoformat(str(answered).replace("Z", "+00:00")))
        if conv.waiting_since is None or since < aware(conv.waiting_since):
            conv.waiting_since = since
        conv.follow_up_due_at = None  # nothing went out to follow up on
        windows.refresh_timers(conv, conv.inbox)
        if conv.id is not None and conv.response_due_at is not None:
            session.execute(  # a target missed before the reply is missed still
                sa.update(ResponseBreach)
                .where(
                    ResponseBreach.conversation_id == conv.id,
                    ResponseBreach.due_at == conv.response_due_at,
                )
                .values(answered_at=None)
                .execution_options(synchronize_session=False)
            )
        signals.reply_held.send(conv, session=session, message=msg)
    return True


def release_reply(session: Session, msg: Message, conv: Conversation, at: datetime) -> None:
    """A held reply went out: it answers what waited before it was written."""
    meta = dict(msg.meta or {})
    if "held" not in meta:
        return
    meta.pop("held")
    msg.meta = meta
    if not meta.get("answered_waiting_since") or conv.waiting_since is None:
        return
    if aware(conv.waiting_since) > aware(msg.created_at):
        return  # only what the customer wrote after it waits, as before
    later = session.scalar(
        sa.select(sa.func.min(sa.func.coalesce(Message.platform_at, Message.created_at))).where(
            Message.conversation_id == conv.id,
            Message.direction == "inbound",
            Message.automated.is_(False),
            Message.created_at > msg.created_at,
        )
    )
    conv.waiting_since = aware(later) if later is not None else None
    windows.refresh_timers(conv, conv.inbox)
    by = session.get(User, msg.sender_user_id) if msg.sender_user_id else None
    signals.agent_replied.send(conv, at=at, by=by)  # breaches answered, follow-up timer
