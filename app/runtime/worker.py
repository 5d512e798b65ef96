"""The delivery worker: claims outbox rows and does the work outside any request.

Several workers (threads or processes) may run at once; a row is claimed by a
single conditional UPDATE (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so no
reply is ever sent twice. Provider calls happen outside database transactions.
Transient failures are retried with exponential backoff and jitter; meanwhile
the reply shows the last failure and the inbox says that sending is failing.
A send that got no answer (the provider may have accepted it) is never sent
again blindly: the connector checks first where it can, else the reply's status
becomes ``unknown`` and the agent decides.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask, current_app

from app import storage, urls
from app.backoff import backoff
from app.clock import now
from app.connections import connector_for, live_connector
from app.extensions import db
from app.inbox import events, health, outbound
from app.inbox.connect import mark_sent
from app.inbox.consent import mark_identity
from app.inbox.receipts import apply_status
from app.inbox.replies import SendRefused, check_send
from app.models import Attachment, ContactIdentity, Conversation, Inbox, Message, OutboxItem
from app.runtime import account_mail, notify_mail
from app.runtime.loop import Loop
from connectors import base as cb

log = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=5)
BACKOFF_BASE = 5.0  # seconds, doubled per attempt with jitter (app.backoff)
BACKOFF_CAP = 3600.0
RECONNECT_PAUSE = timedelta(minutes=2)
SENDING_FAILING = "Sending is failing: "  # inbox.last_error while replies wait for a retry
CHECKING_NOTE = " Switchboard checks whether it went out before sending it again."


def claim(limit: int, worker_id: str) -> list[int]:
    """Claim up to ``limit`` due rows for this worker; returns their ids."""
    session = db.session
    at = now()
    due = sa.or_(
        sa.and_(OutboxItem.state == "pending", OutboxItem.next_attempt_at <= at),
        sa.and_(OutboxItem.state == "working", OutboxItem.claimed_at < at - STALE_CLAIM),
    )
    pick = sa.select(OutboxItem.id).where(due).order_by(OutboxItem.next_attempt_at, OutboxItem.id)
    pick = pick.limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
        ids = list(session.scalars(pick))
        if not ids:
            session.rollback()
            return []
        session.execute(
            sa.update(OutboxItem)
            .where(OutboxItem.id.in_(ids))
            .values(state="working", claimed_by=worker_id, claimed_at=at)
        )
    else:
        ids_due = list(session.scalars(pick))
        if not ids_due:
            session.rollback()
            return []
        session.execute(
            sa.update(OutboxItem)
            .where(OutboxItem.id.in_(ids_due), due)
            .values(state="working", claimed_by=worker_id, claimed_at=at)
            .execution_options(synchronize_session=False)
        )
        ids = list(
            session.scalars(
                sa.select(OutboxItem.id).where(
                    OutboxItem.id.in_(ids_due),
                    OutboxItem.claimed_by == worker_id,
                    OutboxItem.state == "working",
                    OutboxItem.claimed_at == at,
                )
            )
        )
    session.commit()
    return ids


def _finish(item: OutboxItem, state: str, error: str | None = None) -> None:
    item.state = state
    item.last_error = error
    item.claimed_by = None


def _retry(item: OutboxItem, error: str, retry_after: float | None = None) -> bool:
    """Schedule another attempt; False when attempts are used up."""
    if item.attempts >= current_app.config["DELIVERY_MAX_ATTEMPTS"]:
        return False
    item.state = "pending"
    item.claimed_by = None
    item.last_error = error
    item.next_attempt_at = now() + backoff(
        item.attempts, BACKOFF_BASE, BACKOFF_CAP, jitter=True, retry_after=retry_after
    )
    return True


# --------------------------------------------------------------------------- sends


def _fail_message(msg: Message, code: str, text: str, status: str = "failed") -> None:
    msg.status = status
    msg.error_code = code
    msg.error_message = text


def _note(msg: Message, err: cb.SendError, text: str | None = None) -> None:
    """Show why a queued reply is still waiting (its ``error`` while it is retried)."""
    msg.error_code = (err.code or err.kind.value)[:64]
    msg.error_message = text or err.message or "The provider refused the message."


def _set_meta(msg: Message, **changes) -> None:
    """Update keys of ``msg.meta`` (a value of None removes the key)."""
    meta = dict(msg.meta or {})
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    if meta != (msg.meta or {}):
        msg.meta = meta


def _inbox_health(session, inbox: Inbox, err: cb.SendError | None) -> None:
    """Say on the inbox that its provider is failing; clear that on the next success."""
    before = inbox.last_error
    if err is not None and not inbox.needs_reconnect:
        inbox.last_error = SENDING_FAILING + (err.message or err.kind.value)
        inbox.last_error_at = now()
    elif err is None and before and before.startswith(SENDING_FAILING):
        inbox.last_error = None
    if inbox.last_error != before:
        events.publish(session, "inbox.updated", {"id": inbox.id}, ("inbox", inbox.id))


def _paused(session, inbox: Inbox, msg: Message, conv: Conversation) -> None:
    """The inbox needs reconnecting: its incident is open and the reply says it waits for it."""
    reason = (inbox.last_error or "").removeprefix("Reconnect needed: ") or None
    health.inbox_failing(session, inbox, "auth_refused", reason, source="send")
    if health.hold_reply(session, msg, conv):
        events.changed(session, "message.updated", msg, ("inbox", inbox.id))
        events.changed(session, "conversation.updated", conv, ("inbox", inbox.id))


def process_send(item: OutboxItem) -> None:
    """Send one queued reply through its inbox's connector and record the outcome."""
    session = db.session
    msg = session.get(Message, item.message_id)
    if msg is None or msg.status != "queued":
        _finish(item, "done")
        session.commit()
        return
    conv = session.get(Conversation, msg.conversation_id)
    inbox = session.get(Inbox, conv.inbox_id)
    if inbox.needs_reconnect:
        item.state, item.claimed_by = "pending", None
        item.next_attempt_at = now() + RECONNECT_PAUSE
        _paused(session, inbox, msg, conv)
        session.commit()
        return
    try:
        plan = check_send(
            session,
            conv,
            now(),
            send_after=msg.send_after,
            quiet_hours=False,
            template=bool((msg.meta or {}).get("template")),
        )
    except SendRefused as refused:  # the window closed while it waited
        _fail_message(msg, refused.code, refused.message)
        _finish(item, "failed", refused.message)
        events.changed(session, "message.updated", msg, ("inbox", inbox.id))
        session.commit()
        return
    base_url = urls.public_base_url(
        current_app.config, seen=urls.seen_base_url(current_app.extensions)
    )
    out = outbound.build(session, msg, conv, inbox, plan.options, base_url, current_app.config)
    item.attempts += 1
    session.commit()  # release the database while we talk to the provider
    connector = live_connector(inbox)  # a sign-in token about to expire is refreshed first

    started = now()  # the provider stamps the message after this; receipts compare to it
    try:
        result = connector.send(out)
    except Exception as exc:  # noqa: BLE001 - a connector bug must not lose the reply
        log.exception("connector %s raised while sending message %s", inbox.channel, msg.id)
        text = (
            f"Sending failed unexpectedly ({type(exc).__name__}): it may or may not have gone out."
        )
        result = cb.SendResult(error=cb.SendError(cb.ErrorKind.UNKNOWN, "exception", text))

    msg = session.get(Message, item.message_id, populate_existing=True)
    conv = session.get(Conversation, msg.conversation_id)
    inbox = session.get(Inbox, conv.inbox_id)
    sent_parts = (result.extra or {}).get("sent_external_ids")
    if sent_parts:  # what went out is never sent again (Messenger's long texts, attachments)
        _set_meta(msg, sent_parts=list(sent_parts))
    if result.ok:
        _set_meta(msg, sent_parts=None, maybe_sent_since=None)
        _inbox_health(session, inbox, None)
        health.inbox_recovered(session, inbox, source="send")
        health.release_reply(session, msg, conv, now())
        if msg.status == "queued":  # a note from an earlier provider failure is now moot
            msg.error_code = msg.error_message = None
        ext = result.external_id
        if ext and msg.provider_id is None:
            taken = session.scalar(
                sa.select(Message.id).where(
                    Message.inbox_id == inbox.id, Message.provider_id == ext, Message.id != msg.id
                )
            )
            if not taken:
                msg.provider_id = ext
        meta = dict(msg.meta or {})
        if len(result.external_ids) > 1:
            meta["provider_ids"] = list(result.external_ids)
        meta.update({k: v for k, v in (result.extra or {}).items() if k != "sent_external_ids"})
        msg.meta = meta
        apply_status(session, msg, "sent", None)
        msg.platform_at = msg.platform_at or started
        if inbox.needs_reconnect:
            inbox.needs_reconnect = False
        mark_sent(inbox)
        _finish(item, "done")
        outbound.after_sent(session, msg, conv, inbox)
    else:
        err = result.error
        kind = err.kind
        if kind is cb.ErrorKind.UNKNOWN:
            _inbox_health(session, inbox, err)
            checked = "maybe_sent_since" in out.options  # this attempt asked the provider first
            if (
                not checked
                and connector.checks_before_resending()
                and _retry(item, f"{err.code}: {err.message}", err.retry_after)
            ):  # stays queued; the next attempt asks the provider first
                _set_meta(msg, maybe_sent_since=started.isoformat())
                _note(msg, err, (err.message or "") + CHECKING_NOTE)
            else:  # the provider cannot tell, or cannot be asked: the agent decides
                _unknown(msg, item, err)
        elif kind is cb.ErrorKind.TRANSIENT and _retry(
            item, f"{err.code}: {err.message}", err.retry_after
        ):  # stays queued, showing why
            _note(msg, err)
            _inbox_health(session, inbox, err)
            if item.attempts >= health.SEND_FAILURES:
                health.inbox_failing(
                    session, inbox, "sending_failing", err.message or err.kind.value, source="send"
                )
        elif kind is cb.ErrorKind.TRANSIENT and (msg.meta or {}).get("maybe_sent_since"):
            # out of attempts, and an earlier one that got no answer may have gone out
            text = (
                "An earlier attempt got no answer, and whether it went out could not be "
                f"checked: {err.message}"
            )
            _unknown(msg, item, err, text)
        elif kind is cb.ErrorKind.AUTH_FAILED:
            _note(msg, err)  # paused until the inbox is reconnected
            inbox.needs_reconnect = True
            inbox.last_error = f"Reconnect needed: {err.message}"
            inbox.last_error_at = now()
            item.state, item.claimed_by = "pending", None
            item.attempts = max(0, item.attempts - 1)
            item.next_attempt_at = now() + RECONNECT_PAUSE
            _paused(session, inbox, msg, conv)
        else:
            code = kind.value if kind is not cb.ErrorKind.TRANSIENT else "transient"
            text = err.message or "The provider refused the message."
            if err.code:
                text = f"{text} (code {err.code})"
            _fail_message(msg, code, text)
            _set_meta(msg, maybe_sent_since=None)
            _finish(item, "failed", text)
            if kind in (cb.ErrorKind.OPTED_OUT, cb.ErrorKind.UNDELIVERABLE) and conv.identity_id:
                ident = session.get(ContactIdentity, conv.identity_id)
                mark_identity(session, ident, err, now())
            if kind is cb.ErrorKind.WINDOW_CLOSED:
                ctx = dict(conv.context or {})
                ctx["window_closed_by_platform_at"] = now().isoformat()
                conv.context = ctx
    session.flush()
    events.changed(session, "message.updated", msg, ("inbox", inbox.id))
    events.changed(session, "conversation.updated", conv, ("inbox", inbox.id))
    session.commit()


def _unknown(msg: Message, item: OutboxItem, err: cb.SendError, text: str | None = None) -> None:
    """The reply may or may not have gone out: stop, and let the agent decide."""
    text = (
        text
        or err.message
        or "The provider did not answer: the reply may or may not have gone out."
    )
    _fail_message(msg, "unknown", text, status="unknown")
    _set_meta(msg, maybe_sent_since=None)
    _finish(item, "failed", text)
    log.warning("message %s: delivery unknown (%s); not sent again", msg.id, err.code)


# --------------------------------------------------------------------------- other work


def process_download(item: OutboxItem) -> None:
    """Fetch an attachment before its provider URL expires."""
    session = db.session
    att = session.get(Attachment, item.payload.get("attachment_id"))
    if att is None or att.state != "pending":
        _finish(item, "done")
        session.commit()
        return
    inbox = session.get(Inbox, item.inbox_id)
    connector = connector_for(inbox)
    ref = cb.AttachmentRef(kind=att.kind, url=att.source_url, filename=att.filename)
    item.attempts += 1
    session.commit()
    try:
        got = connector.download(ref)
    except cb.AttachmentTooLarge as exc:
        att = session.get(Attachment, item.payload["attachment_id"])
        att.state, att.error = "failed", f"Too large to store: {exc}"
        _finish(item, "failed", att.error)
    except cb.DownloadRefused as exc:  # not where attachments come from: never retried
        att = session.get(Attachment, item.payload["attachment_id"])
        log.warning(
            "inbox %s: attachment %s of message %s not downloaded: %s",
            item.inbox_id,
            att.id,
            att.message_id,
            exc,
        )
        att.state, att.error = "failed", str(exc)[:300]
        _finish(item, "failed", att.error)
    except Exception as exc:  # noqa: BLE001 - network errors retry, then give up visibly
        att = session.get(Attachment, item.payload["attachment_id"])
        if not _retry(item, str(exc)):
            att.state, att.error = "failed", f"Could not download: {exc}"[:300]
            _finish(item, "failed", att.error)
    else:
        att = session.get(Attachment, item.payload["attachment_id"])
        att.storage_key = storage.save(got.content)
        att.size = len(got.content)
        att.content_type = storage.stored_type(got.content, att.content_type or got.content_type)
        att.filename = att.filename or storage.safe_filename(got.filename, default="") or None
        att.state = "stored"
        _finish(item, "done")
    msg = session.get(Message, att.message_id)
    session.flush()
    events.changed(session, "message.updated", msg, ("inbox", msg.inbox_id))
    session.commit()


def process_profile(item: OutboxItem) -> None:
    """Fetch a contact's name and picture from the provider, after the webhook answered."""
    session = db.session
    ident = session.get(ContactIdentity, item.payload.get("identity_id"))
    if ident is None:
        _finish(item, "done")
        session.commit()
        return
    inbox = session.get(Inbox, ident.inbox_id)
    connector = connector_for(inbox)
    ext = ident.external_id
    item.attempts += 1
    session.commit()
    try:
        profile = connector.fetch_profile(ext)
    except Exception:  # noqa: BLE001 - a profile is a nicety, never an error for the agent
        log.exception("profile fetch failed")
        profile = None
    ident = session.get(ContactIdentity, item.payload["identity_id"])
    ident.profile_fetched_at = now()
    contact = ident.contact
    if profile is not None:
        if profile.name and not contact.name:
            contact.name = profile.name[:200]
        contact.avatar_url = profile.avatar_url or contact.avatar_url
        contact.locale = profile.locale or contact.locale
        contact.timezone = profile.timezone or contact.timezone
        convs = session.scalars(
            sa.select(Conversation).where(Conversation.contact_id == contact.id)
        )
        for conv in convs:
            events.changed(session, "conversation.updated", conv, ("inbox", conv.inbox_id))
    _finish(item, "done")
    session.commit()


def process_action(item: OutboxItem) -> None:
    """Typing indicators, mark-seen, GBM representative events: best effort, no retries."""
    session = db.session
    inbox = session.get(Inbox, item.inbox_id)
    payload = dict(item.payload)
    item.attempts += 1
    session.commit()
    try:
        connector_for(inbox).send_action(
            payload["contact_id"], payload["action"], **payload.get("kwargs", {})
        )
    except Exception:  # noqa: BLE001
        log.exception("action %s failed", payload.get("action"))
    item = session.get(OutboxItem, item.id)
    _finish(item, "done")
    session.commit()


def process_notify_email(item: OutboxItem) -> None:
    """Mail a notification to a user who is not online (:mod:`app.runtime.notify_mail`)."""
    notify_mail.process_email(item)


HANDLERS = {
    "send": process_send,
    "download": process_download,
    "profile": process_profile,
    "action": process_action,
    "notify_email": process_notify_email,
    "account_mail": account_mail.process,  # invitations and password resets
}


def run_once(limit: int = 20, worker_id: str | None = None) -> int:
    """Claim and process due work; returns how many rows were handled."""
    worker_id = worker_id or f"w-{uuid.uuid4().hex[:12]}"
    ids = claim(limit, worker_id)
    for item_id in ids:
        item = db.session.get(OutboxItem, item_id)
        if item is None:
            continue
        kind = item.kind
        try:
            HANDLERS[kind](item)
        except Exception:  # noqa: BLE001 - keep the worker alive; the row retries later
            db.session.rollback()
            log.exception("outbox item %s (%s) failed", item_id, kind)
            row = db.session.get(OutboxItem, item_id)
            if row is not None and row.state == "working":
                row.state = "pending"
                row.claimed_by = None
                row.next_attempt_at = now() + backoff(
                    row.attempts or 1, BACKOFF_BASE, BACKOFF_CAP, jitter=True
                )
                db.session.commit()
    db.session.remove()
    return len(ids)


class WorkerThread(Loop):
    """Runs :func:`run_once` in a loop until stopped (embedded default and `flask worker`).

    While it finds due work it runs again at once; otherwise it sleeps until woken
    or the poll interval passes.
    """

    def __init__(self, app: Flask, poll_seconds: float | None = None) -> None:
        self.worker_id = f"w-{uuid.uuid4().hex[:12]}"
        super().__init__(
            app,
            lambda: run_once(worker_id=self.worker_id),
            poll_seconds or app.config["DELIVERY_POLL_SECONDS"],
            name="switchboard-worker",
        )
