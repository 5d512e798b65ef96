"""Reports: messages and conversation events counted per inbox and 15-minute slot

Revision ID: 0018
Revises: 0014
Create Date: 2026-12-21 10:00:00

``report_counts`` holds, per kind (messages: ``inbound``/``outbound`` totals, per sender
``inbound_by``/``outbound_by``, an agent's own replies ``reply``; events: ``new``,
``closed``, ``reopened``, ``assigned`` and per agent ``<kind>_by``), user, UTC day and
inbox, a count per 15-minute slot of the day (``q0`` .. ``q95``); it is filled here
from the messages and events already stored. Covering indexes let the reports add up conversation events and first
responses without reading the tables' rows.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0014"
branch_labels = None
depends_on = None

SLOT = 900


def _slot_sql(dialect: str, column: str = "created_at") -> str:
    """The UTC 15-minute slot of a naive-UTC time column, in SQL."""
    if dialect == "postgresql":
        return f"CAST(floor(extract(epoch FROM {column}) / {SLOT}) AS INTEGER)"
    return f"CAST(strftime('%s', {column}) AS INTEGER) / {SLOT}"


QUARTERS = 96


def _fill(kind: str, user: str, source: str, where: str, slot: str) -> None:
    """Count ``source`` rows into one row per (user, UTC day, inbox), a column per slot."""
    quarters = ", ".join(
        f"SUM(CASE WHEN s % {QUARTERS} = {n} THEN 1 ELSE 0 END)" for n in range(QUARTERS)
    )
    names = ", ".join(f"q{n}" for n in range(QUARTERS))
    op.execute(
        f"INSERT INTO report_counts (kind, user_id, day, inbox_id, {names}) "
        f"SELECT '{kind}', u, s / {QUARTERS}, inbox_id, {quarters} FROM "
        f"(SELECT {user} AS u, {slot} AS s, inbox_id FROM {source} WHERE {where}) AS m "
        f"GROUP BY u, s / {QUARTERS}, inbox_id"
    )


def upgrade():
    op.create_table(
        "report_counts",
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column(
            "inbox_id", sa.Integer(), sa.ForeignKey("inboxes.id", ondelete="CASCADE"), nullable=False
        ),
        *(
            sa.Column(f"q{n}", sa.Integer(), nullable=False, server_default="0")
            for n in range(QUARTERS)
        ),
        sa.PrimaryKeyConstraint("kind", "user_id", "day", "inbox_id"),
    )
    slot = _slot_sql(op.get_bind().dialect.name)
    messages = {
        "inbound": ("0", "direction = 'inbound'"),
        "outbound": ("0", "direction = 'outbound'"),
        "inbound_by": ("sender_user_id", "direction = 'inbound' AND sender_user_id IS NOT NULL"),
        "outbound_by": ("sender_user_id", "direction = 'outbound' AND sender_user_id IS NOT NULL"),
        "reply": (
            "sender_user_id",
            "direction = 'outbound' AND sender_user_id IS NOT NULL AND automated = false",
        ),
    }
    for kind, (user, where) in messages.items():
        _fill(kind, user, "messages", where, slot)
    for kind in ("new", "closed", "reopened", "assigned"):
        _fill(kind, "0", "report_events", f"kind = '{kind}'", "slot")
        _fill(f"{kind}_by", "user_id", "report_events", f"kind = '{kind}' AND user_id IS NOT NULL", "slot")
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
        "ix_report_waits_badge",
        "report_waits",
        ["inbox_id", "started_at", "answered_at", "wait_s", "business_s"],
    )
    op.create_index(
        "ix_report_waits_met", "report_waits", ["answered_at", "breached_at", "inbox_id", "agent_id"]
    )
    op.create_index(
        "ix_report_waits_firsts",
        "report_waits",
        ["first", "answered_slot", "inbox_id", "agent_id", "business_s"],
    )


def downgrade():
    op.drop_index("ix_report_waits_firsts", table_name="report_waits")
    op.drop_index("ix_report_waits_met", table_name="report_waits")
    op.drop_index("ix_report_waits_badge", table_name="report_waits")
    with op.batch_alter_table("report_waits") as batch:
        batch.drop_column("answered_slot")
    op.drop_index("ix_report_events_rollup", table_name="report_events")
    op.drop_table("report_counts")
