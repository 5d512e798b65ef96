"""Records kept for reports: breaches, conversation events, customer waits, message counts."""

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


#: ``ReportEvent.kind``: what happened to a conversation, once each time it happened.
EVENT_KINDS = ("new", "closed", "reopened", "assigned")

#: Events are counted in 15-minute slots (seconds since the epoch // SLOT): a slot never
#: straddles a local hour in any time zone in use, so rollups by local day and hour come
#: from the slots' counts in whichever zone a report asks for.
SLOT = 900


def slot_of(at: datetime) -> int:
    """The 15-minute slot ``at`` (aware UTC) falls in."""
    return int(at.timestamp()) // SLOT


class ReportEvent(db.Model):
    """A conversation was started, closed, reopened or assigned, recorded when it happened.

    ``user_id`` is the agent it counts for (the assignee when closed, the new assignee);
    ``seconds`` the resolution time of a close (from the start, or the last reopen).
    """

    __tablename__ = "report_events"
    __table_args__ = (
        sa.Index("ix_report_events_kind_slot", "kind", "slot"),
        sa.Index("ix_report_events_conv", "conversation_id", "kind", "at"),
        sa.Index("ix_report_events_rollup", "kind", "slot", "inbox_id", "user_id", "seconds"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    slot: Mapped[int] = mapped_column()
    conversation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("conversations.id", ondelete="CASCADE")
    )
    inbox_id: Mapped[int] = mapped_column(sa.ForeignKey("inboxes.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    seconds: Mapped[int | None] = mapped_column()


class ReportWait(db.Model):
    """One wait of a customer for an answer, from their first unanswered message.

    Opened when a person (not their machine) writes and nobody is answering yet;
    ``answered_at`` is the first human reply after it (``first``: the conversation's
    first answer), ``wait_s`` the time it took and ``business_s`` the part of it inside
    the inbox's business hours (all of it without a schedule). ``window_missed_at`` is
    when the platform's reply window closed on it, ``breached_at`` when it passed the
    response target. ``agent_id``: who answered, else the assignee when it was missed.
    """

    __tablename__ = "report_waits"
    __table_args__ = (
        sa.Index("ix_report_waits_conv_open", "conversation_id", "answered_at"),
        sa.Index("ix_report_waits_started", "started_at"),
        sa.Index("ix_report_waits_answered", "answered_at"),
        sa.Index("ix_report_waits_missed", "window_missed_at"),
        sa.Index("ix_report_waits_breached", "breached_at"),
        sa.Index(
            "ix_report_waits_badge",
            "inbox_id",
            "started_at",
            "answered_at",
            "wait_s",
            "business_s",
        ),
        sa.Index(
            "ix_report_waits_firsts", "first", "answered_slot", "inbox_id", "agent_id", "business_s"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("conversations.id", ondelete="CASCADE")
    )
    inbox_id: Mapped[int] = mapped_column(sa.ForeignKey("inboxes.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_slot: Mapped[int | None] = mapped_column()  # slot_of(answered_at), for rollups
    agent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    first: Mapped[bool] = mapped_column(default=False)
    wait_s: Mapped[int | None] = mapped_column()
    business_s: Mapped[int | None] = mapped_column()
    window_missed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


#: Quarter hours in a UTC day: ``report_counts`` has a column for each (``q0`` .. ``q95``).
QUARTERS = 86400 // SLOT
#: ``ReportCount.user_id`` of the counts that are nobody's (the totals of a kind).
NOBODY = 0


def quarter_columns() -> list[sa.Column]:
    """``q0`` .. ``q95``: the count in each 15-minute slot of the row's UTC day."""
    return [
        sa.Column(f"q{n}", sa.Integer, nullable=False, default=0, server_default="0")
        for n in range(QUARTERS)
    ]


class ReportCount(db.Model):
    """How many things of a kind happened in an inbox on a UTC day, per 15-minute slot.

    Kinds: messages stored (``inbound``, ``outbound``; per sender ``inbound_by``,
    ``outbound_by``; an agent's own replies ``reply``), conversation events (``new``,
    ``closed``, ``reopened``, ``assigned``; per agent ``closed_by`` ...) and answered waits
    (``answered``, and ``late`` when it had passed its response target; per agent
    ``answered_by``, ``late_by``). ``user_id`` is
    the user of the per-user kinds, else :data:`NOBODY` (no foreign key: counts outlive
    a deleted user, as the history does). Kept as things happen (insert-or-increment),
    one row per day and a column per slot (and the day's ``total``), so a year's report
    reads a few thousand rows and places each slot in the local day and hour of any time
    zone.
    """

    __table__ = sa.Table(
        "report_counts",
        db.metadata,
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column(
            "inbox_id", sa.Integer, sa.ForeignKey("inboxes.id", ondelete="CASCADE"), nullable=False
        ),
        *quarter_columns(),
        # the day's count (the sum of its slots), kept with them
        sa.Column("total", sa.Integer, nullable=False, default=0, server_default="0"),
        sa.PrimaryKeyConstraint("kind", "user_id", "day", "inbox_id"),
    )
