"""Labels, and the conversations that carry them

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-14 10:00:00

Leads and admins keep a list of labels (name, colour); agents put them on
conversations. ``labels.name_key`` is the case-folded name, unique, so "VIP" and
"vip" are one label. ``conversation_labels`` is read both ways: a page's labels by
conversation (its primary key), a label's conversations for the list's filter.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("name_key", sa.String(160), nullable=False),
        sa.Column("color", sa.String(7), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("name_key"),
    )
    op.create_table(
        "conversation_labels",
        sa.Column(
            "conversation_id",
            sa.Integer(),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "label_id",
            sa.Integer(),
            sa.ForeignKey("labels.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index(
        "ix_conversation_labels_label", "conversation_labels", ["label_id", "conversation_id"]
    )


def downgrade():
    op.drop_index("ix_conversation_labels_label", table_name="conversation_labels")
    op.drop_table("conversation_labels")
    op.drop_table("labels")
