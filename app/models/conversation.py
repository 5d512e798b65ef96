"""Conversations: the thread between one contact and one inbox."""

from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import now
from app.extensions import db
from app.models.contact import Contact
from app.models.inbox import Inbox
from app.models.label import Label, conversation_labels
from app.models.types import JSONType, UTCDateTime
from app.models.user import User

STATUSES = ("open", "pending", "snoozed", "closed")


class Conversation(db.Model):
    """A thread, with the precomputed timers the list sorts and filters by.

    Times named ``*_at`` for customer messages are the platform's own send
    times, so reply windows are counted as the platform counts them.
    """

    __tablename__ = "conversations"
    __table_args__ = (
        sa.Index("ix_conv_status_activity", "status", "last_activity_at", "id"),
        sa.Index("ix_conv_inbox_status_activity", "inbox_id", "status", "last_activity_at", "id"),
        sa.Index("ix_conv_assignee_status_activity", "assignee_id", "status", "last_activity_at"),
        sa.Index("ix_conv_status_waiting", "status", "waiting_since"),
        sa.Index("ix_conv_status_assignee_waiting", "status", "assignee_id", "waiting_since", "id"),
        sa.Index("ix_conv_status_window", "status", "window_expires_at"),
        sa.Index("ix_conv_status_window_open", "status", "window_open_until"),
        sa.Index("ix_conv_response_due", "response_due_at"),
        sa.Index("ix_conv_contact_inbox", "contact_id", "inbox_id", "id"),
        sa.Index("ix_conv_snooze", "status", "snooze_until"),
        sa.Index("ix_conv_follow_up", "follow_up_due_at"),
        sa.Index("ix_conv_activity", "last_activity_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    inbox_id: Mapped[int] = mapped_column(sa.ForeignKey("inboxes.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    identity_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("contact_identities.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    snooze_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    priority: Mapped[int] = mapped_column(default=0)
    subject: Mapped[str | None] = mapped_column(sa.String(500))
    token: Mapped[str] = mapped_column(
        sa.String(32), unique=True, default=lambda: secrets.token_hex(8)
    )
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_outbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    window_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the end of the channel's standard window; the human agent rule, where an inbox has it,
    # lets people reply until window_expires_at (the list tells the two apart by these)
    window_open_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unread_count: Mapped[int] = mapped_column(default=0)
    last_message_direction: Mapped[str | None] = mapped_column(sa.String(16))
    last_message_body: Mapped[str | None] = mapped_column(sa.String(300))
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    requested_live_agent: Mapped[bool] = mapped_column(default=False)
    # every customer message in it was sent by a machine (auto-reply, mailing list, newsletter)
    automated: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    context: Mapped[dict] = mapped_column(JSONType, default=dict)
    # the language of the customer's latest confidently detected message (app.inbox.language)
    language: Mapped[str | None] = mapped_column(sa.String(8))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    declined_reason: Mapped[str | None] = mapped_column(sa.String(300))
    declined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    inactive_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    greeted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    away_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    follow_up_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    follow_up_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    inbox: Mapped[Inbox] = relationship(lazy="joined", innerjoin=True)
    contact: Mapped[Contact] = relationship(lazy="joined", innerjoin=True)
    assignee: Mapped[User | None] = relationship(lazy="joined")
    # loaded for every conversation a query returns in one more query (a page: one)
    labels: Mapped[list[Label]] = relationship(
        secondary=conversation_labels, lazy="selectin", order_by=Label.name_key
    )
