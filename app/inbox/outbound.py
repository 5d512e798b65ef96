"""Turning a stored reply into the connector's :class:`OutboundMessage`.

What every channel shares is built here; the few channel details that need
our own data (email threading headers, the SMS status callback URL) come from
the channel's adapter (``Channel.outbound_options``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from app import channels, storage, urls
from app.clock import now
from app.inbox.replies import record_outbound_activity
from app.models import ContactIdentity, Conversation, Inbox, Message, User
from connectors import base as cb


def build(
    session: Session,
    msg: Message,
    conv: Conversation,
    inbox: Inbox,
    options: dict,
    base_url: str,
    config: Mapping[str, Any],
) -> cb.OutboundMessage:
    """The normalised outbound message for ``msg``; same ``reference`` on every retry.

    ``base_url`` is the server's public base URL (:mod:`app.urls`): providers fetch
    attachments and post receipts there. Each attachment's URL is signed with the
    app's ``config`` and expires (:func:`app.urls.public_file_url`).
    """
    ident = session.get(ContactIdentity, conv.identity_id)
    user = session.get(User, msg.sender_user_id) if msg.sender_user_id else None
    channel = channels.get(inbox.channel)
    opts = dict(options)
    opts.update(channel.outbound_options(session, msg, conv, inbox, base_url))
    meta = msg.meta or {}
    for key in ("sent_parts", "maybe_sent_since", "template"):  # earlier attempts, template
        if meta.get(key):
            opts[key] = meta[key]
    attachments = []
    for att in msg.attachments:
        if not att.storage_key:
            continue
        content = None
        if channel.sends_file_bytes:  # inside the message (email), not fetched by URL
            content = storage.path_for(att.storage_key).read_bytes()
        filename = storage.safe_filename(att.filename, f"attachment-{att.id}")
        attachments.append(
            cb.OutboundAttachment(
                filename=filename,
                content_type=att.content_type or "application/octet-stream",
                url=urls.public_file_url(config, base_url, att.id, att.storage_key, filename),
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
        record_outbound_activity(conv, msg, user, now())  # a scheduled reply answers when sent
