"""Files agents upload to send: an attachment without a message yet, owned by its uploader

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-12 09:00:00

``POST /api/v1/uploads`` stores a file before the reply that carries it exists:
``attachments.message_id`` may be empty until the reply is posted, and
``uploaded_by_id`` says whose upload it is (only they may attach it, once).
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.alter_column("message_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("uploaded_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_attachments_uploaded_by_id_users",
            "users",
            ["uploaded_by_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(
            batch_op.f("ix_attachments_uploaded_by_id"), ["uploaded_by_id"], unique=False
        )


def downgrade():
    op.execute("DELETE FROM attachments WHERE message_id IS NULL")
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachments_uploaded_by_id"))
        batch_op.drop_constraint("fk_attachments_uploaded_by_id_users", type_="foreignkey")
        batch_op.drop_column("uploaded_by_id")
        batch_op.alter_column("message_id", existing_type=sa.Integer(), nullable=False)
