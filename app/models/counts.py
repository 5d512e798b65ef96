"""Maintained conversation counts, kept exact by database triggers.

The list's Mine / Unassigned / All counts read this small table instead of
counting conversations on every request. Triggers (created by migration 0004) update
it on every insert, update and delete of a conversation, whatever wrote it
(ORM, bulk seed, SQL console), on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db


class ConversationCount(db.Model):
    """How many conversations an inbox has per status and assignee (0 = unassigned)."""

    __tablename__ = "conversation_counts"

    inbox_id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    assignee_id: Mapped[int] = mapped_column(primary_key=True)
    n: Mapped[int] = mapped_column(default=0)
