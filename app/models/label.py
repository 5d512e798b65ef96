"""Labels ("refund", "VIP", "bug") and which conversations carry them."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import now
from app.extensions import db
from app.models.types import UTCDateTime


class Label(db.Model):
    """A label the team puts on conversations; leads and admins keep the list.

    Names are unique whatever their case: ``name_key`` is the case-folded name
    ("VIP" and "vip" are one label), which the API also matches names by.
    """

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(40))
    name_key: Mapped[str] = mapped_column(sa.String(160), unique=True)
    color: Mapped[str] = mapped_column(sa.String(7))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    def to_dict(self) -> dict:
        """The API's label object."""
        return {"id": self.id, "name": self.name, "color": self.color}


#: Which conversation carries which label. Looked up both ways: a conversation's
#: labels (the primary key) and a label's conversations (the list's filter).
conversation_labels = sa.Table(
    "conversation_labels",
    db.metadata,
    sa.Column(
        "conversation_id",
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("label_id", sa.ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False, default=now),
    sa.Index("ix_conversation_labels_label", "label_id", "conversation_id"),
)
