"""Invitation and password-reset mail: the outbox worker writes the link and sends it.

:mod:`app.inbox.accounts` queues an ``account_mail`` row naming the invitation
or reset (never its link); here the link is written again from the row and the
app's secret key (:mod:`app.models.account`) and mailed through the instance's
server (``NOTIFY_SMTP_URL``, ``NOTIFY_FROM``) with the one SMTP client, like
notification mail (:mod:`app.runtime.notify_mail`, whose message builder and
retry policy this shares). A refused or unreachable server is logged and
retried; the invitation shows the last error to admins.
"""

from __future__ import annotations

import logging

from flask import current_app
from flask_babel import force_locale, gettext

from app.backoff import backoff
from app.clock import now
from app.extensions import db
from app.inbox.accounts import INVITE_TTL, RESET_TTL, link_problem
from app.models import Invite, OutboxItem, PasswordReset, User
from app.runtime.notify_mail import MAX_EMAIL_ATTEMPTS, RETRY_BASE, TIMEOUT, build_email
from connectors.email.smtp import config_from_url, send_message

log = logging.getLogger(__name__)


def _locale(user: User | None) -> str:
    default = current_app.config.get("BABEL_DEFAULT_LOCALE", "en")
    return (user.locale if user is not None else None) or default


def invite_text(row: Invite, link: str, inviter: User | None, locale: str) -> tuple[str, str]:
    """Subject and body of an invitation, in ``locale`` (the inviter's language)."""
    with force_locale(locale):
        who = inviter.name if inviter is not None else gettext("An administrator")
        subject = gettext("{who} invited you to Switchboard").format(who=who)
        body = "\n".join(
            [
                gettext(
                    "{who} invited you to answer customers with the team in Switchboard."
                ).format(who=who),
                "",
                gettext("Open this link to choose your password and language:"),
                link,
                "",
                gettext("The link works once and for {days} days.").format(days=INVITE_TTL.days),
            ]
        )
    return f"[Switchboard] {subject}", body


def reset_text(link: str, locale: str) -> tuple[str, str]:
    """Subject and body of a password reset, in the user's language."""
    with force_locale(locale):
        subject = gettext("Choose a new password")
        body = "\n".join(
            [
                gettext("Someone asked to reset your Switchboard password."),
                "",
                gettext("Open this link to choose a new one:"),
                link,
                "",
                gettext(
                    "The link works once and for {minutes} minutes. Choosing a new password "
                    "signs you out everywhere else."
                ).format(minutes=int(RESET_TTL.total_seconds() // 60)),
                gettext("If it was not you, ignore this mail: your password stays as it is."),
            ]
        )
    return f"[Switchboard] {subject}", body


def _compose(session, payload: dict) -> tuple[object | None, str, str, str] | str:
    """(row, recipient, subject, body) for a queued mail, or why nothing is to be sent."""
    kind, base = payload.get("kind"), (payload.get("base_url") or "").rstrip("/")
    secret = current_app.config["SECRET_KEY"]
    if kind == "invite":
        row = session.get(Invite, payload.get("id"))
        if link_problem(row, now()):
            return "no longer pending"
        token = row.token(secret)
        if token is None:
            return "the link changed since (resent, or a new secret key)"
        inviter = session.get(User, row.invited_by_id) if row.invited_by_id else None
        subject, body = invite_text(row, f"{base}/invite/{token}", inviter, _locale(inviter))
        return row, row.email, subject, body
    if kind == "reset":
        row = session.get(PasswordReset, payload.get("id"))
        user = session.get(User, row.user_id) if row is not None else None
        if user is None or link_problem(row, now()):
            return "no longer usable"
        token = row.token(secret)
        if token is None:
            return "the link changed since (a new secret key)"
        subject, body = reset_text(f"{base}/reset/{token}", _locale(user))
        return row, user.email, subject, body
    return f"unknown kind {kind!r}"


def process(item: OutboxItem) -> None:
    """The outbox worker's handler for ``account_mail`` rows."""
    session = db.session
    item.attempts = (item.attempts or 0) + 1
    composed = _compose(session, item.payload or {})
    if isinstance(composed, str):
        item.state, item.claimed_by, item.last_error = "done", None, f"skipped: {composed}"
        session.commit()
        return
    row, to, subject, body = composed
    cfg = current_app.config
    sender = cfg.get("NOTIFY_FROM") or "switchboard@localhost"
    error = None
    try:
        server = config_from_url(cfg.get("NOTIFY_SMTP_URL") or "", sender)
    except ValueError as exc:
        error = f"NOTIFY_SMTP_URL: {exc}"
    else:
        session.commit()  # release the database while the SMTP server answers
        result = send_message(server, build_email(sender, to, subject, body), [to], TIMEOUT)
        if result.error is not None:
            error = result.error.message or "The SMTP server refused the mail."
    if isinstance(row, Invite):
        row.mailed_at, row.mail_error = (now(), None) if error is None else (None, error[:500])
    if error is None:
        item.state, item.claimed_by, item.last_error = "done", None, None
    else:
        log.warning(
            "%s mail to %s failed (attempt %s): %s",
            item.payload.get("kind"),
            to,
            item.attempts,
            error,
        )
        item.last_error, item.claimed_by = error[:500], None
        if item.attempts >= MAX_EMAIL_ATTEMPTS:
            item.state = "failed"
        else:
            item.state = "pending"
            item.next_attempt_at = now() + backoff(item.attempts, RETRY_BASE)
    session.commit()
