"""Ingest: store what a connector parsed, idempotently, and thread it.

Every event for one inbox goes through :func:`ingest`, which stores the whole
batch in one transaction and commits before the webhook answers 2xx. Replays
are harmless: messages are inserted with ``ON CONFLICT DO NOTHING`` on the
(inbox, provider id) unique key, so two concurrent deliveries of the same
message store exactly one row on SQLite and on PostgreSQL.

This module is the batch loop: each event goes to the module that knows it
(:mod:`~app.inbox.threading` finds the conversation, :mod:`~app.inbox.receipts`
applies statuses and echoes, :mod:`~app.inbox.consent` opt-outs,
:mod:`~app.inbox.context` context and typing); what the batch did is then told
to the live clients and, through signals, to assignment and automation.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, make_transient_to_detached

from app import channels
from app.clock import aware, now
from app.db import (
    array_insert_ignore,
    as_arrays,
    chunks,
    dialect,
    insert_ignore,
    insert_ignore_stmt,
)
from app.inbox import events, report_facts, signals, threading
from app.inbox.consent import record_consent
from app.inbox.context import publish_typing, record_context
from app.inbox.conversations import apply_customer_message
from app.inbox.messages import CUSTOMER_COLUMNS, customer_message_row, store_attachments
from app.inbox.receipts import apply_receipt, record_echo
from app.models import ContactIdentity, Conversation, Inbox, Message, OutboxItem
from connectors import base as cb

log = logging.getLogger(__name__)

EVENT_STAMP_EVERY = timedelta(seconds=30)


@dataclass
class IngestResult:
    """What a batch did: new message ids, duplicates skipped, receipts applied."""

    created: list[int] = field(default_factory=list)
    duplicates: int = 0
    updated: int = 0
    conversations: set[int] = field(default_factory=set)
    dropped: int = 0  # mail dropped unstored (loops), see ``email_ingest``


class _Batch:
    """State shared while one batch is ingested."""

    def __init__(self, session: Session, inbox: Inbox, received_at: datetime) -> None:
        self.session = session
        self.inbox = inbox
        self.received_at = received_at
        self.result = IngestResult()
        self.created_convs: set[int] = set()
        self.reopened_convs: set[int] = set()  # closed ones a customer's message reopened
        self.touched: dict[int, Conversation] = {}
        self.new_identities: list[int] = []
        self.messages: dict[int, Message] = {}  # created in this batch, to avoid reloading them
        self.existing: set[str] = set()  # provider ids already stored (prefetched)
        self.identities: dict[str, ContactIdentity] = {}  # external id -> identity (prefetched)
        self.latest: dict[int, Conversation | None] | None = None  # contact -> latest conversation
        self.staged: list[_Staged] = []  # customer messages waiting for their INSERT
        self.opened: dict[int, Conversation] = {}  # started by the prefetch for new senders
        self.refs: dict[str, tuple[int, Conversation]] | None = None  # mail: Message-ID -> thread

    def touch(self, conv: Conversation, created: bool = False) -> None:
        self.touched[conv.id] = conv
        if created:
            self.created_convs.add(conv.id)

    def prefetch(self, batch: list[tuple[cb.InboundEvent, datetime]]) -> None:
        """Load what a batch of customer messages needs in three queries, not three each.

        Known provider ids (replays), the senders' identities (locked on
        PostgreSQL, in a stable order) and each sender's latest conversation.
        The statements are built once (:func:`threading.prefetch_statements`).
        """
        inbound = [ev for ev, _at in batch if isinstance(ev, cb.InboundMessage)]
        if not inbound:
            return
        session, inbox = self.session, self.inbox
        known, senders, latest = threading.prefetch_statements(session)
        ext_ids = sorted({ev.external_id for ev in inbound if ev.external_id})
        for chunk in chunks(ext_ids):
            self.existing.update(session.scalars(known, {"inbox": inbox.id, "ids": chunk}))
        for chunk in chunks(sorted({ev.contact_id for ev in inbound})):
            for ident in session.scalars(senders, {"inbox": inbox.id, "ids": chunk}).unique():
                self.identities[ident.external_id] = ident
        first_names: dict[str, str | None] = {}  # senders new to the inbox -> a name they gave
        for ev in inbound:
            if ev.contact_id not in self.identities and ev.external_id not in self.existing:
                first_names[ev.contact_id] = first_names.get(ev.contact_id) or ev.contact_name
        for chunk in chunks(sorted(first_names)):
            self.create_senders({key: first_names[key] for key in chunk}, senders)
        contact_ids = sorted({i.contact_id for i in self.identities.values()})
        self.latest = dict.fromkeys(contact_ids)
        if channels.get(inbox.channel).mail:  # mail threads by headers, not the latest one
            refs = [r for ev in inbound for r in ev.thread_refs if r]
            self.refs = threading.stored_refs(session, inbox, refs)
            return
        for chunk in chunks(contact_ids):
            for conv in session.scalars(latest, {"inbox": inbox.id, "ids": chunk}).unique():
                self.latest[conv.contact_id] = conv
        if first_names:
            self.open_conversations(batch, set(first_names))

    def open_conversations(
        self, batch: list[tuple[cb.InboundEvent, datetime]], new: set[str]
    ) -> None:
        """A conversation for each sender new to the inbox, inserted together.

        Each starts when its sender's first message arrived; they count as created
        by this batch (assignment, ``conversation.created``, greeting).
        """
        started: dict[str, datetime] = {}
        for ev, at in batch:
            if isinstance(ev, cb.InboundMessage) and ev.contact_id in new:
                started.setdefault(ev.contact_id, at)
        starts = [
            (self.identities[key], at)
            for key, at in started.items()
            if self.latest.get(self.identities[key].contact_id) is None
        ]
        for conv in threading.start_conversations(self.session, self.inbox, starts):
            self.latest[conv.contact_id] = conv
            self.opened[conv.id] = conv

    def create_senders(self, names: dict[str, str | None], senders) -> None:
        """Contacts and identities for senders new to the inbox (``threading.create_identities``)."""
        found, made = threading.create_identities(self.session, self.inbox, names, senders)
        self.new_identities.extend(made)
        for ident in found:
            self.identities[ident.external_id] = ident


@dataclass
class _Staged:
    """A customer message threaded and waiting for its INSERT (see :func:`_insert_staged`)."""

    ev: cb.InboundMessage
    values: dict
    conv: Conversation
    ident: ContactIdentity
    how: str
    sent_at: datetime
    received_at: datetime


def _inbound(b: _Batch, ev: cb.InboundMessage) -> None:
    """Thread a customer message; its row is inserted with the batch's others.

    Messages with a provider id wait in ``b.staged`` and go in with one
    multi-row INSERT (:func:`_insert_staged`); the conversation changes follow
    only for rows really inserted, so a concurrent delivery of the same message
    changes nothing twice. Email is inserted at once: the next message of the
    batch may thread on this one's Message-ID.
    """
    session, inbox = b.session, b.inbox
    if ev.external_id and ev.external_id in b.existing:
        b.result.duplicates += 1
        return
    ident, new_ident = threading.find_or_create_identity(
        session, inbox, ev.contact_id, ev.contact_name, cache=b.identities
    )
    if new_ident:
        b.new_identities.append(ident.id)
        if b.latest is not None:
            b.latest.setdefault(ident.contact_id, None)  # a new contact has no conversation
    sent_at = aware(ev.sent_at) or b.received_at
    mail = channels.get(inbox.channel).mail
    candidate = (
        threading.email_candidate(session, inbox, ident, ev, b.received_at, b.refs)
        if mail
        else None
    )
    flooded = False
    if candidate is None and mail:
        candidate = threading.flood_target(session, inbox, ident, b.received_at)
        flooded = candidate is not None
    subject = threading.mail_subject(ev) if mail else None
    conv, how = threading.thread_conversation(
        session,
        inbox,
        ident,
        b.received_at,
        automated=ev.automated,
        candidate=candidate,
        subject=subject,
        latest=not mail,
        known_latest=b.latest,
    )
    if conv.id in b.opened:  # started by the prefetch for this new sender: this is its start
        del b.opened[conv.id]
        how = "created"
    if b.latest is not None:
        b.latest[ident.contact_id] = conv
    if conv.identity_id is None:
        conv.identity_id = ident.id
    values = customer_message_row(inbox, conv, ident, ev, sent_at, b.received_at, flooded)
    staged = _Staged(ev, values, conv, ident, how, sent_at, b.received_at)
    if ev.external_id:
        b.existing.add(ev.external_id)
        if not mail:  # mail goes in at once: the next one may thread on its Message-ID
            b.staged.append(staged)
            return
    new_id = insert_ignore(session, Message, values, ["inbox_id", "provider_id"])
    if new_id is not None:
        _count(session, [values])
        if b.refs is not None and ev.external_id:  # the next mail of the batch may answer it
            b.refs[ev.external_id] = (new_id, conv)
    _inserted(b, staged, new_id)
    if new_id is None and how == "created":
        _drop_if_empty(b, conv)


def _insert_staged(b: _Batch) -> None:
    """Insert the staged customer messages in one statement, then apply them in order."""
    if not b.staged:
        return
    staged, b.staged = b.staged, []
    session = b.session
    with session.no_autoflush:
        if dialect(session) == "postgresql":
            stmt = array_insert_ignore(
                Message, CUSTOMER_COLUMNS, _MESSAGE_KEY, ("id", "provider_id"), ("meta",)
            )
            values = as_arrays(
                [s.values for s in staged], CUSTOMER_COLUMNS, times=_TIMES, json_columns=("meta",)
            )
            rows = session.execute(stmt, values).all()
        else:
            stmt = insert_ignore_stmt(session, Message, list(_MESSAGE_KEY), "id", "provider_id")
            rows = session.execute(stmt, [s.values for s in staged]).all()
    ids = {provider_id: row_id for row_id, provider_id in rows}
    _count(session, [s.values for s in staged if s.values["provider_id"] in ids])
    lost: dict[int, Conversation] = {}
    for s in staged:
        new_id = ids.get(s.values["provider_id"])
        _inserted(b, s, new_id)
        if new_id is None and s.how == "created":
            lost[s.conv.id] = s.conv
    for conv in lost.values():
        _drop_if_empty(b, conv)


def _count(session: Session, rows: list[dict]) -> None:
    """Customer messages inserted as statements go into the reports' slot counters."""
    report_facts.count_messages(
        session,
        (
            (v["created_at"], v["inbox_id"], v["direction"], None, bool(v["automated"]))
            for v in rows
        ),
    )


_TIMES = ("platform_at", "created_at", "updated_at")
_MESSAGE_KEY = ("inbox_id", "provider_id")


def _drop_if_empty(b: _Batch, conv: Conversation) -> None:
    """Delete a conversation this batch created when none of its messages was new after all."""
    if conv.id in b.touched:
        return
    b.session.delete(conv)
    b.session.flush()
    if b.latest is not None and b.latest.get(conv.contact_id) is conv:
        b.latest.pop(conv.contact_id, None)


def _inserted(b: _Batch, s: _Staged, new_id: int | None) -> None:
    """Apply a customer message to its conversation once its row is in (None: it existed)."""
    session, inbox, conv, ev, sent_at = b.session, b.inbox, s.conv, s.ev, s.sent_at
    if new_id is None:  # a concurrent delivery of the same message won
        b.result.duplicates += 1
        return
    msg = Message(id=new_id, **s.values)  # the row is what we inserted: nothing to load back
    if ev.attachments:  # their rows need the message in the session (its other columns load
        make_transient_to_detached(msg)  # when read)
        session.add(msg)
        store_attachments(session, msg, ev.attachments)
    apply_customer_message(
        session, inbox, conv, s.ident, ev, sent_at, s.received_at, s.values.get("language")
    )
    b.result.created.append(msg.id)
    b.messages[msg.id] = msg
    b.touch(conv, created=(s.how == "created"))
    if s.how == "reopened":
        b.reopened_convs.add(conv.id)
    events.changed(session, "message.created", msg, ("inbox", inbox.id))


def _echo(b: _Batch, ev: cb.EchoedOutbound) -> None:
    """Our own send reported back, or a reply sent outside Switchboard (``receipts``)."""
    echo = record_echo(b.session, b.inbox, ev, b.received_at)
    if echo.new_identity is not None:
        b.new_identities.append(echo.new_identity)
    if echo.outcome == "duplicate":
        b.result.duplicates += 1
    elif echo.outcome == "merged":
        b.result.updated += 1
    else:
        b.result.created.append(echo.message.id)
        b.messages[echo.message.id] = echo.message
        b.touch(echo.conversation, created=echo.created)


def _status(b: _Batch, ev: cb.StatusUpdate) -> None:
    """A delivery status or watermark (``receipts``)."""
    updated, marked = apply_receipt(b.session, b.inbox, ev, b.received_at)
    b.result.updated += updated
    for conv in marked:
        b.touch(conv)


def _consent(b: _Batch, ev: cb.OptOut | cb.OptIn) -> None:
    """An opt-out or opt-in keyword (``consent``)."""
    conv = record_consent(b.session, b.inbox, ev, b.received_at)
    if conv is not None:
        b.touch(conv)


def _context(b: _Batch, ev: cb.ConversationContext) -> None:
    """Where the customer came from, a live-agent request, a survey answer (``context``)."""
    conv, created = record_context(b.session, b.inbox, ev, b.received_at)
    b.touch(conv, created=created)


def _normalize_contacts(inbox: Inbox, batch: list[cb.InboundEvent]) -> list[cb.InboundEvent]:
    """Every event's ``contact_id`` in the one spelling its channel stores identities by.

    ``josé@`` precomposed and decomposed, or in capitals, is one email address: it
    must find one identity whichever way the sender's client wrote it.
    """
    connector = cb.get(inbox.channel) if inbox.channel in cb.channels() else cb.Connector
    out = []
    for ev in batch:
        contact_id = getattr(ev, "contact_id", None)
        if contact_id:
            key = connector.normalize_contact_id(contact_id)
            if key != contact_id:
                ev = dataclasses.replace(ev, contact_id=key)
        out.append(ev)
    return out


def _sort_key(ev: cb.InboundEvent) -> tuple[int, datetime]:
    """Messages in the platform's time order (a reply never lands before its parent)."""
    at = getattr(ev, "sent_at", None) or getattr(ev, "at", None)
    return (0, aware(at)) if at else (1, datetime.max.replace(tzinfo=aware(now()).tzinfo))


def ingest(
    session: Session,
    inbox: Inbox,
    batch: list[cb.InboundEvent],
    received_at: datetime | list[datetime] | None = None,
    *,
    commit: bool = True,
    ordered: bool = False,
) -> IngestResult:
    """Store a batch of normalised events for ``inbox`` and commit it.

    ``received_at`` is when the webhook arrived: one time for the whole batch, or
    one per event (the intake ingests several webhook bodies at once). The batch
    is taken in the platform's time order, or as given when ``ordered`` (mail in
    thread order: a reply after the message it answers, whatever the clocks say).
    Events are published to live clients only after the commit succeeds.
    """
    if isinstance(received_at, list):
        times = [aware(at) or now() for at in received_at]
    else:
        times = [aware(received_at) or now()] * len(batch)
    latest = max(times, default=None) or now()
    batch = _normalize_contacts(inbox, batch)
    b = _Batch(session, inbox, latest)
    pairs = list(zip(batch, times, strict=True))
    if not ordered:
        pairs.sort(key=lambda pair: _sort_key(pair[0]))
    b.prefetch(pairs)
    for ev, at in pairs:
        b.received_at = at
        if isinstance(ev, cb.InboundMessage):
            _inbound(b, ev)
            continue
        _insert_staged(b)  # what came before is stored before anything else is applied
        if isinstance(ev, cb.EchoedOutbound):
            _echo(b, ev)
        elif isinstance(ev, cb.StatusUpdate):
            _status(b, ev)
        elif isinstance(ev, cb.OptOut | cb.OptIn):
            _consent(b, ev)
        elif isinstance(ev, cb.ConversationContext):
            _context(b, ev)
        elif isinstance(ev, cb.Typing):
            publish_typing(session, inbox, ev)
        else:
            log.warning("ignoring unknown event %r", type(ev).__name__)
    _insert_staged(b)
    for conv in list(b.opened.values()):  # none of its sender's messages was threaded after all
        _drop_if_empty(b, conv)
    b.received_at = latest
    last = aware(inbox.last_event_at)
    if last is None or latest - last > EVENT_STAMP_EVERY:  # not one UPDATE per webhook
        inbox.last_event_at = latest
    _after_batch(b)
    if commit:
        session.commit()
    return b.result


def _after_batch(b: _Batch) -> None:
    """Profile look-ups for new contacts, then what the batch did: signals and live events.

    New conversations are offered for assignment (``conversation_created``) before
    the live events; then a reply sent from the platform's own inbox counts as a
    person's reply (``agent_replied``) and the customers' messages go to automation
    (``customer_wrote``).
    """
    session, inbox = b.session, b.inbox
    connector_cls = cb.get(inbox.channel) if inbox.channel in cb.channels() else None
    if connector_cls is not None and connector_cls.fetch_profile is not cb.Connector.fetch_profile:
        for ident_id in b.new_identities:
            session.add(
                OutboxItem(kind="profile", inbox_id=inbox.id, payload={"identity_id": ident_id})
            )
    for conv in b.touched.values():
        if conv.id in b.created_convs:
            signals.conversation_created.send(conv, session=session)
    session.flush()
    for conv in b.touched.values():
        name = "conversation.created" if conv.id in b.created_convs else "conversation.updated"
        events.changed(session, name, conv, ("inbox", inbox.id))
        b.result.conversations.add(conv.id)
    if not b.touched:
        return
    events.publish(session, "counts.updated", {"inbox_id": inbox.id}, ("inbox", inbox.id))
    wrote, replied = _written(b)
    for conv in replied.values():
        if conv.id not in wrote:
            signals.agent_replied.send(conv, at=b.received_at)
    if wrote:
        signals.customer_wrote.send(
            inbox,
            session=session,
            conversations=list(wrote.values()),
            created=b.created_convs,
            reopened=b.reopened_convs,
            at=b.received_at,
        )


def _written(b: _Batch) -> tuple[dict[int, Conversation], dict[int, Conversation]]:
    """The conversations where the customer wrote, and where a person replied (an echo).

    Only messages new in this batch, and none sent automatically (by either side).
    """
    wrote: dict[int, Conversation] = {}
    replied: dict[int, Conversation] = {}
    for msg_id in b.result.created:
        msg = b.messages.get(msg_id) or b.session.get(Message, msg_id)
        if msg is None or msg.automated:
            continue
        conv = b.touched.get(msg.conversation_id)
        if conv is None:
            continue
        if msg.direction == "inbound":
            wrote[conv.id] = conv
        elif msg.direction == "outbound":
            replied[conv.id] = conv
    return wrote, replied
