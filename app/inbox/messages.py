"""Storing a message: a customer message's row, attachments, the conversation's snippet.

Shared by customer messages (:mod:`app.inbox.ingest`) and replies reported back
from the platform (:mod:`app.inbox.receipts`). No Flask here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app import storage
from app.inbox import language
from app.models import Attachment, ContactIdentity, Conversation, Inbox, Message, OutboxItem
from connectors import base as cb

SNIPPET = 280
#: The columns of a customer message's row, as :func:`customer_message_row` fills them.
CUSTOMER_COLUMNS = (
    "conversation_id",
    "inbox_id",
    "direction",
    "body",
    "html",
    "full_body",
    "sender_name",
    "provider_id",
    "platform_at",
    "status",
    "automated",
    "language",
    "meta",
    "created_at",
    "updated_at",
)
#: Attachment kinds whose URL is a link to show (a map, a shared page, a story the platform
#: forbids keeping), never downloaded.
LINK_KINDS = ("location", "fallback", "story")


def customer_message_row(
    inbox: Inbox,
    conv: Conversation,
    ident: ContactIdentity,
    ev: cb.InboundMessage,
    sent_at: datetime,
    received_at: datetime,
    sender_limit: bool = False,
) -> dict:
    """The values of a customer message's row (:data:`CUSTOMER_COLUMNS`), for an INSERT.

    ``meta`` keeps the kind, the context, what it replies to and the subject;
    ``sender_limit`` marks a new thread kept in an existing conversation because
    the sender opened too many lately. A long email's full text is kept apart
    from the shown body when they differ. ``language`` is the text's language when it
    is detected with confidence (:mod:`app.inbox.language`).
    """
    meta = {"kind": ev.kind, **({"context": ev.context} if ev.context else {})}
    if ev.reply_to_external_id:
        meta["reply_to"] = ev.reply_to_external_id
    if ev.subject:
        meta["subject"] = ev.subject
    if sender_limit:
        meta["sender_limit"] = True
    full = ev.context.get("full_text") if ev.context else None
    if full is not None:
        meta["context"] = {k: v for k, v in ev.context.items() if k != "full_text"}
    return {
        "conversation_id": conv.id,
        "inbox_id": inbox.id,
        "direction": "inbound",
        "body": ev.text or "",
        "html": ev.html,
        "full_body": full if full and full.strip() != (ev.text or "").strip() else None,
        "sender_name": (ev.contact_name or ident.contact.name or ident.fallback_name())[:200],
        "provider_id": ev.external_id,
        "platform_at": sent_at,
        "status": "received",
        "automated": ev.automated,
        "language": language.detect(ev.text),
        "meta": meta,
        "created_at": received_at,
        "updated_at": received_at,
    }


def set_last_message(conv: Conversation, direction: str, body: str, at: datetime) -> None:
    """The conversation list's snippet: who wrote last, what, and when."""
    conv.last_message_direction = direction
    conv.last_message_body = (body or "")[:SNIPPET]
    conv.last_message_at = at
    conv.last_activity_at = at


def store_attachments(session: Session, msg: Message, refs: tuple[cb.AttachmentRef, ...]) -> None:
    """Keep bytes we already have; queue downloads for URLs (they expire)."""
    for ref in refs:
        att = Attachment(
            message_id=msg.id,
            kind=ref.kind or "file",
            filename=storage.safe_filename(ref.filename, default="") or None,
            content_type=ref.content_type,
            content_id=ref.content_id,
            source_url=ref.url,
            extra={**(ref.extra or {}), **({"title": ref.title} if ref.title else {})},
        )
        if ref.content is not None:
            att.storage_key = storage.save(ref.content)
            att.content_type = storage.stored_type(ref.content, ref.content_type)
            att.size = len(ref.content)
            att.state = "stored"
        elif ref.url and att.kind in LINK_KINDS:
            att.extra = {**att.extra, "link": ref.url}  # a web page to open, not a file
            att.state = "stored"
        elif ref.url:
            att.state = "pending"
        else:
            att.state = "stored"  # nothing to fetch (a location, a fallback share)
        session.add(att)
        session.flush()
        if att.state == "pending":
            session.add(
                OutboxItem(
                    kind="download",
                    inbox_id=msg.inbox_id,
                    message_id=msg.id,
                    payload={"attachment_id": att.id},
                )
            )
