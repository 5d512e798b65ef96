"""Provider ids of up to 1,000 characters (PostgreSQL)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 14:30:00

An email's Message-ID (and an attachment's Content-ID) may be longer than 255
characters; PostgreSQL refused such a message, and with it the batch it came in. Growing
a ``varchar`` is a change of the catalogue only: no table rewrite, the indexes stay.
SQLite never enforces a length: nothing to do there.
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

COLUMNS = (("messages", "provider_id"), ("attachments", "content_id"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.String(1000), existing_type=sa.String(255))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.String(255), existing_type=sa.String(1000))
