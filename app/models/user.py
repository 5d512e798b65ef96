"""Users (agents, team leads, admins) and their API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from app.clock import now
from app.extensions import db
from app.models.types import JSONType, UTCDateTime

ROLES = ("agent", "lead", "admin")
AVAILABILITY = ("online", "away", "busy")


class User(UserMixin, db.Model):
    """A person who works in the inbox."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    password_hash: Mapped[str | None] = mapped_column(sa.String(256))
    role: Mapped[str] = mapped_column(sa.String(16), default="agent")
    availability: Mapped[str] = mapped_column(sa.String(16), default="online")
    capacity: Mapped[int] = mapped_column(default=20)
    locale: Mapped[str | None] = mapped_column(sa.String(8))
    avatar_url: Mapped[str | None] = mapped_column(sa.String(500))
    active: Mapped[bool] = mapped_column(default=True)
    settings: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    online_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # live presence heartbeat

    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    def set_password(self, password: str) -> None:
        """Store a salted hash of ``password``."""
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        """True when ``password`` matches the stored hash."""
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    @property
    def is_lead(self) -> bool:
        """Team leads and admins see every inbox and assign to anyone."""
        return self.role in ("lead", "admin")

    @property
    def is_admin(self) -> bool:
        """Admins manage inboxes and users."""
        return self.role == "admin"

    @property
    def is_active(self) -> bool:  # Flask-Login
        """Deactivated users cannot log in."""
        return self.active

    def to_dict(self) -> dict:
        """The API's user object."""
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "role": self.role,
            "availability": self.availability,
            "capacity": self.capacity,
            "avatar_url": self.avatar_url,
        }


def hash_token(token: str) -> str:
    """API tokens are stored as SHA-256 digests; the token itself is shown once."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(db.Model):
    """A bearer token for the JSON API and Socket.IO, stored hashed."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(80), default="api")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="tokens")

    @classmethod
    def issue(cls, user: User, name: str = "api") -> tuple[ApiToken, str]:
        """Create a token for ``user``; returns the row and the clear token."""
        clear = "sb_" + secrets.token_urlsafe(32)
        row = cls(user=user, token_hash=hash_token(clear), name=name)
        return row, clear
