"""Raw RFC 822 mail into the inbox: parse, order, store with the full original.

Both inbound paths end here: the raw-MIME webhook (one message, threaded from the
webhook intake) and the IMAP poll (a batch). For each raw message:

- it is parsed with the inbox address as ours; mail carrying our own address in
  ``X-Loop`` (our reply came back) is dropped and logged;
- a batch is stored in thread order: by ``Date``, and a message that answers
  another one of the same batch always after it, whatever the clocks say (a
  reply that arrives in the same poll as its parent must not open a ticket);
- the raw bytes are kept as the message's "original" (an attachment of kind
  ``original``, ``message/rfc822``) so an agent can always open what was sent;
- a bounce of one of our replies marks that reply failed and the address
  undeliverable (``ingest``); a *delayed* delivery report only notes the delay
  on the reply (the remote server still retries, so nothing is resent); a bounce
  we cannot tie to a reply is stored as an automated message.

Everything goes through :func:`app.inbox.ingest.ingest`, so replays are
harmless (Message-ID is the per-inbox dedupe key).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import aware, now
from app.connections import connector_for
from app.inbox import activity, events
from app.inbox.activity import add_activity
from app.inbox.ingest import IngestResult, ingest
from app.models import Conversation, Inbox, Message
from connectors import base as cb
from connectors.email import ParsedEmail
from connectors.email.parse import UNKNOWN_SENDER

log = logging.getLogger(__name__)

ORIGINAL_KIND = "original"


@dataclasses.dataclass
class _Item:
    """One raw message on its way in."""

    raw: bytes
    index: int
    parsed: ParsedEmail | None
    event: cb.InboundMessage | cb.StatusUpdate

    @property
    def message_id(self) -> str | None:
        return self.parsed.message_id if self.parsed else None

    @property
    def refs(self) -> tuple[str, ...]:
        return self.parsed.thread_refs if self.parsed else ()

    @property
    def date(self) -> datetime:
        return self.parsed.date if self.parsed else datetime.max.replace(tzinfo=aware(now()).tzinfo)


def _unreadable(inbox: Inbox, raw: bytes, received_at: datetime) -> cb.InboundMessage:
    """A stand-in for mail the parser could not read at all (kept, never lost)."""
    digest = hashlib.sha256(raw).hexdigest()[:40]
    return cb.InboundMessage(
        inbox_key=str(inbox.config.get("address") or "").lower(),
        external_id=f"unreadable.{digest}@switchboard.invalid",
        contact_id=UNKNOWN_SENDER,
        sent_at=received_at,
        text="This email could not be read. Download the original to see it.",
        context={"unreadable": True},
    )


def _with_original(ev: cb.InboundMessage, raw: bytes) -> cb.InboundMessage:
    """The event plus the raw message as an attachment of kind ``original``."""
    original = cb.AttachmentRef(
        kind=ORIGINAL_KIND,
        content=raw,
        content_type="message/rfc822",
        filename="original.eml",
        extra={"size": len(raw)},
    )
    return dataclasses.replace(ev, attachments=(*ev.attachments, original))


def thread_order(items: list[_Item]) -> list[_Item]:
    """Oldest first by ``Date``, but never a message before one it answers in the batch."""
    pending = sorted(items, key=lambda i: (i.date, i.index))
    in_batch = {i.message_id for i in pending if i.message_id}
    done: set[str] = set()
    out: list[_Item] = []
    while pending:
        pick = next(
            (
                n
                for n, item in enumerate(pending)
                if all(r in done or r not in in_batch for r in item.refs)
            ),
            0,  # a reference cycle: take the oldest
        )
        item = pending.pop(pick)
        out.append(item)
        if item.message_id:
            done.add(item.message_id)
    return out


def _our_reply(session: Session, inbox: Inbox, external_id: str | None) -> Message | None:
    if not external_id:
        return None
    return session.scalars(
        sa.select(Message).where(
            Message.inbox_id == inbox.id,
            Message.provider_id == external_id,
            Message.direction == "outbound",
        )
    ).first()


def _note_delay(session: Session, inbox: Inbox, msg: Message, item: _Item) -> None:
    """A delayed-delivery report: show it on the reply and in the thread, resend nothing."""
    error = item.event.error
    meta = dict(msg.meta or {})
    report_id = item.message_id
    if (meta.get("delivery_delayed") or {}).get("report_id") == report_id:
        return  # the same report again
    reason = (error.message if error else "") or "Delivery is delayed."
    meta["delivery_delayed"] = {"reason": reason, "report_id": report_id, "at": now().isoformat()}
    msg.meta = meta
    conv = session.get(Conversation, msg.conversation_id)
    recipient = getattr(item.event, "contact_id", None) or conv.contact.display_name()
    add_activity(
        session,
        conv,
        activity.line(activity.DELIVERY_DELAYED, recipient=recipient, reason=reason),
        event="delivery_delayed",
        message_id=msg.id,
    )
    events.changed(session, "message.updated", msg, ("inbox", inbox.id))


def _prepare(
    session: Session, inbox: Inbox, raws: list[bytes], received: list[datetime]
) -> tuple[list[_Item], int]:
    """Parse every raw message; returns what to store and how many were dropped."""
    connector = connector_for(inbox)
    items: list[_Item] = []
    dropped = 0
    for index, raw in enumerate(raws):
        raw = bytes(raw or b"")
        received_at = received[index]
        try:
            parsed = connector.parse(raw, received_at)
            event = parsed.to_event()
        except Exception:  # the parser promises not to raise; keep the mail if it does
            log.exception("email: inbox %s could not parse a %d-byte message", inbox.id, len(raw))
            items.append(
                _Item(raw, index, None, _with_original(_unreadable(inbox, raw, received_at), raw))
            )
            continue
        if parsed.is_loop:
            log.info(
                "email: inbox %s dropped %s (X-Loop names our address)", inbox.id, parsed.message_id
            )
            dropped += 1
            continue
        if (
            isinstance(event, cb.StatusUpdate)
            and _our_reply(session, inbox, event.external_id) is None
        ):
            # a report about mail we did not send from here: keep it as an automated message
            bounce = dataclasses.replace(parsed.bounce, original_message_id=None)
            event = dataclasses.replace(parsed, bounce=bounce).to_event()
        if isinstance(event, cb.InboundMessage):
            event = _with_original(event, raw)
        items.append(_Item(raw, index, parsed, event))
    return items, dropped


def keep_unreadable(
    session: Session,
    inbox: Inbox,
    raw: bytes,
    received_at: datetime | None = None,
    *,
    commit: bool = True,
) -> IngestResult:
    """Store ``raw`` as an unreadable stand-in with the original attached, and commit.

    For mail the parser read but whose values the database refuses (an id longer
    than its column on PostgreSQL): kept once, never lost, and a replay dedupes
    on the stand-in's id. With ``commit=False`` the caller commits (the intake).
    """
    received_at = aware(received_at) or now()
    raw = bytes(raw or b"")
    event = _with_original(_unreadable(inbox, raw, received_at), raw)
    result = ingest(session, inbox, [event], received_at, commit=False)
    if commit:
        session.commit()
    return result


def ingest_raw(
    session: Session,
    inbox: Inbox,
    raws: list[bytes],
    received_at: datetime | list[datetime] | None = None,
    *,
    commit: bool = True,
) -> IngestResult | None:
    """Store raw RFC 822 messages for an email ``inbox`` (see the module docstring).

    ``received_at``: one time for all, or one per message (the intake's rows).
    The messages go through :func:`ingest` as one batch in thread order: one
    transaction, one look-up of the Message-IDs they answer, one set of live
    events. Returns the combined :class:`IngestResult` (``dropped``: mail loops),
    or None when every message was dropped. With ``commit=False`` the caller
    commits, e.g. together with its IMAP cursor.
    """
    if isinstance(received_at, list):
        received = [aware(at) or now() for at in received_at]
    else:
        received = [aware(received_at) or now()] * len(raws)
    items, dropped = _prepare(session, inbox, raws, received)
    if dropped and not items:
        return None
    total = IngestResult(dropped=dropped)
    events, times = [], []
    for item in thread_order(items):
        ev = item.event
        if (
            isinstance(ev, cb.StatusUpdate)
            and ev.error is not None
            and (ev.error.kind is cb.ErrorKind.TRANSIENT)
        ):
            reply = _our_reply(session, inbox, ev.external_id)
            if reply is not None:
                _note_delay(session, inbox, reply, item)
                total.updated += 1
            continue
        events.append(ev)
        times.append(received[item.index])
    if events:  # in thread order: ingest would otherwise re-sort the batch by Date
        result = ingest(session, inbox, events, times, commit=False, ordered=True)
        total.created += result.created
        total.duplicates += result.duplicates
        total.updated += result.updated
        total.conversations |= result.conversations
    if commit:
        session.commit()
    return total
