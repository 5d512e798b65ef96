"""Storing a message's parts: its attachments, and the conversation's last-message snippet.

Shared by customer messages (:mod:`app.inbox.ingest`) and replies reported back
from the platform (:mod:`app.inbox.receipts`). No Flask here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.inbox import storage
from app.models import Attachment, Conversation, Message, OutboxItem
from connectors import base as cb

SNIPPET = 280
#: Attachment kinds whose URL is a link to show (a map, a shared page), never downloaded.
LINK_KINDS = ("location", "fallback")


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
