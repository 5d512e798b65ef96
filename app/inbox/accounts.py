"""Joining the team and getting back in: invitations and password resets.

An admin invites someone by email; the invitation holds a one-time link valid
:data:`INVITE_TTL` where the person chooses their password and language and
becomes a user. Someone who forgot their password asks for a link valid
:data:`RESET_TTL`. The links are mailed by the outbox worker (an
``account_mail`` row that names the invitation or reset, never the link: see
:mod:`app.models.account`), so a refused SMTP server is retried and logged.
The caller says whether mail is configured; without it the invitation's link is
handed back to the admin, and a reset is only written down for the operator.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Invite, OutboxItem, PasswordReset, User
from app.models.user import ROLES, hash_token, password_problem

INVITE_TTL = timedelta(days=7)
RESET_TTL = timedelta(hours=1)
MAIL_KIND = "account_mail"  # the outbox row that mails a link


class AccountError(Exception):
    """A request about invitations the caller must refuse (``status``, ``code``, message)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Issued:
    """An invitation just made or renewed: the row, its link's token, whether it is new."""

    invite: Invite
    token: str
    created: bool


def _queue_mail(session: Session, kind: str, row_id: int, base_url: str, at: datetime) -> None:
    session.add(
        OutboxItem(
            kind=MAIL_KIND,
            payload={"kind": kind, "id": row_id, "base_url": base_url},
            next_attempt_at=at,
        )
    )


def _email_taken(session: Session, email: str) -> bool:
    return session.scalar(sa.select(User.id).where(sa.func.lower(User.email) == email)) is not None


def pending_invite(session: Session, email: str) -> Invite | None:
    """The pending invitation for ``email`` (normalized), if any."""
    return session.scalar(
        sa.select(Invite).where(
            Invite.email == email, Invite.accepted_at.is_(None), Invite.revoked_at.is_(None)
        )
    )


def invite(
    session: Session,
    *,
    email: str,
    role: str,
    name: str | None,
    by: User,
    at: datetime,
    secret: str,
    mail: bool,
    base_url: str,
) -> Issued:
    """Invite ``email`` (normalized) with ``role``; a second invitation renews the first.

    Raises :class:`AccountError` for an address already on the team or a bad role.
    """
    if "@" not in email or len(email) > 254:
        raise AccountError(422, "invalid", "email must be an email address.")
    if role not in ROLES:
        raise AccountError(422, "invalid", "role must be agent, lead or admin.")
    if _email_taken(session, email):
        raise AccountError(
            409, "already_member", "Someone on the team already uses that email address."
        )
    row = pending_invite(session, email)
    created = row is None
    if row is None:
        row = Invite(
            email=email, created_at=at, expires_at=at + INVITE_TTL, token_hash=secrets.token_hex(32)
        )
        session.add(row)
    row.role, row.invited_by_id = role, by.id
    if name:
        row.name = name[:120]
    session.flush()
    return Issued(row, _renew(session, row, at, secret, mail, base_url), created)


def _renew(
    session: Session, row: Invite, at: datetime, secret: str, mail: bool, base_url: str
) -> str:
    token = row.new_token(secret)
    row.sent_at, row.expires_at = at, at + INVITE_TTL
    row.mailed_at, row.mail_error = None, None
    if mail:
        _queue_mail(session, "invite", row.id, base_url, at)
    return token


def resend(
    session: Session, row: Invite, at: datetime, secret: str, mail: bool, base_url: str
) -> str:
    """A new link for a pending invitation (the old one dies), valid another 7 days."""
    if not row.pending:
        raise AccountError(409, "not_pending", "This invitation was already accepted or revoked.")
    if _email_taken(session, row.email):
        raise AccountError(
            409, "already_member", "Someone on the team already uses that email address."
        )
    return _renew(session, row, at, secret, mail, base_url)


def revoke(row: Invite, at: datetime) -> None:
    """Withdraw a pending invitation: its link stops working."""
    if not row.pending:
        raise AccountError(409, "not_pending", "This invitation was already accepted or revoked.")
    row.revoked_at = at


def pending_invites(session: Session) -> list[Invite]:
    """Invitations neither accepted nor revoked, the newest first (expired ones included)."""
    return list(
        session.scalars(
            sa.select(Invite)
            .where(Invite.accepted_at.is_(None), Invite.revoked_at.is_(None))
            .order_by(Invite.sent_at.desc(), Invite.id.desc())
        )
    )


def find_link(session: Session, model, token: str | None):
    """The invitation or reset whose link carries ``token``, whatever its state (or None)."""
    if not token or len(token) > 100:
        return None
    return session.scalar(sa.select(model).where(model.token_hash == hash_token(token)))


def link_problem(row, at: datetime) -> str | None:
    """Why an invitation or reset link cannot be used: ``unknown``, ``used``, ``revoked``,
    ``expired``; None when it can."""
    if row is None:
        return "unknown"
    if isinstance(row, Invite):
        if row.accepted_at is not None:
            return "used"
        if row.revoked_at is not None:
            return "revoked"
    elif row.used_at is not None:
        return "used"
    if row.expired(at):
        return "expired"
    return None


def accept(
    session: Session, row: Invite, *, name: str, password: str, locale: str, at: datetime
) -> User:
    """The invited person joins: a user with their own password and language.

    Raises :class:`AccountError` (422) for a weak password or a missing name, and
    (409) when the address joined the team meanwhile.
    """
    name = (name or "").strip()[:120]
    if not name:
        raise AccountError(422, "invalid", "name is required.")
    if password_problem(password, row.email):
        raise AccountError(422, "weak_password", password_problem(password, row.email))
    if _email_taken(session, row.email):
        raise AccountError(
            409, "already_member", "Someone on the team already uses that email address."
        )
    user = User(email=row.email, name=name, role=row.role, locale=locale, created_at=at)
    user.set_password(password)
    session.add(user)
    session.flush()
    row.accepted_at, row.user_id = at, user.id
    return user


def request_reset(
    session: Session, email: str, at: datetime, secret: str, mail: bool, base_url: str
) -> PasswordReset | None:
    """A reset link for the active user with ``email``, mailed when ``mail``; None if nobody.

    Earlier unused links of that user die: only the newest works.
    """
    user = session.scalar(
        sa.select(User).where(sa.func.lower(User.email) == email, User.active.is_(True))
    )
    if user is None:
        return None
    session.execute(
        sa.delete(PasswordReset).where(
            PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None)
        )
    )
    row = PasswordReset(
        user_id=user.id, created_at=at, expires_at=at + RESET_TTL, token_hash=secrets.token_hex(32)
    )
    session.add(row)
    session.flush()
    row.new_token(secret)
    if mail:
        _queue_mail(session, "reset", row.id, base_url, at)
    return row


def complete_reset(session: Session, row: PasswordReset, password: str, at: datetime) -> User:
    """Set the new password and use the link up (with any other link of the user).

    Raises :class:`AccountError` (422) for a weak password. The caller ends the
    user's sign-ins, commits, and sends ``access_changed`` so live sockets close.
    """
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise AccountError(410, "gone", "This account is no longer active.")
    problem = password_problem(password, user.email)
    if problem:
        raise AccountError(422, "weak_password", problem)
    user.set_password(password)
    row.used_at = at
    session.execute(
        sa.delete(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.id != row.id)
    )
    return user
