"""Data-protection requests about a contact: export everything stored, or erase it.

An export is the contact, its identities, every conversation (in every inbox) with
its messages and the metadata of their attachments, and the audit trail. An erasure
deletes the messages (their attachment rows and outbox rows go with them), the
identities and the contact's details; the conversations stay, closed and emptied,
under a contact shown as "Erased contact", so reports keep their counts. Files on
disk are removed by the caller once the erasure is committed (:func:`erase` returns
their storage keys). Both write an audit line. No Flask here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import iso, now
from app.inbox import activity, conversations, events, windows
from app.inbox.activity import add_activity
from app.inbox.audit import lines, record
from app.models import (
    Attachment,
    Contact,
    ContactIdentity,
    Conversation,
    Message,
    Notification,
    User,
)

FORMAT = "switchboard.contact-export/1"


def _attachment(att: Attachment) -> dict:
    return {
        "id": att.id,
        "kind": att.kind,
        "filename": att.filename,
        "content_type": att.content_type,
        "size": att.size,
        "state": att.state,
        "source_url": att.source_url,
        "created_at": iso(att.created_at),
    }


def _message(msg: Message) -> dict:
    return {
        "id": msg.id,
        "direction": msg.direction,
        "body": msg.body,
        "full_body": msg.full_body,
        "html": msg.html,
        "sender_name": msg.sender_name,
        "sender_user_id": msg.sender_user_id,
        "status": msg.status,
        "error": {"code": msg.error_code, "message": msg.error_message} if msg.error_code else None,
        "provider_id": msg.provider_id,
        "automated": msg.automated,
        "meta": msg.meta or {},
        "platform_at": iso(msg.platform_at),
        "created_at": iso(msg.created_at),
        "attachments": [_attachment(a) for a in msg.attachments],
    }


def export(session: Session, contact: Contact, user: User) -> dict:
    """Everything stored about ``contact``, as one JSON-ready object; writes an audit line."""
    convs = list(
        session.scalars(
            sa.select(Conversation)
            .where(Conversation.contact_id == contact.id)
            .order_by(Conversation.id)
        ).unique()
    )
    messages: dict[int, list[Message]] = {c.id: [] for c in convs}
    if convs:
        for msg in session.scalars(
            sa.select(Message)
            .where(Message.conversation_id.in_(list(messages)))
            .order_by(Message.conversation_id, Message.id)
        ):
            messages[msg.conversation_id].append(msg)
    n_messages = sum(len(v) for v in messages.values())
    record(
        session,
        "contact.export",
        contact.id,
        user,
        conversations=len(convs),
        messages=n_messages,
    )
    session.flush()
    return {
        "format": FORMAT,
        "exported_at": iso(now()),
        "exported_by": {"id": user.id, "name": user.name},
        "contact": {
            "id": contact.id,
            "name": contact.name,
            "email": contact.email,
            "phone": contact.phone,
            "notes": contact.notes,
            "attributes": contact.attributes or {},
            "avatar_url": contact.avatar_url,
            "locale": contact.locale,
            "timezone": contact.timezone,
            "created_at": iso(contact.created_at),
            "erased_at": iso(contact.erased_at),
        },
        "identities": [
            {
                "id": i.id,
                "inbox_id": i.inbox_id,
                "channel": i.channel,
                "external_id": i.external_id,
                "opted_out_at": iso(i.opted_out_at),
                "undeliverable_reason": i.undeliverable_reason,
                "data": i.data or {},
                "created_at": iso(i.created_at),
            }
            for i in contact.identities
        ],
        "conversations": [
            {
                "id": c.id,
                "inbox": c.inbox.ref(),
                "status": c.status,
                "subject": c.subject,
                "assignee": {"id": c.assignee.id, "name": c.assignee.name} if c.assignee else None,
                "context": c.context or {},
                "created_at": iso(c.created_at),
                "closed_at": iso(c.closed_at),
                "messages": [_message(m) for m in messages[c.id]],
            }
            for c in convs
        ],
        "audit": [line.to_dict() for line in lines(session, contact.id)],
    }


@dataclass
class Erased:
    """What an erasure removed; ``storage_keys`` are the files to delete after commit."""

    conversations: list[Conversation] = field(default_factory=list)
    messages: int = 0
    attachments: int = 0
    identities: int = 0
    storage_keys: list[str] = field(default_factory=list)


def erase(session: Session, contact: Contact, user: User) -> Erased:
    """Erase the contact's messages, attachments, identities and details (see the module)."""
    if contact.erased_at is not None:
        return Erased()
    out = Erased()
    convs = list(
        session.scalars(
            sa.select(Conversation).where(Conversation.contact_id == contact.id)
        ).unique()
    )
    conv_ids = [c.id for c in convs]
    in_convs = Message.conversation_id.in_(conv_ids)
    if conv_ids:
        rows = session.execute(
            sa.select(Attachment.id, Attachment.storage_key)
            .join(Message, Message.id == Attachment.message_id)
            .where(in_convs)
        ).all()
        out.attachments = len(rows)
        out.storage_keys = [key for _id, key in rows if key]
        out.messages = session.scalar(sa.select(sa.func.count(Message.id)).where(in_convs)) or 0
        # attachments and outbox rows go with their messages (ON DELETE CASCADE)
        session.execute(
            sa.delete(Attachment).where(
                Attachment.message_id.in_(sa.select(Message.id).where(in_convs))
            )
        )
        session.execute(
            sa.delete(Message).where(in_convs).execution_options(synchronize_session=False)
        )
        session.execute(
            sa.delete(Notification)
            .where(Notification.conversation_id.in_(conv_ids))
            .execution_options(synchronize_session=False)
        )
    out.identities = len(contact.identities)
    session.execute(
        sa.update(Conversation)
        .where(Conversation.contact_id == contact.id)
        .values(identity_id=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        sa.delete(ContactIdentity)
        .where(ContactIdentity.contact_id == contact.id)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    contact = session.get(Contact, contact.id)
    for name in ("name", "email", "phone", "notes", "avatar_url", "locale", "timezone"):
        setattr(contact, name, None)
    contact.attributes = {}
    contact.erased_at = now()
    said = activity.line(activity.CONTACT_ERASED, who=user.name)
    for conv in session.scalars(
        sa.select(Conversation).where(Conversation.id.in_(conv_ids))
    ).unique():
        conv.subject = None
        conv.context = {}
        conv.declined_reason = None
        conv.last_message_direction = conv.last_message_body = conv.last_message_at = None
        conv.unread_count = 0
        conv.waiting_since = None
        conv.requested_live_agent = False
        windows.refresh_timers(conv, conv.inbox)
        if not conversations.set_status(session, conv, "closed", user, note=said):
            add_activity(session, conv, said, event="contact_erased")
        events.changed(session, "conversation.updated", conv, ("inbox", conv.inbox_id))
        out.conversations.append(conv)
    record(
        session,
        "contact.erase",
        contact.id,
        user,
        conversations=len(conv_ids),
        messages=out.messages,
        attachments=out.attachments,
        identities=out.identities,
    )
    session.flush()
    return out
