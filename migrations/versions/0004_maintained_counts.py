"""maintained counts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 19:32:28.005426

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


SQLITE = [
    """
    CREATE TRIGGER conv_counts_insert AFTER INSERT ON conversations BEGIN
      INSERT INTO conversation_counts (inbox_id, status, assignee_id, n)
      VALUES (NEW.inbox_id, NEW.status, COALESCE(NEW.assignee_id, 0), 1)
      ON CONFLICT (inbox_id, status, assignee_id) DO UPDATE SET n = n + 1;
    END
    """,
    """
    CREATE TRIGGER conv_counts_delete AFTER DELETE ON conversations BEGIN
      UPDATE conversation_counts SET n = n - 1
      WHERE inbox_id = OLD.inbox_id AND status = OLD.status
        AND assignee_id = COALESCE(OLD.assignee_id, 0);
    END
    """,
    """
    CREATE TRIGGER conv_counts_update AFTER UPDATE OF inbox_id, status, assignee_id ON conversations
    WHEN OLD.inbox_id IS NOT NEW.inbox_id OR OLD.status IS NOT NEW.status
      OR OLD.assignee_id IS NOT NEW.assignee_id
    BEGIN
      UPDATE conversation_counts SET n = n - 1
      WHERE inbox_id = OLD.inbox_id AND status = OLD.status
        AND assignee_id = COALESCE(OLD.assignee_id, 0);
      INSERT INTO conversation_counts (inbox_id, status, assignee_id, n)
      VALUES (NEW.inbox_id, NEW.status, COALESCE(NEW.assignee_id, 0), 1)
      ON CONFLICT (inbox_id, status, assignee_id) DO UPDATE SET n = n + 1;
    END
    """,
]

POSTGRESQL = [
    """
    CREATE OR REPLACE FUNCTION conv_counts_apply() RETURNS trigger AS $$
    BEGIN
      IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE conversation_counts SET n = n - 1
        WHERE inbox_id = OLD.inbox_id AND status = OLD.status
          AND assignee_id = COALESCE(OLD.assignee_id, 0);
      END IF;
      IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO conversation_counts (inbox_id, status, assignee_id, n)
        VALUES (NEW.inbox_id, NEW.status, COALESCE(NEW.assignee_id, 0), 1)
        ON CONFLICT (inbox_id, status, assignee_id)
        DO UPDATE SET n = conversation_counts.n + 1;
      END IF;
      RETURN NULL;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER conv_counts_insert AFTER INSERT OR DELETE ON conversations
    FOR EACH ROW EXECUTE FUNCTION conv_counts_apply()
    """,
    """
    CREATE TRIGGER conv_counts_update AFTER UPDATE OF inbox_id, status, assignee_id ON conversations
    FOR EACH ROW WHEN (OLD.inbox_id IS DISTINCT FROM NEW.inbox_id
      OR OLD.status IS DISTINCT FROM NEW.status OR OLD.assignee_id IS DISTINCT FROM NEW.assignee_id)
    EXECUTE FUNCTION conv_counts_apply()
    """,
]

DROP = {
    "sqlite": ["DROP TRIGGER IF EXISTS conv_counts_insert", "DROP TRIGGER IF EXISTS conv_counts_delete",
               "DROP TRIGGER IF EXISTS conv_counts_update"],
    "postgresql": ["DROP TRIGGER IF EXISTS conv_counts_insert ON conversations",
                   "DROP TRIGGER IF EXISTS conv_counts_update ON conversations",
                   "DROP FUNCTION IF EXISTS conv_counts_apply()"],
}


def upgrade():
    """The counts table, its triggers, and the counts of what exists already."""
    op.create_table('conversation_counts',
    sa.Column('inbox_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('inbox_id', 'status', 'assignee_id')
    )
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index('ix_conv_status_assignee_waiting',
                              ['status', 'assignee_id', 'waiting_since', 'id'], unique=False)
    bind = op.get_bind()
    for statement in POSTGRESQL if bind.dialect.name == "postgresql" else SQLITE:
        op.execute(statement)
    op.execute(
        "INSERT INTO conversation_counts (inbox_id, status, assignee_id, n) "
        "SELECT inbox_id, status, COALESCE(assignee_id, 0), COUNT(*) FROM conversations "
        "GROUP BY inbox_id, status, COALESCE(assignee_id, 0)"
    )


def downgrade():
    """Remove the triggers and the table."""
    for statement in DROP[op.get_bind().dialect.name]:
        op.execute(statement)
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conv_status_assignee_waiting')
    op.drop_table('conversation_counts')
