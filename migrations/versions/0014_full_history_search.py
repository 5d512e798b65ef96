"""Full-history search: every message's text, names, addresses and subjects, indexed

Revision ID: 0014
Revises: 0017
Create Date: 2026-12-06 08:40:00

The list's search reads indexes kept in step with the rows by the database itself,
whatever writes them (the ORM, a bulk seed, erasure, a merge, an SQL console).

SQLite (FTS5): words of every message but activity lines, contact names and
subjects, with ``unicode61 remove_diacritics 2`` (case and accents ignored: "noel"
finds "Noël"), read through external content so the text is stored once; a
contact's addresses (identities, e-mail, phone) in a trigram index, where any
part of a number or address matters ("0123987" finds "+15550123987").

PostgreSQL: full text over the messages with a ``simple`` configuration that
strips accents (``unaccent``), so any language works, in a stored generated column
(``messages.search_vector``, GIN-indexed); trigram indexes on the
accent-folded names and subjects and on the addresses (pg_trgm, as 0007). The
trigram index on the conversations' last message (0007) gives way to the message
index.
"""

from alembic import op

revision = "0014"
down_revision = "0017"
branch_labels = None
depends_on = None

_HANDLES = """
    DELETE FROM search_handles WHERE rowid = {id};
    INSERT INTO search_handles (rowid, handles)
    SELECT c.id, COALESCE(c.email, '') || ' ' || COALESCE(c.phone, '') || ' ' ||
           COALESCE((SELECT group_concat(i.external_id, ' ') FROM contact_identities i
                     WHERE i.contact_id = c.id), '')
    FROM contacts c WHERE c.id = {id};
"""


def _external(name: str, table: str, column: str, when: str = "1") -> list[str]:
    """An FTS5 index over ``table.column`` (external content) and the triggers keeping it."""
    new_when = when.replace("ROW.", "NEW.")
    old_when = when.replace("ROW.", "OLD.")
    add = f"INSERT INTO {name} (rowid, {column}) SELECT NEW.id, NEW.{column} WHERE {new_when};"
    drop = (
        f"INSERT INTO {name} ({name}, rowid, {column}) "
        f"SELECT 'delete', OLD.id, OLD.{column} WHERE {old_when};"
    )
    watched = column if when == "1" else f"{column}, direction"
    return [
        f"CREATE VIRTUAL TABLE {name} USING fts5({column}, content='{table}', "
        "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
        f"CREATE TRIGGER {name}_insert AFTER INSERT ON {table} BEGIN {add} END",
        f"CREATE TRIGGER {name}_delete AFTER DELETE ON {table} BEGIN {drop} END",
        f"CREATE TRIGGER {name}_update AFTER UPDATE OF {watched} ON {table} BEGIN {drop} {add} END",
        f"INSERT INTO {name} (rowid, {column}) "
        f"SELECT id, {column} FROM {table} WHERE {when.replace('ROW.', '')}",
    ]


SQLITE = [
    *_external("search_messages", "messages", "body", "ROW.direction <> 'activity'"),
    *_external("search_names", "contacts", "name"),
    *_external("search_subjects", "conversations", "subject"),
    "CREATE VIRTUAL TABLE search_handles USING fts5(handles, tokenize='trigram')",
    "CREATE TRIGGER search_handles_contact_insert AFTER INSERT ON contacts "
    f"BEGIN {_HANDLES.format(id='NEW.id')} END",
    "CREATE TRIGGER search_handles_contact_update AFTER UPDATE OF email, phone ON contacts "
    f"BEGIN {_HANDLES.format(id='NEW.id')} END",
    "CREATE TRIGGER search_handles_contact_delete AFTER DELETE ON contacts "
    "BEGIN DELETE FROM search_handles WHERE rowid = OLD.id; END",
    "CREATE TRIGGER search_handles_identity_insert AFTER INSERT ON contact_identities "
    f"BEGIN {_HANDLES.format(id='NEW.contact_id')} END",
    "CREATE TRIGGER search_handles_identity_delete AFTER DELETE ON contact_identities "
    f"BEGIN {_HANDLES.format(id='OLD.contact_id')} END",
    "CREATE TRIGGER search_handles_identity_update "
    "AFTER UPDATE OF external_id, contact_id ON contact_identities "
    f"BEGIN {_HANDLES.format(id='OLD.contact_id')} {_HANDLES.format(id='NEW.contact_id')} END",
    "INSERT INTO search_handles (rowid, handles) "
    "SELECT c.id, COALESCE(c.email, '') || ' ' || COALESCE(c.phone, '') || ' ' || "
    "COALESCE((SELECT group_concat(i.external_id, ' ') FROM contact_identities i "
    "WHERE i.contact_id = c.id), '') FROM contacts c",
]

SQLITE_DROP = [
    *(
        f"DROP TRIGGER IF EXISTS {name}_{op_}"
        for name in ("search_messages", "search_names", "search_subjects")
        for op_ in ("insert", "delete", "update")
    ),
    *(
        f"DROP TRIGGER IF EXISTS search_handles_{what}"
        for what in (
            "contact_insert",
            "contact_update",
            "contact_delete",
            "identity_insert",
            "identity_delete",
            "identity_update",
        )
    ),
    *(
        f"DROP TABLE IF EXISTS {name}"
        for name in ("search_messages", "search_names", "search_subjects", "search_handles")
    ),
]

POSTGRESQL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    "CREATE TEXT SEARCH CONFIGURATION sb_search (COPY = pg_catalog.simple)",
    "ALTER TEXT SEARCH CONFIGURATION sb_search "
    "ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple",
    # unaccent() is only STABLE (its dictionary could change): an index needs IMMUTABLE
    """
    CREATE FUNCTION sb_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT lower(unaccent('unaccent'::regdictionary, $1)) $$
    """,
    # stored, so that a common word is checked row by row as cheaply as the index finds a rare one
    "ALTER TABLE messages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
    "(CASE WHEN direction <> 'activity' THEN to_tsvector('sb_search'::regconfig, body) END) STORED",
    "CREATE INDEX ix_messages_search ON messages USING gin (search_vector)",
    "DROP INDEX IF EXISTS ix_conv_last_body_trgm",
    "DROP INDEX IF EXISTS ix_contacts_name_trgm",
    "DROP INDEX IF EXISTS ix_conv_subject_trgm",
    "CREATE INDEX ix_contacts_name_fold_trgm ON contacts USING gin (sb_fold(name) gin_trgm_ops)",
    "CREATE INDEX ix_conv_subject_fold_trgm ON conversations "
    "USING gin (sb_fold(subject) gin_trgm_ops)",
    "CREATE INDEX ix_contacts_email_trgm ON contacts USING gin (email gin_trgm_ops)",
    "CREATE INDEX ix_contacts_phone_trgm ON contacts USING gin (phone gin_trgm_ops)",
]

POSTGRESQL_DROP = [
    "DROP INDEX IF EXISTS ix_contacts_phone_trgm",
    "DROP INDEX IF EXISTS ix_contacts_email_trgm",
    "DROP INDEX IF EXISTS ix_conv_subject_fold_trgm",
    "DROP INDEX IF EXISTS ix_contacts_name_fold_trgm",
    "DROP INDEX IF EXISTS ix_messages_search",
    "ALTER TABLE messages DROP COLUMN IF EXISTS search_vector",
    "DROP FUNCTION IF EXISTS sb_fold(text)",
    "DROP TEXT SEARCH CONFIGURATION IF EXISTS sb_search",
    "CREATE INDEX IF NOT EXISTS ix_conv_subject_trgm ON conversations "
    "USING gin (subject gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_conv_last_body_trgm ON conversations "
    "USING gin (last_message_body gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_contacts_name_trgm ON contacts USING gin (name gin_trgm_ops)",
]


def upgrade():
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE, "postgresql": POSTGRESQL}.get(dialect, []):
        op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE_DROP, "postgresql": POSTGRESQL_DROP}.get(dialect, []):
        op.execute(statement)
