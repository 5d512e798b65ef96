"""The outbox: durable background work (sends, downloads, profile look-ups)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import now
from app.extensions import db
from app.models.types import JSONType, UTCDateTime


class OutboxItem(db.Model):
    """One unit of background work, claimed by exactly one worker at a time.

    Written in the same transaction as the message it belongs to, so a reply
    the API accepted is never lost, and claimed with ``FOR UPDATE SKIP LOCKED``
    on PostgreSQL (a conditional UPDATE on SQLite) so no row is sent twice.
    """

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # send | action | download | profile
    inbox_id: Mapped[int | None] = mapped_column(sa.ForeignKey("inboxes.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
    state: Mapped[str] = mapped_column(
        sa.String(16), default="pending"
    )  # pending|working|done|failed|cancelled
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
