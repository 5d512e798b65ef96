"""Users (agents, team leads, admins) and their API tokens."""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from app.clock import iso, now
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
    # languages the user speaks with customers (ISO 639-1): automatic assignment prefers them
    languages: Mapped[list | None] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    online_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # live presence heartbeat

    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )
    login_key = None  # (not a column) the sign-in this request belongs to (see LoginSession)

    def get_id(self) -> str:  # Flask-Login: what the session and remember cookies carry
        """``<user id>:<sign-in key>``: revoking the sign-in makes both cookies worthless."""
        return f"{self.id}:{self.login_key}" if self.login_key else f"{self.id}:-"

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
            "languages": list(self.languages or []),
        }


MIN_PASSWORD_LENGTH = 10


@functools.cache
def _common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords (zxcvbn's list, from real leaks)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problem(password: str, email: str | None = None) -> str | None:
    """Why ``password`` may not be used (a sentence for the person choosing it), or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"The password needs at least {MIN_PASSWORD_LENGTH} characters."
    lowered = password.lower()
    if lowered in _common_passwords() or len(set(lowered)) < 3:
        return "That password is one of the most common ones: choose another."
    if email and lowered in {email.lower(), email.split("@")[0].lower()}:
        return "The password must not be your email address."
    return None


# compared against when the email is unknown, so a wrong email costs as long as a wrong password
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16))


def check_login(user: User | None, password: str) -> bool:
    """True when ``user`` may sign in with ``password``; the same work whether or not they exist."""
    if user is None or not user.password_hash:
        check_password_hash(_DUMMY_HASH, password)
        return False
    return user.check_password(password) and user.active


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

    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="tokens")

    @classmethod
    def issue(
        cls, user: User, name: str = "api", expires_at: datetime | None = None
    ) -> tuple[ApiToken, str]:
        """Create a token for ``user``; returns the row and the clear token."""
        clear = "sb_" + secrets.token_urlsafe(32)
        row = cls(user=user, token_hash=hash_token(clear), name=name, expires_at=expires_at)
        return row, clear

    def to_dict(self) -> dict:
        """The API's token object (never the token itself)."""
        return {
            "id": self.id,
            "name": self.name,
            "created_at": iso(self.created_at),
            "last_used_at": iso(self.last_used_at),
            "expires_at": iso(self.expires_at),
        }


class LoginSession(db.Model):
    """One sign-in of a user in a browser: its key is in the session and remember cookies.

    Signing out deletes the row, so a copied cookie stops working; a password
    change, a deactivation or "sign out everywhere" deletes all of the user's.
    """

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    user_agent: Mapped[str | None] = mapped_column(sa.String(200))

    @classmethod
    def start(cls, user: User, user_agent: str | None = None) -> tuple[LoginSession, str]:
        """A new sign-in for ``user``; returns the row and the clear key."""
        clear = secrets.token_urlsafe(24)
        row = cls(user_id=user.id, key_hash=hash_token(clear), user_agent=(user_agent or "")[:200])
        return row, clear
