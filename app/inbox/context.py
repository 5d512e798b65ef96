"""What the customer's side tells about a conversation besides messages.

Where they started it (entry point, place, locale: kept on the conversation),
that they asked for a person, a survey answer, and that they are typing (live
only, nothing stored). No Flask here.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.inbox import activity, events
from app.inbox.activity import add_activity
from app.inbox.threading import find_or_create_identity, thread_conversation
from app.models import ContactIdentity, Conversation, Inbox
from connectors import base as cb

#: Message context that describes the whole conversation (where and in which language
#: the customer started it); the latest message's values are kept on the conversation.
CONVERSATION_CONTEXT_KEYS = ("entry_point", "place_id", "near_place_id", "locale", "widget")


def keep_context(conv: Conversation, context: dict | None) -> None:
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


def record_context(
    session: Session, inbox: Inbox, ev: cb.ConversationContext, at: datetime
) -> tuple[Conversation, bool]:
    """Merge a context event into its conversation; returns it and whether it was created.

    A request for a live agent raises the priority and adds one activity line; a
    survey answer adds a line once (a replayed answer adds no second one).
    """
    ident, _ = find_or_create_identity(session, inbox, ev.contact_id, ev.contact_name)
    conv, how = thread_conversation(session, inbox, ident, at, automated=True)
    ctx = dict(conv.context or {})
    previous_survey = ctx.get("survey")
    ctx.update(ev.data)
    conv.context = ctx
    if ev.data.get("requested_live_agent"):
        if not conv.requested_live_agent:
            add_activity(session, conv, activity.line(activity.LIVE_AGENT), event="live_agent")
            conv.last_activity_at = at  # raise it in the list
        conv.requested_live_agent = True
        conv.priority = max(conv.priority or 0, 1)
    survey = ev.data.get("survey")
    if survey and survey != previous_survey:  # a replayed answer adds no second line
        add_activity(session, conv, activity.line(activity.SURVEY), event="survey", survey=survey)
    return conv, how == "created"


def publish_typing(session: Session, inbox: Inbox, ev: cb.Typing) -> None:
    """Tell the inbox's live clients that the customer is (or stopped) typing."""
    ident = session.scalars(
        sa.select(ContactIdentity).where(
            ContactIdentity.inbox_id == inbox.id, ContactIdentity.external_id == ev.contact_id
        )
    ).first()
    if ident is None:
        return
    conv_id = session.scalar(
        sa.select(Conversation.id)
        .where(Conversation.inbox_id == inbox.id, Conversation.contact_id == ident.contact_id)
        .order_by(Conversation.id.desc())
        .limit(1)
    )
    if conv_id:
        events.publish(
            session,
            "contact.typing",
            {"conversation_id": conv_id, "is_typing": ev.is_typing},
            ("inbox", inbox.id),
        )
