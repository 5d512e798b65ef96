"""A conversation the business starts: writing first to a contact from one of its inboxes.

Only channels whose adapter says the business may write first (``starts_conversations``:
email always; SMS within the customer's consent and quiet hours) are offered, to the
contact's addresses of the kind the channel speaks (``contact_address``): the identity
the contact already has in that inbox, its email or phone details, the addresses its
other identities stand for. Every send-time rule is the one replies pass
(:func:`app.inbox.replies.check_send`). No Flask here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import channels
from app.clock import now
from app.db import insert_ignore
from app.inbox import assignment, events, replies
from app.inbox.contacts import addresses
from app.inbox.queries import visible_inbox_ids
from app.inbox.threading import new_conversation
from app.models import Contact, ContactIdentity, Conversation, Inbox, Message, User


@dataclass(frozen=True)
class Reach:
    """One way to write first to the contact: an inbox and an address, allowed now or not."""

    inbox: Inbox
    address: str
    identity: ContactIdentity | None  # the contact's identity there, None: made on sending
    allowed: bool
    code: str | None = None  # why not: opted_out, quiet_hours, address_taken, ...
    reason: str | None = None
    subject: bool = False  # the channel's messages have a subject (mail)


def _check(session: Session, contact: Contact, inbox: Inbox, address: str, at: datetime) -> Reach:
    adapter = channels.get(inbox.channel)
    ident = next(
        (i for i in contact.identities if i.inbox_id == inbox.id and i.external_id == address),
        None,
    )
    if ident is None:
        owner = session.scalar(
            sa.select(ContactIdentity.contact_id).where(
                ContactIdentity.inbox_id == inbox.id, ContactIdentity.external_id == address
            )
        )
        if owner is not None:
            return Reach(
                inbox,
                address,
                None,
                False,
                "address_taken",
                "Another contact has this address here: merge the two contacts first.",
                adapter.mail,
            )
    probe = Conversation(inbox_id=inbox.id, contact_id=contact.id, context={})
    probe.inbox = inbox
    recipient = ident or ContactIdentity(
        inbox_id=inbox.id, channel=inbox.channel, external_id=address
    )
    try:
        replies.check_send(session, probe, at, identity=recipient)
    except replies.SendRefused as exc:
        return Reach(inbox, address, ident, False, exc.code, exc.message, adapter.mail)
    finally:
        if probe in session:
            session.expunge(probe)
    return Reach(inbox, address, ident, True, subject=adapter.mail)


def options(
    session: Session, user: User, contact: Contact, at: datetime | None = None
) -> list[Reach]:
    """Every inbox ``user`` sees where the business may write first, with each address."""
    at = at or now()
    q = sa.select(Inbox).where(Inbox.active.is_(True)).order_by(Inbox.name, Inbox.id)
    visible = visible_inbox_ids(user)
    if visible is not None:
        q = q.where(Inbox.id.in_(visible))
    known = addresses(contact)
    out: list[Reach] = []
    for inbox in session.scalars(q):
        try:
            adapter = channels.get(inbox.channel)
        except KeyError:
            continue
        if not adapter.starts_conversations or not adapter.contact_address:
            continue
        here = [i.external_id for i in contact.identities if i.inbox_id == inbox.id]
        mine = [a for a in here if adapter.address_of(a)]
        others = sorted(known.get(adapter.contact_address, set()) - set(mine))
        out.extend(_check(session, contact, inbox, a, at) for a in [*mine, *others])
    return out


class CannotStart(ValueError):
    """The contact cannot be written to from there (``code`` says why)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def start(
    session: Session,
    user: User,
    contact: Contact,
    inbox_id: int,
    address: str,
    body: str,
    *,
    subject: str | None = None,
    client_id: str | None = None,
) -> tuple[Conversation, Message]:
    """Open a conversation with ``contact`` in the inbox and queue its first message.

    The conversation is the agent's (assigned to them). Raises :class:`CannotStart`,
    or :class:`~app.inbox.replies.SendRefused` / ``InvalidMessage`` as a reply would;
    the caller rolls back then.
    """
    at = now()
    reach = next(
        (
            r
            for r in options(session, user, contact, at)
            if r.inbox.id == inbox_id and r.address == address
        ),
        None,
    )
    if reach is None:
        raise CannotStart("not_reachable", "This contact cannot be written to from that inbox.")
    if not reach.allowed:
        raise CannotStart(reach.code or "refused", reach.reason or "Not possible now.")
    subject = " ".join((subject or "").split())[:500] or None
    if reach.subject and not subject:
        raise replies.InvalidMessage("Write a subject for the email.")
    inbox = reach.inbox
    ident = reach.identity
    if ident is None:
        insert_ignore(
            session,
            ContactIdentity,
            {
                "contact_id": contact.id,
                "inbox_id": inbox.id,
                "channel": inbox.channel,
                "external_id": address,
                "data": {},
                "created_at": at,
            },
            ["inbox_id", "external_id"],
        )
        ident = session.scalars(
            sa.select(ContactIdentity).where(
                ContactIdentity.inbox_id == inbox.id, ContactIdentity.external_id == address
            )
        ).one()
        if ident.contact_id != contact.id:  # another contact took it meanwhile
            raise CannotStart("address_taken", "Another contact has this address here.")
        session.expire(contact, ["identities"])
    conv = new_conversation(inbox, ident, at, subject if reach.subject else None)
    session.add(conv)
    session.flush()
    events.changed(session, "conversation.created", conv, ("inbox", inbox.id))
    assignment.assign(session, conv, user, by=user)
    msg, _ = replies.post_message(session, conv, user, body, client_id=client_id)
    return conv, msg
