"""PostgreSQL: trigram indexes for the conversation search (pg_trgm)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 04:00:00

The list's search matches the agent's text anywhere in a contact's name, an
identity (phone, email, PSID), a subject or the last message. ``ILIKE '%text%'``
can only use a trigram index: without one every search read every conversation.
SQLite has no such index; there the search stays a scan.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEXES = {  # name: (table, column); kept out of autogenerate (app.models.search)
    "ix_conv_subject_trgm": ("conversations", "subject"),
    "ix_conv_last_body_trgm": ("conversations", "last_message_body"),
    "ix_contacts_name_trgm": ("contacts", "name"),
    "ix_identities_external_trgm": ("contact_identities", "external_id"),
}


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, (table, column) in INDEXES.items():
        op.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({column} gin_trgm_ops)"
        )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
