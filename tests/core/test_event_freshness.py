"""A live event carries the row as it will be committed, not as the session first read it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.extensions import db
from app.inbox import assignment, conversations
from app.models import Conversation, User


def test_an_update_from_an_older_read_keeps_a_teammates_later_change(make, captured_events):
    agent = make.user(name="Ana")
    inbox = make.inbox(members=[agent])
    msg = make.inbound(inbox, contact="fresh-1", text="Hello")
    conv_id = msg.conversation_id
    db.session.commit()

    # this request reads the conversation (unassigned, one unread message) ...
    mine = db.session.get(Conversation, conv_id)
    assert mine.assignee_id is None and mine.unread_count == 1
    # ... while a teammate's reply takes it, in another transaction
    with Session(db.engine) as other:
        conv = other.get(Conversation, conv_id)
        assignment.assign(other, conv, other.get(User, agent.id))
        other.commit()
    captured_events.clear()

    conversations.mark_read(db.session, mine)  # then this request marks it read
    db.session.commit()

    updated = [e for e in captured_events if e.name == "conversation.updated"]
    assert updated, captured_events
    assert updated[-1].payload["unread_count"] == 0
    assert updated[-1].payload["assignee"] == {"id": agent.id, "name": "Ana"}
    assert db.session.get(Conversation, conv_id).assignee_id == agent.id
