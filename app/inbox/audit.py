"""The audit trail of contacts: exports, erasures and merges, one line each. No Flask here."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import now
from app.models import AuditLine, User


def record(
    session: Session, action: str, contact_id: int, user: User | None, **details
) -> AuditLine:
    """Write an audit line about contact ``contact_id``; ``details`` are counts and ids only."""
    line = AuditLine(
        action=action,
        subject_type="contact",
        subject_id=contact_id,
        user_id=user.id if user else None,
        user_name=user.name if user else None,
        details=details,
        created_at=now(),
    )
    session.add(line)
    return line


def lines(session: Session, contact_id: int) -> list[AuditLine]:
    """The audit lines about a contact, oldest first."""
    return list(
        session.scalars(
            sa.select(AuditLine)
            .where(AuditLine.subject_type == "contact", AuditLine.subject_id == contact_id)
            .order_by(AuditLine.id)
        )
    )
