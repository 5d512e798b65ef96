"""Contacts through the API: details agents edit, who sees which contact, merging two
contacts into one, suggestions and search, and the data-protection export and erasure."""

from __future__ import annotations

import sqlalchemy as sa

from app.models import Attachment, AuditLine, Contact, ContactIdentity, Conversation, Message


def _conv(make, msg) -> Conversation:
    return make.db.session.get(Conversation, msg.conversation_id)


def _contact_id(make, msg) -> int:
    return _conv(make, msg).contact_id


# ------------------------------------------------------------------ reading and visibility


def test_contact_shows_conversations_only_in_inboxes_the_agent_sees(client, make):
    agent, lead = make.user(), make.user("lead")
    seen = make.inbox("sms", members=[agent])
    hidden = make.inbox("sms")
    first = make.inbound(seen, contact="+14155550101", text="Seen one")
    make.inbound(hidden, contact="+14155550101", text="Hidden one")
    contact_id = _contact_id(make, first)

    body = client.get(f"/api/v1/contacts/{contact_id}", headers=make.headers(agent)).get_json()
    assert [c["last_message"]["body"] for c in body["conversations"]] == ["Seen one"]
    assert body["identities"][0]["external_id"] == "+14155550101"
    assert body["identities"][0]["inbox_name"] == seen.name
    assert body["email"] is None and body["phone"] is None and body["attributes"] == {}

    by_lead = client.get(f"/api/v1/contacts/{contact_id}", headers=make.headers(lead)).get_json()
    # one SMS number is one identity per inbox: two contacts, each with its own conversation
    assert len(by_lead["conversations"]) == 1

    only_hidden = make.inbound(hidden, contact="+14155550199", text="Nobody sees me")
    resp = client.get(
        f"/api/v1/contacts/{_contact_id(make, only_hidden)}", headers=make.headers(agent)
    )
    assert resp.status_code == 404
    assert client.get("/api/v1/contacts/999999", headers=make.headers(lead)).status_code == 404


# ------------------------------------------------------------------ editing


def test_edit_contact_normalises_phone_and_email_and_keeps_attributes(
    client, make, app, captured_events
):
    agent = make.user()
    inbox = make.inbox("messenger", members=[agent])
    msg = make.inbound(inbox, contact="psid-edit", text="Oi")
    cid = _contact_id(make, msg)
    h = make.headers(agent)

    resp = client.patch(
        f"/api/v1/contacts/{cid}",
        headers=h,
        json={
            "name": "  Ana   Souza ",
            "email": "Ana.Souza@Example.COM",
            "phone": "+55 (11) 98765-4321",
            "notes": "Prefers WhatsApp.",
            "attributes": {"plan": "Pro", "orders": 3, "vip": True},
        },
    )
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["name"] == "Ana Souza" and body["has_name"] is True
    assert body["email"] == "ana.souza@example.com"
    assert body["phone"] == "+5511987654321"
    assert body["attributes"] == {"plan": "Pro", "orders": 3, "vip": True}
    assert body["notes"] == "Prefers WhatsApp."
    live = [e for e in captured_events if e.name == "contact.updated"]
    assert live and live[-1].payload["name"] == "Ana Souza"
    assert ("inbox", inbox.id) in live[-1].audience

    # a key left out of attributes is removed; an empty value removes it too
    body = client.patch(
        f"/api/v1/contacts/{cid}", headers=h, json={"attributes": {"plan": "Team", "orders": ""}}
    ).get_json()
    assert body["attributes"] == {"plan": "Team"}
    assert body["phone"] == "+5511987654321"  # fields left out are kept

    # the conversation object carries the new name
    conv = client.get(f"/api/v1/conversations/{msg.conversation_id}", headers=h).get_json()
    assert conv["contact"]["name"] == "Ana Souza"
    assert conv["contact"]["phone"] == "+5511987654321"


def test_invalid_phone_or_email_is_refused_with_the_field_named(client, make, app):
    agent = make.user()
    inbox = make.inbox("messenger", members=[agent])
    cid = _contact_id(make, make.inbound(inbox, contact="psid-bad", text="Hi"))
    h = make.headers(agent)

    resp = client.patch(f"/api/v1/contacts/{cid}", headers=h, json={"phone": "12345"})
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert err["code"] == "invalid" and "phone" in err["fields"]
    assert "country code" in err["fields"]["phone"]

    resp = client.patch(f"/api/v1/contacts/{cid}", headers=h, json={"email": "ana@", "name": "A"})
    assert resp.status_code == 422
    assert "email" in resp.get_json()["error"]["fields"]
    assert make.db.session.get(Contact, cid).name is None  # nothing changed

    # a national number needs the configured region
    resp = client.patch(f"/api/v1/contacts/{cid}", headers=h, json={"phone": "(11) 98765-4321"})
    assert resp.status_code == 422
    app.config["DEFAULT_PHONE_REGION"] = "BR"
    resp = client.patch(f"/api/v1/contacts/{cid}", headers=h, json={"phone": "(11) 98765-4321"})
    assert resp.get_json()["phone"] == "+5511987654321"
    # clearing
    resp = client.patch(f"/api/v1/contacts/{cid}", headers=h, json={"phone": ""})
    assert resp.get_json()["phone"] is None


def test_agent_cannot_edit_a_contact_they_cannot_see(client, make):
    agent = make.user()
    hidden = make.inbox("messenger")
    cid = _contact_id(make, make.inbound(hidden, contact="psid-h", text="Hi"))
    resp = client.patch(f"/api/v1/contacts/{cid}", headers=make.headers(agent), json={"name": "X"})
    assert resp.status_code == 404


# ------------------------------------------------------------------ merging


def test_merge_moves_identities_and_conversations_and_later_messages_follow(
    client, make, captured_events
):
    agent = make.user(name="Lucas Martin")
    messenger = make.inbox("messenger", members=[agent])
    mail = make.inbox("email", members=[agent])
    on_messenger = make.inbound(messenger, contact="psid-ana", text="Hi", contact_name="Ana S")
    by_mail = make.inbound(mail, contact="ana@example.com", text="About my order", subject="Order")
    survivor, other = _contact_id(make, on_messenger), _contact_id(make, by_mail)
    assert survivor != other
    h = make.headers(agent)

    preview = client.get(f"/api/v1/contacts/{survivor}/merge?other_id={other}", headers=h)
    assert preview.status_code == 200
    preview = preview.get_json()
    assert [i["external_id"] for i in preview["identities"]] == ["ana@example.com"]
    assert [c["id"] for c in preview["conversations"]] == [by_mail.conversation_id]
    assert preview["hidden_conversations"] == 0
    assert preview["details"] == {}  # the survivor has a name already

    resp = client.post(f"/api/v1/contacts/{survivor}/merge", headers=h, json={"other_id": other})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["moved_conversation_ids"] == [by_mail.conversation_id]
    assert {i["external_id"] for i in body["identities"]} == {"psid-ana", "ana@example.com"}
    assert {c["id"] for c in body["conversations"]} == {
        on_messenger.conversation_id,
        by_mail.conversation_id,
    }
    assert client.get(f"/api/v1/contacts/{other}", headers=h).status_code == 404
    make.db.session.expire_all()
    assert make.db.session.get(Contact, other) is None

    # an activity line in the moved conversation
    lines = client.get(f"/api/v1/conversations/{by_mail.conversation_id}/messages", headers=h)
    last = lines.get_json()["items"][-1]
    assert last["direction"] == "activity"
    assert last["body"] == "Lucas Martin merged the contact ana@example.com into Ana S"

    # live: each of the survivor's conversations, now showing the survivor
    updated = {
        e.payload["id"]: e.payload["contact"]["id"]
        for e in captured_events
        if e.name == "conversation.updated"
    }
    assert updated[by_mail.conversation_id] == survivor
    assert updated[on_messenger.conversation_id] == survivor
    merged = [e for e in captured_events if e.name == "contact.merged"]
    assert merged[-1].payload["id"] == survivor and merged[-1].payload["merged_id"] == other

    # the customer writes again by mail: it lands on the survivor
    again = make.inbound(mail, contact="ana@example.com", text="Any news?", subject="New one")
    assert _contact_id(make, again) == survivor
    found = client.get("/api/v1/conversations?q=ana@example.com&status=all", headers=h).get_json()
    assert {c["contact"]["id"] for c in found["items"]} == {survivor}


def test_merge_fills_missing_details_and_refuses_nonsense(client, make):
    lead = make.user("lead")
    inbox = make.inbox("sms", members=[])
    a = _contact_id(make, make.inbound(inbox, contact="+14155550111", text="One"))
    b = _contact_id(make, make.inbound(inbox, contact="+14155550112", text="Two"))
    h = make.headers(lead)
    client.patch(
        f"/api/v1/contacts/{b}",
        headers=h,
        json={
            "name": "Bea",
            "email": "bea@example.com",
            "notes": "Old notes",
            "attributes": {"x": "1"},
        },
    )
    client.patch(f"/api/v1/contacts/{a}", headers=h, json={"attributes": {"x": "keep", "y": "2"}})

    assert (
        client.post(f"/api/v1/contacts/{a}/merge", headers=h, json={"other_id": a}).status_code
        == 409
    )
    resp = client.post(f"/api/v1/contacts/{a}/merge", headers=h, json={"other_id": "b"})
    assert resp.status_code == 422
    body = client.post(f"/api/v1/contacts/{a}/merge", headers=h, json={"other_id": b}).get_json()
    assert body["name"] == "Bea" and body["email"] == "bea@example.com"
    assert body["notes"] == "Old notes"
    assert body["attributes"] == {"x": "keep", "y": "2"}
    assert len(body["conversations"]) == 2


def test_agent_cannot_merge_a_contact_they_cannot_see(client, make):
    agent = make.user()
    seen = make.inbox("sms", members=[agent])
    hidden = make.inbox("sms")
    a = _contact_id(make, make.inbound(seen, contact="+14155550121", text="Mine"))
    b = _contact_id(make, make.inbound(hidden, contact="+14155550122", text="Not mine"))
    resp = client.post(
        f"/api/v1/contacts/{a}/merge", headers=make.headers(agent), json={"other_id": b}
    )
    assert resp.status_code == 404
    assert make.db.session.get(Contact, b) is not None


def test_suggestions_and_search_find_the_same_person(client, make):
    agent = make.user()
    sms = make.inbox("sms", members=[agent])
    mail = make.inbox("email", members=[agent])
    hidden = make.inbox("email")
    texter = _contact_id(make, make.inbound(sms, contact="+5511987654321", text="Oi"))
    writer = _contact_id(make, make.inbound(mail, contact="ana@example.com", text="Olá"))
    stranger = _contact_id(make, make.inbound(hidden, contact="ana@example.com", text="Hidden"))
    h = make.headers(agent)
    # the SMS-only customer gets their email address added: the mail contact is suggested
    client.patch(f"/api/v1/contacts/{texter}", headers=h, json={"email": "ANA@example.com"})
    items = client.get(f"/api/v1/contacts/{texter}/suggestions", headers=h).get_json()["items"]
    assert [(i["id"], i["shared"]) for i in items] == [
        (writer, {"kind": "email", "value": "ana@example.com"})
    ]
    # and the other way round, by the phone number written otherwise
    client.patch(f"/api/v1/contacts/{writer}", headers=h, json={"phone": "+55 11 98765 4321"})
    items = client.get(f"/api/v1/contacts/{writer}/suggestions", headers=h).get_json()["items"]
    assert [i["id"] for i in items] == [texter]

    found = client.get("/api/v1/contacts?q=98765-4321", headers=h).get_json()["items"]
    assert {c["id"] for c in found} == {texter, writer}
    found = client.get(f"/api/v1/contacts?q=ana@&exclude={texter}", headers=h).get_json()["items"]
    assert [c["id"] for c in found] == [writer]  # not the one in an inbox the agent cannot see
    lead = make.user("lead")
    found = client.get("/api/v1/contacts?q=ana@", headers=make.headers(lead)).get_json()["items"]
    assert stranger in {c["id"] for c in found}


# ------------------------------------------------------------------ export and erasure


def _with_file(make, app, msg, content=b"%PDF-1.4 invoice") -> Attachment:
    from app import storage

    key = storage.save(content)
    att = Attachment(
        message_id=msg.id,
        kind="file",
        filename="invoice.pdf",
        content_type="application/pdf",
        size=len(content),
        storage_key=key,
    )
    make.db.session.add(att)
    make.db.session.commit()
    return att


def test_export_holds_everything_and_is_audited(client, make, app):
    agent, lead = make.user(), make.user("lead", name="Nadia Karimi")
    inbox = make.inbox("email", members=[agent])
    msg = make.inbound(inbox, contact="joao@example.com", text="Segue a fatura", subject="Fatura")
    _with_file(make, app, msg)
    cid = _contact_id(make, msg)
    client.post(
        f"/api/v1/conversations/{msg.conversation_id}/messages",
        headers=make.headers(agent),
        json={"body": "Internal: check the invoice", "private": True},
    )

    assert (
        client.get(f"/api/v1/contacts/{cid}/export", headers=make.headers(agent)).status_code == 403
    )
    resp = client.get(f"/api/v1/contacts/{cid}/export", headers=make.headers(lead))
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    assert "attachment" in resp.headers["Content-Disposition"]
    data = resp.get_json()
    assert data["contact"]["id"] == cid
    assert [i["external_id"] for i in data["identities"]] == ["joao@example.com"]
    (conv,) = data["conversations"]
    assert conv["subject"] == "Fatura"
    bodies = [m["body"] for m in conv["messages"]]
    assert "Segue a fatura" in bodies and "Internal: check the invoice" in bodies
    files = [a for m in conv["messages"] for a in m["attachments"]]
    assert {"filename": "invoice.pdf", "content_type": "application/pdf"}.items() <= files[
        0
    ].items()
    line = make.db.session.scalars(sa.select(AuditLine)).one()
    assert (line.action, line.subject_id, line.user_name) == ("contact.export", cid, "Nadia Karimi")
    assert data["audit"][-1]["action"] == "contact.export"


def test_erase_removes_messages_files_and_identities_but_keeps_the_conversation(client, make, app):
    from app import storage

    lead, admin = make.user("lead"), make.user("admin", name="Rita Admin")
    inbox = make.inbox("messenger")
    msg = make.inbound(
        inbox, contact="psid-gone", text="My address is 12 Rue X", contact_name="Zoe"
    )
    att = _with_file(make, app, msg, b"\x89PNG\r\n\x1a\n picture")
    path = storage.path_for(att.storage_key)
    assert path.exists()
    cid, conv_id = _contact_id(make, msg), msg.conversation_id

    assert client.delete(f"/api/v1/contacts/{cid}", headers=make.headers(lead)).status_code == 403
    resp = client.delete(f"/api/v1/contacts/{cid}", headers=make.headers(admin))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["erased"] is True and body["name"] == "Erased contact"
    assert body["identities"] == [] and body["email"] is None

    assert not path.exists()
    s = make.db.session
    s.expire_all()
    assert s.scalars(sa.select(ContactIdentity)).all() == []
    assert s.scalars(sa.select(Attachment)).all() == []
    left = s.scalars(sa.select(Message).where(Message.conversation_id == conv_id)).all()
    assert [m.direction for m in left] == ["activity"]  # only the erasure is recorded
    assert "12 Rue X" not in left[0].body and "Zoe" not in left[0].body
    conv = client.get(f"/api/v1/conversations/{conv_id}", headers=make.headers(admin)).get_json()
    assert conv["contact"]["name"] == "Erased contact" and conv["status"] == "closed"
    assert conv["last_message"] is None
    audit = s.scalars(sa.select(AuditLine)).one()
    assert audit.action == "contact.erase"
    assert audit.details == {"conversations": 1, "messages": 1, "attachments": 1, "identities": 1}
    found = client.get("/api/v1/conversations?q=Rue&status=all", headers=make.headers(admin))
    assert found.get_json()["items"] == []

    # the same customer writing again is a new contact, not the erased one
    again = make.inbound(inbox, contact="psid-gone", text="Hello again")
    assert _contact_id(make, again) != cid
    assert again.conversation_id != conv_id
    assert (
        client.patch(
            f"/api/v1/contacts/{cid}", headers=make.headers(admin), json={"name": "Back"}
        ).status_code
        == 422
    )


# ------------------------------------------------------------------ writing first


def test_new_conversation_from_the_contact_panel_follows_each_channels_rules(client, make):
    from datetime import timedelta

    from app.clock import now

    agent = make.user(name="Lucas Martin")
    messenger = make.inbox("messenger", members=[agent])
    mail = make.inbox("email", members=[agent])
    sms = make.inbox("sms", members=[agent], settings={"quiet_hours": {}})  # none
    # quiet hours all day long for the customer: SMS cannot start now
    night = make.inbox(
        "sms", members=[agent], settings={"quiet_hours": {"start": "00:00", "end": "23:59"}}
    )
    first = make.inbound(messenger, contact="psid-x", text="Hi", at=now() - timedelta(days=3))
    cid = _contact_id(make, first)
    h = make.headers(agent)
    client.patch(
        f"/api/v1/contacts/{cid}",
        headers=h,
        json={"email": "x@example.com", "phone": "+14155550142"},
    )

    items = client.get(f"/api/v1/contacts/{cid}/reach", headers=h).get_json()["items"]
    by_inbox = {(i["inbox"]["id"], i["address"]): i for i in items}
    assert messenger.id not in {i["inbox"]["id"] for i in items}  # the customer must write first
    assert by_inbox[(mail.id, "x@example.com")]["allowed"] is True
    assert by_inbox[(mail.id, "x@example.com")]["subject"] is True
    assert by_inbox[(sms.id, "+14155550142")]["allowed"] is True
    assert by_inbox[(night.id, "+14155550142")]["code"] == "quiet_hours"

    resp = client.post(
        f"/api/v1/contacts/{cid}/conversations",
        headers=h,
        json={"inbox_id": mail.id, "address": "x@example.com", "body": "Your order shipped"},
    )
    assert resp.status_code == 422  # an email needs a subject
    resp = client.post(
        f"/api/v1/contacts/{cid}/conversations",
        headers=h,
        json={
            "inbox_id": mail.id,
            "address": "x@example.com",
            "subject": "Your order",
            "body": "Your order shipped",
        },
    )
    assert resp.status_code == 201, resp.get_json()
    made = resp.get_json()
    assert made["conversation"]["contact"]["id"] == cid
    assert made["conversation"]["subject"] == "Your order"
    assert made["conversation"]["assignee"]["name"] == "Lucas Martin"
    assert made["message"]["status"] == "queued"

    night_try = client.post(
        f"/api/v1/contacts/{cid}/conversations",
        headers=h,
        json={"inbox_id": night.id, "address": "+14155550142", "body": "Hello"},
    )
    assert night_try.status_code == 409 and night_try.get_json()["error"]["code"] == "quiet_hours"
    assert not make.db.session.scalars(
        sa.select(ContactIdentity).where(ContactIdentity.inbox_id == night.id)
    ).all()
    assert (
        client.post(
            f"/api/v1/contacts/{cid}/conversations",
            headers=h,
            json={"inbox_id": messenger.id, "address": "psid-x", "body": "Hello"},
        ).status_code
        == 409
    )

    # the customer opted out of that number by texting STOP: refused before any provider call
    ok = client.post(
        f"/api/v1/contacts/{cid}/conversations",
        headers=h,
        json={"inbox_id": sms.id, "address": "+14155550142", "body": "Hello by text"},
    )
    assert ok.status_code == 201
    ident = make.db.session.scalars(
        sa.select(ContactIdentity).where(ContactIdentity.inbox_id == sms.id)
    ).one()
    assert ident.contact_id == cid
    ident.opted_out_at = now()
    make.db.session.commit()
    items = client.get(f"/api/v1/contacts/{cid}/reach", headers=h).get_json()["items"]
    assert {(i["inbox"]["id"], i["code"]) for i in items if i["inbox"]["id"] == sms.id} == {
        (sms.id, "opted_out")
    }
