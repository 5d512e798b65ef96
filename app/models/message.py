"""Messages and their attachments."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import now
from app.extensions import db
from app.models.types import JSONType, UTCDateTime

# Message.direction: inbound | outbound | note | activity.
# Message.status: received | queued | sent | delivered | read | failed | unknown, where
# unknown means the provider did not answer a send, so it may or may not have gone out; the
# agent decides whether to send it again (a receipt or echo that names it settles it).
STATUS_RANK = {"queued": 0, "unknown": 0, "sent": 1, "delivered": 2, "read": 3}


#: A provider's id of a message or part (an email Message-ID or Content-ID may run to
#: hundreds of characters, up to a header line's 998). PostgreSQL enforces the length
#: (migration 0019); SQLite never enforces one, so its columns keep their first type.
PROVIDER_ID = sa.String(255).with_variant(sa.String(1000), "postgresql")


class Message(db.Model):
    """One item in a conversation.

    ``provider_id`` is the provider's id (Messenger mid, Twilio MessageSid,
    email Message-ID ...), unique per inbox: a replayed webhook cannot store a
    second row. ``client_id`` makes API sends idempotent.
    """

    __tablename__ = "messages"
    __table_args__ = (
        sa.UniqueConstraint("inbox_id", "provider_id", name="uq_message_inbox_provider"),
        sa.UniqueConstraint("conversation_id", "client_id", name="uq_message_client"),
        sa.Index("ix_messages_conv_created", "conversation_id", "created_at", "id"),
        sa.Index(
            "ix_messages_conv_direction_platform", "conversation_id", "direction", "platform_at"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("conversations.id", ondelete="CASCADE")
    )
    inbox_id: Mapped[int] = mapped_column(sa.ForeignKey("inboxes.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(sa.String(16))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    html: Mapped[str | None] = mapped_column(sa.Text)
    full_body: Mapped[str | None] = mapped_column(sa.Text)  # email: text with quoted history
    sender_user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    sender_name: Mapped[str | None] = mapped_column(sa.String(200))
    provider_id: Mapped[str | None] = mapped_column(PROVIDER_ID)
    client_id: Mapped[str | None] = mapped_column(sa.String(100))
    platform_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(16), default="received")
    error_code: Mapped[str | None] = mapped_column(sa.String(64))
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    automated: Mapped[bool] = mapped_column(default=False)
    # a customer message's language (ISO 639-1), when detected with confidence (app.inbox.language)
    language: Mapped[str | None] = mapped_column(sa.String(8))
    meta: Mapped[dict] = mapped_column(JSONType, default=dict)
    send_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)

    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def reference(self) -> str:
        """Our stable id for this message at the provider (Messenger metadata ...)."""
        return f"sb:{self.id}"


class Attachment(db.Model):
    """A stored file: downloaded from the provider, or uploaded by an agent.

    An agent's upload has no message until it is sent: until then it belongs to
    ``uploaded_by_id`` alone, may go out once, and is dropped when never sent
    (``app.runtime.jobs.uploads``).
    """

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    uploaded_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(16), default="file")
    filename: Mapped[str | None] = mapped_column(sa.String(255))
    content_type: Mapped[str | None] = mapped_column(sa.String(255))
    size: Mapped[int | None] = mapped_column()
    storage_key: Mapped[str | None] = mapped_column(sa.String(255))
    source_url: Mapped[str | None] = mapped_column(sa.Text)
    content_id: Mapped[str | None] = mapped_column(PROVIDER_ID)
    state: Mapped[str] = mapped_column(sa.String(16), default="stored")  # pending|stored|failed
    error: Mapped[str | None] = mapped_column(sa.String(300))
    extra: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    message: Mapped[Message | None] = relationship(back_populates="attachments")
