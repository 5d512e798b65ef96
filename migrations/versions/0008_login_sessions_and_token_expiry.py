"""Sign-ins that can be revoked, and API tokens that can expire

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 02:00:00

Each browser sign-in gets a ``login_sessions`` row whose key is part of the
session and remember cookies: signing out, a password change or a deactivation
deletes rows, and the cookies carrying their keys stop working. Existing
cookies (which carried only the user id) are no longer accepted: everybody
signs in once more after this upgrade.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "login_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("user_agent", sa.String(200), nullable=True),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_index("ix_login_sessions_user_id", "login_sessions", ["user_id"])
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
    op.drop_index("ix_login_sessions_user_id", table_name="login_sessions")
    op.drop_table("login_sessions")
