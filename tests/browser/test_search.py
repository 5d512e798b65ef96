"""Searching the whole history in Chromium: the tabs say where the matches are, the row
shows the message that matched, and opening it brings that message into view."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.clock import now
from app.extensions import db
from app.models import Conversation
from tests.browser.conftest import quiet_hours_thread

pytestmark = pytest.mark.browser


def test_a_word_from_an_old_message_of_a_closed_conversation_is_found_and_shown(page, make):
    agent = make.user("agent", name="Lucas Martin")
    inbox = make.inbox("messenger", members=[agent])
    start = now() - timedelta(hours=3)
    found = make.inbound(
        inbox,
        "psid-1",
        contact_name="Noël Duarte",
        text="Olá, a caixa chegou <b>aberta</b>",
        at=start,
    )
    for i in range(60):  # the match is older than the thread's first page
        make.inbound(inbox, "psid-1", text=f"more details {i}", at=start + timedelta(minutes=i + 1))
    db.session.get(Conversation, found.conversation_id).status = "closed"
    db.session.commit()
    make.inbound(inbox, "psid-2", contact_name="Ana Lima", text="Where is my order?")

    page.login(agent.email)
    page.wait(lambda d: len(page.all(".conv-row")) == 1)
    page.css("#search").send_keys("CAIXA")
    # the tabs count the matches: none open (Ana's conversation has no "caixa"), one closed
    page.wait(lambda d: page.attr('[data-status-count="open"]', "aria-label") is not None)
    assert page.text('[data-status-count="open"]') == "0"
    assert page.text('[data-status-count="closed"]') == "1"

    page.status_tab("closed")
    page.wait(lambda d: "Noël Duarte" in (page.text(".conv-row") or ""), message="found in Closed")
    assert page.text(".conv-row mark") == "caixa"
    assert "<b>aberta</b>" in page.text(".match-snippet")  # shown as text, never as markup
    page.screenshot("search-closed-tab-hit")

    page.click(".conv-row")
    target = page.wait_css(f"#m{found.id}.found")
    page.wait(
        lambda d: page.in_thread_view(target), message="the matching message is scrolled into view"
    )
    page.screenshot("search-opened-at-message")
    # read now: the hit stays listed, with the message it was found by
    page.wait(lambda d: not page.all(".conv-row.unread"), message="marked read")
    assert page.text(".conv-row mark") == "caixa"

    page.css("#search").clear()
    page.css("#search").send_keys("noel")  # the name, without its accent
    page.wait(
        lambda d: "Noël Duarte" in (page.text(".conv-row") or "") and not page.all(".match-snippet")
    )
    assert page.console_errors() == []


def test_a_hit_in_the_newest_message_stays_in_view_above_the_composers_notice(page, make):
    """The composer and its quiet-hours notice are drawn after the thread: the matching message
    (the newest, at the bottom of the thread) must not end up under them."""
    agent, newest = quiet_hours_thread(make, "And the parcel number is 8841")

    page.login(agent.email)
    page.css("#search").send_keys("8841")
    page.wait(lambda d: page.all(".conv-row mark"), message="found")
    page.click(".conv-row")
    target = page.wait_css(f"#m{newest.id}.found")
    page.wait_css(".composer-banner.amber")  # the quiet-hours notice took its room
    page.wait(lambda d: page.in_thread_view(target), message="the hit is in view")
    assert page.console_errors() == []
