"""The list's search: any field an agent knows a customer by, and fast on PostgreSQL."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Conversation
from app.models.schema import TRIGRAM_INDEXES


def _conv(make, inbox, contact, **kw) -> Conversation:
    return db.session.get(Conversation, make.inbound(inbox, contact=contact, **kw).conversation_id)


@pytest.fixture
def seeded(make):
    agent = make.user()
    inbox = make.inbox(members=[agent])
    convs = {
        "name": _conv(make, inbox, "psid-1", contact_name="Beatriz Nakamura", text="Hi"),
        "identity": _conv(make, inbox, "+15550123987", text="Hello"),
        "subject": _conv(make, inbox, "psid-3", text="See title"),
        "body": _conv(make, inbox, "psid-4", text="My parcel arrived crushed"),
    }
    convs["subject"].subject = "Invoice INV-7781 wrong"  # as an email's subject
    db.session.commit()
    return agent, convs


def _search(client, make, user, text: str) -> dict:
    url = f"/api/v1/conversations?status=all&q={quote(text)}"
    return client.get(url, headers=make.headers(user)).get_json()


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("name", "nakamura"),
        ("name", "BEATRIZ NAK"),
        ("identity", "0123987"),
        ("subject", "inv-7781"),
        ("body", "Parcel Arrived"),
        ("body", "my"),  # shorter than a trigram
    ],
)
def test_search_finds_a_conversation_by_any_field_in_any_case(client, make, seeded, field, text):
    agent, convs = seeded
    found = _search(client, make, agent, text)
    assert [i["id"] for i in found["items"]] == [convs[field].id]
    assert found["counts"]["all"] == 1


def test_search_with_no_match_is_empty_with_zero_counts(client, make, seeded):
    agent, _ = seeded
    found = _search(client, make, agent, "no such words")
    assert found["items"] == []
    assert found["counts"] == {
        "all": 0,
        "mine": 0,
        "unassigned": 0,
        "by_status": {"open": 0, "pending": 0, "snoozed": 0, "closed": 0},
        "capped": False,
    }


def test_search_stays_within_the_agents_inboxes(client, make, seeded):
    _, convs = seeded
    outsider = make.user()  # member of no inbox
    assert _search(client, make, outsider, "nakamura")["items"] == []


def test_postgresql_search_reads_the_trigram_indexes(client, make, seeded, app):
    """Names, addresses and subjects are looked up in their trigram indexes, not read whole."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("trigram indexes are PostgreSQL's (migration 0007)")
    agent, _ = seeded
    statements: dict = {"people": []}

    def keep(_conn, _cursor, statement, parameters, _context, _many):
        if "count(" in statement:
            return
        if "LIKE" in statement.upper():
            statements["people"].append((statement, parameters))
        elif "@@" in statement and "max(" not in statement:
            statements["messages"] = (statement, parameters)

    sa.event.listen(db.engine, "before_cursor_execute", keep)
    try:
        assert len(_search(client, make, agent, "nakamura")["items"]) == 1
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", keep)

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    def indexes(statement, parameters) -> set:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SET enable_seqscan = off")  # a tiny table would be read whole
            plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar()
        plan = plan if isinstance(plan, list) else json.loads(plan)
        return {n.get("Index Name") for n in nodes(plan[0]["Plan"])}

    used = set().union(*(indexes(*st) for st in statements["people"]))
    assert used >= TRIGRAM_INDEXES, f"plan reads {used}"
    assert "ix_messages_search" in indexes(*statements["messages"])


def test_search_pages_and_counts_many_matches(client, make):
    agent = make.user()
    inbox = make.inbox(members=[agent])
    matching = [_conv(make, inbox, f"psid-m{i}", text=f"Refund for order {i}") for i in range(5)]
    _conv(make, inbox, "psid-other", text="Thanks!")
    matching[1].assignee_id = agent.id
    db.session.commit()
    h = make.headers(agent)
    seen, cursor = [], None
    while True:
        url = "/api/v1/conversations?status=all&q=refund&limit=2" + (
            f"&cursor={cursor}" if cursor else ""
        )
        page = client.get(url, headers=h).get_json()
        assert {k: page["counts"][k] for k in ("all", "mine", "unassigned")} == {
            "all": 5,
            "mine": 1,
            "unassigned": 4,
        }
        assert sum(page["counts"]["by_status"].values()) == 5
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [c.id for c in reversed(matching)]  # newest activity first, each once
    mine = client.get("/api/v1/conversations?status=all&q=refund&assignee=me", headers=h)
    assert [i["id"] for i in mine.get_json()["items"]] == [matching[1].id]
