"""The audit trail: who did what to which record, for data-protection requests and merges."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import iso, now
from app.extensions import db
from app.models.types import JSONType, UTCDateTime


class AuditLine(db.Model):
    """One recorded action (``contact.export``, ``contact.erase``, ``contact.merge``).

    ``details`` holds counts and ids, never the personal data the action was about:
    an erasure's audit line must not keep what it erased. ``user_name`` stays when
    the user is deleted later.
    """

    __tablename__ = "audit_lines"
    __table_args__ = (sa.Index("ix_audit_subject", "subject_type", "subject_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(sa.String(40))
    subject_type: Mapped[str] = mapped_column(sa.String(40))
    subject_id: Mapped[int] = mapped_column()
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    user_name: Mapped[str | None] = mapped_column(sa.String(200))
    details: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    def to_dict(self) -> dict:
        """The API's audit line."""
        return {
            "id": self.id,
            "action": self.action,
            "subject": {"type": self.subject_type, "id": self.subject_id},
            "user": {"id": self.user_id, "name": self.user_name},
            "details": self.details or {},
            "created_at": iso(self.created_at),
        }
