"""Reports: messages counted per inbox and 15-minute slot as they are stored

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-21 10:00:00

``report_message_counts`` holds, per kind (``inbound``/``outbound`` totals; per sender
``inbound_by``/``outbound_by``; an agent's own replies ``reply``), user, UTC 15-minute
slot and inbox, how many messages were stored; it is filled here from the messages
already stored. Covering indexes let the reports add up conversation events and first
responses without reading the tables' rows.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

SLOT = 900


def _slot_sql(dialect: str, column: str = "created_at") -> str:
    """The UTC 15-minute slot of a naive-UTC time column, in SQL."""
    if dialect == "postgresql":
        return f"CAST(floor(extract(epoch FROM {column}) / {SLOT}) AS INTEGER)"
    return f"CAST(strftime('%s', {column}) AS INTEGER) / {SLOT}"


def upgrade():
    op.create_table(
        "report_message_counts",
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column(
            "inbox_id", sa.Integer(), sa.ForeignKey("inboxes.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "user_id", "slot", "inbox_id"),
        sqlite_with_rowid=False,
    )
    slot = _slot_sql(op.get_bind().dialect.name)
    picks = {
        "inbound": ("0", "direction = 'inbound'"),
        "outbound": ("0", "direction = 'outbound'"),
        "inbound_by": ("sender_user_id", "direction = 'inbound' AND sender_user_id IS NOT NULL"),
        "outbound_by": ("sender_user_id", "direction = 'outbound' AND sender_user_id IS NOT NULL"),
        "reply": (
            "sender_user_id",
            "direction = 'outbound' AND sender_user_id IS NOT NULL AND automated = false",
        ),
    }
    for kind, (user, where) in picks.items():
        op.execute(
            f"INSERT INTO report_message_counts (kind, user_id, slot, inbox_id, n) "
            f"SELECT '{kind}', u, s, inbox_id, count(*) FROM "
            f"(SELECT {user} AS u, {slot} AS s, inbox_id FROM messages WHERE {where}) AS m "
            f"GROUP BY u, s, inbox_id"
        )
    op.create_index(
        "ix_report_events_rollup",
        "report_events",
        ["kind", "slot", "inbox_id", "user_id", "seconds"],
    )
    op.add_column("report_waits", sa.Column("answered_slot", sa.Integer()))
    op.execute(
        f"UPDATE report_waits SET answered_slot = {_slot_sql(op.get_bind().dialect.name, 'answered_at')} "
        "WHERE answered_at IS NOT NULL"
    )
    op.create_index(
        "ix_report_waits_firsts",
        "report_waits",
        ["first", "answered_slot", "inbox_id", "agent_id", "business_s"],
    )


def downgrade():
    op.drop_index("ix_report_waits_firsts", table_name="report_waits")
    with op.batch_alter_table("report_waits") as batch:
        batch.drop_column("answered_slot")
    op.drop_index("ix_report_events_rollup", table_name="report_events")
    op.drop_table("report_message_counts")
