"""API objects for conversations and messages (also the live event payloads)."""

from __future__ import annotations

from datetime import datetime

from flask import url_for

from app.clock import iso, now
from app.inbox import windows
from app.models import Attachment, Conversation, Message


def conversation_dict(conv: Conversation, at: datetime | None = None) -> dict:
    """The conversation object of ``contract.md``, with both timers."""
    at = at or now()
    inbox = conv.inbox
    window = windows.reply_window(
        inbox.channel, conv.last_inbound_at, bool(inbox.setting("human_agent")), at
    )
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
        "opted_out": bool(identity and identity.opted_out_at),
        "undeliverable": identity.undeliverable_reason if identity else None,
        "reply_window": window.to_dict(at),
        "response_due": windows.response_due(conv.response_due_at, at),
        "context": conv.context or {},
        "created_at": iso(conv.created_at),
        "closed_at": iso(conv.closed_at),
    }


def attachment_dict(att: Attachment) -> dict:
    """An attachment, with the URL logged-in users fetch it from."""
    return {
        "id": att.id,
        "kind": att.kind,
        "filename": att.filename,
        "content_type": att.content_type,
        "size": att.size,
        "state": att.state,
        "error": att.error,
        "content_id": att.content_id,
        "url": url_for("api.attachment_file", attachment_id=att.id) if att.storage_key else None,
        "extra": att.extra or {},
    }


def message_dict(msg: Message) -> dict:
    """The message object of ``contract.md``."""
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
        "html": msg.html,
        "has_full_body": bool(msg.full_body),
        "sender": sender,
        "status": msg.status,
        "error": {"code": msg.error_code, "message": msg.error_message} if msg.error_code else None,
        "attachments": [attachment_dict(a) for a in msg.attachments],
        "automated": msg.automated,
        "kind": meta.get("kind", "message"),
        "meta": {k: v for k, v in meta.items() if k != "kind"},
        "platform_at": iso(msg.platform_at),
        "send_after": iso(msg.send_after),
        "client_id": msg.client_id,
        "created_at": iso(msg.created_at),
    }
