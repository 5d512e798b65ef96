"""Receipts: what the platform reports back about our replies.

Delivery statuses (sent, delivered, read, failed; never downgraded), read and
delivery watermarks, a failed status for a passing reason sent again with
back-off, and echoes: our own send reported back (merged into the reply), or a
reply a person sent outside Switchboard (stored and threaded). No Flask here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.backoff import backoff
from app.clock import aware
from app.db import insert_ignore
from app.inbox import events, windows
from app.inbox.consent import mark_identity
from app.inbox.messages import set_last_message, store_attachments
from app.inbox.threading import find_or_create_identity, thread_conversation
from app.models import ContactIdentity, Conversation, Inbox, Message, OutboxItem
from app.models.message import STATUS_RANK
from connectors import base as cb

RECENT_REPLIES = 20  # how far back a later part of one of our replies is looked for


def apply_status(session: Session, msg: Message, status: str, error: cb.SendError | None) -> bool:
    """Advance a message's delivery status; never downgrade. Returns True if changed.

    read > delivered > sent > queued; ``failed`` is final unless a later
    success (delivered/read) arrives, and never replaces delivered/read.
    """
    current = msg.status
    if status == "failed":
        if current in ("delivered", "read", "failed"):
            return False
        msg.status = "failed"
        if error is not None:
            msg.error_code = error.code or error.kind.value
            msg.error_message = error.message
        return True
    if current == "failed":
        if status in ("delivered", "read"):
            msg.status = status
            msg.error_code = msg.error_message = None
            return True
        return False
    if STATUS_RANK.get(status, -1) > STATUS_RANK.get(current, -1):
        msg.status = status
        if current in ("queued", "unknown"):  # it went out: earlier failures are moot
            msg.error_code = msg.error_message = None
        return True
    return False


PROVIDER_RETRIES = 5  # re-sends after a provider reported a full queue or a rate limit


def send_again_later(
    session: Session, msg: Message, error: cb.SendError | None, at: datetime
) -> bool:
    """A receipt says the provider dropped the message for a passing reason: queue it again.

    Twilio reports a full sender queue (21611/30001) or its rate limit (63017)
    as a failed status after accepting the message. The message goes back to
    ``queued`` with the reason shown, and a new send is scheduled with back-off;
    the old provider id is forgotten so its late receipts change nothing.
    Returns False when this does not apply (or the retries are used up).
    """
    if error is None or error.kind is not cb.ErrorKind.TRANSIENT:
        return False
    if msg.direction != "outbound" or msg.status not in ("queued", "sent"):
        return False
    meta = dict(msg.meta or {})
    tries = int(meta.get("provider_retries") or 0)
    if tries >= PROVIDER_RETRIES:
        return False
    meta["provider_retries"] = tries + 1
    if msg.provider_id:
        meta["previous_provider_ids"] = [*meta.get("previous_provider_ids", []), msg.provider_id]
    msg.meta = meta
    msg.provider_id = None
    msg.status = "queued"
    msg.error_code = error.code or error.kind.value
    msg.error_message = error.message
    session.add(
        OutboxItem(
            kind="send",
            inbox_id=msg.inbox_id,
            message_id=msg.id,
            next_attempt_at=at + backoff(tries + 1, 60.0, retry_after=error.retry_after),
            payload={},
        )
    )
    return True


def awaiting_id(session: Session, reference: str | None, sid: str | None) -> Message | None:
    """Our reply named by ``reference`` (our message id) whose provider id is not recorded yet.

    A receipt can arrive before the worker has stored the id the provider answered
    with; a reference we put in the callback URL (covered by the signature) still
    finds the message. A provider id we already gave up on (re-sent) is ignored.
    """
    if not reference or not reference.isascii() or not reference.isdigit():
        return None
    if len(reference) > 18 or not sid:
        return None  # not one of our message ids (they fit a BIGINT)
    msg = session.get(Message, int(reference))
    if msg is None or msg.direction != "outbound" or msg.provider_id is not None:
        return None
    if sid in (msg.meta or {}).get("previous_provider_ids", []):
        return None
    return msg


def apply_receipt(
    session: Session, inbox: Inbox, ev: cb.StatusUpdate, at: datetime
) -> tuple[int, list[Conversation]]:
    """Apply a delivery status (one message, or all up to a watermark).

    Returns how many messages changed and the conversations whose recipient a
    final failure marked (opted out, undeliverable).
    """
    updated, marked = 0, []
    status = ev.status.value
    targets: list[Message] = []
    if ev.external_id:
        msg = session.scalars(
            sa.select(Message).where(
                Message.inbox_id == inbox.id, Message.provider_id == ev.external_id
            )
        ).first()
        if msg is None and ev.external_id.startswith("sb:") and ev.external_id[3:].isdigit():
            msg = session.get(Message, int(ev.external_id[3:]))
        if msg is None and ev.reference:  # a receipt that overtook the send's answer
            msg = awaiting_id(session, ev.reference, ev.external_id)
        if msg is not None and msg.direction == "outbound" and msg.inbox_id == inbox.id:
            targets.append(msg)
    if ev.watermark is not None and ev.contact_id:
        ident = session.scalars(
            sa.select(ContactIdentity).where(
                ContactIdentity.inbox_id == inbox.id, ContactIdentity.external_id == ev.contact_id
            )
        ).first()
        if ident is not None:
            # only what has left: a reply still queued (paused, backing off) was not delivered
            ranked = [
                s
                for s, r in STATUS_RANK.items()
                if STATUS_RANK["sent"] <= r < STATUS_RANK.get(status, 0)
            ]
            # watermarks are whole milliseconds: "at or before" covers that whole millisecond
            until = aware(ev.watermark) + timedelta(milliseconds=1)
            targets.extend(
                session.scalars(
                    sa.select(Message)
                    .join(Conversation, Conversation.id == Message.conversation_id)
                    .where(
                        Conversation.inbox_id == inbox.id,
                        Conversation.contact_id == ident.contact_id,
                        Message.direction == "outbound",
                        Message.status.in_(ranked),
                        sa.func.coalesce(Message.platform_at, Message.created_at) < until,
                    )
                )
            )
    for msg in {m.id: m for m in targets}.values():
        if status == "failed" and send_again_later(session, msg, ev.error, at):
            updated += 1
            events.changed(session, "message.updated", msg, ("inbox", inbox.id))
            continue
        if apply_status(session, msg, status, ev.error):
            updated += 1
            events.changed(session, "message.updated", msg, ("inbox", inbox.id))
        if ev.error is not None and status == "failed" and msg.status == "failed":
            conv = session.get(Conversation, msg.conversation_id)
            ident = session.get(ContactIdentity, conv.identity_id) if conv.identity_id else None
            if ident is not None:
                mark_identity(session, ident, ev.error, at)
                marked.append(conv)
    return updated, marked


@dataclass
class Echo:
    """What an echo did: ``duplicate`` (known), ``merged`` (our own send) or ``stored``.

    ``stored``: a reply sent outside Switchboard, now ``message`` in
    ``conversation`` (``created`` when that conversation is new).
    ``new_identity``: the id of a contact identity the echo created.
    """

    outcome: str
    message: Message | None = None
    conversation: Conversation | None = None
    created: bool = False
    new_identity: int | None = None


def _being_sent(session: Session, inbox: Inbox, ev: cb.EchoedOutbound) -> Message | None:
    """Our reply the worker is sending now, when an echo without our reference (platforms
    whose echoes carry no metadata) overtook the Send API's answer: same contact, same text."""
    if not ev.text:
        return None
    return session.scalars(
        _ours_to(inbox, ev.contact_id)
        .join(OutboxItem, OutboxItem.message_id == Message.id)
        .where(
            Message.provider_id.is_(None),
            Message.status == "queued",
            Message.body == ev.text,
            OutboxItem.kind == "send",
            OutboxItem.state == "working",
        )
        .order_by(Message.id)
    ).first()


def _part_of_ours(session: Session, inbox: Inbox, ev: cb.EchoedOutbound) -> bool:
    """True when an echo without our reference reports a later part of one of our replies (a
    long text's next part, a file): one of the last sent to this contact, or the one the worker
    is sending to them now."""
    rows = session.execute(
        _ours_to(inbox, ev.contact_id)
        .with_only_columns(Message.body, Message.meta, Message.status, OutboxItem.state)
        .outerjoin(
            OutboxItem, sa.and_(OutboxItem.message_id == Message.id, OutboxItem.kind == "send")
        )
        .order_by(Message.id.desc())
        .limit(RECENT_REPLIES)
    )
    for body, meta, status, state in rows:
        meta = meta or {}
        if ev.external_id in (*meta.get("provider_ids", ()), *meta.get("sent_parts", ())):
            return True
        sending = status == "queued" and state == "working"
        if sending and (ev.text in (body or "") if ev.text else bool(ev.attachments)):
            return True
    return False


def _ours_to(inbox: Inbox, contact_id: str) -> sa.Select:
    """Our replies in ``inbox`` to the contact with ``contact_id`` on the channel."""
    return (
        sa.select(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(ContactIdentity, ContactIdentity.id == Conversation.identity_id)
        .where(
            Message.inbox_id == inbox.id,
            Message.direction == "outbound",
            ContactIdentity.external_id == contact_id,
        )
    )


def record_echo(session: Session, inbox: Inbox, ev: cb.EchoedOutbound, at: datetime) -> Echo:
    """Our own send reported back (merge), or a reply sent outside Switchboard (store)."""
    ours = None
    if ev.metadata and ev.metadata.startswith("sb:") and ev.metadata[3:].isdigit():
        ours = session.get(Message, int(ev.metadata[3:]))
        if ours is not None and (ours.inbox_id != inbox.id or ours.direction != "outbound"):
            ours = None
    if ours is None and ev.external_id:
        ours = session.scalars(
            sa.select(Message).where(
                Message.inbox_id == inbox.id, Message.provider_id == ev.external_id
            )
        ).first()
        if ours is not None:
            return Echo("duplicate")
        ours = _being_sent(session, inbox, ev)
        if ours is None and not ev.metadata and _part_of_ours(session, inbox, ev):
            return Echo("duplicate")  # the worker records the parts it sent
    if ours is not None:
        # the echo may arrive before the Send API call returned: merge, never downgrade
        if ours.provider_id is None:
            ours.provider_id = ev.external_id
        if ev.sent_at is not None:  # Meta's own time: what its receipt watermarks compare to
            ours.platform_at = aware(ev.sent_at)
        if STATUS_RANK.get(ours.status, -1) < STATUS_RANK["sent"] and ours.status != "failed":
            apply_status(session, ours, "sent", None)  # settles an unknown delivery too
        events.changed(session, "message.updated", ours, ("inbox", inbox.id))
        return Echo("merged", ours)
    ident, new_ident = find_or_create_identity(session, inbox, ev.contact_id, None)
    new_identity = ident.id if new_ident else None
    conv, how = thread_conversation(session, inbox, ident, at, automated=True)
    sent_at = aware(ev.sent_at) or at
    new_id = insert_ignore(
        session,
        Message,
        {
            "conversation_id": conv.id,
            "inbox_id": inbox.id,
            "direction": "outbound",
            "body": ev.text or "",
            "sender_name": "Sent outside Switchboard",
            "provider_id": ev.external_id,
            "platform_at": sent_at,
            "status": "sent",
            "meta": {"kind": "message", "outside_switchboard": True, "app_id": ev.app_id},
            "created_at": at,
            "updated_at": at,
        },
        ["inbox_id", "provider_id"],
    )
    if new_id is None:
        return Echo("duplicate", new_identity=new_identity)
    msg = session.get(Message, new_id)
    if ev.attachments:
        store_attachments(session, msg, ev.attachments)
    conv.last_outbound_at = sent_at
    conv.waiting_since = None  # a person answered, in the Page's own inbox
    set_last_message(conv, "outbound", ev.text or "[attachment]", at)
    windows.refresh_timers(conv, inbox)
    events.changed(session, "message.created", msg, ("inbox", inbox.id))
    return Echo("stored", msg, conv, how == "created", new_identity)
