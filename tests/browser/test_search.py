"""Searching the whole history in Chromium: the tabs say where the matches are, the row
shows the message that matched, and opening it brings that message into view."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.clock import now
from app.extensions import db
from app.models import Conversation

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
        lambda d: page.js(
            "const r = arguments[0].getBoundingClientRect();"
            "const log = document.getElementById('thread-log').getBoundingClientRect();"
            "return r.top >= log.top && r.bottom <= log.bottom;",
            target,
        ),
        message="the matching message is scrolled into view",
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
