"""The domain's signals: receivers run once each, in the order app.inbox.wiring connects them."""

from __future__ import annotations

import sqlalchemy as sa

from app.inbox import assignment, conversations, signals, wiring
from app.models import Conversation, Notification, OutboxItem


def test_receivers_run_in_the_order_they_were_connected():
    """Blinker's own sets have no order; ours keep it, and a second connect adds nothing."""
    signal = signals._signals.signal("test-order")
    calls = []

    def first(sender, **kw):
        calls.append(("first", sender, kw))

    def second(sender, **kw):
        calls.append(("second", sender, kw))

    def third(sender, **kw):
        calls.append(("third", sender, kw))

    for receiver in (third, first, second, first):
        signal.connect(receiver)
    signal.send("conv", at=1)
    assert [name for name, _s, _kw in calls] == ["third", "first", "second"]
    assert all(sender == "conv" and kw == {"at": 1} for _n, sender, kw in calls)
    signal.disconnect(first)
    calls.clear()
    signal.send("conv")
    assert [name for name, _s, _kw in calls] == ["third", "second"]


def test_wiring_again_changes_nothing(app, make, session):
    """Every create_app connects the receivers: an assignment still notifies once and the
    channel hears of it once (GBM: the representative joined), then closing frees capacity."""
    wiring.connect()
    wiring.connect()
    lead = make.user("lead", name="Lea")
    agent = make.user(name="Ana")
    inbox = make.inbox("gbm", members=[lead, agent])
    msg = make.inbound(inbox, contact="conversations/c1")
    conv = session.get(Conversation, msg.conversation_id)

    assert assignment.assign(session, conv, agent, by=lead)
    session.commit()
    notes = session.scalars(sa.select(Notification).where(Notification.kind == "assigned")).all()
    assert [(n.user_id, n.data["by"]) for n in notes] == [(agent.id, "Lea")]
    actions = session.scalars(sa.select(OutboxItem).where(OutboxItem.kind == "action")).all()
    assert len(actions) == 1 and actions[0].payload["kwargs"]["agent_name"] == "Ana"

    assert conversations.set_status(session, conv, "closed", lead)
    session.commit()
    actions = session.scalars(
        sa.select(OutboxItem).where(OutboxItem.kind == "action").order_by(OutboxItem.id)
    ).all()
    assert len(actions) == 2  # joined, then left: once each
