"""Turning a stored reply into the connector's :class:`OutboundMessage`.

What every channel shares is built here; the few channel details that need
the database (email threading headers, the SMS status callback URL) are small
functions in ``_OPTIONS``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import sqlalchemy as sa
from flask import current_app, has_request_context, request
from sqlalchemy.orm import Session

from app.inbox import storage
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


def _email_options(session: Session, msg: Message, conv: Conversation, inbox: Inbox) -> dict:
    """Threading headers: Message-ID on our domain, In-Reply-To, References, Reply-To.

    The reply answers the customer's latest human-written message (an auto-reply
    only when there is nothing else): ``In-Reply-To`` is its Message-ID,
    ``References`` its own References (or In-Reply-To) plus its id, and the
    subject ``Re: <its subject>`` without stacked prefixes. Message-IDs are stored
    bare; the connector writes the bracketed header form.
    """
    from connectors.email import threads

    address = inbox.config.get("address", "")
    domain = address.rsplit("@", 1)[-1] if "@" in address else "switchboard.local"
    inbound = (
        sa.select(Message)
        .where(
            Message.conversation_id == conv.id,
            Message.direction == "inbound",
            Message.provider_id.is_not(None),
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
    last_in = session.scalars(inbound.where(Message.automated.is_(False))).first()
    if last_in is None:
        last_in = session.scalars(inbound).first()
    options: dict = {
        "message_id": threads.make_message_id(conv.token, str(msg.id), domain),
        "reply_to": threads.plus_address(address, conv.token) if "@" in address else None,
    }
    if conv.contact is not None and conv.contact.name:
        options["to_name"] = conv.contact.name
    subject = conv.subject or ""
    if last_in is not None:
        ctx = (last_in.meta or {}).get("context") or {}
        parent_refs = list(ctx.get("references") or [])
        if not parent_refs and ctx.get("in_reply_to"):
            parent_refs = [ctx["in_reply_to"]]
        if not ctx.get("message_id_synthetic"):  # the customer's mail had no Message-ID
            options["in_reply_to"] = last_in.provider_id
            options["references"] = threads.build_references(parent_refs, last_in.provider_id)
        elif parent_refs:
            options["references"] = threads.build_references(parent_refs[:-1], parent_refs[-1])
        subject = (last_in.meta or {}).get("subject") or subject
    options["original_subject"] = subject
    options["subject"] = threads.reply_subject(subject) if last_in is not None else (subject or "")
    return options


def _sms_options(session: Session, msg: Message, conv: Conversation, inbox: Inbox) -> dict:
    """Twilio posts delivery receipts to our status URL.

    ``ref`` names the message, so a receipt that overtakes the worker recording
    Twilio's message SID still finds it (the signature covers the query string).
    """
    return {"status_callback": f"{public_base()}/webhooks/sms/twilio/status?ref={msg.id}"}


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
