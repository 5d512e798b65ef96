"""Labels: the team's list (leads and admins keep it), labelling conversations, the list's
label filter (several mean all of them), bulk labelling, and the live events."""

from __future__ import annotations

import pytest

from app.extensions import socketio


def _label(client, headers, name, color=None):
    body = {"name": name} if color is None else {"name": name, "color": color}
    resp = client.post("/api/v1/labels", json=body, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _set(client, headers, conv_id, names):
    return client.post(
        f"/api/v1/conversations/{conv_id}/labels", json={"labels": names}, headers=headers
    )


def _list(client, headers, query=""):
    resp = client.get(f"/api/v1/conversations?status=all{query}", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


@pytest.fixture
def team(make):
    """An admin, a lead, an agent of one inbox and an agent of another, with two conversations."""
    admin, lead = make.user("admin"), make.user("lead")
    ana, bo = make.user(name="Ana Lima"), make.user(name="Bo Stone")
    inbox = make.inbox(members=[ana])
    other = make.inbox(members=[bo])
    first = make.inbound(inbox, contact="psid-1", text="My parcel never came").conversation_id
    second = make.inbound(inbox, contact="psid-2", text="Wrong size").conversation_id
    elsewhere = make.inbound(other, contact="psid-3", text="Hello").conversation_id
    return {
        "admin": make.headers(admin),
        "lead": make.headers(lead),
        "ana": make.headers(ana),
        "bo": make.headers(bo),
        "ana_user": ana,
        "inbox": inbox,
        "first": first,
        "second": second,
        "elsewhere": elsewhere,
    }


# --------------------------------------------------------------------------- the list of labels


def test_leads_and_admins_keep_the_list_and_agents_read_it(client, team):
    refund = _label(client, team["admin"], "refund", "#C2410C")
    assert refund["color"] == "#c2410c"
    vip = _label(client, team["lead"], "  VIP  customer ")
    assert vip["name"] == "VIP customer"
    assert vip["color"].startswith("#") and len(vip["color"]) == 7  # a colour of its own

    refused = client.post("/api/v1/labels", json={"name": "bug"}, headers=team["ana"])
    assert refused.status_code == 403
    assert (
        client.patch(
            f"/api/v1/labels/{refund['id']}", json={"name": "x"}, headers=team["ana"]
        ).status_code
        == 403
    )
    assert client.delete(f"/api/v1/labels/{refund['id']}", headers=team["ana"]).status_code == 403

    listed = client.get("/api/v1/labels", headers=team["ana"]).get_json()["items"]
    assert [(lb["name"], lb["color"]) for lb in listed] == [
        ("refund", "#c2410c"),
        ("VIP customer", vip["color"]),
    ]


def test_names_are_unique_whatever_their_case_and_must_be_sensible(client, team):
    _label(client, team["admin"], "Refund")
    dup = client.post("/api/v1/labels", json={"name": "REFUND"}, headers=team["lead"])
    assert dup.status_code == 409
    assert dup.get_json()["error"] == {
        "code": "duplicate",
        "message": "There is already a label named Refund.",
    }
    for body in ({"name": ""}, {"name": "x" * 41}, {"name": "ok", "color": "red"}, {}):
        resp = client.post("/api/v1/labels", json=body, headers=team["admin"])
        assert resp.status_code == 422, body
        assert resp.get_json()["error"]["code"] == "invalid"


def test_renaming_keeps_the_label_on_its_conversations_and_deleting_takes_it_off(client, team):
    refund = _label(client, team["admin"], "refund")
    _label(client, team["admin"], "bug")
    assert _set(client, team["ana"], team["first"], ["refund", "bug"]).status_code == 200

    renamed = client.patch(
        f"/api/v1/labels/{refund['id']}",
        json={"name": "Refund asked", "color": "#0f8a5f"},
        headers=team["lead"],
    )
    assert renamed.status_code == 200
    assert renamed.get_json() == {"id": refund["id"], "name": "Refund asked", "color": "#0f8a5f"}
    conv = client.get(f"/api/v1/conversations/{team['first']}", headers=team["ana"]).get_json()
    assert conv["labels"] == ["bug", "Refund asked"]
    # renaming to another label's name (any case) is refused; a change of case is not
    clash = client.patch(
        f"/api/v1/labels/{refund['id']}", json={"name": "BUG"}, headers=team["lead"]
    )
    assert clash.status_code == 409
    assert (
        client.patch(
            f"/api/v1/labels/{refund['id']}", json={"name": "REFUND ASKED"}, headers=team["lead"]
        ).get_json()["name"]
        == "REFUND ASKED"
    )

    assert client.delete(f"/api/v1/labels/{refund['id']}", headers=team["admin"]).status_code == 204
    conv = client.get(f"/api/v1/conversations/{team['first']}", headers=team["ana"]).get_json()
    assert conv["labels"] == ["bug"]
    assert client.delete(f"/api/v1/labels/{refund['id']}", headers=team["admin"]).status_code == 404


# --------------------------------------------------------------------------- one conversation


def test_an_agent_labels_a_conversation_they_can_see_and_the_thread_says_so(client, team):
    _label(client, team["admin"], "refund")
    _label(client, team["admin"], "VIP")
    resp = _set(client, team["ana"], team["first"], ["Refund", "vip"])
    assert resp.status_code == 200
    assert resp.get_json()["labels"] == ["refund", "VIP"]

    # setting is idempotent and replaces: the same set writes nothing new
    assert _set(client, team["ana"], team["first"], ["refund", "VIP"]).status_code == 200
    resp = _set(client, team["ana"], team["first"], ["vip"])
    assert resp.get_json()["labels"] == ["VIP"]

    msgs = client.get(
        f"/api/v1/conversations/{team['first']}/messages", headers=team["ana"]
    ).get_json()["items"]
    lines = [m["body"] for m in msgs if m["direction"] == "activity"]
    assert lines == [
        "Ana Lima added label refund",
        "Ana Lima added label VIP",
        "Ana Lima removed label refund",
    ]
    line = next(m for m in msgs if m["direction"] == "activity")
    assert line["meta"]["text"] == "{who} added label {label}"
    assert line["meta"]["values"] == {"who": "Ana Lima", "label": "refund"}


def test_agents_cannot_label_what_they_cannot_see_nor_invent_labels(client, team):
    _label(client, team["admin"], "refund")
    assert _set(client, team["bo"], team["first"], ["refund"]).status_code == 404

    unknown = _set(client, team["ana"], team["first"], ["refund", "urgent", "Later"])
    assert unknown.status_code == 422
    err = unknown.get_json()["error"]
    assert err["code"] == "unknown_label"
    assert err["labels"] == ["urgent", "Later"]
    # nothing was applied
    conv = client.get(f"/api/v1/conversations/{team['first']}", headers=team["ana"]).get_json()
    assert conv["labels"] == []
    bad = client.post(
        f"/api/v1/conversations/{team['first']}/labels",
        json={"labels": "refund"},
        headers=team["ana"],
    )
    assert bad.status_code == 422


# --------------------------------------------------------------------------- the list


def test_the_list_carries_labels_and_filters_by_all_the_labels_asked(client, team):
    for name in ("refund", "VIP", "bug"):
        _label(client, team["admin"], name)
    _set(client, team["ana"], team["first"], ["refund", "VIP"])
    _set(client, team["ana"], team["second"], ["refund"])

    page = _list(client, team["ana"])
    labels = {c["id"]: c["labels"] for c in page["items"]}
    assert labels == {team["first"]: ["refund", "VIP"], team["second"]: ["refund"]}

    refund = _list(client, team["ana"], "&label=refund")
    assert {c["id"] for c in refund["items"]} == {team["first"], team["second"]}
    assert refund["counts"]["all"] == 2

    both = _list(client, team["ana"], "&label=REFUND&label=vip")
    assert [c["id"] for c in both["items"]] == [team["first"]]
    assert both["counts"] == {
        "all": 1,
        "mine": 0,
        "unassigned": 1,
        "by_status": {"open": 1, "pending": 0, "snoozed": 0, "closed": 0},
    }

    assert _list(client, team["ana"], "&label=refund&label=bug")["items"] == []
    # a label nobody has (or that was deleted) matches nothing rather than everything
    assert _list(client, team["ana"], "&label=gone")["items"] == []
    # leads see every inbox's labelled conversations through the same filter
    assert len(_list(client, team["lead"], "&label=refund")["items"]) == 2


def test_the_label_filter_combines_with_search_and_pages(client, make, team):
    _label(client, team["admin"], "refund")
    for n in range(5):
        conv = make.inbound(team["inbox"], contact=f"bulk-{n}", text=f"parcel {n}")
        _set(client, team["ana"], conv.conversation_id, ["refund"])
    found = _list(client, team["ana"], "&label=refund&q=parcel&limit=2")
    assert len(found["items"]) == 2 and found["next_cursor"]
    rest = _list(
        client, team["ana"], f"&label=refund&q=parcel&limit=10&cursor={found['next_cursor']}"
    )
    assert len(rest["items"]) == 3
    assert found["counts"]["all"] == 5


def test_the_list_loads_every_label_of_a_page_in_one_query(client, make, team, count_queries):
    _label(client, team["admin"], "refund")
    _label(client, team["admin"], "VIP")
    for n in range(8):
        conv = make.inbound(team["inbox"], contact=f"many-{n}", text="hi")
        _set(client, team["ana"], conv.conversation_id, ["refund", "VIP"][: n % 3])
    _list(client, team["ana"])  # a token's use is written down at most hourly
    with count_queries() as q:
        page = _list(client, team["ana"])
    assert len(page["items"]) == 10
    assert sum(1 for c in page["items"] if c["labels"] == ["refund", "VIP"]) == 2
    assert sum(1 for s in q.statements if "conversation_labels" in s) == 1, q.statements
    assert q.count <= 5, q.statements


def test_too_many_label_filters_are_refused(client, team):
    query = "".join(f"&label=l{n}" for n in range(11))
    resp = client.get(f"/api/v1/conversations?{query}", headers=team["ana"])
    assert resp.status_code == 400


# --------------------------------------------------------------------------- bulk


def test_bulk_adds_and_removes_labels_on_many_conversations(client, team):
    for name in ("refund", "VIP", "bug"):
        _label(client, team["admin"], name)
    _set(client, team["ana"], team["first"], ["bug"])
    resp = client.post(
        "/api/v1/conversations/bulk",
        json={
            "ids": [team["first"], team["second"]],
            "action": "labels",
            "add_labels": ["refund", "vip"],
            "remove_labels": ["bug"],
        },
        headers=team["ana"],
    )
    assert resp.status_code == 200, resp.get_json()
    assert {c["id"]: c["labels"] for c in resp.get_json()["items"]} == {
        team["first"]: ["refund", "VIP"],
        team["second"]: ["refund", "VIP"],
    }
    again = _list(client, team["ana"], "&label=refund&label=VIP")
    assert {c["id"] for c in again["items"]} == {team["first"], team["second"]}

    # a conversation the agent cannot see stops the whole request, and so does an unknown label
    hidden = client.post(
        "/api/v1/conversations/bulk",
        json={"ids": [team["first"], team["elsewhere"]], "action": "labels", "add_labels": ["bug"]},
        headers=team["ana"],
    )
    assert hidden.status_code == 404
    unknown = client.post(
        "/api/v1/conversations/bulk",
        json={"ids": [team["first"]], "action": "labels", "remove_labels": ["nope"]},
        headers=team["ana"],
    )
    assert unknown.status_code == 422
    assert unknown.get_json()["error"]["code"] == "unknown_label"
    nothing = client.post(
        "/api/v1/conversations/bulk",
        json={"ids": [team["first"]], "action": "labels"},
        headers=team["ana"],
    )
    assert nothing.status_code == 422
    conv = client.get(f"/api/v1/conversations/{team['first']}", headers=team["ana"]).get_json()
    assert conv["labels"] == ["refund", "VIP"]


# --------------------------------------------------------------------------- live


def test_labelling_travels_live_to_those_who_can_see_the_conversation(
    app, client, make, team, captured_events
):
    _label(client, team["admin"], "refund")
    mate = make.user(name="Cy")
    from app.extensions import db
    from app.models import InboxMember

    db.session.add(InboxMember(inbox_id=team["inbox"].id, user_id=mate.id))
    db.session.commit()
    cy = socketio.test_client(app, auth={"token": make.token(mate)})
    bo = socketio.test_client(app, auth={"token": make.token(make.user())})
    assert cy.is_connected() and bo.is_connected()
    cy.get_received(), bo.get_received()
    captured_events.clear()

    _set(client, team["ana"], team["first"], ["refund"])

    updated = [e for e in captured_events if e.name == "conversation.updated"]
    assert len(updated) == 1
    assert updated[0].payload["labels"] == ["refund"]
    assert updated[0].audience == (("inbox", team["inbox"].id),)
    got = cy.get_received()
    live = [m["args"][0] for m in got if m["name"] == "conversation.updated"]
    assert live and live[-1]["id"] == team["first"] and live[-1]["labels"] == ["refund"]
    line = [m["args"][0] for m in got if m["name"] == "message.created"]
    assert line and line[-1]["body"] == "Ana Lima added label refund"
    assert not [m for m in bo.get_received() if m["name"] == "conversation.updated"]


def test_changes_to_the_list_reach_every_signed_in_user(app, client, make, team):
    agent = socketio.test_client(app, auth={"token": make.token(make.user())})
    agent.get_received()
    refund = _label(client, team["admin"], "refund")
    got = [m["args"][0] for m in agent.get_received() if m["name"] == "labels.updated"]
    assert got and got[-1]["change"]["action"] == "created"
    assert got[-1]["items"] == [refund]

    client.patch(f"/api/v1/labels/{refund['id']}", json={"name": "Refunds"}, headers=team["lead"])
    got = [m["args"][0] for m in agent.get_received() if m["name"] == "labels.updated"]
    assert got[-1]["change"] == {
        "action": "renamed",
        "label": {"id": refund["id"], "name": "Refunds", "color": refund["color"]},
        "previous_name": "refund",
    }
