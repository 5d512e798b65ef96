"""Records kept for reports: response-target breaches."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import now
from app.extensions import db
from app.models.types import UTCDateTime


class ResponseBreach(db.Model):
    """A conversation waited past its response target; ``answered_at`` set when answered."""

    __tablename__ = "response_breaches"
    __table_args__ = (
        sa.UniqueConstraint("conversation_id", "due_at", name="uq_breach_conv_due"),
        sa.Index("ix_breach_inbox_time", "inbox_id", "breached_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("conversations.id", ondelete="CASCADE")
    )
    inbox_id: Mapped[int] = mapped_column(sa.ForeignKey("inboxes.id", ondelete="CASCADE"))
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
