"""Turning a stored reply into the connector's :class:`OutboundMessage`.

What every channel shares is built here; the few channel details that need
the database (email threading headers, the SMS status callback URL) are small
functions in ``_OPTIONS``.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from flask import current_app, url_for
from sqlalchemy.orm import Session

from app.inbox import storage
from app.models import ContactIdentity, Conversation, Inbox, Message, User
from connectors import base as cb


def public_base() -> str:
    """The external base URL (``PUBLIC_URL``), else this server's own URL."""
    configured = current_app.config.get("PUBLIC_URL")
    if configured:
        return configured.rstrip("/")
    return url_for("pages.index", _external=True).rstrip("/")


def _email_options(session: Session, msg: Message, conv: Conversation, inbox: Inbox) -> dict:
    """Threading headers: Message-ID on our domain, In-Reply-To, References, Reply-To."""
    from connectors.email import threads

    address = inbox.config.get("address", "")
    domain = address.rsplit("@", 1)[-1] if "@" in address else "switchboard.local"
    last_in = session.scalars(
        sa.select(Message)
        .where(Message.conversation_id == conv.id, Message.direction == "inbound",
               Message.provider_id.is_not(None))
        .order_by(Message.id.desc())
        .limit(1)
    ).first()
    options: dict = {
        "message_id": threads.make_message_id(conv.token, str(msg.id), domain),
        "reply_to": threads.plus_address(address, conv.token) if address else None,
    }
    subject = conv.subject or ""
    if last_in is not None:
        refs = list((last_in.meta or {}).get("context", {}).get("references", []) or [])
        options["in_reply_to"] = last_in.provider_id
        options["references"] = threads.build_references(refs, last_in.provider_id)
        subject = (last_in.meta or {}).get("subject") or subject
    options["original_subject"] = subject
    options["subject"] = threads.reply_subject(subject) if last_in is not None else (subject or "")
    return options


def _sms_options(session: Session, msg: Message, conv: Conversation, inbox: Inbox) -> dict:
    """Twilio posts delivery receipts to our status URL."""
    return {"status_callback": public_base() + "/webhooks/sms/twilio/status"}


_OPTIONS: dict[str, Callable[[Session, Message, Conversation, Inbox], dict]] = {
    "email": _email_options,
    "sms": _sms_options,
}


def build(
    session: Session, msg: Message, conv: Conversation, inbox: Inbox, options: dict
) -> cb.OutboundMessage:
    """The normalised outbound message for ``msg``; same ``reference`` on every retry."""
    ident = session.get(ContactIdentity, conv.identity_id)
    user = session.get(User, msg.sender_user_id) if msg.sender_user_id else None
    opts = dict(options)
    extra = _OPTIONS.get(inbox.channel)
    if extra is not None:
        opts.update(extra(session, msg, conv, inbox))
    attachments = []
    base = public_base()
    for att in msg.attachments:
        if not att.storage_key:
            continue
        content = None
        if inbox.channel == "email":
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
        from app.inbox.delivery import record_outbound_activity

        user = session.get(User, msg.sender_user_id) if msg.sender_user_id else None
        record_outbound_activity(conv, msg, user, msg.updated_at or conv.last_activity_at)
