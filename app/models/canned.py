"""Canned replies: saved answers agents insert with ``/shortcut``."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import now
from app.extensions import db
from app.models.types import UTCDateTime


class CannedReply(db.Model):
    """A saved reply, for every inbox (``inbox_id`` null) or one inbox.

    ``body`` may use variables such as ``{{contact.first_name}}`` and ``{{agent.name}}``.
    """

    __tablename__ = "canned_replies"
    __table_args__ = (sa.UniqueConstraint("inbox_id", "shortcut", name="uq_canned_shortcut"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    inbox_id: Mapped[int | None] = mapped_column(sa.ForeignKey("inboxes.id", ondelete="CASCADE"))
    shortcut: Mapped[str] = mapped_column(sa.String(40))
    title: Mapped[str] = mapped_column(sa.String(120))
    body: Mapped[str] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    def to_dict(self) -> dict:
        """The API's canned reply object."""
        return {
            "id": self.id,
            "inbox_id": self.inbox_id,
            "shortcut": self.shortcut,
            "title": self.title,
            "body": self.body,
        }
