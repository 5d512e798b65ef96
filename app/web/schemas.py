"""API objects the web layer builds from models: conversations, messages and
attachments (also the payloads of the live events: the app factory registers
:func:`conversation_dict` and :func:`message_dict` with :mod:`app.inbox.events`),
and inboxes and users as the API and the admin pages show them.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import current_app, request
from flask_babel import gettext as _

from app import channels, storage, urls
from app.clock import aware, iso, now
from app.extensions import db
from app.inbox import windows
from app.inbox.connect import health
from app.inbox.credentials import public_config
from app.inbox.health import held_reason, incident_dict
from app.inbox.hours import QUIET_GRACE, quiet_hours_state
from app.models import Attachment, Conversation, Inbox, InboxMember, Invite, Message, User
from app.urls import public_base_url


def inbox_dict(inbox: Inbox, with_members: bool = False) -> dict:
    """An inbox for the API: settings and identifiers, never a secret."""
    data = {
        **inbox.ref(),
        "identifiers": public_config(inbox),
        "settings": inbox.effective_settings(),
        "needs_reconnect": inbox.needs_reconnect,
        "last_event_at": inbox.last_event_at.isoformat() if inbox.last_event_at else None,
        "last_error": inbox.last_error,
        "last_error_at": inbox.last_error_at.isoformat() if inbox.last_error_at else None,
        "active": inbox.active,
        "incident": incident_dict(inbox),  # failing now: reason, since (app.inbox.health)
        "attachments": channels.get(inbox.channel).attachment_rules(inbox).to_dict(),
    }
    imap = (inbox.state or {}).get("imap")
    if imap:  # mailbox polling health: last success, retry time
        data["imap"] = {
            k: imap.get(k)
            for k in ("last_ok_at", "last_error", "last_error_at", "failures", "retry_at")
        }
    if with_members:
        data["member_ids"] = list(
            db.session.scalars(
                sa.select(InboxMember.user_id).where(InboxMember.inbox_id == inbox.id)
            )
        )
    return data


def connection_details(inbox: Inbox, with_secrets: bool) -> list[dict]:
    """What to paste into the provider's console for ``inbox`` (its channel adapter says).

    Values that are secrets (verify token, client token, the email inbound URL) are only
    included for admins; others see them as ``None`` with ``secret`` set.
    """
    base = public_base_url(current_app.config, request.host_url)
    return [
        {
            **item.to_dict(with_secrets),
            "label": _(item.label),
            "help": _(item.help) if item.help else "",
        }
        for item in channels.get(inbox.channel).setup(inbox, base)
    ]


def inbox_admin_dict(inbox: Inbox, with_secrets: bool) -> dict:
    """An inbox for the admin pages: settings, members, health and connection details."""
    data = inbox_dict(inbox, with_members=True)
    data["last_error_at"] = iso(inbox.last_error_at)
    data["connection"] = connection_details(inbox, with_secrets)
    data["setup"] = data["connection"]
    data["health"] = health(inbox)
    webhook = data["health"]["webhook"]
    if webhook["waiting"]:
        webhook["waiting"] = _(webhook["waiting"])
    data["config"], data["secrets"] = config_form(inbox)
    return data


def config_form(inbox: Inbox) -> tuple[dict, dict]:
    """The inbox's settings as the edit form shows them: the values of the channel's fields
    that are not secret, and for each secret only whether it is set."""
    try:
        fields = channels.get(inbox.channel).fields
    except KeyError:
        return {}, {}
    config = inbox.config or {}
    values = {f.name: config.get(f.name) for f in fields if not f.secret}
    return values, {f.name: bool(config.get(f.name)) for f in fields if f.secret}


def user_admin_dict(user: User, load: int = 0) -> dict:
    """A user for the admin page."""
    return {
        **user.to_dict(),
        "active": user.active,
        "locale": user.locale,
        "open_assigned": load,
        "last_seen_at": iso(user.last_seen_at),
    }


def conversation_dict(conv: Conversation, at: datetime | None = None) -> dict:
    """The conversation object of ``contract.md``, with both timers."""
    at = at or now()
    inbox = conv.inbox
    window = windows.reply_window(
        inbox.channel, conv.last_inbound_at, bool(inbox.setting("human_agent")), at
    )
    if window.state != "closed" and windows.closed_by_platform(conv.context, conv.last_inbound_at):
        window = windows.platform_closed_state(inbox.channel)
    assignee = conv.assignee
    identity = next((i for i in conv.contact.identities if i.id == conv.identity_id), None)
    return {
        "id": conv.id,
        "inbox": inbox.ref(),
        "contact": conv.contact.ref(),
        "status": conv.status,
        "snooze_until": iso(conv.snooze_until),
        "assignee": {"id": assignee.id, "name": assignee.name} if assignee else None,
        "subject": conv.subject,
        "priority": conv.priority,
        "labels": [label.name for label in conv.labels],  # by name; colours: GET /labels
        "last_message": (
            {
                "direction": conv.last_message_direction,
                "body": conv.last_message_body,
                "created_at": iso(conv.last_message_at),
            }
            if conv.last_message_at
            else None
        ),
        "last_inbound_at": iso(conv.last_inbound_at),
        "last_outbound_at": iso(conv.last_outbound_at),
        "last_activity_at": iso(conv.last_activity_at),
        "waiting_since": iso(conv.waiting_since),
        "unread_count": conv.unread_count,
        "requested_live_agent": conv.requested_live_agent,
        "automated": conv.automated,
        "opted_out": bool(identity and identity.opted_out_at),
        "undeliverable": identity.undeliverable_reason if identity else None,
        "quiet_hours": quiet_hours_dict(conv, identity, at),
        "reply_window": window.to_dict(at),
        "response_due": windows.response_due(conv.response_due_at, at),
        "context": conv.context or {},
        "language": conv.language,
        "created_at": iso(conv.created_at),
        "closed_at": iso(conv.closed_at),
        "declined": (
            {"reason": conv.declined_reason, "at": iso(conv.declined_at)}
            if conv.declined_at
            else None
        ),
        "inactive_since": iso(conv.inactive_since),
        "follow_up_due_at": iso(conv.follow_up_due_at),
        # when this copy was read: of two copies of a conversation, the later one is true
        "as_of": iso(at),
    }


def quiet_hours_dict(conv: Conversation, identity, at: datetime) -> dict | None:
    """Quiet hours in the customer's time zone (SMS), for the composer; None where none apply.

    ``active``: it is quiet hours for the customer now; ``ends_at``: when they
    end (null when not active); ``grace_until``: while active, the end of the
    hour after the customer's last message, until which a reply is still allowed.
    Pure computation on loaded rows: no SQL.
    """
    if not channels.get(conv.inbox.channel).quiet_hours:
        return None
    state = quiet_hours_state(conv, identity, at)
    if state is None:  # quiet hours switched off for the inbox, or no customer number
        return {"active": False, "ends_at": None, "timezone": None, "grace_until": None}
    grace_until = None
    if state["quiet"] and conv.last_inbound_at is not None:
        until = aware(conv.last_inbound_at) + QUIET_GRACE
        if until >= aware(at):
            grace_until = iso(until)
    return {
        "active": state["quiet"],
        "ends_at": iso(state.get("ends_at")),
        "timezone": state["timezone"],
        "grace_until": grace_until,
    }


def attachment_url(attachment_id: int) -> str:
    """The API path of an attachment's bytes, the same in a request, the worker and jobs."""
    return urls.attachment_path(current_app.config, attachment_id)


def attachment_dict(att: Attachment) -> dict:
    """An attachment, with the URL logged-in users fetch it from."""
    return {
        "id": att.id,
        "kind": att.kind,
        # cleaned again: rows stored before filenames lost their bidi and format characters
        "filename": storage.safe_filename(att.filename, default="") or None,
        "content_type": att.content_type,
        "inline": storage.is_inline_type(att.content_type)
        or (not att.content_type and att.kind in ("image", "video", "audio")),
        "size": att.size,
        "state": att.state,
        "error": att.error,
        "content_id": att.content_id,
        "url": attachment_url(att.id) if att.storage_key else None,
        "extra": att.extra or {},
    }


def display_html(msg: Message) -> str | None:
    """The message's sanitised HTML with ``cid:`` images pointing at our attachment URLs.

    The HTML was sanitised when it arrived (remote images parked in ``data-src``);
    inline images are served to logged-in users only, from ``/api/v1/attachments/<id>``.
    Uses the selectin-loaded attachments: no extra SQL.
    """
    html = msg.html
    if not html or "cid:" not in html:
        return html
    from connectors.email.sanitize import sanitize_html

    cid_map = {
        a.content_id: attachment_url(a.id)
        for a in msg.attachments
        if a.content_id and a.storage_key
    }
    return sanitize_html(html, cid_map=cid_map)


_INTERNAL_META = {"kind", "held", "answered_waiting_since"}  # shown otherwise, or not at all


def _quoted(msg: Message, ref) -> dict | None:
    """The message ``msg`` replies to (the platform's id of it), as the thread quotes it:
    ``{id, direction, body}``, with ``id`` null when it is not stored here."""
    if not ref or not isinstance(ref, str):
        return None
    row = db.session.execute(
        sa.select(Message.id, Message.direction, Message.body)
        .where(Message.conversation_id == msg.conversation_id, Message.provider_id == ref)
        .limit(1)
    ).first()
    if row is None:
        return {"id": None, "direction": None, "body": None}
    return {"id": row.id, "direction": row.direction, "body": (row.body or "")[:200]}


def message_dict(msg: Message) -> dict:
    """The message object of ``contract.md``.

    ``status_reason``: why a queued reply waits (``{code, text}``, see
    :mod:`app.inbox.health`), or null. Email messages also carry ``original``: the raw ``.eml`` as received
    (``{id, url, size}``, or null), kept apart from the files in ``attachments``.
    """
    if msg.direction == "inbound":
        sender = {"type": "contact", "name": msg.sender_name}
    elif msg.sender_user_id:
        sender = {"type": "user", "id": msg.sender_user_id, "name": msg.sender_name}
    else:
        sender = {"type": "system", "name": msg.sender_name}
    meta = msg.meta or {}
    return {
        "id": msg.id,
        "conversation_id": msg.conversation_id,
        "direction": msg.direction,
        "body": msg.body,
        "html": display_html(msg),
        "has_full_body": bool(msg.full_body),
        "sender": sender,
        "status": msg.status,
        "status_reason": held_reason(msg),
        "error": {"code": msg.error_code, "message": msg.error_message} if msg.error_code else None,
        "attachments": [attachment_dict(a) for a in msg.attachments if a.kind != "original"],
        "original": next(
            (
                {"id": a.id, "url": attachment_url(a.id), "size": a.size}
                for a in msg.attachments
                if a.kind == "original" and a.storage_key
            ),
            None,
        ),
        "automated": msg.automated,
        "language": msg.language,
        "kind": meta.get("kind", "message"),
        "reply_to": _quoted(msg, meta.get("reply_to")),
        "meta": {k: v for k, v in meta.items() if k not in _INTERNAL_META},
        "platform_at": iso(msg.platform_at),
        "send_after": iso(msg.send_after),
        "client_id": msg.client_id,
        "created_at": iso(msg.created_at),
    }


def invite_dict(invite: Invite, mail_on: bool, at) -> dict:
    """A pending invitation for admins: who, which role, until when, whether it was mailed.

    Never its link or the link's hash (the link is in the answer that made it, and only
    when there is no mail to send it with).
    """
    if not mail_on:
        mail = "off"  # the admin hands the link over
    elif invite.mailed_at is not None:
        mail = "sent"
    elif invite.mail_error:
        mail = "failing"  # retried by the worker
    else:
        mail = "queued"
    by = db.session.get(User, invite.invited_by_id) if invite.invited_by_id else None
    return {
        "id": invite.id,
        "email": invite.email,
        "name": invite.name,
        "role": invite.role,
        "invited_by": {"id": by.id, "name": by.name} if by is not None else None,
        "created_at": iso(invite.created_at),
        "sent_at": iso(invite.sent_at),
        "expires_at": iso(invite.expires_at),
        "expired": invite.expired(at),
        "mail": mail,
        "mail_error": invite.mail_error if mail == "failing" else None,
        "mailed_at": iso(invite.mailed_at),
    }


def contact_summary(contact) -> dict:
    """A contact in search results, suggestions and merge previews (``ref`` plus its details)."""
    return {**contact.ref(), "created_at": iso(contact.created_at)}


def contact_dict(contact, convs: list[Conversation], at: datetime | None = None) -> dict:
    """The contact object: details, identities (with their inbox), conversations the user sees."""
    names = {c.inbox.id: c.inbox.name for c in convs}
    missing = {i.inbox_id for i in contact.identities} - set(names)
    if missing:
        names.update(
            db.session.execute(
                sa.select(Inbox.id, Inbox.name).where(Inbox.id.in_(missing))
            ).tuples()
        )
    return {
        **contact_summary(contact),
        "has_name": bool(contact.name),
        "notes": contact.notes,
        "attributes": contact.attributes or {},
        "erased_at": iso(contact.erased_at),
        "identities": [
            {**i.to_dict(), "inbox_name": names.get(i.inbox_id)} for i in contact.identities
        ],
        "conversations": [conversation_dict(c, at) for c in convs],
    }
