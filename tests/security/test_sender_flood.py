"""Finding D: no per-sender cap (200 mails from one address opened 200 conversations in 4 s).

One sender's new-thread mail beyond the inbox's ``sender_new_conversations`` (5) within
``sender_window_minutes`` (10) joins their latest open conversation, posted one by one
to the inbound URL or arriving in one batch (an IMAP poll); the away message answers one
of the sender's conversations per ``auto_reply_interval_minutes`` (60), not each of them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from app.inbox.email_ingest import ingest_raw
from tests.security.mail import OURS, conversations, messages, post, raw_mail

FLOOD = 40
CAP = 5  # the default of sender_new_conversations
ALWAYS_CLOSED = {"timezone": "UTC", "days": {}, "holidays": []}
AWAY = "We are closed; we answer in the morning."
GREETING = "Thanks for writing to us."


@pytest.fixture
def agent(make):
    return make.user("agent", name="Ana Agent")


@pytest.fixture
def auth(make, agent):
    return make.headers(agent)


@pytest.fixture
def clock():
    with time_machine.travel(datetime(2026, 3, 2, 22, 0, tzinfo=UTC), tick=False) as traveller:
        yield traveller


def flood(n: int = FLOOD, frm: str = "Bot <bot@attacker.example>") -> list[bytes]:
    """``n`` mails that each claim to start a new thread (new subject, no headers)."""
    return [raw_mail(frm, f"Urgent matter {i}", f"Message number {i}") for i in range(n)]


def by_sender(convs: list[dict], address: str) -> list[dict]:
    return [c for c in convs if c["contact"]["identities"][0]["external_id"] == address.lower()]


def automatic(client, auth, convs: list[dict]) -> dict[int, list[str]]:
    """Automatic messages sent, per conversation that got any."""
    out = {}
    for conv in convs:
        bodies = [
            m["body"]
            for m in messages(client, auth, conv["id"])
            if m["direction"] == "outbound" and m["automated"]
        ]
        if bodies:
            out[conv["id"]] = bodies
    return out


def test_one_by_one_flood_is_threaded_and_answered_once(client, make, agent, auth, clock):
    inbox = make.inbox(
        "email",
        members=[agent],
        address=OURS,
        settings={"away_message": AWAY, "business_hours": ALWAYS_CLOSED},
    )
    post(client, inbox.inbound_token, raw_mail("Anna <anna@example.com>", "Order late"))
    for raw in flood():
        assert post(client, inbox.inbound_token, raw).status_code == 200
    post(client, inbox.inbound_token, raw_mail("Anna <anna@example.com>", "Invoice missing"))

    convs = conversations(client, auth)
    bot = by_sender(convs, "bot@attacker.example")
    assert len(bot) == CAP
    assert sum(len(messages(client, auth, c["id"])) for c in bot) >= FLOOD  # nothing lost
    latest = max(bot, key=lambda c: c["id"])
    kept = [m for m in messages(client, auth, latest["id"]) if m["direction"] == "inbound"]
    assert len(kept) == FLOOD - CAP + 1
    assert all(m["meta"].get("sender_limit") for m in kept[1:])
    assert kept[-1]["meta"]["subject"] == f"Urgent matter {FLOOD - 1}"
    assert len(by_sender(convs, "anna@example.com")) == 2  # other senders are not affected

    answered = automatic(client, auth, bot)
    assert list(answered.values()) == [[AWAY]]

    # the cap is a rate, not a ban: an hour later the sender is answered again
    clock.shift(timedelta(minutes=61))
    post(client, inbox.inbound_token, raw_mail("Bot <bot@attacker.example>", "Still waiting"))
    bot = by_sender(conversations(client, auth), "bot@attacker.example")
    assert len(bot) == CAP + 1
    assert sum(len(v) for v in automatic(client, auth, bot).values()) == 2


def test_a_flood_in_one_batch_is_threaded_and_answered_once(
    app, session, client, make, agent, auth, clock
):
    inbox = make.inbox(
        "email",
        members=[agent],
        address=OURS,
        settings={"greeting": GREETING, "away_message": AWAY, "business_hours": ALWAYS_CLOSED},
    )
    result = ingest_raw(session, inbox, flood())  # one IMAP poll brings them all
    assert len(result.created) == FLOOD
    bot = by_sender(conversations(client, auth), "bot@attacker.example")
    assert len(bot) == CAP
    answered = automatic(client, auth, bot)
    assert len(answered) == 1  # the first conversation: its greeting and away message
    assert sorted(next(iter(answered.values()))) == sorted([GREETING, AWAY])


def test_the_cap_is_an_inbox_setting(client, make, agent, auth, clock):
    inbox = make.inbox("email", members=[agent], address=OURS)
    resp = client.patch(
        f"/api/v1/inboxes/{inbox.id}",
        json={"sender_new_conversations": 2, "sender_window_minutes": 30},
        headers=make.headers(make.user("lead")),
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["settings"]["auto_reply_interval_minutes"] == 60
    for raw in flood(6):
        post(client, inbox.inbound_token, raw)
    assert len(conversations(client, auth)) == 2
    clock.shift(timedelta(minutes=31))
    post(client, inbox.inbound_token, flood(1)[0])
    assert len(conversations(client, auth)) == 3


def test_without_the_cap_the_away_message_still_answers_once(client, make, agent, auth, clock):
    inbox = make.inbox(
        "email",
        members=[agent],
        address=OURS,
        settings={
            "away_message": AWAY,
            "business_hours": ALWAYS_CLOSED,
            "sender_new_conversations": 0,  # no threading cap: every mail its own conversation
        },
    )
    for raw in flood(12):
        post(client, inbox.inbound_token, raw)
    bot = conversations(client, auth)
    assert len(bot) == 12
    assert list(automatic(client, auth, bot).values()) == [[AWAY]]
