"""API the live inbox relies on: the send guard, a contact's conversations, canned replies,
users and members, and the team overview."""

from __future__ import annotations

import re
from datetime import timedelta

from app.clock import now


def _post(client, headers, conv_id, **body):
    return client.post(f"/api/v1/conversations/{conv_id}/messages", json=body, headers=headers)


def test_send_guard_refuses_when_the_customer_wrote_since(client, make):
    agent = make.user()
    inbox = make.inbox("messenger", members=[agent])
    first = make.inbound(inbox, contact="psid-1", text="Hello")
    newer = make.inbound(inbox, contact="psid-1", text="Are you there?")
    h = make.headers(agent)

    resp = _post(
        client, h, first.conversation_id, body="Hi!", seen_message_id=first.id, client_id="a1"
    )
    assert resp.status_code == 409
    err = resp.get_json()["error"]
    assert err["code"] == "new_activity"
    assert [m["id"] for m in err["messages"]] == [newer.id]

    # nothing was queued; seeing the newest message (or forcing) lets it through
    assert (
        _post(
            client, h, first.conversation_id, body="Hi!", seen_message_id=newer.id, client_id="a2"
        ).status_code
        == 202
    )
    assert (
        _post(
            client,
            h,
            first.conversation_id,
            body="Again",
            seen_message_id=first.id,
            force=True,
            client_id="a3",
        ).status_code
        == 202
    )
    # a retried client_id answers with the first message, not a 409
    again = _post(
        client, h, first.conversation_id, body="Hi!", seen_message_id=first.id, client_id="a2"
    )
    assert again.status_code == 200


def test_send_guard_counts_a_teammates_reply_but_not_my_own_or_notes(client, make):
    me, mate = make.user(), make.user()
    inbox = make.inbox("messenger", members=[me, mate])
    msg = make.inbound(inbox, contact="psid-2", text="Hello")
    conv_id = msg.conversation_id
    mine = _post(client, make.headers(me), conv_id, body="Mine").get_json()
    note = _post(client, make.headers(mate), conv_id, body="FYI", private=True).get_json()
    assert note["direction"] == "note"
    ok = _post(client, make.headers(me), conv_id, body="Still fine", seen_message_id=msg.id)
    assert ok.status_code == 202, ok.get_json()
    _post(client, make.headers(mate), conv_id, body="I answered already")
    refused = _post(client, make.headers(me), conv_id, body="Late", seen_message_id=mine["id"])
    assert refused.status_code == 409
    assert "teammate" in refused.get_json()["error"]["message"]


def test_contact_conversations_respect_inbox_visibility(client, make):
    agent = make.user()
    seen = make.inbox("messenger", members=[agent])
    hidden = make.inbox("messenger")
    from app.models import Conversation

    conv = make.db.session.get(
        Conversation, make.inbound(seen, contact="psid-3", text="One").conversation_id
    )
    resp = client.get(
        f"/api/v1/contacts/{conv.contact_id}/conversations", headers=make.headers(agent)
    )
    assert resp.status_code == 200
    assert [c["id"] for c in resp.get_json()["items"]] == [conv.id]
    other = make.db.session.get(
        Conversation, make.inbound(hidden, contact="psid-4", text="Two").conversation_id
    )
    resp = client.get(
        f"/api/v1/contacts/{other.contact_id}/conversations", headers=make.headers(agent)
    )
    assert resp.status_code == 404
    lead = make.user("lead")
    resp = client.get(
        f"/api/v1/contacts/{other.contact_id}/conversations", headers=make.headers(lead)
    )
    assert [c["id"] for c in resp.get_json()["items"]] == [other.id]


def test_canned_replies_crud_and_visibility(client, make):
    lead, agent = make.user("lead"), make.user()
    mine = make.inbox("messenger", members=[agent])
    other = make.inbox("sms")
    lh = make.headers(lead)
    made = client.post(
        "/api/v1/canned-replies",
        headers=lh,
        json={"shortcut": "/Thanks", "title": "Thanks", "body": "Hi {{contact.first_name}}"},
    )
    assert made.status_code == 201
    assert made.get_json()["shortcut"] == "thanks"
    client.post(
        "/api/v1/canned-replies",
        headers=lh,
        json={"shortcut": "hours", "title": "Hours", "body": "9-5", "inbox_id": other.id},
    )
    dup = client.post(
        "/api/v1/canned-replies", headers=lh, json={"shortcut": "thanks", "title": "x", "body": "y"}
    )
    assert dup.status_code == 409

    ah = make.headers(agent)
    listed = client.get(f"/api/v1/canned-replies?inbox_id={mine.id}", headers=ah).get_json()[
        "items"
    ]
    assert [c["shortcut"] for c in listed] == ["thanks"]  # the other inbox's reply is not visible
    assert (
        client.post(
            "/api/v1/canned-replies", headers=ah, json={"shortcut": "x", "title": "x", "body": "x"}
        ).status_code
        == 403
    )

    rid = made.get_json()["id"]
    patched = client.patch(
        f"/api/v1/canned-replies/{rid}", headers=lh, json={"body": "Hello {{contact.name}}"}
    )
    assert patched.get_json()["body"] == "Hello {{contact.name}}"
    assert client.delete(f"/api/v1/canned-replies/{rid}", headers=lh).status_code == 204
    assert (
        client.get("/api/v1/canned-replies", headers=lh).get_json()["items"][0]["shortcut"]
        == "hours"
    )


def test_admin_manages_users_and_members(client, make):
    admin, lead = make.user("admin"), make.user("lead")
    inbox = make.inbox("messenger")
    h = make.headers(admin)
    created = client.post(
        "/api/v1/users",
        headers=h,
        json={
            "name": "Rita Agent",
            "email": "Rita@Example.com",
            "role": "agent",
            "password": "s3cret-pass",
        },
    )
    assert created.status_code == 201, created.get_json()
    uid = created.get_json()["id"]
    assert created.get_json()["email"] == "rita@example.com"
    assert (
        client.post(
            "/api/v1/users",
            headers=make.headers(lead),
            json={"name": "X", "email": "x@example.com", "password": "long-enough"},
        ).status_code
        == 403
    )
    assert (
        client.patch(f"/api/v1/users/{uid}", headers=h, json={"role": "wizard"}).status_code == 422
    )
    assert (
        client.patch(
            f"/api/v1/users/{uid}", headers=h, json={"role": "lead", "capacity": 5}
        ).get_json()["role"]
        == "lead"
    )

    members = client.put(f"/api/v1/inboxes/{inbox.id}/members", headers=h, json={"user_ids": [uid]})
    assert members.get_json()["member_ids"] == [uid]

    # deactivating returns the user's open conversations to the queue
    client.patch(f"/api/v1/users/{uid}", headers=h, json={"role": "agent"})
    msg = make.inbound(inbox, contact="psid-5", text="Hi")
    client.post(
        f"/api/v1/conversations/{msg.conversation_id}/assign", headers=h, json={"assignee_id": uid}
    )
    off = client.patch(f"/api/v1/users/{uid}", headers=h, json={"active": False})
    assert off.get_json()["active"] is False
    conv = client.get(f"/api/v1/conversations/{msg.conversation_id}", headers=h).get_json()
    assert conv["assignee"] is None
    assert (
        client.patch(f"/api/v1/users/{admin.id}", headers=h, json={"active": False}).status_code
        == 422
    )


def test_team_overview_for_leads(client, make):
    lead, agent = make.user("lead"), make.user(capacity=3)
    inbox = make.inbox("messenger", members=[agent])
    closing = make.inbound(
        inbox, contact="psid-6", text="Soon closed", at=now() - timedelta(hours=23)
    )
    make.inbound(inbox, contact="psid-7", text="Fresh", at=now() - timedelta(minutes=5))
    client.post(
        f"/api/v1/conversations/{closing.conversation_id}/assign",
        headers=make.headers(lead),
        json={"assignee_id": agent.id},
    )
    assert client.get("/api/v1/team", headers=make.headers(agent)).status_code == 403
    data = client.get("/api/v1/team", headers=make.headers(lead)).get_json()
    row = next(a for a in data["agents"] if a["id"] == agent.id)
    assert (row["open_assigned"], row["capacity"]) == (1, 3)
    assert [c["id"] for c in data["at_risk"]] == [closing.conversation_id]
    assert data["unassigned"]["count"] == 1
    assert 0 <= data["unassigned"]["oldest_seconds"] < 3600


def test_pages_need_the_right_role(client, make, app):
    agent, lead, admin = make.user(), make.user("lead"), make.user("admin")
    make.inbox("messenger", verify_token="verify-xyz")

    def login(user):
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        client.post(
            "/login",
            data={"email": user.email, "password": "correct horse battery", "csrf_token": token},
        )

    login(agent)
    assert client.get("/").status_code == 200
    assert client.get("/team").status_code == 403
    assert client.get("/admin/inboxes").status_code == 403
    client.post("/logout", data={"csrf_token": _csrf(client)})
    login(lead)
    body = client.get("/admin/inboxes").get_data(as_text=True)
    assert "/webhooks/messenger" in body and "verify-xyz" not in body
    client.post("/logout", data={"csrf_token": _csrf(client)})
    login(admin)
    app.config["PUBLIC_URL"] = "https://support.example.com"
    body = client.get("/admin/inboxes").get_data(as_text=True)
    assert "https://support.example.com/webhooks/messenger" in body and "verify-xyz" in body
    assert client.get("/team").status_code == 200
    assert client.get("/admin/users").status_code == 200
    assert client.get("/admin/canned").status_code == 200


def _csrf(client) -> str:
    page = client.get("/").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
