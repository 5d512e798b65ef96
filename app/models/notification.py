"""In-app notifications for agents and team leads."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import iso, now
from app.extensions import db
from app.models.types import JSONType, UTCDateTime


class Notification(db.Model):
    """Something a user should know about: assignment, window closing, breach ..."""

    __tablename__ = "notifications"
    __table_args__ = (sa.Index("ix_notifications_user", "user_id", "read_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(40))
    conversation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("conversations.id", ondelete="CASCADE")
    )
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(120), unique=True)
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def to_dict(self) -> dict:
        """The API's notification object."""
        return self.as_object(
            self.id, self.kind, self.conversation_id, self.data, self.created_at, self.read_at
        )

    @staticmethod
    def as_object(note_id, kind, conversation_id, data, created_at, read_at) -> dict:
        """The API's notification object from its values (one just inserted, unread)."""
        return {
            "id": note_id,
            "kind": kind,
            "conversation_id": conversation_id,
            "data": data or {},
            "created_at": iso(created_at),
            "read_at": iso(read_at),
        }
