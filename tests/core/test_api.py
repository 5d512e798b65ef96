"""The JSON API: list filters, counts, query budget, permissions, CSRF."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.clock import now
from app.extensions import db
from app.inbox import seed
from app.models import Conversation


def _conv(make, inbox, contact, **kw):
    msg = make.inbound(inbox, contact=contact, **kw)
    return db.session.get(Conversation, msg.conversation_id)


def test_list_filters_and_counts(client, make):
    lead = make.user("lead")
    agent = make.user()
    inbox = make.inbox(members=[agent])
    a = _conv(make, inbox, "a", text="Order late")
    b = _conv(make, inbox, "b", text="Refund please")
    c = _conv(make, inbox, "c", text="Closed already")
    a.assignee_id = agent.id
    c.status, c.closed_at = "closed", now()
    db.session.commit()
    h = make.headers(agent)

    body = client.get("/api/v1/conversations", headers=h).get_json()
    assert {i["id"] for i in body["items"]} == {a.id, b.id}
    assert body["counts"] == {
        "all": 2,
        "mine": 1,
        "unassigned": 1,
        "by_status": {"open": 2, "pending": 0, "snoozed": 0, "closed": 1},
    }

    mine = client.get("/api/v1/conversations?assignee=me", headers=h).get_json()
    assert [i["id"] for i in mine["items"]] == [a.id]
    # the three counts ignore the assignee filter; the tabs' counts follow it
    assert mine["counts"] == {
        **body["counts"],
        "by_status": {"open": 1, "pending": 0, "snoozed": 0, "closed": 0},
    }

    closed = client.get("/api/v1/conversations?status=closed", headers=h).get_json()
    assert [i["id"] for i in closed["items"]] == [c.id]
    assert closed["counts"] == {**body["counts"], "all": 1, "mine": 0, "unassigned": 1}

    found = client.get("/api/v1/conversations?status=all&q=refund", headers=h).get_json()
    assert [i["id"] for i in found["items"]] == [b.id]

    lead_view = client.get(f"/api/v1/conversations?assignee={agent.id}", headers=make.headers(lead))
    assert [i["id"] for i in lead_view.get_json()["items"]] == [a.id]


def test_search_matches_percent_and_underscore_literally(client, make):
    agent = make.user()
    inbox = make.inbox(members=[agent])
    fifty = _conv(make, inbox, "a", text="Is the 50% discount still on?")
    five_hundred = _conv(make, inbox, "b", text="I paid 500 for it")
    order = _conv(make, inbox, "c", text="Where is order_1234?")
    other = _conv(make, inbox, "d", text="Where is orderX1234?")
    h = make.headers(agent)

    def found(q):
        from urllib.parse import quote

        body = client.get(f"/api/v1/conversations?status=all&q={quote(q)}", headers=h).get_json()
        return {i["id"] for i in body["items"]}

    assert found("50%") == {fifty.id}
    assert found("order_12") == {order.id}
    assert found("ORDER") == {order.id, other.id}  # still any case, any position
    assert five_hundred.id in found("50")


def test_bad_filters_are_400(client, make):
    h = make.headers(make.user())
    for qs in ("status=weird", "sort=random", "assignee=nobody", "limit=x", "cursor=!!"):
        resp = client.get(f"/api/v1/conversations?{qs}", headers=h)
        assert resp.status_code == 400, qs
        assert resp.get_json()["error"]["code"] == "bad_filter"


@pytest.mark.parametrize("sort", ["last_activity", "waiting_longest", "window_expiring", "created"])
def test_cursor_pagination_visits_every_conversation_once(client, make, sort):
    lead = make.user("lead")
    seed.seed(db.session, 23, 2)
    h = make.headers(lead)
    seen, cursor = [], None
    while True:
        url = f"/api/v1/conversations?status=all&sort={sort}&limit=5" + (
            f"&cursor={cursor}" if cursor else ""
        )
        page = client.get(url, headers=h).get_json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 23


def test_waiting_longest_sorts_oldest_unanswered_first(client, make):
    lead = make.user("lead")
    inbox = make.inbox()
    t = now()
    newer = _conv(make, inbox, "n", at=t - timedelta(minutes=5))
    older = _conv(make, inbox, "o", at=t - timedelta(hours=5))
    resp = client.get("/api/v1/conversations?sort=waiting_longest", headers=make.headers(lead))
    assert [i["id"] for i in resp.get_json()["items"]] == [older.id, newer.id]


@pytest.mark.parametrize("page_size", [10, 100])
def test_list_makes_at_most_five_queries(client, make, count_queries, page_size):
    agent = make.user()
    seed.seed(db.session, 120, 2)
    from app.models import Inbox, InboxMember

    for inbox in db.session.scalars(sa.select(Inbox)):
        if db.session.get(InboxMember, {"inbox_id": inbox.id, "user_id": agent.id}) is None:
            db.session.add(InboxMember(inbox_id=inbox.id, user_id=agent.id))
    db.session.commit()
    h = make.headers(agent)
    client.get("/api/v1/me", headers=h)  # a token's use is written down at most hourly
    db.session.remove()
    with count_queries() as q:
        resp = client.get(f"/api/v1/conversations?status=all&limit={page_size}", headers=h)
    assert resp.status_code == 200
    assert len(resp.get_json()["items"]) == page_size
    # the user, the page, its contacts' identities, its conversations' labels, the counts
    assert q.count <= 5, q.statements


def test_agent_gets_404_for_another_inboxs_conversation(client, make):
    agent = make.user()
    mine = make.inbox(members=[agent])
    other = make.inbox()
    theirs = _conv(make, other, "x")
    _conv(make, mine, "y")
    h = make.headers(agent)
    assert client.get(f"/api/v1/conversations/{theirs.id}", headers=h).status_code == 404
    assert client.get(f"/api/v1/conversations/{theirs.id}/messages", headers=h).status_code == 404
    resp = client.post(
        f"/api/v1/conversations/{theirs.id}/messages", json={"body": "hi"}, headers=h
    )
    assert resp.status_code == 404
    listed = client.get("/api/v1/conversations?status=all", headers=h).get_json()
    assert theirs.id not in [i["id"] for i in listed["items"]]
    # a lead sees everything
    lead = make.user("lead")
    assert (
        client.get(f"/api/v1/conversations/{theirs.id}", headers=make.headers(lead)).status_code
        == 200
    )


def test_agents_assign_only_to_themselves_where_the_inbox_restricts_it(
    client, make, captured_events
):
    agent = make.user(name="Ana")
    colleague = make.user(name="Bo")
    lead = make.user("lead", name="Lea")
    inbox = make.inbox(members=[agent, colleague], settings={"agents_assign_others": False})
    conv = _conv(make, inbox, "z")
    url = f"/api/v1/conversations/{conv.id}/assign"
    assert (
        client.post(
            url, json={"assignee_id": colleague.id}, headers=make.headers(agent)
        ).status_code
        == 403
    )
    resp = client.post(url, json={"assignee_id": agent.id}, headers=make.headers(agent))
    assert resp.status_code == 200 and resp.get_json()["assignee"] == {
        "id": agent.id,
        "name": "Ana",
    }
    resp = client.post(url, json={"assignee_id": colleague.id}, headers=make.headers(lead))
    assert resp.get_json()["assignee"]["id"] == colleague.id
    notes = client.get("/api/v1/notifications?unread=1", headers=make.headers(colleague)).get_json()
    # (the new conversation reached the inbox's members first)
    assert [n["kind"] for n in notes["items"]] == ["assigned", "new_conversation"]
    outsider = make.user("agent")
    resp = client.post(url, json={"assignee_id": outsider.id}, headers=make.headers(lead))
    assert resp.status_code == 422
    assert any(
        e.name == "notification.created" and e.audience == (("user", colleague.id),)
        for e in captured_events
    )


def test_status_and_snooze(client, make):
    agent = make.user()
    inbox = make.inbox(members=[agent])
    conv = _conv(make, inbox, "s")
    h = make.headers(agent)
    url = f"/api/v1/conversations/{conv.id}/status"
    assert client.post(url, json={"status": "snoozed"}, headers=h).status_code == 422
    until = (now() + timedelta(hours=3)).isoformat()
    body = client.post(url, json={"status": "snoozed", "snooze_until": until}, headers=h).get_json()
    assert body["status"] == "snoozed" and body["snooze_until"]
    body = client.post(url, json={"status": "closed"}, headers=h).get_json()
    assert body["status"] == "closed" and body["closed_at"]
    # the customer writes again: reopened
    make.inbound(inbox, contact="s", text="still there?")
    assert client.get(f"/api/v1/conversations/{conv.id}", headers=h).get_json()["status"] == "open"


def test_session_writes_need_csrf_token(app, make):
    agent = make.user(email="ana@example.com", password="correct horse battery")
    inbox = make.inbox(members=[agent])
    conv = _conv(make, inbox, "c")
    client = app.test_client()
    page = client.get("/login")
    import re

    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    resp = client.post(
        "/login",
        data={"email": "ana@example.com", "password": "correct horse battery", "csrf_token": token},
    )
    assert resp.status_code == 302
    url = f"/api/v1/conversations/{conv.id}/messages"
    resp = client.post(url, json={"body": "note", "private": True})
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "csrf_failed"
    resp = client.post(url, json={"body": "note", "private": True}, headers={"X-CSRFToken": token})
    assert resp.status_code == 201


def test_login_is_rate_limited(app, make):
    make.user(email="ana@example.com")
    client = app.test_client()
    import re

    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    codes = [
        client.post(
            "/login", data={"email": "ana@example.com", "password": "wrong", "csrf_token": token}
        ).status_code
        for _ in range(12)
    ]
    assert codes[0] == 401 and 429 in codes


def test_inbox_api_never_shows_secrets(client, make):
    lead = make.user("lead")
    make.inbox("messenger", page_token="EAAB-secret", app_secret="shh", verify_token="vt")
    make.inbox("sms", auth_token="twilio-secret")
    raw = client.get("/api/v1/inboxes", headers=make.headers(lead)).get_data(as_text=True)
    for secret in ("EAAB-secret", "shh", "twilio-secret", '"vt"'):
        assert secret not in raw


def test_inbox_settings_patch(client, make):
    lead, agent = make.user("lead"), make.user()
    inbox = make.inbox(members=[agent])
    url = f"/api/v1/inboxes/{inbox.id}"
    assert (
        client.patch(url, json={"reopen_days": 3}, headers=make.headers(agent)).status_code == 403
    )
    resp = client.patch(
        url,
        json={
            "assignment": "round_robin",
            "response_due_hours": 4,
            "quiet_hours": {"start": "22:00", "end": "07:30"},
            "human_agent": True,
        },
        headers=make.headers(lead),
    )
    assert resp.status_code == 200, resp.get_json()
    settings = resp.get_json()["settings"]
    assert settings["assignment"] == "round_robin" and settings["quiet_hours"]["start"] == "22:00"
    bad = client.patch(url, json={"assignment": "lottery"}, headers=make.headers(lead))
    assert bad.status_code == 422


def test_healthz_needs_no_auth(client):
    assert client.get("/healthz").get_json()["database"] == "ok"


def test_every_inbox_setting_has_one_default(client, make):
    """``Inbox.setting`` and the API's ``settings`` read the same table of defaults."""
    from app.models import DEFAULT_SETTINGS

    lead = make.user("lead")
    inbox = make.inbox(members=[lead])
    assert inbox.setting("follow_up_hours") == 24  # an automation key, once missing here
    assert inbox.setting("reopen_days") == 7
    [listed] = client.get("/api/v1/inboxes", headers=make.headers(lead)).get_json()["items"]
    assert listed["settings"] == DEFAULT_SETTINGS
