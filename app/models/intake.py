"""The webhook intake: authenticated provider requests, stored before we answer 2xx."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import now
from app.extensions import db
from app.models.types import JSONType, UTCDateTime


class WebhookIntake(db.Model):
    """One verified webhook body, waiting to be threaded into the inbox.

    The webhook writes the raw body in one INSERT and answers; ``app.runtime.intake``
    then takes pending rows in bulk by deleting them (``DELETE ... RETURNING``,
    skipping rows locked by another process on PostgreSQL) in the transaction that
    ingests them. With SQLite the table lives in a file of its own beside the
    database (created on first use, not by migrations) and rows are deleted once
    their messages are committed. A row that cannot be ingested stays, ``failed``,
    with the error.
    """

    __tablename__ = "webhook_intake"
    __table_args__ = (sa.Index("ix_webhook_intake_state", "state", "id"),)

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(sa.String(16))
    #: the inboxes whose secret verified the signature: only their events are ingested
    inbox_ids: Mapped[list] = mapped_column(JSONType, default=list)
    body: Mapped[bytes] = mapped_column(sa.LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")  # pending|failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(sa.Text)
