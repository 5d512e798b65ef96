"""Ingest: store what a connector parsed, idempotently, and thread it.

Every event for one inbox goes through :func:`ingest`, which stores the whole
batch in one transaction and commits before the webhook answers 2xx. Replays
are harmless: messages are inserted with ``ON CONFLICT DO NOTHING`` on the
(inbox, provider id) unique key, so two concurrent deliveries of the same
message store exactly one row on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, joinedload

from app import channels
from app.clock import aware, now
from app.db import (
    array_insert_ignore,
    as_arrays,
    chunks,
    dialect,
    insert_ignore,
    insert_ignore_stmt,
    lock_for_update,
)
from app.inbox import activity, events, storage, windows
from app.inbox.activity import add_activity
from app.inbox.serialize import conversation_dict, message_dict
from app.models import (
    Attachment,
    Contact,
    ContactIdentity,
    Conversation,
    Inbox,
    Message,
    OutboxItem,
)
from app.models.message import STATUS_RANK
from connectors import base as cb

log = logging.getLogger(__name__)

SNIPPET = 280
EVENT_STAMP_EVERY = timedelta(seconds=30)
#: Attachment kinds whose URL is a link to show (a map, a shared page), never downloaded.
LINK_KINDS = ("location", "fallback")
#: Message context that describes the whole conversation (where and in which language
#: the customer started it); the latest message's values are kept on the conversation.
CONVERSATION_CONTEXT_KEYS = ("entry_point", "place_id", "near_place_id", "locale", "widget")


@dataclass
class IngestResult:
    """What a batch did: new message ids, duplicates skipped, receipts applied."""

    created: list[int] = field(default_factory=list)
    duplicates: int = 0
    updated: int = 0
    conversations: set[int] = field(default_factory=set)


# --------------------------------------------------------------------------- helpers


def find_or_create_identity(
    session: Session,
    inbox: Inbox,
    external_id: str,
    name: str | None,
    cache: dict[str, ContactIdentity] | None = None,
) -> tuple[ContactIdentity, bool]:
    """The contact identity for ``external_id`` in ``inbox``, created when new.

    Safe under concurrency: the identity insert ignores conflicts, and the row
    is then locked (PostgreSQL) so threading below happens one at a time.
    """
    ident = cache.get(external_id) if cache is not None else None
    if ident is not None:  # prefetched for the batch: no query
        if name and not ident.contact.name:
            ident.contact.name = name[:200]
        return ident, False
    q = (
        sa.select(ContactIdentity)
        .where(ContactIdentity.inbox_id == inbox.id, ContactIdentity.external_id == external_id)
        .options(joinedload(ContactIdentity.contact, innerjoin=True))
    )
    ident = session.scalars(lock_for_update(session, q)).first()
    if ident is not None:
        if name and not ident.contact.name:
            ident.contact.name = name[:200]
        if cache is not None:
            cache[external_id] = ident
        return ident, False
    contact = Contact(name=name[:200] if name else None)
    session.add(contact)
    session.flush()
    new_id = insert_ignore(
        session,
        ContactIdentity,
        {
            "contact_id": contact.id,
            "inbox_id": inbox.id,
            "channel": inbox.channel,
            "external_id": external_id,
            "data": {},
            "created_at": now(),
        },
        ["inbox_id", "external_id"],
    )
    if new_id is None:  # another request created it first
        session.delete(contact)
        session.flush()
    ident = session.scalars(
        lock_for_update(session, q).execution_options(populate_existing=True)
    ).one()
    if cache is not None:
        cache[external_id] = ident
    return ident, new_id is not None


def latest_conversation(session: Session, inbox_id: int, contact_id: int) -> Conversation | None:
    """The contact's most recent conversation in an inbox."""
    return session.scalars(
        sa.select(Conversation)
        .where(Conversation.inbox_id == inbox_id, Conversation.contact_id == contact_id)
        .order_by(Conversation.id.desc())
        .limit(1)
    ).first()


def _reopen_window(inbox: Inbox) -> timedelta:
    return timedelta(days=float(inbox.setting("reopen_days")))


def thread_conversation(
    session: Session,
    inbox: Inbox,
    ident: ContactIdentity,
    at: datetime,
    *,
    automated: bool = False,
    candidate: Conversation | None = None,
    subject: str | None = None,
    latest: bool = True,
    known_latest: dict[int, Conversation | None] | None = None,
) -> tuple[Conversation, str]:
    """Pick the conversation a new customer message belongs to.

    ``candidate`` (email threading found one), else the contact's latest
    conversation in the inbox (unless ``latest`` is False: email without a thread
    match starts a new conversation); a closed one reopens when closed less than
    the inbox's reopen period ago; otherwise a new conversation. Automated mail
    never reopens a closed conversation.
    Returns the conversation and what happened: ``existing``, ``reopened`` or ``created``.
    """
    conv = candidate
    if conv is None and latest and known_latest is not None and ident.contact_id in known_latest:
        conv = known_latest[ident.contact_id]  # prefetched for the whole batch
    elif conv is None and latest:
        conv = latest_conversation(session, inbox.id, ident.contact_id)
    if conv is not None:
        if conv.status != "closed":
            return conv, "existing"
        if automated:
            return conv, "existing"
        if conv.closed_at and aware(conv.closed_at) > at - _reopen_window(inbox):
            conv.status = "open"
            conv.closed_at = None
            add_activity(
                session, conv, activity.line(activity.REOPENED_BY_CUSTOMER), event="reopened"
            )
            return conv, "reopened"
    conv = Conversation(
        inbox_id=inbox.id,
        contact_id=ident.contact_id,
        identity_id=ident.id,
        status="open",
        subject=subject,
        last_activity_at=at,
        created_at=at,
        context={},
    )
    session.add(conv)
    session.flush()
    return conv, "created"


def refresh_timers(conv: Conversation, inbox: Inbox) -> None:
    """Recompute the precomputed timer columns from the conversation's facts."""
    conv.window_expires_at = windows.final_expiry(
        inbox.channel, conv.last_inbound_at, bool(inbox.setting("human_agent"))
    )
    conv.response_due_at = windows.response_due_at(
        conv.waiting_since, inbox.setting("response_due_hours")
    )


def _set_last_message(conv: Conversation, direction: str, body: str, at: datetime) -> None:
    conv.last_message_direction = direction
    conv.last_message_body = (body or "")[:SNIPPET]
    conv.last_message_at = at
    conv.last_activity_at = at


def _store_attachments(session: Session, msg: Message, refs: tuple[cb.AttachmentRef, ...]) -> None:
    """Keep bytes we already have; queue downloads for URLs (they expire)."""
    for ref in refs:
        att = Attachment(
            message_id=msg.id,
            kind=ref.kind or "file",
            filename=storage.safe_filename(ref.filename, default="") or None,
            content_type=ref.content_type,
            content_id=ref.content_id,
            source_url=ref.url,
            extra={**(ref.extra or {}), **({"title": ref.title} if ref.title else {})},
        )
        if ref.content is not None:
            att.storage_key = storage.save(ref.content)
            att.content_type = storage.stored_type(ref.content, ref.content_type)
            att.size = len(ref.content)
            att.state = "stored"
        elif ref.url and att.kind in LINK_KINDS:
            att.extra = {**att.extra, "link": ref.url}  # a web page to open, not a file
            att.state = "stored"
        elif ref.url:
            att.state = "pending"
        else:
            att.state = "stored"  # nothing to fetch (a location, a fallback share)
        session.add(att)
        session.flush()
        if att.state == "pending":
            session.add(
                OutboxItem(
                    kind="download",
                    inbox_id=msg.inbox_id,
                    message_id=msg.id,
                    payload={"attachment_id": att.id},
                )
            )


# --------------------------------------------------------------------------- events


class _Batch:
    """State shared while one batch is ingested."""

    def __init__(self, session: Session, inbox: Inbox, received_at: datetime) -> None:
        self.session = session
        self.inbox = inbox
        self.received_at = received_at
        self.result = IngestResult()
        self.created_convs: set[int] = set()
        self.touched: dict[int, Conversation] = {}
        self.new_identities: list[int] = []
        self.messages: dict[int, Message] = {}  # created in this batch, to avoid reloading them
        self.existing: set[str] = set()  # provider ids already stored (prefetched)
        self.identities: dict[str, ContactIdentity] = {}  # external id -> identity (prefetched)
        self.latest: dict[int, Conversation | None] | None = None  # contact -> latest conversation
        self.staged: list[_Staged] = []  # customer messages waiting for their INSERT
        self.opened: dict[int, Conversation] = {}  # started by the prefetch for new senders

    def touch(self, conv: Conversation, created: bool = False) -> None:
        self.touched[conv.id] = conv
        if created:
            self.created_convs.add(conv.id)

    def prefetch(self, batch: list[tuple[cb.InboundEvent, datetime]]) -> None:
        """Load what a batch of customer messages needs in three queries, not three each.

        Known provider ids (replays), the senders' identities (locked on
        PostgreSQL, in a stable order) and each sender's latest conversation.
        The statements are built once (:data:`_PREFETCH`); only the values change.
        """
        inbound = [ev for ev, _at in batch if isinstance(ev, cb.InboundMessage)]
        if not inbound:
            return
        session, inbox = self.session, self.inbox
        known, senders, latest = _prefetch_statements(session)
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
        convs = []
        for key, at in started.items():
            ident = self.identities[key]
            if self.latest.get(ident.contact_id) is None:
                convs.append(
                    Conversation(
                        inbox_id=self.inbox.id,
                        contact_id=ident.contact_id,
                        identity_id=ident.id,
                        status="open",
                        last_activity_at=at,
                        created_at=at,
                        context={},
                    )
                )
        self.session.add_all(convs)
        self.session.flush()
        for conv in convs:
            self.latest[conv.contact_id] = conv
            self.opened[conv.id] = conv

    def create_senders(self, names: dict[str, str | None], senders) -> None:
        """Contacts and identities for senders new to the inbox, a few statements for all.

        One at a time it took four round trips per sender. A sender another
        process created meanwhile keeps that identity (ours is skipped by the
        unique key and its contact removed). ``senders`` loads them (locked on
        PostgreSQL) like the ones that existed.
        """
        session, inbox, at = self.session, self.inbox, now()
        keys = list(names)
        contacts = Contact.__table__
        contact_ids = session.scalars(
            sa.insert(contacts).returning(contacts.c.id, sort_by_parameter_order=True),
            [{"name": (names[key] or "")[:200] or None, "created_at": at} for key in keys],
        ).all()
        made = session.execute(
            insert_ignore_stmt(
                session, ContactIdentity, ["inbox_id", "external_id"], "id", "external_id"
            ),
            [
                {
                    "contact_id": contact_id,
                    "inbox_id": inbox.id,
                    "channel": inbox.channel,
                    "external_id": key,
                    "data": {},
                    "created_at": at,
                }
                for key, contact_id in zip(keys, contact_ids, strict=True)
            ],
        ).all()
        created = {external_id for _id, external_id in made}
        unused = [cid for key, cid in zip(keys, contact_ids, strict=True) if key not in created]
        if unused:  # another process made these identities first
            session.execute(sa.delete(contacts).where(contacts.c.id.in_(unused)))
        self.new_identities.extend(identity_id for identity_id, _key in made)
        for ident in session.scalars(senders, {"inbox": inbox.id, "ids": keys}).unique():
            self.identities[ident.external_id] = ident


_PREFETCH: dict[str, tuple] = {}


def _prefetch_statements(session: Session) -> tuple:
    """The prefetch queries of :meth:`_Batch.prefetch` for this database, built once.

    Building a statement per batch cost as much as running it; these take the
    inbox as ``:inbox`` and a list of keys as ``:ids``.
    """
    name = dialect(session)
    built = _PREFETCH.get(name)
    if built is None:
        inbox = sa.bindparam("inbox")
        if name == "postgresql":
            built = _prefetch_on_postgresql(inbox)
        else:
            ids = sa.bindparam("ids", expanding=True)
            newest = (
                sa.select(sa.func.max(Conversation.id))
                .where(Conversation.inbox_id == inbox, Conversation.contact_id.in_(ids))
                .group_by(Conversation.contact_id)
            )
            built = (
                sa.select(Message.provider_id).where(
                    Message.inbox_id == inbox, Message.provider_id.in_(ids)
                ),
                sa.select(ContactIdentity).where(
                    ContactIdentity.inbox_id == inbox, ContactIdentity.external_id.in_(ids)
                ),
                sa.select(Conversation).where(Conversation.id.in_(newest.scalar_subquery())),
            )
        known, senders, latest = built
        senders = senders.options(joinedload(ContactIdentity.contact, innerjoin=True)).order_by(
            ContactIdentity.id
        )
        if name == "postgresql":
            senders = senders.with_for_update()
        built = _PREFETCH[name] = (known, senders, latest)
    return built


def _prefetch_on_postgresql(inbox: sa.BindParameter) -> tuple:
    """PostgreSQL: every key of ``:ids`` (an array) looked up on its own (``LATERAL ... LIMIT 1``).

    With ``column IN (...)`` the planner, lacking statistics for a new inbox (or a
    young table), read every row of the inbox and compared it with the whole list:
    0.2 s per 100-message batch at 20,000 messages, growing with the inbox. One
    index look-up per key does not depend on statistics.
    """

    def per_key(column, key_type, where, order_by=None):
        keys = (
            sa.func.unnest(sa.bindparam("ids", type_=ARRAY(key_type)))
            .table_valued("key")
            .render_derived(name="k")
        )
        hit = sa.select(column).where(*where(keys.c.key)).limit(1)
        if order_by is not None:
            hit = hit.order_by(order_by)
        hit = hit.lateral("hit")
        return sa.select(hit.c[0]).select_from(keys.join(hit, sa.true()))

    known = per_key(
        Message.provider_id,
        sa.String,
        lambda key: (Message.inbox_id == inbox, Message.provider_id == key),
    )
    identity_ids = per_key(
        ContactIdentity.id,
        sa.String,
        lambda key: (ContactIdentity.inbox_id == inbox, ContactIdentity.external_id == key),
    )
    newest_ids = per_key(
        Conversation.id,
        sa.Integer,
        lambda key: (Conversation.inbox_id == inbox, Conversation.contact_id == key),
        order_by=Conversation.id.desc(),
    )
    return (
        known,
        sa.select(ContactIdentity).where(ContactIdentity.id.in_(identity_ids)),
        sa.select(Conversation).where(Conversation.id.in_(newest_ids)),
    )


def _email_candidate(
    b: _Batch, ident: ContactIdentity, ev: cb.InboundMessage
) -> Conversation | None:
    """Email threading, scoped to this inbox and this contact, in this order.

    1. a stored Message-ID (ours or the customer's) in In-Reply-To/References;
    2. a conversation token in our own Message-IDs (``sb.<token>.<ref>@``) or in
       the recipient's plus address (``support+<token>@``);
    3. a ``[#<number>]`` subject token;
    4. a reply-prefixed subject (``Re:``, ``AW:`` ...) whose base subject matches
       one of the contact's conversations active within the reopen period (for
       clients that drop the threading headers).

    None means a new conversation. Another customer's conversation never
    matches, so replies to a shared newsletter stay apart.
    """
    from connectors.email import threads  # email specifics live with the email connector

    session, inbox = b.session, b.inbox
    refs = [r for r in ev.thread_refs if r]
    conv = None
    if refs:
        conv = session.scalars(
            sa.select(Conversation)
            .join(Message, Message.conversation_id == Conversation.id)
            .where(Message.inbox_id == inbox.id, Message.provider_id.in_(refs))
            .where(Conversation.contact_id == ident.contact_id)
            .order_by(Message.id.desc())
            .limit(1)
        ).first()
    tokens = [t for t in (threads.token_from_message_id(r) for r in refs) if t]
    ctx = ev.context or {}
    for address in [*ctx.get("to", []), *ctx.get("cc", []), *ctx.get("delivered_to", [])]:
        token = threads.plus_token(address, inbox.config.get("address", ""))
        if token:
            tokens.append(token)
    if conv is None and tokens:
        conv = session.scalars(
            sa.select(Conversation).where(
                Conversation.inbox_id == inbox.id,
                Conversation.token.in_(tokens),
                Conversation.contact_id == ident.contact_id,
            )
        ).first()
    if conv is None and ev.subject:
        number = threads.subject_ticket_token(ev.subject)
        if number:
            conv = session.scalars(
                sa.select(Conversation).where(
                    Conversation.id == number,
                    Conversation.inbox_id == inbox.id,
                    Conversation.contact_id == ident.contact_id,
                )
            ).first()
    base = threads.match_subject(ev.subject)
    if (
        conv is None
        and base
        and threads.display_subject(ev.subject) != " ".join((ev.subject or "").split())
    ):
        since = b.received_at - _reopen_window(inbox)
        recent = session.scalars(
            sa.select(Conversation)
            .where(
                Conversation.inbox_id == inbox.id,
                Conversation.contact_id == ident.contact_id,
                Conversation.last_activity_at >= since,
            )
            .order_by(Conversation.id.desc())
            .limit(20)
        )
        conv = next((c for c in recent if threads.match_subject(c.subject) == base), None)
    return conv


def _flood_target(b: _Batch, ident: ContactIdentity) -> Conversation | None:
    """The conversation a sender's new-thread mail joins once they opened too many lately.

    Once a contact started the inbox's ``sender_new_conversations`` conversations within
    ``sender_window_minutes``, more would be a flood (a script, a loop, an attacker filling
    the queue): the mail goes to their latest open conversation, or their latest one
    (which may reopen) when none is open. None: under the cap, a new conversation. Counted in the database, so it holds within one batch (earlier
    messages' conversations are flushed) as across webhooks; the identity row lock
    taken by :func:`find_or_create_identity` serialises concurrent deliveries.
    """
    session, inbox = b.session, b.inbox
    cap = int(inbox.setting("sender_new_conversations") or 0)
    if cap <= 0:
        return None
    since = b.received_at - timedelta(minutes=float(inbox.setting("sender_window_minutes")))
    mine = (Conversation.inbox_id == inbox.id, Conversation.contact_id == ident.contact_id)
    started = session.scalar(
        sa.select(sa.func.count()).select_from(
            sa.select(Conversation.id)
            .where(*mine, Conversation.created_at >= since)
            .limit(cap)
            .subquery()
        )
    )
    if started < cap:
        return None
    open_one = session.scalars(
        sa.select(Conversation)
        .where(*mine, Conversation.status != "closed")
        .order_by(Conversation.id.desc())
        .limit(1)
    ).first()
    return open_one or latest_conversation(session, inbox.id, ident.contact_id)


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
    ident, new_ident = find_or_create_identity(
        session, inbox, ev.contact_id, ev.contact_name, cache=b.identities
    )
    if new_ident:
        b.new_identities.append(ident.id)
        if b.latest is not None:
            b.latest.setdefault(ident.contact_id, None)  # a new contact has no conversation
    sent_at = aware(ev.sent_at) or b.received_at
    mail = channels.get(inbox.channel).mail
    candidate = _email_candidate(b, ident, ev) if mail else None
    flooded = False
    if candidate is None and mail:
        candidate = _flood_target(b, ident)
        flooded = candidate is not None
    subject = None
    if mail:
        from connectors.email import threads

        subject = threads.display_subject(ev.subject or "")[:500] or None
    conv, how = thread_conversation(
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
    meta = {"kind": ev.kind, **({"context": ev.context} if ev.context else {})}
    if ev.reply_to_external_id:
        meta["reply_to"] = ev.reply_to_external_id
    if ev.subject:
        meta["subject"] = ev.subject
    if flooded:  # a new thread, kept here: the sender opened too many conversations lately
        meta["sender_limit"] = True
    full = ev.context.get("full_text") if ev.context else None
    if full is not None:
        meta["context"] = {k: v for k, v in ev.context.items() if k != "full_text"}
    values = {
        "conversation_id": conv.id,
        "inbox_id": inbox.id,
        "direction": "inbound",
        "body": ev.text or "",
        "html": ev.html,
        "full_body": full if full and full.strip() != (ev.text or "").strip() else None,
        "sender_name": ev.contact_name or ident.contact.name or ident.fallback_name(),
        "provider_id": ev.external_id,
        "platform_at": sent_at,
        "status": "received",
        "automated": ev.automated,
        "meta": meta,
        "created_at": b.received_at,
        "updated_at": b.received_at,
    }
    staged = _Staged(ev, values, conv, ident, how, sent_at, b.received_at)
    if ev.external_id:
        b.existing.add(ev.external_id)
        if not mail:  # mail goes in at once: the next one may thread on its Message-ID
            b.staged.append(staged)
            return
    new_id = insert_ignore(session, Message, values, ["inbox_id", "provider_id"])
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
                Message, _STAGED_COLUMNS, _MESSAGE_KEY, ("id", "provider_id"), ("meta",)
            )
            values = as_arrays(
                [s.values for s in staged], _STAGED_COLUMNS, times=_TIMES, json_columns=("meta",)
            )
            rows = session.execute(stmt, values).all()
        else:
            stmt = insert_ignore_stmt(session, Message, list(_MESSAGE_KEY), "id", "provider_id")
            rows = session.execute(stmt, [s.values for s in staged]).all()
    ids = {provider_id: row_id for row_id, provider_id in rows}
    lost: dict[int, Conversation] = {}
    for s in staged:
        new_id = ids.get(s.values["provider_id"])
        _inserted(b, s, new_id)
        if new_id is None and s.how == "created":
            lost[s.conv.id] = s.conv
    for conv in lost.values():
        _drop_if_empty(b, conv)


#: The columns of a staged customer message, as ``_inbound`` fills them.
_STAGED_COLUMNS = (
    "conversation_id",
    "inbox_id",
    "direction",
    "body",
    "html",
    "full_body",
    "sender_name",
    "provider_id",
    "platform_at",
    "status",
    "automated",
    "meta",
    "created_at",
    "updated_at",
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
    if ev.attachments:
        msg = session.get(Message, new_id)
        _store_attachments(session, msg, ev.attachments)
    else:  # nothing to load back: the row is exactly what we inserted
        msg = Message(id=new_id, **s.values)
    # timers: the platform's own send time; out-of-order deliveries keep the latest
    if conv.last_inbound_at is None or sent_at > aware(conv.last_inbound_at):
        conv.last_inbound_at = sent_at
        _keep_context(conv, ev.context)
        referral = (ev.context or {}).get("referral")
        if isinstance(referral, dict):  # the ad, link or QR code the customer came from
            conv.context = {**(conv.context or {}), "referral": referral}
    if not ev.automated:
        if s.ident.undeliverable_reason:  # they wrote: they can be reached again (unblocked)
            s.ident.undeliverable_reason = None
        if conv.waiting_since is None or sent_at < aware(conv.waiting_since):
            conv.waiting_since = sent_at
        if conv.status in ("snoozed", "pending"):
            woken = activity.WOKEN_SNOOZED if conv.status == "snoozed" else activity.WOKEN_PENDING
            add_activity(session, conv, activity.line(woken), event="woken")
            conv.status = "open"
            conv.snooze_until = None
    conv.unread_count = (conv.unread_count or 0) + 1
    shown = [a for a in ev.attachments if a.kind != "original"]  # email: the raw .eml
    preview = ev.text or (f"[{shown[0].kind}]" if shown else "")
    _set_last_message(conv, "inbound", preview, s.received_at)
    refresh_timers(conv, inbox)
    b.result.created.append(msg.id)
    b.messages[msg.id] = msg
    b.touch(conv, created=(s.how == "created"))
    events.publish(session, "message.created", message_dict(msg), ("inbox", inbox.id))


def _echo(b: _Batch, ev: cb.EchoedOutbound) -> None:
    """Our own send reported back (merge), or a reply sent outside Switchboard (store)."""
    session, inbox = b.session, b.inbox
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
            b.result.duplicates += 1
            return
    if ours is not None:
        # the echo may arrive before the Send API call returned: merge, never downgrade
        if ours.provider_id is None:
            ours.provider_id = ev.external_id
        if ev.sent_at is not None:  # Meta's own time: what its receipt watermarks compare to
            ours.platform_at = aware(ev.sent_at)
        if STATUS_RANK.get(ours.status, -1) < STATUS_RANK["sent"] and ours.status != "failed":
            apply_status(session, ours, "sent", None)  # settles an unknown delivery too
        b.result.updated += 1
        events.publish(session, "message.updated", message_dict(ours), ("inbox", inbox.id))
        return
    ident, new_ident = find_or_create_identity(session, inbox, ev.contact_id, None)
    if new_ident:
        b.new_identities.append(ident.id)
    conv, how = thread_conversation(session, inbox, ident, b.received_at, automated=True)
    sent_at = aware(ev.sent_at) or b.received_at
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
            "created_at": b.received_at,
            "updated_at": b.received_at,
        },
        ["inbox_id", "provider_id"],
    )
    if new_id is None:
        b.result.duplicates += 1
        return
    msg = session.get(Message, new_id)
    if ev.attachments:
        _store_attachments(session, msg, ev.attachments)
    conv.last_outbound_at = sent_at
    conv.waiting_since = None  # a person answered, in the Page's own inbox
    _set_last_message(conv, "outbound", ev.text or "[attachment]", b.received_at)
    refresh_timers(conv, inbox)
    b.result.created.append(msg.id)
    b.messages[msg.id] = msg
    b.touch(conv, created=(how == "created"))
    events.publish(session, "message.created", message_dict(msg), ("inbox", inbox.id))


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


def mark_identity(
    session: Session, ident: ContactIdentity, error: cb.SendError, at: datetime
) -> None:
    """Record what a provider error says about the recipient (opted out, undeliverable)."""
    if error.kind is cb.ErrorKind.OPTED_OUT and ident.opted_out_at is None:
        ident.opted_out_at = at
    elif error.kind is cb.ErrorKind.UNDELIVERABLE and not ident.undeliverable_reason:
        ident.undeliverable_reason = (error.message or "This address cannot receive messages")[:300]


PROVIDER_RETRIES = 5  # re-sends after a provider reported a full queue or a rate limit


def _send_again_later(
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
    delay = max(float(error.retry_after or 0), 60.0 * 2**tries)
    session.add(
        OutboxItem(
            kind="send",
            inbox_id=msg.inbox_id,
            message_id=msg.id,
            next_attempt_at=at + timedelta(seconds=delay),
            payload={},
        )
    )
    return True


def _status(b: _Batch, ev: cb.StatusUpdate) -> None:
    session, inbox = b.session, b.inbox
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
        if status == "failed" and _send_again_later(session, msg, ev.error, b.received_at):
            b.result.updated += 1
            events.publish(session, "message.updated", message_dict(msg), ("inbox", inbox.id))
            continue
        if apply_status(session, msg, status, ev.error):
            b.result.updated += 1
            events.publish(session, "message.updated", message_dict(msg), ("inbox", inbox.id))
        if ev.error is not None and status == "failed" and msg.status == "failed":
            conv = session.get(Conversation, msg.conversation_id)
            ident = session.get(ContactIdentity, conv.identity_id) if conv.identity_id else None
            if ident is not None:
                mark_identity(session, ident, ev.error, b.received_at)
                b.touch(conv)


def _consent(b: _Batch, ev: cb.OptOut | cb.OptIn) -> None:
    session, inbox = b.session, b.inbox
    ident, _ = find_or_create_identity(session, inbox, ev.contact_id, None)
    opt_out = isinstance(ev, cb.OptOut)
    if opt_out == (ident.opted_out_at is not None):
        return
    ident.opted_out_at = (aware(ev.at) or b.received_at) if opt_out else None
    conv = latest_conversation(session, inbox.id, ident.contact_id)
    if conv is not None:
        said = activity.line(
            activity.OPTED_OUT if opt_out else activity.OPTED_IN, keyword=ev.keyword
        )
        add_activity(session, conv, said, event="opted_out" if opt_out else "opted_in")
        if opt_out:  # nothing can be answered now: no response-due timer to breach
            conv.waiting_since = None
            refresh_timers(conv, inbox)
        b.touch(conv)


def _keep_context(conv: Conversation, context: dict | None) -> None:
    """Copy the conversation-level keys of a message's context onto the conversation.

    The keys are replaced as a group, so a stale ``place_id`` never sits beside a
    newer ``near_place_id``.
    """
    found = {k: context[k] for k in CONVERSATION_CONTEXT_KEYS if context and k in context}
    if not found:
        return
    ctx = {k: v for k, v in (conv.context or {}).items() if k not in CONVERSATION_CONTEXT_KEYS}
    ctx.update(found)
    if ctx != (conv.context or {}):
        conv.context = ctx


def _context(b: _Batch, ev: cb.ConversationContext) -> None:
    session, inbox = b.session, b.inbox
    ident, _ = find_or_create_identity(session, inbox, ev.contact_id, ev.contact_name)
    conv, how = thread_conversation(session, inbox, ident, b.received_at, automated=True)
    ctx = dict(conv.context or {})
    previous_survey = ctx.get("survey")
    ctx.update(ev.data)
    conv.context = ctx
    if ev.data.get("requested_live_agent"):
        if not conv.requested_live_agent:
            add_activity(session, conv, activity.line(activity.LIVE_AGENT), event="live_agent")
            conv.last_activity_at = b.received_at  # raise it in the list
        conv.requested_live_agent = True
        conv.priority = max(conv.priority or 0, 1)
    survey = ev.data.get("survey")
    if survey and survey != previous_survey:  # a replayed answer adds no second line
        add_activity(session, conv, activity.line(activity.SURVEY), event="survey", survey=survey)
    b.touch(conv, created=(how == "created"))


def _typing(b: _Batch, ev: cb.Typing) -> None:
    ident = b.session.scalars(
        sa.select(ContactIdentity).where(
            ContactIdentity.inbox_id == b.inbox.id, ContactIdentity.external_id == ev.contact_id
        )
    ).first()
    if ident is None:
        return
    conv_id = b.session.scalar(
        sa.select(Conversation.id)
        .where(Conversation.inbox_id == b.inbox.id, Conversation.contact_id == ident.contact_id)
        .order_by(Conversation.id.desc())
        .limit(1)
    )
    if conv_id:
        events.publish(
            b.session,
            "contact.typing",
            {"conversation_id": conv_id, "is_typing": ev.is_typing},
            ("inbox", b.inbox.id),
        )


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
) -> IngestResult:
    """Store a batch of normalised events for ``inbox`` and commit it.

    ``received_at`` is when the webhook arrived: one time for the whole batch, or
    one per event (the intake ingests several webhook bodies at once).
    Events are published to live clients only after the commit succeeds.
    """
    if isinstance(received_at, list):
        times = [aware(at) or now() for at in received_at]
    else:
        times = [aware(received_at) or now()] * len(batch)
    latest = max(times, default=None) or now()
    batch = _normalize_contacts(inbox, batch)
    b = _Batch(session, inbox, latest)
    ordered = sorted(zip(batch, times, strict=True), key=lambda pair: _sort_key(pair[0]))
    b.prefetch(ordered)
    for ev, at in ordered:
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
            _typing(b, ev)
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
    """Profile look-ups for new contacts, assignment, and conversation events."""
    from app.inbox import assignment  # late: assignment imports ingest helpers

    session, inbox = b.session, b.inbox
    connector_cls = cb.get(inbox.channel) if inbox.channel in cb.channels() else None
    if connector_cls is not None and connector_cls.fetch_profile is not cb.Connector.fetch_profile:
        for ident_id in b.new_identities:
            session.add(
                OutboxItem(kind="profile", inbox_id=inbox.id, payload={"identity_id": ident_id})
            )
    for conv in b.touched.values():
        if conv.id in b.created_convs:
            assignment.auto_assign(session, conv)
    session.flush()
    for conv in b.touched.values():
        name = "conversation.created" if conv.id in b.created_convs else "conversation.updated"
        events.publish(session, name, conversation_dict(conv), ("inbox", inbox.id))
        b.result.conversations.add(conv.id)
    if b.touched:
        events.publish(session, "counts.updated", {"inbox_id": inbox.id}, ("inbox", inbox.id))
        from app.inbox import automation  # greeting, away message, follow-up and inactive flags

        automation.after_batch(b)
