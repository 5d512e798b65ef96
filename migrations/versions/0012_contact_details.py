"""Contact details agents edit, erasure, and the audit trail

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-14 10:00:00

Contacts get what agents keep about a customer: an email address, a phone number
(E.164), notes and key/value attributes, and ``erased_at`` once their data was
erased on a data-protection request. ``audit_lines`` records exports, erasures and
merges (who, when, counts; never the erased data).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade():
    # plain ADD COLUMNs (SQLite takes them without rebuilding the table, whose rebuild
    # would cascade to the conversations); the empty-object default stays in the database
    op.add_column("contacts", sa.Column("email", sa.String(320), nullable=True))
    op.add_column("contacts", sa.Column("phone", sa.String(32), nullable=True))
    op.add_column("contacts", sa.Column("notes", sa.Text(), nullable=True))
    op.add_column(
        "contacts",
        sa.Column("attributes", JSON, nullable=False, server_default=sa.text("'{}'")),
    )
    op.add_column("contacts", sa.Column("erased_at", sa.DateTime(), nullable=True))
    op.create_index("ix_contacts_email", "contacts", ["email"])
    op.create_index("ix_contacts_phone", "contacts", ["phone"])
    op.create_table(
        "audit_lines",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("subject_type", sa.String(40), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("user_name", sa.String(200), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_audit_subject", "audit_lines", ["subject_type", "subject_id", "id"])


def downgrade():
    op.drop_index("ix_audit_subject", table_name="audit_lines")
    op.drop_table("audit_lines")
    op.drop_index("ix_contacts_phone", table_name="contacts")
    op.drop_index("ix_contacts_email", table_name="contacts")
    for column in ("erased_at", "attributes", "notes", "phone", "email"):
        op.drop_column("contacts", column)
