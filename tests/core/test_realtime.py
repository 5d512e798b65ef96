"""Live events: only after commit, only to users allowed to see them."""

from __future__ import annotations

from app.extensions import socketio


def _names(client):
    return [m["name"] for m in client.get_received()]


def test_connect_requires_a_token_or_session(app):
    anon = socketio.test_client(app, auth={"token": "nope"})
    assert not anon.is_connected()


def test_agent_receives_only_events_of_their_inboxes(app, make):
    ana, bo, lead = make.user(name="Ana"), make.user(name="Bo"), make.user("lead")
    inbox_a = make.inbox(members=[ana])
    make.inbox(members=[bo])
    ca = socketio.test_client(app, auth={"token": make.token(ana)})
    cb = socketio.test_client(app, auth={"token": make.token(bo)})
    cl = socketio.test_client(app, auth={"token": make.token(lead)})
    assert ca.is_connected() and cb.is_connected() and cl.is_connected()
    for c in (ca, cb, cl):
        c.get_received()

    make.inbound(inbox_a, contact="only-for-ana", text="secret of inbox A")

    got_a, got_b, got_lead = ca.get_received(), cb.get_received(), cl.get_received()
    assert "message.created" in [m["name"] for m in got_a]
    assert got_b == []
    lead_names = [m["name"] for m in got_lead]
    assert lead_names.count("message.created") == 1  # once, though leads see every inbox
    payload = next(m["args"][0] for m in got_a if m["name"] == "message.created")
    assert payload["body"] == "secret of inbox A"


def test_notifications_go_to_one_user(app, make, client):
    ana, bo, lead = make.user(name="Ana"), make.user(name="Bo"), make.user("lead")
    inbox = make.inbox(members=[ana, bo])
    msg = make.inbound(inbox, contact="x")
    ca = socketio.test_client(app, auth={"token": make.token(ana)})
    cb = socketio.test_client(app, auth={"token": make.token(bo)})
    ca.get_received(), cb.get_received()
    client.post(
        f"/api/v1/conversations/{msg.conversation_id}/assign",
        json={"assignee_id": ana.id},
        headers=make.headers(lead),
    )
    assert "notification.created" in _names(ca)
    assert "notification.created" not in _names(cb)


def test_presence_is_shared_with_the_inbox(app, make):
    ana, bo = make.user(name="Ana"), make.user(name="Bo")
    inbox = make.inbox(members=[ana, bo])
    msg = make.inbound(inbox, contact="x")
    ca = socketio.test_client(app, auth={"token": make.token(ana)})
    cb = socketio.test_client(app, auth={"token": make.token(bo)})
    ca.get_received(), cb.get_received()
    ca.emit("presence", {"conversation_id": msg.conversation_id, "state": "replying"})
    got = [m for m in cb.get_received() if m["name"] == "presence.updated"]
    assert got and got[-1]["args"][0]["users"] == [
        {"id": ana.id, "name": "Ana", "state": "replying"}
    ]
    ca.disconnect()
    got = [m for m in cb.get_received() if m["name"] == "presence.updated"]
    assert got[-1]["args"][0]["users"] == []
