"""Mentions in private notes: ``@[Name](user:<id>)`` calls a teammate in.

The composer inserts the markup when the agent picks a teammate after typing ``@``;
the thread shows it as a chip. When the note is stored (``signals.note_added``) each
mentioned teammate who can see the conversation gets a ``mention`` notification: live,
in the bell, as a desktop notification and by email when they are not online, as
their notification settings say. It links to the note. Someone who cannot see the
conversation gets nothing, and so does the author for mentioning themselves. No Flask here.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.inbox.notifications import isolate, notify
from app.inbox.queries import can_see
from app.models import Conversation, Message, User

#: ``@[Name](user:<id>)``: the name as the author saw it, then the user's id.
MENTION = re.compile(r"@\[([^\[\]\n]{1,120})\]\(user:(\d{1,12})\)")
EXCERPT = 200


def mentioned_ids(body: str | None) -> list[int]:
    """The ids of the users ``body`` mentions, once each, in order."""
    return list(dict.fromkeys(int(m.group(2)) for m in MENTION.finditer(body or "")))


def plain_text(body: str | None) -> str:
    """``body`` with each mention written as ``@Name`` (for notifications and mail)."""
    return MENTION.sub(lambda m: "@" + m.group(1), body or "")


def excerpt(body: str | None) -> str:
    """The start of a note, as plain text on one line."""
    text = " ".join(plain_text(body).split())
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1].rstrip() + "…"


def notify_mentioned(
    session: Session, conv: Conversation, note: Message, by: User | None
) -> list[int]:
    """Notify every teammate ``note`` mentions who can see ``conv``; returns their ids."""
    ids = [uid for uid in mentioned_ids(note.body) if by is None or uid != by.id]
    if not ids:
        return []
    users = session.scalars(
        sa.select(User).where(User.id.in_(ids), User.active.is_(True)).order_by(User.id)
    )
    who = by.name if by is not None else "Switchboard"
    told = []
    for user in users:
        if not can_see(session, user, conv.inbox_id):
            continue
        notify(
            session,
            user,
            "mention",
            conv,
            dedupe_key=f"mention:{note.id}:u{user.id}",
            by=who,
            message_id=note.id,
            excerpt=excerpt(note.body),
            text=f"{isolate(who)} mentioned you in a note on the conversation "
            f"with {isolate(conv.contact.display_name())}",
        )
        told.append(user.id)
    return told


def on_note_added(
    conv: Conversation, *, session: Session, message: Message, by: User | None, **_
) -> None:
    """Receiver of ``signals.note_added``: tell the teammates the note mentions."""
    notify_mentioned(session, conv, message, by)
