"""Round robin and least loaded prefer an eligible agent who speaks the conversation's language."""

from __future__ import annotations

from app.inbox import assignment
from app.models import User
from tests.automation.helpers import T0, conv_of, fresh_conv, online

PORTUGUESE = "Olá, o meu pedido ainda não chegou, vocês podem verificar onde está?"
FRENCH = "Bonjour, ma commande n'est toujours pas arrivée, pouvez-vous vérifier ?"


def _team(make, session, mode="round_robin"):
    ana = make.user(name="Ana", languages=["en"], capacity=10)
    bo = make.user(name="Bo", languages=["en", "fr"], capacity=10)
    rui = make.user(name="Rui", languages=["pt", "en"], capacity=10)
    online(session, ana, bo, rui)
    inbox = make.inbox("sms", members=[ana, bo, rui], settings={"assignment": mode})
    return inbox, ana, bo, rui


def test_a_portuguese_conversation_goes_to_the_online_portuguese_speaker(app, make, session, clock):
    clock.to(T0)
    inbox, ana, bo, rui = _team(make, session)
    rui.last_assigned_at = T0  # the rotation alone would pick Ana, then Bo
    session.commit()
    for i in range(3):
        conv = conv_of(
            session, make.inbound(inbox, contact=f"+55119876543{i:02d}", text=PORTUGUESE)
        )
        assert conv.language == "pt"
        assert conv.assignee_id == rui.id
    french = conv_of(session, make.inbound(inbox, contact="+33612345678", text=FRENCH))
    assert french.assignee_id == bo.id
    # no language known: the plain rotation among everyone eligible
    plain = conv_of(session, make.inbound(inbox, contact="+14155550100", text="ok"))
    assert plain.language is None and plain.assignee_id == ana.id


def test_without_a_speaker_who_can_take_it_anyone_eligible_gets_it(app, make, session, clock):
    clock.to(T0)
    inbox, ana, bo, rui = _team(make, session)
    rui.capacity = 1
    session.commit()
    first = conv_of(session, make.inbound(inbox, contact="+5511900000001", text=PORTUGUESE))
    assert first.assignee_id == rui.id
    # Rui is full: the next Portuguese conversation goes to someone else rather than waiting
    second = conv_of(session, make.inbound(inbox, contact="+5511900000002", text=PORTUGUESE))
    assert second.assignee_id in (ana.id, bo.id)
    # Rui has room again but is away: same
    assignment.assign(session, fresh_conv(session, first.id), None, by=rui)
    rui = session.get(User, rui.id)
    rui.availability = "away"
    session.commit()
    third = conv_of(session, make.inbound(inbox, contact="+5511900000003", text=PORTUGUESE))
    assert third.assignee_id in (ana.id, bo.id)


def test_least_loaded_prefers_the_speaker_even_when_busier(app, make, session, clock):
    clock.to(T0)
    inbox, ana, bo, rui = _team(make, session, mode="least_loaded")
    other = make.inbox("email", members=[rui])
    for i in range(3):
        busy = conv_of(session, make.inbound(other, contact=f"load{i}@example.com"))
        assignment.assign(session, busy, rui)
    session.commit()
    conv = conv_of(session, make.inbound(inbox, contact="+5511911111111", text=PORTUGUESE))
    assert conv.assignee_id == rui.id
    english = conv_of(
        session, make.inbound(inbox, contact="+14155550111", text="Where is my package please?")
    )
    assert english.assignee_id in (ana.id, bo.id)  # the least loaded English speakers


def test_the_queue_hands_waiting_conversations_to_speakers_first(app, make, session, clock):
    clock.to(T0)
    ana = make.user(name="Ana", languages=["en"], capacity=10)
    rui = make.user(name="Rui", languages=["pt"], capacity=10)
    inbox = make.inbox("sms", members=[ana, rui], settings={"assignment": "round_robin"})
    # nobody online: both conversations wait in the queue
    english = conv_of(
        session, make.inbound(inbox, contact="+14155550123", text="Hi, I need help with my order")
    )
    clock.shift(minutes=1)
    portuguese = conv_of(session, make.inbound(inbox, contact="+5511922222222", text=PORTUGUESE))
    assert english.assignee_id is None and portuguese.assignee_id is None
    rui.last_assigned_at = T0.replace(hour=8)  # the rotation alone would give Rui the oldest
    ana.last_assigned_at = T0
    online(session, ana, rui)
    assignment.drain_queue(session)
    session.commit()
    assert fresh_conv(session, english.id).assignee_id == ana.id
    assert fresh_conv(session, portuguese.id).assignee_id == rui.id
