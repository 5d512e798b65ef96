"""Ingest: idempotent storage, threading, timers and receipts."""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa

from app.clock import iso, now
from app.extensions import db
from app.inbox.ingest import ingest
from app.models import Contact, Conversation, Inbox, Message
from connectors.base import (
    DeliveryState,
    EchoedOutbound,
    ErrorKind,
    InboundMessage,
    OptIn,
    OptOut,
    SendError,
    StatusUpdate,
)


def _msg(inbox, ext="mid.1", contact="psid-1", text="Hi", at=None, **kw):
    return InboundMessage(
        inbox_key=inbox.route_key,
        external_id=ext,
        contact_id=contact,
        sent_at=at or now(),
        text=text,
        **kw,
    )


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_replayed_delivery_stores_one_message(make):
    inbox = make.inbox()
    first = ingest(db.session, inbox, [_msg(inbox)])
    again = ingest(db.session, inbox, [_msg(inbox)])
    assert len(first.created) == 1
    assert again.created == [] and again.duplicates == 1
    assert count(Message) == 1
    assert count(Conversation) == 1


def test_a_long_provider_id_is_stored_and_its_replay_recognised(make):
    """Message-IDs have no length limit in practice (some mailers pass 300 characters)."""
    inbox = make.inbox("email")
    long_id = "<" + "x" * 290 + "@mail.example.com>"
    first = ingest(db.session, inbox, [_msg(inbox, ext=long_id, contact="ana@example.com")])
    again = ingest(db.session, inbox, [_msg(inbox, ext=long_id, contact="ana@example.com")])
    assert len(first.created) == 1
    assert again.created == [] and again.duplicates == 1
    assert db.session.get(Message, first.created[0]).provider_id == long_id


def test_a_very_long_sender_name_is_cut_not_refused(make):
    inbox = make.inbox("email")
    name = "Service clients " * 30  # 480 characters of display name
    result = ingest(db.session, inbox, [_msg(inbox, contact="bo@example.com", contact_name=name)])
    msg = db.session.get(Message, result.created[0])
    assert msg.sender_name == name[:200]


def test_same_provider_id_in_two_inboxes_is_two_messages(make):
    a, b = make.inbox(), make.inbox()
    ingest(db.session, a, [_msg(a)])
    ingest(db.session, b, [_msg(b)])
    assert count(Message) == 2


def test_concurrent_duplicate_deliveries_store_one_message(app, make):
    """Eight threads deliver the same new message at once: one row, one contact, one thread."""
    inbox = make.inbox()
    inbox_id = inbox.id
    db.session.remove()
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []
    at = now()

    def deliver():
        try:
            with app.app_context():
                box = db.session.get(Inbox, inbox_id)
                barrier.wait(5)
                ingest(db.session, box, [_msg(box, ext="mid.race", contact="psid-race", at=at)])
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert count(Message, Message.provider_id == "mid.race") == 1
    assert count(Contact) == 1
    assert count(Conversation) == 1


def test_message_stored_by_another_process_meanwhile_counts_once(make, monkeypatch):
    """A delivery committed elsewhere after this batch looked for replays is still one message.

    The batch's INSERT skips it; its conversation is not counted twice, and a
    conversation started only for it is not left behind empty.
    """
    from app.inbox import ingest as ingest_mod

    inbox = make.inbox()
    ingest(db.session, inbox, [_msg(inbox, ext="mid.a", contact="psid-1", text="First")])
    ingest(db.session, inbox, [_msg(inbox, ext="mid.c", contact="psid-1", text="Other")])
    conv = db.session.scalars(sa.select(Conversation)).one()
    assert conv.unread_count == 2

    seen = ingest_mod._Batch.prefetch

    def blind(self, batch):  # as if both rows were committed by another process just after
        seen(self, batch)
        self.existing.clear()

    monkeypatch.setattr(ingest_mod._Batch, "prefetch", blind)
    result = ingest(
        db.session,
        inbox,
        [
            _msg(inbox, ext="mid.a", contact="psid-1", text="First"),
            _msg(inbox, ext="mid.b", contact="psid-1", text="Second"),
            _msg(inbox, ext="mid.c", contact="psid-2", text="Other"),
        ],
    )
    assert len(result.created) == 1 and result.duplicates == 2
    db.session.expire_all()
    assert count(Message) == 3
    assert count(Conversation) == 1  # none left empty for psid-2
    conv = db.session.get(Conversation, conv.id)
    assert conv.unread_count == 3 and conv.last_message_body == "Second"


def test_large_batch_mixing_replays_and_new_messages_threads_each_sender_once(make):
    """600 messages from 120 customers, half of them replays: the replays change nothing.

    More keys than one look-up chunk (500), senders and conversations found for
    the whole batch at once, on every database.
    """
    inbox = make.inbox()
    other = make.inbox()
    first = [
        _msg(inbox, ext=f"mid.{i}", contact=f"psid-{i % 120}", text=f"one {i}") for i in range(300)
    ]
    ingest(db.session, inbox, first)
    ingest(db.session, other, [_msg(other, ext="mid.0", contact="psid-0")])  # same id elsewhere
    convs = dict(
        db.session.execute(
            sa.select(Conversation.contact_id, Conversation.id).where(
                Conversation.inbox_id == inbox.id
            )
        ).all()
    )
    assert len(convs) == 120
    again = [
        _msg(inbox, ext=f"mid.{i}", contact=f"psid-{i % 120}", text=f"one {i}") for i in range(300)
    ]
    new = [
        _msg(inbox, ext=f"mid.{i}", contact=f"psid-{i % 120}", text=f"two {i}")
        for i in range(300, 599)
    ]
    at = now().replace(microsecond=123000) - timedelta(minutes=5)
    new.append(
        _msg(
            inbox,
            ext="mid.599",
            contact="psid-119",
            text="Grüße, 東京 👋",
            at=at,
            context={"locale": "de", "referral": {"ref": "ad-7"}},
        )
    )
    result = ingest(db.session, inbox, again + new)
    assert len(result.created) == 300 and result.duplicates == 300
    db.session.expire_all()
    last = db.session.scalars(sa.select(Message).where(Message.provider_id == "mid.599")).one()
    assert last.body == "Grüße, 東京 👋" and last.platform_at == at
    assert last.meta == {
        "kind": "message",
        "context": {"locale": "de", "referral": {"ref": "ad-7"}},
    }
    assert count(Message, Message.inbox_id == inbox.id) == 600
    after = dict(
        db.session.execute(
            sa.select(Conversation.contact_id, Conversation.id).where(
                Conversation.inbox_id == inbox.id
            )
        ).all()
    )
    assert after == convs  # every new message joined its sender's conversation
    unread = db.session.scalars(
        sa.select(Conversation.unread_count).where(Conversation.inbox_id == inbox.id)
    ).all()
    assert sum(unread) == 600


def test_postgresql_finds_replays_by_index_without_statistics(make, session):
    """A young inbox has no planner statistics: looking up replays must not read the inbox.

    With ``provider_id IN (...)`` PostgreSQL read every message of the inbox and
    compared each with the whole list (0.2 s a batch at 20,000 messages).
    """
    import json

    import pytest

    from app.inbox.threading import prefetch_statements

    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("PostgreSQL's planner only")
    inbox = make.inbox()
    for start in range(0, 3000, 500):
        ingest(
            db.session,
            inbox,
            [
                _msg(inbox, ext=f"mid.{i}", contact=f"psid-{i % 50}")
                for i in range(start, start + 500)
            ],
        )
    known = prefetch_statements(session)[0]
    ids = [f"mid.{i}" for i in range(2990, 3490)]
    executed = []
    engine = session.get_bind()

    def keep(_conn, _cursor, statement, parameters, _context, _many):
        executed.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", keep)
    try:
        found = session.scalars(known, {"inbox": inbox.id, "ids": ids}).all()
    finally:
        sa.event.remove(engine, "before_cursor_execute", keep)
    assert sorted(found) == sorted(ids[:10])
    statement, parameters = executed[-1]
    plan = (
        session.connection()
        .exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
        .scalar()
    )
    plan = plan if isinstance(plan, list) else json.loads(plan)

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    read = [n for n in nodes(plan[0]["Plan"]) if n.get("Relation Name") == "messages"]
    assert read and all(n["Node Type"] != "Seq Scan" for n in read)
    assert sum(n.get("Rows Removed by Filter", 0) for n in read) == 0
    assert all(n["Actual Rows"] <= 1 for n in read)  # one index entry per id, at most


def test_new_senders_are_created_together_and_a_concurrent_one_is_reused(
    make, session, monkeypatch
):
    """Senders new to the inbox get a contact and identity each; one made elsewhere meanwhile wins.

    PostgreSQL only: on SQLite the single writer keeps another process from
    creating it between the look-up and the insert.
    """
    import pytest

    from app.inbox import ingest as ingest_mod
    from app.models import ContactIdentity

    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("needs a second concurrent writer")
    inbox = make.inbox()
    create = ingest_mod._Batch.create_senders

    def racing(self, names, senders):
        with db.engine.begin() as conn:  # another process creates psid-2 first
            contact_id = conn.execute(
                sa.insert(Contact.__table__).returning(Contact.id),
                {"name": "Ana Elsewhere", "created_at": now()},
            ).scalar()
            conn.execute(
                sa.insert(ContactIdentity.__table__),
                {
                    "contact_id": contact_id,
                    "inbox_id": inbox.id,
                    "channel": "messenger",
                    "external_id": "psid-2",
                    "data": {},
                    "created_at": now(),
                },
            )
        create(self, names, senders)

    monkeypatch.setattr(ingest_mod._Batch, "create_senders", racing)
    result = ingest(
        db.session,
        inbox,
        [
            _msg(inbox, ext="mid.1", contact="psid-1", contact_name="Bo"),
            _msg(inbox, ext="mid.2", contact="psid-2", contact_name="Ana"),
            _msg(inbox, ext="mid.3", contact="psid-3"),
            _msg(inbox, ext="mid.4", contact="psid-1"),
        ],
    )
    assert len(result.created) == 4
    db.session.expire_all()
    names = sorted((c.name or "") for c in db.session.scalars(sa.select(Contact)))
    assert names == ["", "Ana Elsewhere", "Bo"]  # no contact left without an identity
    assert count(ContactIdentity) == 3 and count(Conversation) == 3
    ana = db.session.scalars(
        sa.select(Conversation).join(Contact).where(Contact.name == "Ana Elsewhere")
    ).one()
    assert ana.unread_count == 1


def test_new_senders_in_one_batch_each_start_a_conversation_when_they_first_wrote(
    make, captured_events
):
    inbox = make.inbox()
    make.inbound(inbox, contact="known", text="earlier")
    captured_events.clear()
    t0 = now() - timedelta(seconds=30)
    evs = [
        _msg(inbox, ext="n1", contact="new-1", at=t0),
        _msg(inbox, ext="k1", contact="known", at=t0),
        _msg(inbox, ext="n2", contact="new-2", at=t0 + timedelta(seconds=1)),
        _msg(inbox, ext="n3", contact="new-1", at=t0 + timedelta(seconds=2)),
    ]
    times = [t0 + timedelta(seconds=i * 10) for i in range(4)]
    result = ingest(db.session, inbox, evs, times)
    assert len(result.created) == 4
    created = [e.payload for e in captured_events if e.name == "conversation.created"]
    updated = [e.payload for e in captured_events if e.name == "conversation.updated"]
    assert len(created) == 2 and len(updated) == 1
    by_contact = {c["contact"]["name"]: c for c in created}
    first = by_contact["Messenger user ew-1"]
    assert first["unread_count"] == 2 and first["created_at"] == iso(times[0])
    assert by_contact["Messenger user ew-2"]["created_at"] == iso(times[2])
    assert count(Conversation) == 3


def test_threading_reuses_open_conversation(make):
    inbox = make.inbox()
    m1 = make.inbound(inbox, contact="c1", text="one")
    m2 = make.inbound(inbox, contact="c1", text="two")
    m3 = make.inbound(inbox, contact="c2", text="other customer")
    assert m1.conversation_id == m2.conversation_id != m3.conversation_id


def _close(conv, days_ago: float):
    conv.status = "closed"
    conv.closed_at = now() - timedelta(days=days_ago)
    db.session.commit()


def test_closed_conversation_reopens_within_reopen_period(make):
    inbox = make.inbox()
    m1 = make.inbound(inbox, contact="c1")
    conv = db.session.get(Conversation, m1.conversation_id)
    _close(conv, days_ago=6.9)
    m2 = make.inbound(inbox, contact="c1", text="me again")
    assert m2.conversation_id == conv.id
    db.session.refresh(conv)
    assert conv.status == "open" and conv.closed_at is None
    bodies = db.session.scalars(sa.select(Message.body).where(Message.direction == "activity"))
    assert any("Reopened" in b for b in bodies)


def test_closed_conversation_past_reopen_period_starts_a_new_one(make):
    inbox = make.inbox()
    m1 = make.inbound(inbox, contact="c1")
    _close(db.session.get(Conversation, m1.conversation_id), days_ago=7.1)
    m2 = make.inbound(inbox, contact="c1", text="new problem")
    assert m2.conversation_id != m1.conversation_id
    assert db.session.get(Conversation, m1.conversation_id).status == "closed"


def test_reopen_period_is_per_inbox(make):
    inbox = make.inbox(settings={"reopen_days": 1})
    m1 = make.inbound(inbox, contact="c1")
    _close(db.session.get(Conversation, m1.conversation_id), days_ago=2)
    assert make.inbound(inbox, contact="c1").conversation_id != m1.conversation_id


def test_automated_message_never_reopens(make):
    inbox = make.inbox("email")
    m1 = make.inbound(inbox, contact="jane@example.com")
    conv = db.session.get(Conversation, m1.conversation_id)
    _close(conv, days_ago=1)
    make.inbound(inbox, contact="jane@example.com", text="I am out of office", automated=True)
    db.session.refresh(conv)
    assert conv.status == "closed"


def test_window_counts_from_platform_time_not_arrival(make):
    inbox = make.inbox()
    sent = now() - timedelta(hours=23, minutes=40)
    m = make.inbound(inbox, at=sent)
    conv = db.session.get(Conversation, m.conversation_id)
    assert abs((conv.last_inbound_at - sent).total_seconds()) < 1
    assert abs((conv.window_expires_at - (sent + timedelta(hours=24))).total_seconds()) < 1
    assert abs((conv.response_due_at - (sent + timedelta(hours=24))).total_seconds()) < 1


def test_out_of_order_older_message_keeps_latest_window(make):
    inbox = make.inbox()
    late = now() - timedelta(minutes=5)
    make.inbound(inbox, contact="c", at=late, external_id="m2")
    m = make.inbound(inbox, contact="c", at=late - timedelta(hours=3), external_id="m1")
    conv = db.session.get(Conversation, m.conversation_id)
    assert abs((conv.last_inbound_at - late).total_seconds()) < 1
    # ... but response due counts from the oldest unanswered message
    assert abs((conv.waiting_since - (late - timedelta(hours=3))).total_seconds()) < 1


def test_response_due_uses_inbox_setting(make):
    inbox = make.inbox(settings={"response_due_hours": 2})
    at = now() - timedelta(minutes=10)
    m = make.inbound(inbox, at=at)
    conv = db.session.get(Conversation, m.conversation_id)
    assert abs((conv.response_due_at - (at + timedelta(hours=2))).total_seconds()) < 1


def _outbound(conv, status="sent", provider_id="out-1", at=None):
    msg = Message(
        conversation_id=conv.id,
        inbox_id=conv.inbox_id,
        direction="outbound",
        body="r",
        status=status,
        provider_id=provider_id,
        platform_at=at or now(),
        meta={},
    )
    db.session.add(msg)
    db.session.commit()
    return msg


def test_status_updates_never_downgrade(make):
    inbox = make.inbox()
    conv = db.session.get(Conversation, make.inbound(inbox).conversation_id)
    out = _outbound(conv)

    def receipt(state, error=None):
        ingest(
            db.session,
            inbox,
            [StatusUpdate(inbox.route_key, state, external_id="out-1", error=error)],
        )
        db.session.refresh(out)
        return out.status

    assert receipt(DeliveryState.READ) == "read"
    assert receipt(DeliveryState.DELIVERED) == "read"
    assert receipt(DeliveryState.SENT) == "read"
    assert receipt(DeliveryState.FAILED, SendError(ErrorKind.PERMANENT, "30003", "x")) == "read"


def test_failed_is_final_unless_a_later_success_arrives(make):
    inbox = make.inbox()
    conv = db.session.get(Conversation, make.inbound(inbox).conversation_id)
    out = _outbound(conv)
    err = SendError(ErrorKind.PERMANENT, "30007", "Carrier filtered the message")
    ingest(
        db.session,
        inbox,
        [StatusUpdate(inbox.route_key, DeliveryState.FAILED, external_id="out-1", error=err)],
    )
    db.session.refresh(out)
    assert (out.status, out.error_code) == ("failed", "30007")
    ingest(
        db.session, inbox, [StatusUpdate(inbox.route_key, DeliveryState.SENT, external_id="out-1")]
    )
    db.session.refresh(out)
    assert out.status == "failed"
    ingest(
        db.session,
        inbox,
        [StatusUpdate(inbox.route_key, DeliveryState.DELIVERED, external_id="out-1")],
    )
    db.session.refresh(out)
    assert out.status == "delivered" and out.error_code is None


def test_watermark_marks_earlier_outbound_read(make):
    inbox = make.inbox()
    conv = db.session.get(Conversation, make.inbound(inbox, contact="psid").conversation_id)
    t = now()
    old = _outbound(conv, provider_id="o1", at=t - timedelta(minutes=5))
    new = _outbound(conv, provider_id="o2", at=t + timedelta(minutes=5))
    ingest(
        db.session,
        inbox,
        [StatusUpdate(inbox.route_key, DeliveryState.READ, contact_id="psid", watermark=t)],
    )
    db.session.refresh(old)
    db.session.refresh(new)
    assert (old.status, new.status) == ("read", "sent")


def test_echo_of_our_send_merges_even_before_send_returned(make):
    inbox = make.inbox()
    conv = db.session.get(Conversation, make.inbound(inbox, contact="psid").conversation_id)
    ours = _outbound(conv, status="queued", provider_id=None)
    echo = EchoedOutbound(
        inbox.route_key, "m_echo", "psid", now(), text="r", metadata=ours.reference
    )
    ingest(db.session, inbox, [echo])
    db.session.refresh(ours)
    assert (ours.status, ours.provider_id) == ("sent", "m_echo")
    assert count(Message, Message.direction == "outbound") == 1


def test_echo_from_page_inbox_is_stored_as_outside_reply(make):
    inbox = make.inbox()
    conv = db.session.get(Conversation, make.inbound(inbox, contact="psid").conversation_id)
    echo = EchoedOutbound(inbox.route_key, "m_page", "psid", now(), text="Answered from the Page")
    ingest(db.session, inbox, [echo])
    ingest(db.session, inbox, [echo])
    rows = list(db.session.scalars(sa.select(Message).where(Message.direction == "outbound")))
    assert len(rows) == 1 and rows[0].meta["outside_switchboard"] is True
    db.session.refresh(conv)
    assert conv.waiting_since is None  # a person answered


def test_opt_out_and_back_in(make):
    inbox = make.inbox("sms")
    make.inbound(inbox, contact="+14155550199", text="STOP")
    ingest(db.session, inbox, [OptOut(inbox.route_key, "+14155550199", "STOP")])
    conv = db.session.scalars(sa.select(Conversation)).one()
    ident = conv.contact.identities[0]
    assert ident.opted_out_at is not None
    ingest(db.session, inbox, [OptIn(inbox.route_key, "+14155550199", "START")])
    db.session.refresh(ident)
    assert ident.opted_out_at is None
    lines = list(db.session.scalars(sa.select(Message.body).where(Message.direction == "activity")))
    assert any("opted out" in s for s in lines) and any("opted back in" in s for s in lines)


def test_events_are_published_only_after_commit(make, captured_events):
    inbox = make.inbox()
    ingest(db.session, inbox, [_msg(inbox, ext="x1")], commit=False)
    assert captured_events == []
    db.session.rollback()
    assert captured_events == []
    ingest(db.session, inbox, [_msg(inbox, ext="x2")])
    names = [e.name for e in captured_events]
    assert "message.created" in names and "conversation.created" in names
    assert all(("inbox", inbox.id) in e.audience for e in captured_events)
