"""One-time links: invitations to join the team, and password resets.

A link's token is never stored. Each row keeps a random ``nonce``; the token is
an HMAC of the row's kind, id and nonce under the app's secret key, so the worker
that mails the link can write it again from the row (nothing secret waits in the
outbox), while someone who reads the database alone cannot. The row also keeps the
token's SHA-256 (``token_hash``) to find it when the link is opened. Giving a row a
new nonce (resending an invitation) kills the old link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import aware, now
from app.extensions import db
from app.models.types import UTCDateTime
from app.models.user import hash_token


class _OneTimeLink:
    """What invitations and resets share: the nonce, the token derived from it, its hash."""

    KIND = ""

    id: Mapped[int]
    nonce: Mapped[str]
    token_hash: Mapped[str]
    expires_at: Mapped[datetime]

    def _derive(self, secret: str | bytes) -> str:
        key = secret.encode() if isinstance(secret, str) else secret
        mac = hmac.new(key, f"{self.KIND}:{self.id}:{self.nonce}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")

    def new_token(self, secret: str | bytes) -> str:
        """Give the row a fresh link (the old one dies); returns its token. Needs the id."""
        self.nonce = secrets.token_hex(16)
        token = self._derive(secret)
        self.token_hash = hash_token(token)
        return token

    def token(self, secret: str | bytes) -> str | None:
        """The row's current token, written again (None if the secret key changed since)."""
        token = self._derive(secret)
        return token if hmac.compare_digest(hash_token(token), self.token_hash) else None

    def expired(self, at: datetime | None = None) -> bool:
        """True once the link's time is up."""
        return aware(self.expires_at) <= (at or now())


class Invite(_OneTimeLink, db.Model):
    """An invitation by email: the person opens the link and sets their own password."""

    __tablename__ = "invites"
    KIND = "invite"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), index=True)
    name: Mapped[str | None] = mapped_column(sa.String(120))
    role: Mapped[str] = mapped_column(sa.String(16), default="agent")
    invited_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    nonce: Mapped[str] = mapped_column(sa.String(32), default="")
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)  # this link's time
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    mailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mail_error: Mapped[str | None] = mapped_column(sa.String(500))
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def pending(self) -> bool:
        """Neither accepted nor revoked (it may have expired: a resend renews it)."""
        return self.accepted_at is None and self.revoked_at is None


class PasswordReset(_OneTimeLink, db.Model):
    """A "forgot password" link for one user; used once, short-lived."""

    __tablename__ = "password_resets"
    KIND = "reset"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    nonce: Mapped[str] = mapped_column(sa.String(32), default="")
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
