"""Reports: answered waits counted per inbox and 15-minute slot

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 23:30:00

``report_counts`` gains the kinds ``answered`` (a customer's wait got a human answer) and
``late`` (one that had passed its response target first), each also per agent
(``answered_by``, ``late_by``), counted at the slot the answer was given. The reports' share
of response targets met reads them instead of every answered wait of the period, so the
index that served that scan goes.
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

QUARTERS = 96
KINDS = ("answered", "answered_by", "late", "late_by")


def _fill(kind: str, user: str, where: str) -> None:
    """Count answered waits into one row per (user, UTC day, inbox), a column per slot."""
    quarters = ", ".join(
        f"SUM(CASE WHEN s % {QUARTERS} = {n} THEN 1 ELSE 0 END)" for n in range(QUARTERS)
    )
    names = ", ".join(f"q{n}" for n in range(QUARTERS))
    op.execute(
        f"INSERT INTO report_counts (kind, user_id, day, inbox_id, {names}) "
        f"SELECT '{kind}', u, s / {QUARTERS}, inbox_id, {quarters} FROM "
        f"(SELECT {user} AS u, answered_slot AS s, inbox_id FROM report_waits "
        f"WHERE answered_slot IS NOT NULL AND {where}) AS m "
        f"GROUP BY u, s / {QUARTERS}, inbox_id"
    )


def upgrade():
    _fill("answered", "0", "1 = 1")
    _fill("answered_by", "agent_id", "agent_id IS NOT NULL")
    _fill("late", "0", "breached_at IS NOT NULL")
    _fill("late_by", "agent_id", "breached_at IS NOT NULL AND agent_id IS NOT NULL")
    op.drop_index("ix_report_waits_met", table_name="report_waits")


def downgrade():
    op.create_index(
        "ix_report_waits_met",
        "report_waits",
        ["answered_at", "breached_at", "inbox_id", "agent_id"],
    )
    kinds = ", ".join(f"'{k}'" for k in KINDS)
    op.execute(f"DELETE FROM report_counts WHERE kind IN ({kinds})")
