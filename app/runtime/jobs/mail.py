"""IMAP polling: the scheduled job that fetches new mail for every email inbox with IMAP.

Per inbox, ``inbox.state["imap"]`` holds::

    {"cursor": {"folder": "INBOX", "uidvalidity": 1700000000, "last_uid": 4711},
     "last_ok_at": "...", "last_error": "...", "last_error_at": "...",
     "failures": 0, "retry_at": "..."}

Each run fetches mail after the cursor (``BODY.PEEK[]``: nothing is marked
read), stores it in thread order and saves the advanced cursor in the same
transaction as the mail, so the cursor moves only once the mail is committed:
nothing is missed, nothing re-read. A run takes at most ``max_batches``
batches per inbox and goes on next time.

A failure (server down, login refused, database error) is shown on the inbox
(``last_error``/``last_error_at``, and in ``state["imap"]``) and the inbox is
skipped until ``retry_at``, doubling the pause on every failure in a row (30 s
up to 30 min). The next successful poll clears the error. A refused login, or
three failed polls in a row, opens an incident (:mod:`app.inbox.health`: admins
are told once); the next successful poll closes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from app import channels
from app.backoff import backoff
from app.clock import aware, now
from app.connections import connector_options, live_config
from app.extensions import db
from app.inbox import health
from app.inbox.email_ingest import ingest_raw, keep_unreadable
from app.inbox.ingest import IngestResult
from app.models import Inbox
from connectors.email import ImapError, ImapPoller

log = logging.getLogger(__name__)

BATCH = 100
MAX_BATCHES = 10
BACKOFF_BASE = 30.0  # seconds after the first failure
BACKOFF_CAP = 1800.0
ERROR_PREFIX = "IMAP: "


@dataclass
class PollResult:
    """What one inbox's poll did."""

    inbox_id: int
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    error: str | None = None
    skipped: bool = False
    batches: int = 0
    created: list[int] = field(default_factory=list)


def _imap_state(inbox: Inbox) -> dict:
    return dict((inbox.state or {}).get("imap") or {})


def _save_state(inbox: Inbox, imap: dict) -> None:
    inbox.state = {**(inbox.state or {}), "imap": imap}  # a new dict: JSON columns see the change


def _parse_time(value) -> datetime | None:
    if not value:
        return None
    try:
        return aware(datetime.fromisoformat(str(value)))
    except ValueError:
        return None


def _record_error(inbox_id: int, message: str, auth_failed: bool = False) -> None:
    """Show the failure on the inbox and schedule the retry (own transaction).

    A refused login is an incident at once; other failures after
    ``health.IMAP_FAILURES`` polls in a row (a server restarting is not news).
    """
    session = db.session
    session.rollback()
    inbox = session.get(Inbox, inbox_id)
    if inbox is None:
        return
    at = now()
    imap = _imap_state(inbox)
    failures = int(imap.get("failures") or 0) + 1
    imap.update(
        failures=failures,
        last_error=message,
        last_error_at=at.isoformat(),
        retry_at=(at + backoff(failures, BACKOFF_BASE, BACKOFF_CAP)).isoformat(),
    )
    _save_state(inbox, imap)
    if not inbox.needs_reconnect:  # "Reconnect needed: ..." says more, and stays
        inbox.last_error = ERROR_PREFIX + message
        inbox.last_error_at = at
    if auth_failed:
        health.inbox_failing(session, inbox, "login_refused", message, source="imap", at=at)
    elif failures >= health.IMAP_FAILURES:
        health.inbox_failing(session, inbox, "mailbox_failing", message, source="imap", at=at)
    session.commit()


def poll_inbox(
    inbox_id: int,
    *,
    batch: int = BATCH,
    max_batches: int = MAX_BATCHES,
    force: bool = False,
) -> PollResult:
    """Fetch and store new mail for one inbox; never raises for mail or server problems.

    ``force`` ignores the back-off pause (a "check now" button, tests).
    """
    session = db.session
    result = PollResult(inbox_id)
    inbox = session.get(Inbox, inbox_id)
    if inbox is None or not inbox.active or not (inbox.config or {}).get("imap_host"):
        result.skipped = True
        return result
    imap = _imap_state(inbox)
    retry_at = _parse_time(imap.get("retry_at"))
    if not force and retry_at is not None and retry_at > now():
        result.skipped = True
        return result
    poller = ImapPoller(live_config(inbox), connector_options())  # sign-in token refreshed
    cursor = imap.get("cursor")
    while result.batches < max_batches:
        try:
            mails, new_cursor = poller.fetch_new(cursor, batch)
        except ImapError as exc:
            result.error = str(exc)
            log.warning("imap: inbox %s: %s", inbox_id, exc)
            _record_error(inbox_id, result.error, exc.auth_failed)
            return result
        except Exception as exc:  # noqa: BLE001 - an unexpected library error: show it, retry
            result.error = f"Reading the mailbox failed: {exc}"
            log.exception("imap: inbox %s poll failed", inbox_id)
            _record_error(inbox_id, result.error)
            return result
        result.batches += 1
        result.fetched += len(mails)
        try:
            stored = _store(session, inbox_id, [m.raw for m in mails], new_cursor)
        except Exception as exc:  # noqa: BLE001 - a database problem: nothing moved, retry later
            result.error = f"Storing new mail failed: {exc}"
            log.exception("imap: inbox %s: storing mail failed", inbox_id)
            _record_error(inbox_id, result.error)
            return result
        if stored is not None:
            result.stored += len(stored.created)
            result.duplicates += stored.duplicates
            result.created += stored.created
        cursor = new_cursor
        if not poller.has_more:
            break
    inbox = session.get(Inbox, inbox_id)
    imap = _imap_state(inbox)
    at = now()
    imap.update(last_ok_at=at.isoformat(), failures=0, retry_at=None)
    _save_state(inbox, imap)
    if inbox.last_error and inbox.last_error.startswith(ERROR_PREFIX):
        inbox.last_error = None  # recovered; errors of other kinds (sending) stay shown
    health.inbox_recovered(session, inbox, source="imap")
    session.commit()
    return result


def _store(session, inbox_id: int, raws: list[bytes], cursor) -> IngestResult | None:
    """Store a batch of mail and move the cursor past it (one transaction when the batch goes in).

    A batch the database refuses (``DataError``: a value no column can hold) is stored
    mail by mail, and each refused one is kept as an unreadable stand-in with its
    original attached: one bad mail never holds up the mailbox behind it. Any other
    error (a lock, a lost connection) leaves the cursor where it was for the next poll.
    """
    at = now()
    try:
        stored = ingest_raw(session, session.get(Inbox, inbox_id), raws, at, commit=False)
        _move_cursor(session.get(Inbox, inbox_id), cursor)
        session.commit()  # the mail and the cursor together
        return stored
    except sa.exc.DataError:
        session.rollback()
        log.warning(
            "imap: inbox %s: the database refused a batch; storing it mail by mail", inbox_id
        )
    total = IngestResult()
    for raw in raws:  # each committed alone: a mail stored before a crash is a duplicate next time
        try:
            done = ingest_raw(session, session.get(Inbox, inbox_id), [raw], at)
        except sa.exc.DataError:
            session.rollback()
            log.warning(
                "imap: inbox %s: a mail the database refused is kept as unreadable", inbox_id
            )
            done = keep_unreadable(session, session.get(Inbox, inbox_id), raw, at)
        if done is not None:
            total.created += done.created
            total.duplicates += done.duplicates
            total.dropped += done.dropped
    _move_cursor(session.get(Inbox, inbox_id), cursor)
    session.commit()
    return total


def _move_cursor(inbox: Inbox, cursor) -> None:
    imap = _imap_state(inbox)
    imap["cursor"] = cursor
    _save_state(inbox, imap)


def _mail_channels() -> list[str]:
    return [c.name for c in channels.all_channels() if c.mail]


def poll_all() -> list[PollResult]:
    """The ``imap_poll`` job: poll every active email inbox that has an IMAP server."""
    session = db.session
    ids = list(
        session.scalars(
            sa.select(Inbox.id)
            .where(Inbox.channel.in_(_mail_channels()), Inbox.active.is_(True))
            .order_by(Inbox.id)
        )
    )
    results = []
    for inbox_id in ids:
        inbox = session.get(Inbox, inbox_id)
        if inbox is None or not (inbox.config or {}).get("imap_host"):
            continue
        results.append(poll_inbox(inbox_id))
    return results
