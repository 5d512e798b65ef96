"""Languages: of customer messages, of conversations, and the ones agents speak

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-14 10:00:00

``messages.language`` is a customer message's language when it was detected with
confidence, ``conversations.language`` the language of the customer's latest such
message, and ``users.languages`` the languages an agent speaks (automatic assignment
prefers an agent who speaks the conversation's language). All ISO 639-1 codes.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("language", sa.String(8), nullable=True))
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("language", sa.String(8), nullable=True))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("languages", JSON, nullable=True))


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.drop_column("languages")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("language")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("language")
