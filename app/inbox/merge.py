"""Merging two contacts that are one person: what would move, and moving it.

The other contact's identities and conversations move to the survivor, which keeps
its own details and takes the other's where it has none; then the other contact is
deleted. Because identities move, the customer's next message on any of them threads
under the survivor. Each moved conversation gets an activity line; every conversation
of the survivor goes out as ``conversation.updated``, and ``contact.merged`` tells the
inboxes concerned. No Flask here.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import lock_for_update
from app.inbox import activity, events
from app.inbox.activity import add_activity
from app.inbox.audit import record
from app.inbox.contacts import publish_contact
from app.models import Contact, ContactIdentity, Conversation, InboxMember, User


class MergeRefused(ValueError):
    """These two contacts cannot be merged (the same one, an erased one)."""


@dataclass(frozen=True)
class MergePlan:
    """What a merge of ``other`` into ``survivor`` does."""

    survivor: Contact
    other: Contact
    identities: list[ContactIdentity]
    conversations: list[Conversation]  # those the user sees
    hidden_conversations: int  # in inboxes the user does not see (they move too)
    details: dict[str, object]  # the details the survivor takes from the other


def _check(survivor: Contact, other: Contact) -> None:
    if survivor.id == other.id:
        raise MergeRefused("A contact cannot be merged with itself.")
    if survivor.erased_at is not None or other.erased_at is not None:
        raise MergeRefused("An erased contact cannot be merged.")


def taken_details(survivor: Contact, other: Contact) -> dict[str, object]:
    """The details the survivor takes from ``other``: those it lacks, notes and attributes added."""
    out: dict[str, object] = {}
    for field in ("name", "email", "phone", "avatar_url", "locale", "timezone"):
        if not getattr(survivor, field) and getattr(other, field):
            out[field] = getattr(other, field)
    if other.notes and other.notes != survivor.notes:
        out["notes"] = "\n\n".join(n for n in (survivor.notes, other.notes) if n)
    extra = {
        k: v for k, v in (other.attributes or {}).items() if k not in (survivor.attributes or {})
    }
    if extra:
        out["attributes"] = {**(survivor.attributes or {}), **extra}
    return out


def plan(session: Session, user: User, survivor: Contact, other: Contact) -> MergePlan:
    """What merging ``other`` into ``survivor`` would move (the preview); raises MergeRefused."""
    _check(survivor, other)
    convs = list(
        session.scalars(
            sa.select(Conversation)
            .where(Conversation.contact_id == other.id)
            .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        ).unique()
    )
    seen = convs
    if not user.is_lead:
        mine = set(
            session.scalars(sa.select(InboxMember.inbox_id).where(InboxMember.user_id == user.id))
        )
        seen = [c for c in convs if c.inbox_id in mine]
    return MergePlan(
        survivor=survivor,
        other=other,
        identities=list(other.identities),
        conversations=seen,
        hidden_conversations=len(convs) - len(seen),
        details=taken_details(survivor, other),
    )


def merge(session: Session, user: User, survivor: Contact, other: Contact) -> list[Conversation]:
    """Move ``other``'s identities and conversations to ``survivor`` and delete ``other``.

    Both contact rows and the other's identities are locked first (PostgreSQL), so a
    customer message arriving meanwhile waits and then threads under the survivor.
    Returns the conversations that moved.
    """
    _check(survivor, other)
    first, second = sorted((survivor.id, other.id))
    for contact_id in (first, second):
        session.scalars(
            lock_for_update(session, sa.select(Contact.id).where(Contact.id == contact_id))
        ).all()
    session.scalars(
        lock_for_update(
            session, sa.select(ContactIdentity.id).where(ContactIdentity.contact_id == other.id)
        )
    ).all()
    details = taken_details(survivor, other)
    other_name = other.display_name()
    moved_ids = list(
        session.scalars(sa.select(Conversation.id).where(Conversation.contact_id == other.id))
    )
    identities = len(other.identities)
    session.execute(
        sa.update(ContactIdentity)
        .where(ContactIdentity.contact_id == other.id)
        .values(contact_id=survivor.id)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        sa.update(Conversation)
        .where(Conversation.contact_id == other.id)
        .values(contact_id=survivor.id)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        sa.update(Contact)
        .where(Contact.merged_into_id == other.id)
        .values(merged_into_id=survivor.id)
        .execution_options(synchronize_session=False)
    )
    session.expire(other)
    session.delete(other)
    for field, value in details.items():
        setattr(survivor, field, value)
    session.flush()
    session.expire(survivor, ["identities"])
    record(
        session,
        "contact.merge",
        survivor.id,
        user,
        merged_id=other.id,
        identities=identities,
        conversations=len(moved_ids),
    )
    said = activity.line(
        activity.CONTACT_MERGED, who=user.name, other=other_name, name=survivor.display_name()
    )
    convs = list(
        session.scalars(
            sa.select(Conversation)
            .where(Conversation.contact_id == survivor.id)
            .execution_options(populate_existing=True)
        ).unique()
    )
    moved = [c for c in convs if c.id in set(moved_ids)]
    for conv in moved:
        add_activity(session, conv, said, event="contact_merged", merged_id=other.id)
    for conv in convs:  # identities and name changed on every one of the survivor's
        events.changed(session, "conversation.updated", conv, ("inbox", conv.inbox_id))
    publish_contact(session, survivor, "contact.merged", merged_id=other.id)
    return moved
