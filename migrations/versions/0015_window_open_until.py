"""The end of each conversation's standard reply window, for the "window closing soonest" sort

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-20 09:00:00

``conversations.window_open_until`` is when the channel's standard window ends;
``window_expires_at`` stays the time after which nothing can be sent (later under the
human agent rule, where an inbox has it). The list sorts open windows by the first,
then windows kept open by the human agent rule by the second, then closed ones.

Backfill: the standard window ends with the final one except in inboxes with the human
agent rule, whose standard window was 24 hours when this revision was written; only
windows that are still open matter to the sort.
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None

STANDARD_BEFORE_HUMAN_AGENT = timedelta(hours=24)


def upgrade():
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("window_open_until", sa.DateTime(), nullable=True))
        batch.create_index(
            "ix_conv_status_window_open", ["status", "window_open_until"], unique=False
        )
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE conversations SET window_open_until = window_expires_at"))
    inboxes = sa.table("inboxes", sa.column("id"), sa.column("settings", sa.JSON))
    human_agent = [
        row.id
        for row in conn.execute(sa.select(inboxes.c.id, inboxes.c.settings))
        if isinstance(row.settings, dict) and row.settings.get("human_agent")
    ]
    if not human_agent:
        return
    convs = sa.table(
        "conversations",
        sa.column("id"),
        sa.column("inbox_id"),
        sa.column("last_inbound_at", sa.DateTime()),
        sa.column("window_expires_at", sa.DateTime()),
        sa.column("window_open_until", sa.DateTime()),
    )
    still_open = conn.execute(
        sa.select(convs.c.id, convs.c.last_inbound_at).where(
            convs.c.inbox_id.in_(human_agent),
            convs.c.last_inbound_at.is_not(None),
            convs.c.window_expires_at > datetime.now(UTC).replace(tzinfo=None),
        )
    ).all()
    for row in still_open:
        conn.execute(
            convs.update()
            .where(convs.c.id == row.id)
            .values(window_open_until=row.last_inbound_at + STANDARD_BEFORE_HUMAN_AGENT)
        )


def downgrade():
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index("ix_conv_status_window_open")
        batch.drop_column("window_open_until")
