"""An agent who sends their reply stops showing as "replying" to teammates."""

from __future__ import annotations

from app.extensions import socketio


def _presence(client) -> list[dict]:
    return [m["args"][0] for m in client.get_received() if m["name"] == "presence.updated"]


def test_sending_the_reply_clears_replying_for_teammates(app, make, client):
    ana, bo = make.user(name="Ana"), make.user(name="Bo")
    inbox = make.inbox(members=[ana, bo])
    msg = make.inbound(inbox, contact="psid-presence", text="Any news?")
    conv_id = msg.conversation_id
    ca = socketio.test_client(app, auth={"token": make.token(ana)})
    cb = socketio.test_client(app, auth={"token": make.token(bo)})
    ca.get_received(), cb.get_received()
    ca.emit("presence", {"conversation_id": conv_id, "state": "replying"})
    assert _presence(cb)[-1]["users"] == [{"id": ana.id, "name": "Ana", "state": "replying"}]

    resp = client.post(
        f"/api/v1/conversations/{conv_id}/messages",
        json={"body": "Your parcel left this morning."},
        headers=make.headers(ana),
    )
    assert resp.status_code == 202, resp.get_json()

    # still there, no longer writing
    assert _presence(cb)[-1]["users"] == [{"id": ana.id, "name": "Ana", "state": "viewing"}]


def test_a_note_or_another_agents_reply_leaves_presence_as_it_is(app, make, client):
    ana, bo = make.user(name="Ana"), make.user(name="Bo")
    inbox = make.inbox(members=[ana, bo])
    msg = make.inbound(inbox, contact="psid-presence-2", text="Hello?")
    conv_id = msg.conversation_id
    ca = socketio.test_client(app, auth={"token": make.token(ana)})
    cb = socketio.test_client(app, auth={"token": make.token(bo)})
    ca.emit("presence", {"conversation_id": conv_id, "state": "replying"})
    ca.get_received(), cb.get_received()

    client.post(
        f"/api/v1/conversations/{conv_id}/messages",
        json={"body": "Checking with the warehouse", "private": True},
        headers=make.headers(ana),
    )
    client.post(
        f"/api/v1/conversations/{conv_id}/messages",
        json={"body": "Hi, Bo here."},
        headers=make.headers(bo),
    )
    states = _presence(cb)
    assert all(u["state"] == "replying" for p in states for u in p["users"] if u["id"] == ana.id), (
        states
    )
