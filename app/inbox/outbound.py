"""Turning a stored reply into the connector's :class:`OutboundMessage`.

What every channel shares is built here; the few channel details that need
our own data (email threading headers, the SMS status callback URL) come from
the channel's adapter (``Channel.outbound_options``).
"""

from __future__ import annotations

import os

from flask import current_app, has_request_context, request
from sqlalchemy.orm import Session

from app import channels
from app.inbox import storage
from app.inbox.replies import record_outbound_activity
from app.models import ContactIdentity, Conversation, Inbox, Message, User
from connectors import base as cb


def public_base() -> str:
    """The external base URL: ``PUBLIC_URL``, else the URL this server was last called at.

    Providers fetch attachments and post receipts there, so production sets
    ``PUBLIC_URL``; the embedded default falls back to what requests used.
    """
    configured = current_app.config.get("PUBLIC_URL")
    if configured:
        return configured.rstrip("/")
    if has_request_context():
        return request.host_url.rstrip("/")
    seen = current_app.extensions.get("switchboard_seen_base_url")
    if seen:
        return seen
    return f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"


def remember_base_url() -> None:
    """``before_request`` hook: keep the URL we are called at for the background worker."""
    if "switchboard_seen_base_url" not in current_app.extensions:
        current_app.extensions["switchboard_seen_base_url"] = request.host_url.rstrip("/")


def build(
    session: Session, msg: Message, conv: Conversation, inbox: Inbox, options: dict
) -> cb.OutboundMessage:
    """The normalised outbound message for ``msg``; same ``reference`` on every retry."""
    ident = session.get(ContactIdentity, conv.identity_id)
    user = session.get(User, msg.sender_user_id) if msg.sender_user_id else None
    channel = channels.get(inbox.channel)
    opts = dict(options)
    opts.update(channel.outbound_options(session, msg, conv, inbox, public_base()))
    meta = msg.meta or {}
    for key in ("sent_parts", "maybe_sent_since"):  # what earlier attempts left behind
        if meta.get(key):
            opts[key] = meta[key]
    attachments = []
    base = public_base() if msg.attachments else ""
    for att in msg.attachments:
        if not att.storage_key:
            continue
        content = None
        if channel.sends_file_bytes:  # inside the message (email), not fetched by URL
            content = storage.path_for(att.storage_key).read_bytes()
        attachments.append(
            cb.OutboundAttachment(
                filename=att.filename or "file",
                content_type=att.content_type or "application/octet-stream",
                url=f"{base}/files/{att.id}/{att.storage_key.rsplit('/', 1)[-1]}",
                content=content,
            )
        )
    return cb.OutboundMessage(
        contact_id=ident.external_id,
        text=msg.body,
        reference=msg.reference,
        attachments=tuple(attachments),
        agent_name=user.name if user else None,
        agent_avatar_url=user.avatar_url if user else None,
        subject=opts.get("subject"),
        automated=msg.automated,
        options=opts,
    )


def after_sent(session: Session, msg: Message, conv: Conversation, inbox: Inbox) -> None:
    """Bookkeeping after the provider accepted a reply."""
    if msg.send_after is not None:
        user = session.get(User, msg.sender_user_id) if msg.sender_user_id else None
        record_outbound_activity(conv, msg, user, msg.updated_at or conv.last_activity_at)
