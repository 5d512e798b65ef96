"""``demo seed`` into an inbox that is taking messages at the same time."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from app.clock import now
from app.extensions import db
from app.inbox import seed
from app.inbox.ingest import ingest
from app.models import Conversation, Inbox, Message, ReportEvent
from connectors.base import InboundMessage


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_seeding_while_messages_arrive_keeps_every_row(app, make, monkeypatch):
    """Customers keep writing from four threads while the seed goes in by small chunks:
    the seed does not crash on an id a new message took, and every row of both is there."""
    monkeypatch.setattr(seed, "CHUNK", 10)  # many chunks, each its own transaction
    inbox = make.inbox()
    inbox_id = inbox.id
    db.session.remove()
    seeding = threading.Event()
    seeded = threading.Event()
    errors: list[BaseException] = []
    delivered: list[int] = []

    def deliver(worker: int) -> None:
        try:
            with app.app_context():
                seeding.wait(10)
                n = 0
                while not seeded.is_set() or n < 5:
                    box = db.session.get(Inbox, inbox_id)
                    msg = InboundMessage(
                        inbox_key=box.route_key,
                        external_id=f"mid.{worker}.{n}",
                        contact_id=f"psid-{worker}-{n % 3}",
                        sent_at=now(),
                        text=f"Message {n} from worker {worker}",
                    )
                    delivered.extend(ingest(db.session, box, [msg]).created)
                    n += 1
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    try:
        with app.app_context():
            seeding.set()
            totals = seed.seed(db.session, 120, 3)
            db.session.remove()
    finally:
        seeded.set()
        for t in threads:
            t.join(60)
    assert not errors, errors
    assert totals == {"conversations": 120, "messages": 360}
    assert count(Message, Message.provider_id.like("mid.%")) == len(delivered) > 20
    assert count(Message, Message.provider_id.like("seed-%")) == 360
    assert count(Conversation) == 120 + 12  # the seed's, and one per customer who wrote
    assert count(ReportEvent, ReportEvent.kind == "new") >= 120


def test_seeding_twice_continues_after_the_rows_there(app):
    seed.seed(db.session, 30, 2)
    seed.seed(db.session, 30, 2)
    assert count(Conversation) == 60 and count(Message) == 120
    ids = db.session.scalars(sa.select(Message.provider_id)).all()
    assert len(set(ids)) == 120
