"""``Inbox.state`` is written by several processes (IMAP poller, delivery worker, health
checks), each from its own copy: a write keeps the keys another wrote meanwhile."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.extensions import db
from app.inbox import connect
from app.models import Inbox


def stored_state(inbox_id: int) -> dict:
    with Session(db.engine) as fresh:
        return fresh.get(Inbox, inbox_id).state


def test_a_write_from_an_older_copy_keeps_a_key_another_process_wrote(make):
    inbox_id = make.inbox("email").id
    db.session.commit()
    mine = db.session.get(Inbox, inbox_id)
    mine.state = {**(mine.state or {}), "imap": {"cursor": "7:10", "failures": 2}}
    db.session.commit()

    poller = db.session.get(Inbox, inbox_id)
    copy = dict(poller.state)  # the poller read the state ...
    with Session(db.engine) as worker:  # ... then the worker sent a reply and committed
        connect.mark_sent(worker.get(Inbox, inbox_id))
        worker.commit()
    poller.state = {**copy, "imap": {"cursor": "7:12"}}  # and the poller writes its copy
    db.session.commit()

    state = stored_state(inbox_id)
    assert state["imap"] == {"cursor": "7:12"}  # a key is replaced whole, not merged inside
    assert "last_sent_at" in state  # the worker's write survived
    assert db.session.get(Inbox, inbox_id).state == state  # the session holds the merged one


def test_a_key_removed_from_a_copy_is_removed_and_others_stay(make):
    inbox_id = make.inbox("email").id
    db.session.commit()
    inbox = db.session.get(Inbox, inbox_id)
    inbox.state = {**(inbox.state or {}), "disconnected_at": "2026-12-06T10:00:00+00:00"}
    db.session.commit()

    copy = db.session.get(Inbox, inbox_id)
    _ = copy.state
    with Session(db.engine) as other:
        connect.handshake_received(other.get(Inbox, inbox_id))
        other.commit()
    copy.state = {k: v for k, v in copy.state.items() if k != "disconnected_at"}  # reconnected
    db.session.commit()

    state = stored_state(inbox_id)
    assert "disconnected_at" not in state
    assert "webhook_verified_at" in state
