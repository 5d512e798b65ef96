""" "Window closing soonest": open windows by time left, then human agent ones, then closed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.clock import now
from app.extensions import db
from app.models import Conversation


@pytest.fixture
def windows(make):
    """Conversations in every window state, made in a shuffled order."""
    plain = make.inbox("messenger")
    human = make.inbox("messenger", settings={"human_agent": True})
    sms = make.inbox("sms")
    t = now()

    def conv(inbox, contact, ago):
        msg = make.inbound(inbox, contact=contact, text="Hello", at=t - ago)
        return db.session.get(Conversation, msg.conversation_id).id

    made = {
        "closed_3_days_ago": conv(plain, "p1", timedelta(days=4)),
        "human_agent_5_days_left": conv(human, "h1", timedelta(days=2)),
        "no_window": conv(sms, "+14155550101", timedelta(minutes=5)),
        "closed_today": conv(plain, "p2", timedelta(hours=25)),
        "open_23h_left_with_human_agent_after": conv(human, "h2", timedelta(hours=1)),
        "open_18_min_left": conv(plain, "p3", timedelta(hours=23, minutes=42)),
        "open_20h_left": conv(plain, "p4", timedelta(hours=4)),
        "human_agent_1_day_left": conv(human, "h3", timedelta(days=6)),
    }
    db.session.commit()
    return made


EXPECTED = [
    "open_18_min_left",
    "open_20h_left",
    "open_23h_left_with_human_agent_after",
    "human_agent_1_day_left",
    "human_agent_5_days_left",
    "closed_today",
    "closed_3_days_ago",
    "no_window",
]


def _names(windows, ids):
    by_id = {v: k for k, v in windows.items()}
    return [by_id[i] for i in ids]


def test_open_windows_come_first_by_time_left_and_closed_ones_last(client, make, windows):
    h = make.headers(make.user("lead"))
    body = client.get("/api/v1/conversations?sort=window_expiring", headers=h).get_json()
    assert _names(windows, [i["id"] for i in body["items"]]) == EXPECTED
    states = [i["reply_window"]["state"] for i in body["items"]]
    assert states == ["open"] * 3 + ["human_agent"] * 2 + ["closed"] * 2 + ["none"]


def test_pages_of_the_window_sort_follow_the_same_order(client, make, windows):
    h = make.headers(make.user("lead"))
    seen, cursor = [], None
    for _ in range(10):
        url = "/api/v1/conversations?status=all&sort=window_expiring&limit=3"
        page = client.get(url + (f"&cursor={cursor}" if cursor else ""), headers=h).get_json()
        assert len(page["items"]) <= 3
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert _names(windows, seen) == EXPECTED


def test_a_window_moves_down_as_it_closes(client, make, windows, monkeypatch):
    """Nothing is written when a window closes: the next read places it by the clock."""
    import app.inbox.queries as queries

    later = now() + timedelta(minutes=30)  # the 18-minute window has closed
    monkeypatch.setattr(queries, "now", lambda: later)
    h = make.headers(make.user("lead"))
    body = client.get("/api/v1/conversations?sort=window_expiring", headers=h).get_json()
    names = _names(windows, [i["id"] for i in body["items"]])
    assert names.index("open_18_min_left") == names.index("closed_today") - 1
    assert names[:2] == ["open_20h_left", "open_23h_left_with_human_agent_after"]


def test_a_foreign_cursor_is_refused(client, make, windows):
    h = make.headers(make.user("lead"))
    other = client.get("/api/v1/conversations?sort=last_activity&limit=2", headers=h).get_json()
    resp = client.get(
        f"/api/v1/conversations?sort=window_expiring&cursor={other['next_cursor']}", headers=h
    )
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "bad_filter"
