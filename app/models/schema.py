"""What the database holds beyond the models, and how autogenerate leaves it alone."""

from __future__ import annotations

#: PostgreSQL only (migrations 0007 and 0014): GIN indexes behind the conversation search,
#: trigram on names, subjects and addresses, full text on the messages. The models cannot
#: declare an index for one dialect without autogenerate wanting it on the other, so the
#: migrations own them.
TRIGRAM_INDEXES = frozenset(
    {
        "ix_conv_subject_fold_trgm",
        "ix_contacts_name_fold_trgm",
        "ix_contacts_email_trgm",
        "ix_contacts_phone_trgm",
        "ix_identities_external_trgm",
    }
)
SEARCH_INDEXES = TRIGRAM_INDEXES | {"ix_messages_search"}

#: SQLite only (migration 0014): the FTS5 tables (and their shadow tables) of the search.
SEARCH_TABLE_PREFIX = "search_"
#: PostgreSQL only (migration 0014): the messages' generated full-text column.
SEARCH_COLUMNS = frozenset({("messages", "search_vector")})


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's autogenerate filter: compare everything but the migration-owned search."""
    if type_ == "index" and name in SEARCH_INDEXES:
        return False
    if type_ == "column" and reflected:
        return (obj.table.name, name) not in SEARCH_COLUMNS
    return not (type_ == "table" and reflected and name.startswith(SEARCH_TABLE_PREFIX))
