"""What the database holds beyond the models, and how autogenerate leaves it alone."""

from __future__ import annotations

#: PostgreSQL only (migration 0007): GIN trigram indexes behind the conversation search.
#: The models cannot declare an index for one dialect without autogenerate wanting it
#: on the other, so the migration owns them.
TRIGRAM_INDEXES = frozenset(
    {
        "ix_conv_subject_trgm",
        "ix_conv_last_body_trgm",
        "ix_contacts_name_trgm",
        "ix_identities_external_trgm",
    }
)


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's autogenerate filter: compare everything but the migration-owned indexes."""
    return not (type_ == "index" and name in TRIGRAM_INDEXES)
