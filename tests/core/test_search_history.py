"""Full-history search: any message's words, names with or without accents, phone numbers
typed any way, from any tab with counts per status, the message that matched, and only
what the agent may see."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from app.extensions import db
from app.inbox import search
from app.models import Contact, Conversation, Message


def _find(client, make, user, text: str, status: str = "all", **extra) -> dict:
    args = "".join(f"&{k}={quote(str(v))}" for k, v in extra.items())
    url = f"/api/v1/conversations?status={status}&q={quote(text)}{args}"
    res = client.get(url, headers=make.headers(user))
    assert res.status_code == 200, res.get_json()
    return res.get_json()


def _ids(found: dict) -> list[int]:
    return [item["id"] for item in found["items"]]


def _reply(client, make, user, conv_id: int, body: str, private: bool = False) -> int:
    res = client.post(
        f"/api/v1/conversations/{conv_id}/messages",
        json={"body": body, "private": private},
        headers=make.headers(user),
    )
    assert res.status_code in (201, 202), res.get_json()
    return res.get_json()["id"]


@pytest.fixture
def team(make):
    agent = make.user()
    inbox = make.inbox(members=[agent])
    return agent, inbox


def test_a_word_from_an_earlier_message_finds_the_conversation_and_that_message(client, make, team):
    agent, inbox = team
    first = make.inbound(inbox, "psid-1", text="Olá, o pagamento ficou em processing na caixa")
    conv_id = first.conversation_id
    _reply(client, make, agent, conv_id, "We are looking into it.")
    make.inbound(inbox, "psid-1", text="Thanks!")
    make.inbound(inbox, "psid-2", text="Where is my parcel?")

    for text in ("caixa", "processing", "Olá", "ola", "PROCESS"):
        found = _find(client, make, agent, text)
        assert _ids(found) == [conv_id], text
        match = found["items"][0]["match"]
        assert match["message_id"] == first.id
    assert (
        "<mark>caixa</mark>" in _find(client, make, agent, "caixa")["items"][0]["match"]["snippet"]
    )
    assert _ids(_find(client, make, agent, "looking into")) == [conv_id]  # our reply


def test_the_newest_matching_message_is_the_match_and_notes_count(client, make, team):
    agent, inbox = team
    conv_id = make.inbound(inbox, "psid-1", text="refund please").conversation_id
    note = _reply(client, make, agent, conv_id, "Refund approved by finance", private=True)
    make.inbound(inbox, "psid-1", text="ok")
    found = _find(client, make, agent, "refund")
    assert found["items"][0]["match"]["message_id"] == note
    assert found["items"][0]["match"]["snippet"].startswith("<mark>Refund</mark> approved")
    assert _ids(_find(client, make, agent, "finance")) == [conv_id]


def test_a_snippet_is_escaped(client, make, team):
    agent, inbox = team
    make.inbound(inbox, "psid-1", text='<img src=x onerror="alert(1)"> where is my invoice')
    snippet = _find(client, make, agent, "invoice")["items"][0]["match"]["snippet"]
    assert "<img" not in snippet
    assert snippet.startswith("&lt;img src=x onerror=&#34;alert(1)&#34;&gt;")
    assert snippet.endswith("<mark>invoice</mark>")


@pytest.mark.parametrize("typed", ["noel", "Noël", "NOEL", "noël ferr", "Ferreira"])
def test_a_name_is_found_with_or_without_accents(client, make, team, typed):
    agent, inbox = team
    conv_id = make.inbound(
        inbox, "psid-1", text="hello", contact_name="Noël Ferreira"
    ).conversation_id
    make.inbound(inbox, "psid-2", text="hello", contact_name="Noah Smith")
    found = _find(client, make, agent, typed)
    assert _ids(found) == [conv_id]
    assert "match" not in found["items"][0]  # found by the name, not by a message


@pytest.mark.parametrize(
    "typed", ["(415) 555-9876", "415-555-9876", "+1 415 555 9876", "4155559876", "555-9876"]
)
def test_a_phone_number_typed_any_way_finds_the_customer(client, make, typed):
    agent = make.user()
    inbox = make.inbox("sms", members=[agent])
    conv_id = make.inbound(inbox, "+14155559876", text="hi").conversation_id
    make.inbound(inbox, "+14155550100", text="hi")
    assert _ids(_find(client, make, agent, typed)) == [conv_id]


def test_a_number_without_country_code_is_read_in_the_default_region(app, client, make):
    app.config["DEFAULT_PHONE_REGION"] = "GB"
    agent = make.user()
    inbox = make.inbox("sms", members=[agent])
    conv_id = make.inbound(inbox, "+442079460958", text="hi").conversation_id
    assert _ids(_find(client, make, agent, "020 7946 0958")) == [conv_id]


def test_an_email_address_and_a_subject_are_found(client, make, team):
    agent, inbox = team
    conv = db.session.get(
        Conversation, make.inbound(inbox, "anna.lima@example.net", text="hi").conversation_id
    )
    conv.subject = "Fatura número 77"
    db.session.commit()
    assert _ids(_find(client, make, agent, "anna.lima@exa")) == [conv.id]
    assert _ids(_find(client, make, agent, "fatura numero")) == [conv.id]


def test_search_from_any_tab_counts_matches_per_status(client, make, team):
    agent, inbox = team
    open_id = make.inbound(inbox, "psid-1", text="my voucher code").conversation_id
    closed_id = make.inbound(inbox, "psid-2", text="voucher expired").conversation_id
    pending_id = make.inbound(inbox, "psid-3", text="voucher?").conversation_id
    make.inbound(inbox, "psid-4", text="unrelated")
    db.session.get(Conversation, closed_id).status = "closed"
    db.session.get(Conversation, pending_id).status = "pending"
    db.session.get(Conversation, pending_id).assignee_id = agent.id
    db.session.commit()

    on_open = _find(client, make, agent, "voucher", status="open")
    assert _ids(on_open) == [open_id]
    assert on_open["counts"]["by_status"] == {"open": 1, "pending": 1, "snoozed": 0, "closed": 1}
    assert (on_open["counts"]["all"], on_open["counts"]["mine"]) == (1, 0)
    on_closed = _find(client, make, agent, "voucher", status="closed")
    assert _ids(on_closed) == [closed_id]
    assert on_closed["counts"]["by_status"] == on_open["counts"]["by_status"]
    everywhere = _find(client, make, agent, "voucher")
    assert sorted(_ids(everywhere)) == sorted([open_id, closed_id, pending_id])
    assert {k: everywhere["counts"][k] for k in ("all", "mine", "unassigned")} == {
        "all": 3,
        "mine": 1,
        "unassigned": 2,
    }


def test_nobody_finds_what_they_may_not_see(client, make):
    alice, bruno = make.user(), make.user()
    mine, theirs = make.inbox(members=[alice]), make.inbox(members=[bruno])
    make.inbound(theirs, "psid-1", text="secret tracking 9Z", contact_name="Zoë Quint")
    seen = make.inbound(mine, "psid-2", text="tracking number please").conversation_id
    found = _find(client, make, alice, "tracking")
    assert _ids(found) == [seen]
    assert found["counts"]["by_status"]["open"] == 1
    for text in ("secret", "zoe", "Quint"):
        assert _find(client, make, alice, text)["items"] == []
    lead = make.user(role="lead")
    assert len(_find(client, make, lead, "tracking")["items"]) == 2


def test_the_index_follows_edits_erasure_and_merge(client, make, team):
    agent, inbox = team
    admin = make.user(role="admin")
    msg = make.inbound(inbox, "psid-1", text="parcel lost", contact_name="Olga Petrova")
    msg.body = "parcel found"
    db.session.commit()
    assert _find(client, make, agent, "lost")["items"] == []
    assert len(_find(client, make, agent, "found")["items"]) == 1

    other = make.inbound(inbox, "psid-9", text="hi again", contact_name="Olga P.")
    survivor = db.session.get(Conversation, msg.conversation_id).contact_id
    res = client.post(
        f"/api/v1/contacts/{survivor}/merge",
        json={"other_id": db.session.get(Conversation, other.conversation_id).contact_id},
        headers=make.headers(admin),
    )
    assert res.status_code == 200, res.get_json()
    # the merged contact's address now leads to the survivor's conversations too
    assert set(_ids(_find(client, make, agent, "psid-9"))) == {
        msg.conversation_id,
        other.conversation_id,
    }

    res = client.delete(f"/api/v1/contacts/{survivor}", headers=make.headers(admin))
    assert res.status_code == 200, res.get_json()
    for text in ("parcel", "Olga", "psid-1", "psid-9"):
        assert _find(client, make, agent, text)["items"] == [], text
    assert db.session.get(Contact, survivor).erased_at is not None


def test_a_word_in_very_many_messages_lists_the_newest_and_says_counts_are_capped(
    client, make, team, monkeypatch
):
    agent, inbox = team
    monkeypatch.setattr(search, "MESSAGE_CAP", 3)
    ids = [make.inbound(inbox, f"psid-{i}", text="order status").conversation_id for i in range(5)]
    found = _find(client, make, agent, "order")
    assert found["counts"]["capped"] is True
    assert found["counts"]["all"] >= 3
    assert set(_ids(found)) >= set(ids[-3:])
    monkeypatch.setattr(search, "MESSAGE_CAP", 100)
    found = _find(client, make, agent, "order")
    assert (found["counts"]["all"], found["counts"]["capped"]) == (5, False)


def test_activity_lines_are_not_searched(client, make, team):
    agent, inbox = team
    conv_id = make.inbound(inbox, "psid-1", text="hello").conversation_id
    db.session.add(
        Message(
            conversation_id=conv_id, inbox_id=inbox.id, direction="activity", body="zebra assigned"
        )
    )
    db.session.commit()
    assert _find(client, make, agent, "zebra")["items"] == []
