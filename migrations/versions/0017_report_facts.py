"""Reports: conversation events and customer waits, recorded as they happen

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-20 10:00:00

``report_events`` holds each start, close (with its resolution time), reopen and
assignment of a conversation, with its 15-minute slot for rollups by local day and
hour; ``report_waits`` each wait of a customer for an answer: when it started, the
first human reply (wall and business-hours seconds), a reply window that closed on
it and a missed response target.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "report_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column(
            "conversation_id",
            sa.Integer(),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "inbox_id", sa.Integer(), sa.ForeignKey("inboxes.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("seconds", sa.Integer()),
    )
    op.create_index("ix_report_events_kind_slot", "report_events", ["kind", "slot"])
    op.create_index("ix_report_events_conv", "report_events", ["conversation_id", "kind", "at"])
    op.create_table(
        "report_waits",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "conversation_id",
            sa.Integer(),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "inbox_id", sa.Integer(), sa.ForeignKey("inboxes.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("answered_at", sa.DateTime()),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("first", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("wait_s", sa.Integer()),
        sa.Column("business_s", sa.Integer()),
        sa.Column("window_missed_at", sa.DateTime()),
        sa.Column("breached_at", sa.DateTime()),
    )
    op.create_index("ix_report_waits_conv_open", "report_waits", ["conversation_id", "answered_at"])
    op.create_index("ix_report_waits_started", "report_waits", ["started_at"])
    op.create_index("ix_report_waits_answered", "report_waits", ["answered_at"])
    op.create_index("ix_report_waits_missed", "report_waits", ["window_missed_at"])
    op.create_index("ix_report_waits_breached", "report_waits", ["breached_at"])


def downgrade():
    op.drop_table("report_waits")
    op.drop_table("report_events")
