"""Automated conversations: started by a machine and never answered by a person since

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 08:30:00

``conversations.automated`` is true while every customer message of the conversation
was sent automatically (an auto-reply, a mailing list, a newsletter, a bounce): the
list marks them and can hide them (``automated=hide``). Existing conversations are
marked from their messages.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    # a plain ADD COLUMN: a batch copy of the table would drop its count triggers on SQLite
    op.add_column(
        "conversations",
        sa.Column("automated", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.execute(
        """
        UPDATE conversations SET automated = TRUE
        WHERE EXISTS (
            SELECT 1 FROM messages m
            WHERE m.conversation_id = conversations.id AND m.direction = 'inbound'
        )
        AND NOT EXISTS (
            SELECT 1 FROM messages m
            WHERE m.conversation_id = conversations.id AND m.direction = 'inbound'
            AND m.automated = FALSE
        )
        """
    )


def downgrade():
    op.execute("ALTER TABLE conversations DROP COLUMN automated")
