"""Threading: which contact wrote, and which conversation their message belongs to.

The contact identity for a sender (found, or created safely under concurrency),
the contact's latest conversation, reopening a recently closed one, email's
header and subject threading, and the sender flood limit. The batch look-ups
(:func:`prefetch_statements`) find the identities and latest conversations of a
whole webhook batch in a few queries. No Flask here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, joinedload

from app.clock import aware, now
from app.db import chunks, dialect, insert_ignore, insert_ignore_stmt, lock_for_update
from app.inbox import activity
from app.inbox.activity import add_activity
from app.models import Contact, ContactIdentity, Conversation, Inbox, Message
from connectors import base as cb
from connectors.email import threads  # email specifics live with the email connector


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


def reopen_window(inbox: Inbox) -> timedelta:
    """How long after closing a conversation the customer writing reopens it."""
    return timedelta(days=float(inbox.setting("reopen_days")))


def new_conversation(
    inbox: Inbox, ident: ContactIdentity, at: datetime, subject: str | None = None
) -> Conversation:
    """A new open conversation of ``ident``'s contact, started at ``at`` (not yet added)."""
    return Conversation(
        inbox_id=inbox.id,
        contact_id=ident.contact_id,
        identity_id=ident.id,
        status="open",
        subject=subject,
        last_activity_at=at,
        created_at=at,
        context={},
    )


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
        if conv.closed_at and aware(conv.closed_at) > at - reopen_window(inbox):
            conv.status = "open"
            conv.closed_at = None
            add_activity(
                session, conv, activity.line(activity.REOPENED_BY_CUSTOMER), event="reopened"
            )
            return conv, "reopened"
    conv = new_conversation(inbox, ident, at, subject)
    session.add(conv)
    session.flush()
    return conv, "created"


def start_conversations(
    session: Session, inbox: Inbox, starts: list[tuple[ContactIdentity, datetime]]
) -> list[Conversation]:
    """A conversation for each of these identities, inserted together (one flush)."""
    convs = [new_conversation(inbox, ident, at) for ident, at in starts]
    session.add_all(convs)
    session.flush()
    return convs


def create_identities(
    session: Session, inbox: Inbox, names: dict[str, str | None], senders
) -> tuple[list[ContactIdentity], list[int]]:
    """Contacts and identities for senders new to the inbox, a few statements for all.

    ``names`` maps each sender's external id to a name they gave. One at a time
    it took four round trips per sender. A sender another process created
    meanwhile keeps that identity (ours is skipped by the unique key and its
    contact removed). ``senders`` (of :func:`prefetch_statements`) loads them,
    locked on PostgreSQL, like the ones that existed. Returns the identities and
    the ids of those created here.
    """
    at = now()
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
    identities = list(session.scalars(senders, {"inbox": inbox.id, "ids": keys}).unique())
    return identities, [identity_id for identity_id, _key in made]


_PREFETCH: dict[str, tuple] = {}


def prefetch_statements(session: Session) -> tuple:
    """A batch's look-ups for this database, built once: stored provider ids, senders, latest.

    Building a statement per batch cost as much as running it; these take the
    inbox as ``:inbox`` and a list of keys as ``:ids``: the provider ids already
    stored (replays), the senders' identities (locked on PostgreSQL, in a stable
    order) and each contact's latest conversation.
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


def stored_refs(
    session: Session, inbox: Inbox, refs: list[str]
) -> dict[str, tuple[int, Conversation]]:
    """The messages of ``inbox`` stored with these Message-IDs: id -> (message id, conversation).

    One query for a whole batch of mail (``refs``: every In-Reply-To and References id
    of the batch), instead of one per message; :func:`email_candidate` reads it.
    """
    found: dict[str, tuple[int, Conversation]] = {}
    for chunk in chunks(sorted(set(refs))):
        rows = session.execute(
            sa.select(Message.provider_id, Message.id, Conversation)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.inbox_id == inbox.id, Message.provider_id.in_(chunk))
        )
        for provider_id, message_id, conv in rows:
            best = found.get(provider_id)
            if best is None or best[0] < message_id:
                found[provider_id] = (message_id, conv)
    return found


def email_candidate(
    session: Session,
    inbox: Inbox,
    ident: ContactIdentity,
    ev: cb.InboundMessage,
    at: datetime,
    known: dict[str, tuple[int, Conversation]] | None = None,
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
    matches, so replies to a shared newsletter stay apart. ``known`` (of
    :func:`stored_refs`, kept up to date by the batch) answers step 1 without a query.
    """
    refs = [r for r in ev.thread_refs if r]
    conv = None
    if refs and known is not None:
        hits = [known[r] for r in refs if r in known]
        mine = [hit for hit in hits if hit[1].contact_id == ident.contact_id]
        conv = max(mine, key=lambda hit: hit[0])[1] if mine else None
    elif refs:
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
        since = at - reopen_window(inbox)
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


def flood_target(
    session: Session, inbox: Inbox, ident: ContactIdentity, at: datetime
) -> Conversation | None:
    """The conversation a sender's new-thread mail joins once they opened too many lately.

    Once a contact started the inbox's ``sender_new_conversations`` conversations within
    ``sender_window_minutes``, more would be a flood (a script, a loop, an attacker filling
    the queue): the mail goes to their latest open conversation, or their latest one
    (which may reopen) when none is open. None: under the cap, a new conversation.
    Counted in the database, so it holds within one batch (earlier messages'
    conversations are flushed) as across webhooks; the identity row lock
    taken by :func:`find_or_create_identity` serialises concurrent deliveries.
    """
    cap = int(inbox.setting("sender_new_conversations") or 0)
    if cap <= 0:
        return None
    since = at - timedelta(minutes=float(inbox.setting("sender_window_minutes")))
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


def mail_subject(ev: cb.InboundMessage) -> str | None:
    """The subject a conversation started by this mail shows (reply prefixes and tokens off)."""
    return threads.display_subject(ev.subject or "")[:500] or None
