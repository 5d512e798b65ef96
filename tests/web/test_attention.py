"""What gets an agent's attention: new-conversation notifications, the status tabs' counts,
automated mail marked and hidden, and the unread count of the tab's title."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from app.extensions import db
from app.models import Conversation
from tests.automation.helpers import online

_ids = itertools.count(1)
OURS = "support@shop.example"


def _mail(frm: str, subject: str, body: str, *headers: str, reply_to_id: str | None = None):
    mid = f"<att{next(_ids)}@mail.example.com>"
    lines = [
        f"From: {frm}",
        f"To: {OURS}",
        f"Subject: {subject}",
        f"Date: {format_datetime(datetime.now(UTC) - timedelta(minutes=1))}",
        f"Message-ID: {mid}",
        *([f"In-Reply-To: {reply_to_id}", f"References: {reply_to_id}"] if reply_to_id else []),
        *headers,
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        body,
    ]
    return ("\r\n".join(lines) + "\r\n").encode(), mid


def _post(client, inbox, raw: bytes):
    resp = client.post(
        f"/webhooks/email/inbound/{inbox.inbound_token}", data=raw, content_type="message/rfc822"
    )
    assert resp.status_code < 300, resp.get_data(as_text=True)


def _kinds(client, make, user) -> list[tuple[str, int | None]]:
    items = client.get("/api/v1/notifications", headers=make.headers(user)).get_json()["items"]
    return [(n["kind"], n["conversation_id"]) for n in items]


def _list(client, make, user, query: str = "") -> dict:
    resp = client.get(f"/api/v1/conversations?{query}", headers=make.headers(user))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


# --------------------------------------------------------------------------- new conversations


def test_a_new_unassigned_conversation_tells_the_inbox_members_in_the_bell_and_desktop(
    client, make, captured_events
):
    ana, bo, outsider = make.user(name="Ana"), make.user(name="Bo"), make.user(name="Cy")
    inbox = make.inbox("messenger", members=[ana, bo])
    make.user("lead", name="Lee")  # a lead outside the inbox's members hears nothing
    conv_id = make.inbound(inbox, contact="5501", text="Is the shop open today?").conversation_id

    for user in (ana, bo):
        assert _kinds(client, make, user) == [("new_conversation", conv_id)]
    assert _kinds(client, make, outsider) == []
    live = [e for e in captured_events if e.name == "notification.created"]
    assert sorted(e.audience for e in live) == sorted([(("user", ana.id),), (("user", bo.id),)])
    assert all(e.payload["desktop"] is True for e in live)  # on the desktop by default
    assert live[0].payload["data"]["text"].startswith("New conversation with")

    # the customer writes again: the conversation is not new any more
    make.inbound(inbox, contact="5501", text="Hello?")
    assert _kinds(client, make, ana) == [("new_conversation", conv_id)]

    # an agent who switched the kind off is not told (nor mailed: mail is off by default)
    client.patch(
        "/api/v1/me/notification-settings",
        headers=make.headers(bo),
        json={"kinds": {"new_conversation": {"in_app": False}}},
    )
    other = make.inbound(inbox, contact="5502", text="Hi").conversation_id
    assert _kinds(client, make, bo) == [("new_conversation", conv_id)]
    assert _kinds(client, make, ana)[0] == ("new_conversation", other)


def test_a_large_team_is_told_of_a_new_conversation_without_one_query_each(
    client, make, captured_events, count_queries
):
    """Forty members each get the bell entry and its live event, stored in one statement."""
    team = [make.user(name=f"Agent {n:02d}") for n in range(40)]
    inbox = make.inbox("messenger", members=team)
    with count_queries() as many:
        conv_id = make.inbound(inbox, contact="5703", text="Anyone there?").conversation_id
    for user in (team[0], team[-1]):
        assert ("new_conversation", conv_id) in _kinds(client, make, user)
    told = [e for e in captured_events if e.name == "notification.created"]
    assert len({e.audience for e in told if e.payload["conversation_id"] == conv_id}) == 40
    stored = [
        s for s in many.statements if s.lstrip().upper().startswith("INSERT INTO NOTIFICATIONS")
    ]
    assert len(stored) == 1, stored


def test_an_assigned_new_conversation_tells_only_its_assignee(client, make, session):
    ana, bo = make.user(name="Ana"), make.user(name="Bo")
    inbox = make.inbox("messenger", members=[ana, bo], settings={"assignment": "round_robin"})
    online(session, ana)  # only Ana is eligible
    conv_id = make.inbound(inbox, contact="5601", text="Refund please").conversation_id
    assert db.session.get(Conversation, conv_id).assignee_id == ana.id
    assert _kinds(client, make, ana) == [("assigned", conv_id)]
    assert _kinds(client, make, bo) == []


def test_an_inbox_without_members_tells_the_leads(client, make):
    lead = make.user("lead", name="Lee")
    inbox = make.inbox("messenger")
    conv_id = make.inbound(inbox, contact="5701", text="Anyone there?").conversation_id
    assert _kinds(client, make, lead) == [("new_conversation", conv_id)]


# --------------------------------------------------------------------------- automated mail


def test_automated_mail_is_marked_hidden_on_request_and_tells_nobody(client, make):
    ana = make.user(name="Ana")
    inbox = make.inbox("email", members=[ana], address=OURS)
    raw, _ = _mail("News <news@brand.example>", "Our spring sale", "50% off", "List-Id: <n.brand>")
    _post(client, inbox, raw)
    raw, otto_mid = _mail(
        "Otto <otto@example.com>", "Away", "Back Monday", "Auto-Submitted: auto-replied"
    )
    _post(client, inbox, raw)
    raw, gail_mid = _mail("Gail <gail@example.com>", "Order 1042", "Where is my parcel?")
    _post(client, inbox, raw)

    shown = _list(client, make, ana)
    marks = {c["contact"]["name"]: c["automated"] for c in shown["items"]}
    assert marks == {"News": True, "Otto": True, "Gail": False}
    assert shown["counts"]["all"] == 3 and shown["counts"]["by_status"]["open"] == 3
    # only the person's conversation made a bell entry
    gail = next(c for c in shown["items"] if c["contact"]["name"] == "Gail")
    assert _kinds(client, make, ana) == [("new_conversation", gail["id"])]
    # the thread marks the machine's message
    news = next(c for c in shown["items"] if c["contact"]["name"] == "News")
    msgs = client.get(
        f"/api/v1/conversations/{news['id']}/messages", headers=make.headers(ana)
    ).get_json()["items"]
    assert [m["automated"] for m in msgs if m["direction"] == "inbound"] == [True]

    hidden = _list(client, make, ana, "automated=hide")
    assert [c["contact"]["name"] for c in hidden["items"]] == ["Gail"]
    assert hidden["counts"]["all"] == 1 and hidden["counts"]["unassigned"] == 1
    assert hidden["counts"]["by_status"] == {"open": 1, "pending": 0, "snoozed": 0, "closed": 0}
    assert _list(client, make, ana, "automated=HIDE&status=all")["counts"]["all"] == 1
    bad = client.get("/api/v1/conversations?automated=maybe", headers=make.headers(ana))
    assert bad.status_code == 400

    # Otto himself writes in his thread: it is a person's conversation now
    raw, _ = _mail(
        "Otto <otto@example.com>", "Re: Away", "Sorry, I do need help", reply_to_id=otto_mid
    )
    _post(client, inbox, raw)
    after = {c["contact"]["name"]: c["automated"] for c in _list(client, make, ana)["items"]}
    assert after == {"News": True, "Otto": False, "Gail": False}
    # a person's message does not turn back into a machine's because an auto-reply follows
    raw, _ = _mail(
        "Gail <gail@example.com>",
        "Re: Order 1042",
        "I am away",
        "X-Autoreply: yes",
        reply_to_id=gail_mid,
    )
    _post(client, inbox, raw)
    assert db.session.get(Conversation, gail["id"]).automated is False


# --------------------------------------------------------------------------- the tabs' counts


def test_status_tabs_count_each_status_for_the_same_filter(client, make, session):
    ana, bo, lead = make.user(name="Ana"), make.user(name="Bo"), make.user("lead")
    sales = make.inbox("messenger", name="Sales", members=[ana, bo])
    support = make.inbox("sms", name="Support", members=[ana])
    hidden = make.inbox("messenger", name="Other")  # Ana is not a member
    convs = [
        db.session.get(Conversation, make.inbound(box, contact=c, text=t).conversation_id)
        for box, c, t in [
            (sales, "1", "refund for order"),
            (sales, "2", "where is it"),
            (sales, "3", "refund again"),
            (sales, "4", "thanks"),
            (support, "+15550001111", "refund?"),
            (hidden, "9", "refund"),
        ]
    ]
    convs[1].status = "pending"
    convs[2].status, convs[2].snooze_until = "snoozed", datetime.now(UTC) + timedelta(days=1)
    convs[3].status, convs[3].closed_at = "closed", datetime.now(UTC)
    convs[0].assignee_id = ana.id
    convs[3].assignee_id = ana.id
    convs[4].assignee_id = bo.id
    session.commit()

    def tabs(user, query=""):
        return _list(client, make, user, query)["counts"]["by_status"]

    assert tabs(ana) == {"open": 2, "pending": 1, "snoozed": 1, "closed": 1}
    assert tabs(ana, "status=closed") == tabs(ana)  # the status filter is what they split
    assert tabs(ana, "assignee=me") == {"open": 1, "pending": 0, "snoozed": 0, "closed": 1}
    assert tabs(ana, "assignee=unassigned") == {"open": 0, "pending": 1, "snoozed": 1, "closed": 0}
    assert tabs(ana, f"assignee={bo.id}") == {"open": 1, "pending": 0, "snoozed": 0, "closed": 0}
    assert tabs(ana, f"inbox={sales.id}") == {"open": 1, "pending": 1, "snoozed": 1, "closed": 1}
    assert tabs(ana, "channel=sms") == {"open": 1, "pending": 0, "snoozed": 0, "closed": 0}
    assert tabs(lead) == {"open": 3, "pending": 1, "snoozed": 1, "closed": 1}
    # live counts (search, derived tabs) split the same way
    assert tabs(ana, "q=refund") == {"open": 2, "pending": 0, "snoozed": 1, "closed": 0}
    assert tabs(ana, "q=refund&status=all&assignee=me") == {
        "open": 1,
        "pending": 0,
        "snoozed": 0,
        "closed": 0,
    }
    inactive = _list(client, make, ana, "status=inactive")["counts"]
    assert inactive["all"] == 0 and inactive["by_status"] == tabs(ana)
    # the three counts are still the current tab's
    assert _list(client, make, ana, "status=pending")["counts"] | {"by_status": None} == {
        "all": 1,
        "mine": 0,
        "unassigned": 1,
        "by_status": None,
    }


def test_the_list_and_its_counts_stay_within_a_fixed_number_of_queries(client, make, app):
    """The tabs' counts come with the three counts: no query per status."""
    import sqlalchemy as sa

    ana = make.user()
    inbox = make.inbox("messenger", members=[ana])
    for n in range(6):
        make.inbound(inbox, contact=f"q{n}", text="hello")
    headers = make.headers(ana)
    client.get("/api/v1/conversations", headers=headers)  # warm the caches
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        client.get("/api/v1/conversations", headers=headers)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    counting = [s for s in seen if "conversation_counts" in s]
    assert len(counting) == 1 and "GROUP BY" in counting[0]


# --------------------------------------------------------------------------- unread


def test_unread_counts_my_and_unassigned_conversations_i_may_see(client, make, session):
    ana, bo = make.user(name="Ana"), make.user(name="Bo")
    inbox = make.inbox("messenger", members=[ana, bo])
    other = make.inbox("messenger")  # not Ana's
    mine = make.inbound(inbox, contact="1", text="a").conversation_id
    make.inbound(inbox, contact="2", text="b")  # unassigned
    theirs = make.inbound(inbox, contact="3", text="c").conversation_id
    make.inbound(other, contact="4", text="d")
    done = make.inbound(inbox, contact="5", text="e").conversation_id
    db.session.get(Conversation, mine).assignee_id = ana.id
    db.session.get(Conversation, theirs).assignee_id = bo.id
    closed = db.session.get(Conversation, done)
    closed.status, closed.closed_at = "closed", datetime.now(UTC)
    session.commit()

    def unread():
        return client.get("/api/v1/me/unread", headers=make.headers(ana)).get_json()

    assert unread() == {"conversations": 2}
    client.post(f"/api/v1/conversations/{mine}/read", headers=make.headers(ana))
    assert unread() == {"conversations": 1}
