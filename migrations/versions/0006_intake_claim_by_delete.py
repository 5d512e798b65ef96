"""webhook intake rows are claimed by deleting them: no claim columns

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 23:20:00

"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("webhook_intake", schema=None) as batch_op:
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("claimed_at")


def downgrade():
    with op.batch_alter_table("webhook_intake", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
