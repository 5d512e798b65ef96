"""The event bus: changed objects are serialised once at commit, and their marks collapse."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.clock import now
from app.extensions import db
from app.inbox import assignment, conversations, events, replies
from app.inbox.ingest import ingest
from app.models import Conversation, Message
from connectors.base import InboundMessage
from tests.automation.helpers import online


@pytest.fixture
def conv(make):
    """An open conversation with one customer message, its events already sent."""
    inbox = make.inbox()
    msg = make.inbound(inbox, contact="events-1", text="Hello")
    return db.session.get(Conversation, msg.conversation_id)


@pytest.fixture
def serialised(app):
    """How many times each conversation was serialised for an event (by id)."""
    calls: list[int] = []
    original = events.serialiser_for(Conversation)

    def counting(obj):
        calls.append(obj.id)
        return original(obj)

    events.serialiser(Conversation, counting)
    yield calls
    events.serialiser(Conversation, original)


def _named(captured, name: str) -> list:
    return [e for e in captured if e.name == name]


def test_two_changes_in_one_transaction_send_one_update_with_the_final_state(
    make, conv, captured_events, serialised
):
    agent = make.user(name="Ana")
    captured_events.clear()
    assignment.assign(db.session, conv, agent)
    conversations.set_status(db.session, conv, "pending", by=agent)
    assert captured_events == []  # nothing before commit
    db.session.commit()
    updated = _named(captured_events, "conversation.updated")
    assert len(updated) == 1
    assert updated[0].payload["status"] == "pending"
    assert updated[0].payload["assignee"] == {"id": agent.id, "name": "Ana"}
    assert updated[0].audience == (("inbox", conv.inbox_id),)
    assert serialised == [conv.id]  # computed once for the transaction
    # plain events keep every place they were published at
    assert len(_named(captured_events, "counts.updated")) == 2


def test_the_update_goes_out_where_the_last_change_was_marked(make, conv, captured_events):
    """Two notes in one transaction: both messages, then the conversation that shows them."""
    agent = make.user(name="Ana")
    captured_events.clear()
    first, _ = replies.post_message(db.session, conv, agent, "first note", private=True)
    second, _ = replies.post_message(db.session, conv, agent, "second note", private=True)
    db.session.commit()
    assert [(e.name, e.payload["id"]) for e in captured_events] == [
        ("message.created", first.id),
        ("message.created", second.id),
        ("conversation.updated", conv.id),
    ]


def test_a_rollback_sends_nothing(make, conv, captured_events, serialised):
    agent = make.user()
    captured_events.clear()
    conversations.set_status(db.session, conv, "closed", by=agent)
    db.session.rollback()
    db.session.commit()  # a later, empty transaction sends nothing either
    assert captured_events == []
    assert serialised == []


def test_a_conversation_created_and_changed_in_one_transaction_is_only_created(
    make, captured_events, serialised
):
    ana = make.user(name="Ana")
    online(db.session, ana)
    inbox = make.inbox(members=[ana], settings={"assignment": "round_robin"})
    captured_events.clear()
    ev = InboundMessage(
        inbox_key=inbox.route_key,
        external_id="created-1",
        contact_id="events-new",
        sent_at=now() - timedelta(seconds=5),
        text="Hi there",
    )
    result = ingest(db.session, inbox, [ev], commit=False)
    conv = db.session.get(Conversation, db.session.get(Message, result.created[0]).conversation_id)
    conversations.set_status(db.session, conv, "pending", by=ana)
    db.session.commit()
    names = [e.name for e in captured_events if e.name.startswith("conversation.")]
    assert names == ["conversation.created"]  # the assignment and the status change folded in
    created = _named(captured_events, "conversation.created")[0].payload
    assert created["assignee"] == {"id": ana.id, "name": "Ana"}
    assert created["status"] == "pending"
    assert serialised == [conv.id]
    # the customer's message and the activity lines (assigned, pending) come first
    shown = [e for e in captured_events if e.name in ("message.created", "conversation.created")]
    assert [e.name for e in shown[:-1]] == ["message.created"] * (len(shown) - 1)
    assert shown[-1].name == "conversation.created"
    assert shown[0].payload["body"] == "Hi there"


def test_savepoints_do_not_send_or_serialise_early(conv, captured_events, serialised):
    captured_events.clear()
    with db.session.begin_nested():
        conv.priority = 2
        events.changed(db.session, "conversation.updated", conv, ("inbox", conv.inbox_id))
    assert serialised == [] and captured_events == []
    conv.subject = "Late change"
    db.session.commit()
    (updated,) = captured_events
    assert updated.payload["priority"] == 2 and updated.payload["subject"] == "Late change"
    assert serialised == [conv.id]


def test_an_object_without_a_serialiser_is_refused_when_marked(make, session):
    user = make.user()
    with pytest.raises(LookupError):
        events.changed(session, "user.updated", user, ("all", 0))


def test_resolve_keeps_plain_events_and_merges_audiences(monkeypatch):
    """Pure: the queue of one transaction, with a stand-in object and serialiser."""

    class Thing:
        def __init__(self, ident):
            self.id = ident

    monkeypatch.setitem(events._serialisers, Thing, lambda t: {"id": t.id})
    mark = events._Mark
    queue = [
        mark("thing.updated", Thing(1), (("inbox", 1),)),
        events.Event("counts.updated", {"inbox_id": 1}, (("inbox", 1),)),
        mark("thing.created", Thing(2), (("inbox", 1),)),
        mark("thing.updated", Thing(1), (("user", 7),)),
        mark("thing.pinged", Thing(1), (("inbox", 1),)),
        mark("thing.updated", Thing(2), (("inbox", 1),)),
    ]
    out = events.resolve(queue)
    assert [(e.name, e.payload) for e in out] == [
        ("counts.updated", {"inbox_id": 1}),
        ("thing.updated", {"id": 1}),
        ("thing.pinged", {"id": 1}),
        ("thing.created", {"id": 2}),
    ]
    assert out[1].audience == (("inbox", 1), ("user", 7))
    assert out[1].payload is out[2].payload  # one object, one payload
