"""Notification mail: the worker writes it in the user's language and sends it.

The domain (:mod:`app.inbox.notifications`) decides who is notified and queues
a ``notify_email`` outbox row; the outbox worker hands the row to
:func:`process_email`, which mails it only if it is still useful (unread, the
user still not online). The text is translated with Flask-Babel, links to the
conversation at the public base URL (``app.urls``) and goes out through the instance's server
(``NOTIFY_SMTP_URL``, ``NOTIFY_FROM``) with the one SMTP client,
:mod:`connectors.email.smtp`.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app
from flask_babel import force_locale, gettext
from sqlalchemy.orm import Session

from app import urls
from app.backoff import backoff
from app.clock import iso, now
from app.extensions import db
from app.inbox.notifications import KINDS, MailSettings, is_online, user_settings
from app.models import Conversation, Notification, OutboxItem, User
from connectors.email.smtp import config_from_url, send_message

log = logging.getLogger(__name__)

MAX_EMAIL_ATTEMPTS = 5
RETRY_BASE = 120.0  # seconds after the first failure, doubled after each (app.backoff)
TIMEOUT = 20.0  # seconds for the SMTP server


def mail_settings() -> MailSettings:
    """The running app's notification mail settings (``NOTIFY_SMTP_URL``, ``NOTIFY_EMAIL_DELAY``)."""
    cfg = current_app.config
    return MailSettings(
        enabled=bool(cfg.get("NOTIFY_SMTP_URL")),
        delay=float(cfg.get("NOTIFY_EMAIL_DELAY", 120)),
    )


class NotSent(Exception):
    """The SMTP server did not take the mail (the row is retried)."""


#: What a notification says in another language than English: one line per kind, the same
#: as the bell shows (app/static/js/shell.js); the English text has the details.
_KIND_TEXT = {
    "assigned": lambda d: gettext("{who} assigned a conversation to you").format(
        who=d.get("by") or gettext("Someone")
    ),
    "new_conversation": lambda d: gettext("A new conversation arrived in your inboxes"),
    "window_closing": lambda d: gettext("A reply window is closing soon"),
    "response_due_soon": lambda d: gettext("A response target is near"),
    "response_overdue": lambda d: gettext("A reply is overdue"),
    "follow_up": lambda d: gettext("A customer has not answered since your reply"),
    "returned_to_queue": lambda d: gettext(
        "Your conversation went back to the queue while you were away"
    ),
    "mention": lambda d: gettext("{who} mentioned you").format(
        who=d.get("by") or gettext("Someone")
    ),
    "inbox_failing": lambda d: gettext("{inbox} stopped working").format(
        inbox=d.get("inbox_name") or gettext("An inbox")
    ),
    "inbox_recovered": lambda d: gettext("{inbox} works again").format(
        inbox=d.get("inbox_name") or gettext("An inbox")
    ),
    "client_secret_expiring": lambda d: gettext(
        "The {provider} sign-in app's client secret expires on {date}"
    ).format(provider=d.get("provider") or "", date=d.get("expires") or ""),
}


def email_text(note: Notification, conv: Conversation | None, locale: str) -> tuple[str, str]:
    """Subject and body of a notification mail, in the recipient's language."""
    data = note.data or {}
    with force_locale(locale):
        if data.get("text") and (locale.startswith("en") or note.kind not in _KIND_TEXT):
            text = data["text"]
        elif note.kind in _KIND_TEXT:
            text = _KIND_TEXT[note.kind](data)
        else:
            text = KINDS.get(note.kind, (note.kind,))[0]
        lines = [text, ""]
        if data.get("excerpt"):  # a mention: what the note says
            lines += [f"> {data['excerpt']}", ""]
        base = urls.public_base_url(
            current_app.config, seen=urls.seen_base_url(current_app.extensions)
        )
        if conv is not None:
            lines.append(
                gettext("Conversation #{id} in {inbox}").format(id=conv.id, inbox=conv.inbox.name)
            )
            anchor = f"&m={data['message_id']}" if data.get("message_id") else ""
            lines.append(f"{base}/#c={conv.id}{anchor}")
        elif data.get("url"):  # an inbox's page (its reconnect form)
            lines.append(f"{base}{data['url']}")
        lines += [
            "",
            gettext("You get this because you were not online in Switchboard."),
            gettext(
                "Choose which notifications are mailed to you under your notification settings."
            ),
        ]
    subject = text.replace("\u2068", "").replace("\u2069", "")  # some mail apps draw boxes
    return f"[Switchboard] {subject}", "\n".join(lines)


def build_email(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    """The plain-text notification mail (``Auto-Submitted``: nobody should answer it)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].strip(">") or None)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body)
    return msg


def send_email(session: Session, note: Notification) -> str:
    """Mail one notification if still useful; returns ``sent`` or why it was skipped.

    Raises :class:`NotSent` when the SMTP server did not take it.
    """
    user = session.get(User, note.user_id)
    if user is None or not user.email or not user.active:
        return "no_recipient"
    if note.read_at is not None and user_settings(user).get(note.kind, {}).get("in_app", True):
        return "already_read"
    if is_online(user):
        return "online"
    cfg = current_app.config
    url = cfg.get("NOTIFY_SMTP_URL")
    if not url:
        return "not_configured"
    conv = session.get(Conversation, note.conversation_id) if note.conversation_id else None
    locale = user.locale or cfg.get("BABEL_DEFAULT_LOCALE", "en")
    subject, body = email_text(note, conv, locale)
    sender = cfg.get("NOTIFY_FROM") or "switchboard@localhost"
    try:
        server = config_from_url(url, sender)
    except ValueError as exc:
        raise ValueError(f"NOTIFY_SMTP_URL: {exc}") from exc
    result = send_message(
        server, build_email(sender, user.email, subject, body), [user.email], TIMEOUT
    )
    if result.error is not None:
        raise NotSent(result.error.message)
    return "sent"


def process_email(item: OutboxItem) -> None:
    """The outbox worker's handler for ``notify_email`` rows."""
    session = db.session
    note = session.get(Notification, (item.payload or {}).get("notification_id"))
    item.attempts = (item.attempts or 0) + 1
    try:
        outcome = "gone" if note is None else send_email(session, note)
    except NotSent as exc:
        log.warning("notification mail failed: %s", exc)
        if item.attempts >= MAX_EMAIL_ATTEMPTS:
            item.state, item.last_error, item.claimed_by = "failed", str(exc)[:500], None
        else:
            item.state, item.claimed_by = "pending", None
            item.last_error = str(exc)[:500]
            item.next_attempt_at = now() + backoff(item.attempts, RETRY_BASE)
        session.commit()
        return
    if note is not None and outcome == "sent":
        note.data = {**(note.data or {}), "emailed_at": iso(now())}
    item.state, item.claimed_by = "done", None
    item.last_error = None if outcome == "sent" else f"skipped: {outcome}"
    session.commit()
