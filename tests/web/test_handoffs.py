"""Hand-offs: agents assign teammates (unless the inbox restricts them), replying takes an
unassigned conversation, and the thread says who took what."""

from __future__ import annotations

from datetime import timedelta

from app.clock import now
from app.models import Conversation, Message


def _conv(make, inbox, contact="+14155550100", text="Hello, I need help with my order"):
    return make.inbound(inbox, contact=contact, text=text).conversation_id


def _assign(client, make, user, conv_id, assignee_id):
    return client.post(
        f"/api/v1/conversations/{conv_id}/assign",
        json={"assignee_id": assignee_id},
        headers=make.headers(user),
    )


def _lines(session, conv_id):
    session.expire_all()
    rows = session.query(Message).filter_by(conversation_id=conv_id, direction="activity")
    return [m.body for m in rows.order_by(Message.id)]


def test_an_agent_hands_a_conversation_to_a_teammate(client, make, session, captured_events):
    ana, bo = make.user(name="Ana"), make.user(name="Bo")
    outsider = make.user(name="Cy")
    inbox = make.inbox("sms", members=[ana, bo])
    conv_id = _conv(make, inbox)
    resp = _assign(client, make, ana, conv_id, bo.id)
    assert resp.status_code == 200
    assert resp.get_json()["assignee"] == {"id": bo.id, "name": "Bo"}
    assert _lines(session, conv_id) == ["Ana assigned this to Bo"]
    notes = client.get("/api/v1/notifications?unread=1", headers=make.headers(bo)).get_json()
    # (before it, the new conversation reached the inbox's members)
    assert [(n["kind"], n["conversation_id"]) for n in notes["items"]] == [
        ("assigned", conv_id),
        ("new_conversation", conv_id),
    ]
    assert any(
        e.name == "notification.created" and e.audience == (("user", bo.id),)
        for e in captured_events
    )
    # Bo hands it back to Ana; nobody can give it to someone outside the inbox
    assert _assign(client, make, bo, conv_id, ana.id).status_code == 200
    assert _assign(client, make, ana, conv_id, outsider.id).status_code == 422
    # an agent unassigns only what is theirs
    assert _assign(client, make, bo, conv_id, None).status_code == 403
    assert _assign(client, make, ana, conv_id, None).status_code == 200


def test_taking_a_conversation_says_so(client, make, session):
    ana = make.user(name="Ana")
    lead = make.user("lead", name="Lea")
    inbox = make.inbox("sms", members=[ana])
    conv_id = _conv(make, inbox)
    assert _assign(client, make, ana, conv_id, ana.id).status_code == 200
    assert _assign(client, make, lead, conv_id, lead.id).status_code == 200
    lines = _lines(session, conv_id)
    assert lines == ["Ana took this conversation", "Lea took this conversation"]
    items = client.get(
        f"/api/v1/conversations/{conv_id}/messages", headers=make.headers(ana)
    ).get_json()["items"]
    took = [m["meta"] for m in items if m["direction"] == "activity"][0]
    assert took["text"] == "{who} took this conversation" and took["values"] == {"who": "Ana"}


def test_leads_can_restrict_agents_to_taking_conversations(client, make, session):
    ana, bo = make.user(name="Ana"), make.user(name="Bo")
    lead = make.user("lead")
    inbox = make.inbox("sms", members=[ana, bo])
    conv_id = _conv(make, inbox)
    url = f"/api/v1/inboxes/{inbox.id}"
    listed = client.get("/api/v1/inboxes", headers=make.headers(ana)).get_json()["items"]
    assert listed[0]["settings"]["agents_assign_others"] is True
    assert sorted(listed[0]["member_ids"]) == sorted([ana.id, bo.id])  # whom the menu offers
    forbidden = client.patch(url, json={"agents_assign_others": False}, headers=make.headers(ana))
    assert forbidden.status_code == 403
    bad = client.patch(url, json={"agents_assign_others": "no"}, headers=make.headers(lead))
    assert bad.status_code == 422
    resp = client.patch(url, json={"agents_assign_others": False}, headers=make.headers(lead))
    assert resp.status_code == 200 and resp.get_json()["settings"]["agents_assign_others"] is False
    refused = _assign(client, make, ana, conv_id, bo.id)
    assert refused.status_code == 403
    assert "only to themselves" in refused.get_json()["error"]["message"]
    assert session.get(Conversation, conv_id).assignee_id is None
    assert _assign(client, make, ana, conv_id, ana.id).status_code == 200  # taking it still works
    assert _assign(client, make, lead, conv_id, bo.id).status_code == 200  # leads assign anyone


def _reply(client, make, user, conv_id, body="Thanks, I am looking into it.", private=False):
    return client.post(
        f"/api/v1/conversations/{conv_id}/messages",
        json={"body": body, "private": private},
        headers=make.headers(user),
    )


def test_replying_to_an_unassigned_conversation_takes_it(client, make, session, captured_events):
    ana, bo = make.user(name="Ana"), make.user(name="Bo")
    inbox = make.inbox("sms", members=[ana, bo])
    conv_id = _conv(make, inbox)
    # a private note does not take it
    assert _reply(client, make, ana, conv_id, "checking the order", private=True).status_code == 201
    assert session.get(Conversation, conv_id).assignee_id is None
    captured_events.clear()
    assert _reply(client, make, ana, conv_id).status_code == 202
    session.expire_all()
    assert session.get(Conversation, conv_id).assignee_id == ana.id
    assert _lines(session, conv_id) == ["Ana took this conversation"]
    updates = [e.payload for e in captured_events if e.name == "conversation.updated"]
    assert updates and updates[-1]["assignee"] == {"id": ana.id, "name": "Ana"}
    # replying to a teammate's conversation leaves it theirs
    assert _reply(client, make, bo, conv_id, "Adding a detail.").status_code == 202
    session.expire_all()
    assert session.get(Conversation, conv_id).assignee_id == ana.id


def test_reply_assigns_can_be_switched_off(client, make, session):
    ana = make.user(name="Ana")
    lead = make.user("lead")
    inbox = make.inbox("sms", members=[ana])
    conv_id = _conv(make, inbox)
    resp = client.patch(
        f"/api/v1/inboxes/{inbox.id}", json={"reply_assigns": False}, headers=make.headers(lead)
    )
    assert resp.status_code == 200 and resp.get_json()["settings"]["reply_assigns"] is False
    assert _reply(client, make, ana, conv_id).status_code == 202
    session.expire_all()
    assert session.get(Conversation, conv_id).assignee_id is None
    assert _lines(session, conv_id) == []


def test_a_refused_reply_takes_nothing(client, make, session):
    ana = make.user(name="Ana")
    inbox = make.inbox("messenger", members=[ana])
    two_days_ago = now() - timedelta(days=2)  # Messenger's 24-hour window has closed
    conv_id = make.inbound(inbox, contact="psid-1", text="Hello?", at=two_days_ago).conversation_id
    resp = _reply(client, make, ana, conv_id)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "window_closed"
    session.expire_all()
    assert session.get(Conversation, conv_id).assignee_id is None
