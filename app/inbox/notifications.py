"""Notifications: in-app list with live delivery, desktop flag, and email when offline.

Each user chooses per kind (``user.settings["notifications"]``) whether it shows
in the app, whether the browser may raise a desktop notification for it (the
``desktop`` flag of the ``notification.created`` payload), and whether it is
mailed when they are not online. Mail goes through the instance's SMTP server
(``NOTIFY_SMTP_URL``, ``NOTIFY_FROM``), from the background worker only: the
notification queues an outbox row (``notify_email``) due ``NOTIFY_EMAIL_DELAY``
seconds later, and the worker (:mod:`app.runtime.notify_mail`) writes and mails
it only if it is still unread and the user is still not online. Whether mail is
on and its delay are the process's settings: ``create_app`` tells this module
where to read them (:func:`use_mail_settings`). No Flask here.

A ``dedupe_key`` makes a notification happen once: it is inserted with
``ON CONFLICT DO NOTHING``, so two schedulers racing store (and push) it once.
A kind switched off in the app but on by email is stored as already read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import aware, now
from app.db import insert_ignore_many
from app.inbox import events, health
from app.models import Conversation, Inbox, InboxMember, Notification, OutboxItem, User

#: kind -> (label, defaults {in_app, desktop, email})
KINDS: dict[str, tuple[str, dict[str, bool]]] = {
    "assigned": (
        "A conversation is assigned to me",
        {"in_app": True, "desktop": True, "email": True},
    ),
    "mention": (
        "A teammate mentions me in a private note",
        {"in_app": True, "desktop": True, "email": True},
    ),
    # to the inbox's members while nobody has it (the assignee gets "assigned" instead)
    "new_conversation": (
        "A new conversation arrives unassigned in my inboxes",
        {"in_app": True, "desktop": True, "email": False},
    ),
    "window_closing": (
        "A reply window is about to close",
        {"in_app": True, "desktop": True, "email": False},
    ),
    "response_due_soon": (
        "A response target is near",
        {"in_app": True, "desktop": True, "email": False},
    ),
    "response_overdue": (
        "A response target was missed",
        {"in_app": True, "desktop": True, "email": True},
    ),
    "follow_up": (
        "A customer has not answered since our reply",
        {"in_app": True, "desktop": False, "email": False},
    ),
    "returned_to_queue": (
        "My conversation went back to the queue while I was away",
        {"in_app": True, "desktop": False, "email": False},
    ),
    "inbox_failing": (
        "An inbox stopped working (admins)",
        {"in_app": True, "desktop": True, "email": True},
    ),
    "inbox_recovered": (
        "A failing inbox works again (admins)",
        {"in_app": True, "desktop": False, "email": False},
    ),
    "client_secret_expiring": (
        "A sign-in app's client secret expires soon (admins)",
        {"in_app": True, "desktop": True, "email": True},
    ),
}
CHANNELS = ("in_app", "desktop", "email")


class InvalidSettings(ValueError):
    """Notification settings the API cannot store."""


@dataclass(frozen=True)
class MailSettings:
    """The process's notification mail: on (an SMTP server is set) and how long it waits."""

    enabled: bool = False
    delay: float = 120.0  # seconds from the notification to the mail


_mail_settings: Callable[[], MailSettings] = MailSettings  # no server until told otherwise


def isolate(name: str) -> str:
    """A user-written name inside a plain-text sentence, its direction kept apart.

    First-strong isolate ... pop directional isolate: an Arabic name in an English
    sentence (or the reverse) neither reorders nor drags the words around it. The
    bell turns each isolated part into a ``<bdi>``; desktop notifications and mail
    bodies keep the characters, which render as nothing.
    """
    return f"\u2068{name}\u2069"


def use_mail_settings(source: Callable[[], MailSettings]) -> None:
    """Read the mail settings from ``source()`` at each notification (``create_app`` sets it)."""
    global _mail_settings
    _mail_settings = source


# --------------------------------------------------------------------------- settings


def user_settings(user: User) -> dict[str, dict[str, bool]]:
    """Every kind with the user's choices, defaults filled in."""
    return {kind: kind_settings(user, kind) for kind in KINDS}


def kind_settings(user: User, kind: str) -> dict[str, bool]:
    """The user's choices for one kind, defaults filled in (a kind we do not know: the bell)."""
    if kind not in KINDS:
        return {"in_app": True, "desktop": False, "email": False}
    saved = (user.settings or {}).get("notifications") or {}
    mine = saved.get(kind) if isinstance(saved.get(kind), dict) else {}
    defaults = KINDS[kind][1]
    return {ch: bool(mine.get(ch, defaults[ch])) for ch in CHANNELS}


def settings_dict(user: User) -> dict:
    """The API object of ``GET /api/v1/me/notification-settings``."""
    prefs = user_settings(user)
    return {
        "kinds": [
            {"kind": kind, "label": label, **prefs[kind]} for kind, (label, _d) in KINDS.items()
        ],
        "email": {"address": user.email, "available": email_enabled()},
    }


def update_settings(user: User, data: dict) -> None:
    """Apply ``{"kinds": {kind: {in_app, desktop, email}}}`` (or the kinds at top level)."""
    changes = data.get("kinds", data)
    if isinstance(changes, list):  # the GET shape sent back
        changes = {c.get("kind"): c for c in changes if isinstance(c, dict)}
    if not isinstance(changes, dict):
        raise InvalidSettings('send {"kinds": {"assigned": {"email": false}, ...}}')
    prefs = user_settings(user)
    for kind, values in changes.items():
        if kind not in KINDS:
            raise InvalidSettings(f"unknown notification kind {kind}")
        if not isinstance(values, dict):
            raise InvalidSettings(f"{kind} must be an object of in_app, desktop, email")
        for channel, value in values.items():
            if channel in ("kind", "label"):
                continue
            if channel not in CHANNELS or not isinstance(value, bool):
                raise InvalidSettings(
                    f"{kind}.{channel}: use in_app, desktop, email with true/false"
                )
            prefs[kind][channel] = value
    user.settings = {**(user.settings or {}), "notifications": prefs}


# --------------------------------------------------------------------------- presence


def is_online(user: User, at: datetime | None = None) -> bool:
    """Live presence: availability ``online`` and a browser heartbeat not yet expired."""
    at = at or now()
    return (
        user.active
        and user.availability == "online"
        and user.online_until is not None
        and aware(user.online_until) > at
    )


def email_enabled() -> bool:
    """True when the instance has an SMTP server for notification mail."""
    return _mail_settings().enabled


# --------------------------------------------------------------------------- who


def inbox_members(session: Session, inbox_id: int) -> list[User]:
    """Active members of an inbox."""
    return list(
        session.scalars(
            sa.select(User)
            .join(InboxMember, InboxMember.user_id == User.id)
            .where(InboxMember.inbox_id == inbox_id, User.active.is_(True))
            .order_by(User.id)
        )
    )


def inbox_leads(session: Session, inbox_id: int) -> list[User]:
    """Leads and admins who are members of the inbox, or every lead and admin when none is."""
    members = [u for u in inbox_members(session, inbox_id) if u.is_lead]
    if members:
        return members
    return list(
        session.scalars(
            sa.select(User)
            .where(User.role.in_(("lead", "admin")), User.active.is_(True))
            .order_by(User.id)
        )
    )


def admins(session: Session) -> list[User]:
    """Every active admin."""
    return list(
        session.scalars(
            sa.select(User).where(User.role == "admin", User.active.is_(True)).order_by(User.id)
        )
    )


def assignee_or_members(session: Session, conv: Conversation) -> list[User]:
    """The assignee; when unassigned, the inbox's members (leads when it has none)."""
    if conv.assignee is not None and conv.assignee.active:
        return [conv.assignee]
    return inbox_members(session, conv.inbox_id) or inbox_leads(session, conv.inbox_id)


# --------------------------------------------------------------------------- notify


def notify(
    session: Session,
    user: User,
    kind: str,
    conv: Conversation | None,
    *,
    dedupe_key: str | None = None,
    at: datetime | None = None,
    **data,
) -> int | None:
    """Store a notification for ``user`` (once per ``dedupe_key``) and push it live.

    Returns the new notification's id, or None when the user switched this kind off
    everywhere or it was already stored.
    """
    ids = _store(session, [(user, dedupe_key)], kind, conv, at or now(), data)
    return ids[0] if ids else None


def notify_many(
    session: Session,
    users: list[User],
    kind: str,
    conv: Conversation | None,
    key: str | None,
    **data,
) -> int:
    """Notify each user once (``key`` + user id as the dedupe key); returns how many were stored."""
    wanted = [
        (user, f"{key}:u{user.id}" if key else None) for user in {u.id: u for u in users}.values()
    ]
    return len(_store(session, wanted, kind, conv, now(), data))


def _store(
    session: Session,
    wanted: list[tuple[User, str | None]],
    kind: str,
    conv: Conversation | None,
    at: datetime,
    data: dict,
) -> list[int]:
    """Store one notification per ``(user, dedupe key)`` the user wants, in one statement
    (a new conversation tells every member of its inbox), and push each live; the new ids."""
    mail = _mail_settings()
    conv_id = conv.id if conv is not None else None
    rows, wants = [], {}
    for user, dedupe_key in wanted:
        prefs = kind_settings(user, kind)
        wants_email = prefs["email"] and mail.enabled and bool(user.email)
        if not prefs["in_app"] and not wants_email:
            continue
        wants[user.id] = (prefs, wants_email)
        rows.append(
            {
                "user_id": user.id,
                "kind": kind,
                "conversation_id": conv_id,
                "dedupe_key": dedupe_key[:120] if dedupe_key else None,
                "data": data,
                "created_at": at,
                "read_at": None if prefs["in_app"] else at,
            }
        )
    stored = insert_ignore_many(session, Notification, rows, ["dedupe_key"], "user_id")
    for note_id, user_id in sorted(stored):
        prefs, wants_email = wants[user_id]
        if prefs["in_app"]:  # stored unread
            note = Notification.as_object(note_id, kind, conv_id, data, at, None)
            payload = {**note, "desktop": prefs["desktop"]}
            events.publish(session, "notification.created", payload, ("user", user_id))
        if wants_email:
            session.add(
                OutboxItem(
                    kind="notify_email",
                    payload={"notification_id": note_id},
                    next_attempt_at=at + timedelta(seconds=mail.delay),
                )
            )
    return [note_id for note_id, _user in stored]


def on_assigned(
    conv: Conversation, *, session: Session, assignee: User | None, by: User | None, **_
) -> None:
    """Receiver of ``signals.assigned``: tell the new assignee, unless they took it themselves."""
    if assignee is None or (by is not None and by.id == assignee.id):
        return
    user = session.get(User, assignee.id)
    if user is None:
        return
    who = by.name if by else "Automatic assignment"
    notify(
        session,
        user,
        "assigned",
        conv,
        by=who,
        text=f"{isolate(who)} assigned you the conversation with "
        f"{isolate(conv.contact.display_name())}",
    )


def on_customer_wrote(
    inbox: Inbox, *, session: Session, conversations: list[Conversation], created: set[int], **_
) -> None:
    """Receiver of ``signals.customer_wrote``: tell the inbox of each new unassigned conversation.

    Only conversations a person started (ingest leaves machines' messages out of the
    signal) and still unassigned once automatic assignment ran: the inbox's members
    (its leads, or every lead, when it has none) may take it. An assigned one tells
    its assignee through ``assigned``; nobody else needs to hear of it.
    """
    new = [c for c in conversations if c.id in created and c.assignee_id is None]
    if not new:
        return
    users = inbox_members(session, inbox.id) or inbox_leads(session, inbox.id)
    for conv in new:
        notify_many(
            session,
            users,
            "new_conversation",
            conv,
            f"new:{conv.id}",
            text=f"New conversation with {isolate(conv.contact.display_name())} in "
            f"{isolate(inbox.name)}",
        )


def on_inbox_failing(inbox: Inbox, *, session: Session, incident: dict, **_) -> None:
    """Receiver of ``signals.inbox_failing``: tell the admins, once per incident."""
    title = health.REASONS.get(incident["reason"], incident["reason"])
    detail = f" ({incident['message']})" if incident.get("message") else ""
    notify_many(
        session,
        admins(session),
        "inbox_failing",
        None,
        f"inbox_failing:{inbox.id}:{incident['number']}",
        inbox_id=inbox.id,
        inbox_name=inbox.name,
        reason=incident["reason"],
        url=f"/admin/inboxes/{inbox.id}#reconnect",
        text=f"{isolate(inbox.name)} stopped working: {title}{detail}",
    )


def on_inbox_recovered(inbox: Inbox, *, session: Session, incident: dict, **_) -> None:
    """Receiver of ``signals.inbox_recovered``: tell the admins the incident is over."""
    notify_many(
        session,
        admins(session),
        "inbox_recovered",
        None,
        f"inbox_recovered:{inbox.id}:{incident['number']}",
        inbox_id=inbox.id,
        inbox_name=inbox.name,
        url=f"/admin/inboxes/{inbox.id}",
        text=f"{isolate(inbox.name)} works again",
    )


def stamp(dt: datetime) -> int:
    """A compact time for dedupe keys (whole seconds since the epoch)."""
    return int(aware(dt).timestamp())
