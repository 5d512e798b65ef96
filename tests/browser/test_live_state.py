"""The open conversation stays true to live events: no view of it waits for a reload."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from selenium.webdriver.common.keys import Keys

from app.clock import now
from tests.browser.conftest import post_messenger

pytestmark = pytest.mark.browser


def _left(text: str) -> str:
    """The time left as a chip or banner writes it ("23 hr 59 min", "23h 59m"...)."""
    m = re.search(r"((?:\d+\D{1,6}\s*){1,2})left", text)
    assert m, text
    return m.group(1).strip()


def test_composer_unlocks_the_moment_the_customer_writes_again(page, make, fake_graph):
    agent = make.user("agent", name="Lucas Martin")
    inbox = make.inbox("messenger", members=[agent])
    make.inbound(
        inbox,
        contact="psid-late",
        text="Do you ship to Lisbon?",
        at=now() - timedelta(hours=25),
    )
    page.login(agent.email)
    page.js("window.__sameDocument = true")
    page.click(".conv-row", "ship to Lisbon")
    page.wait_text("#thread-log .msg.in", "ship to Lisbon")

    # the 24-hour window has closed: the chip says so and the composer is locked
    page.wait(lambda d: "Window closed" in page.text("#thread-head .thread-sub"))
    page.wait(lambda d: page.js("return document.getElementById('composer-text').disabled"))
    assert "Replying is locked" in page.text(".locked-box")
    assert page.js("return document.querySelector('.send-btn').disabled") is True
    page.screenshot("live-state-window-closed")

    # the customer writes again: a new window opens, and every view shows it at once
    post_messenger(page.url, inbox, "psid-late", "Hello? Still there?", "m_late_2")
    page.wait_text("#thread-log .msg.in", "Still there?")
    started = time.monotonic()
    page.wait(
        lambda d: not page.js("return document.getElementById('composer-text').disabled"),
        timeout=1,
        message="the composer stayed locked after the customer wrote",
    )
    assert time.monotonic() - started <= 1
    assert page.js("return document.querySelector('.locked-box').hidden") is True
    assert page.js("return document.querySelector('.send-btn').disabled") is False
    assert "Window closed" not in page.text("#thread-head .thread-sub")
    assert page.js("return window.__sameDocument") is True, "the page reloaded"

    # the header chip, the list chip and the composer banner tell the same time left
    chip = page.text('#thread-head [data-timer="window"]')
    banner = page.text(".composer-banner")
    row_chip = page.text('.conv-item [data-timer="window"]')
    assert "Messenger 24-hour window" in banner
    assert _left(chip) == _left(banner) == _left(row_chip), (chip, banner, row_chip)
    assert _left(chip).startswith("23")

    # and the agent can answer without reloading
    box = page.css("#composer-text")
    box.send_keys("Yes, we ship to Lisbon in 3 days.")
    box.send_keys(Keys.CONTROL, Keys.ENTER)
    page.wait_text("#thread-log .msg.out", "we ship to Lisbon")
    page.wait(lambda d: page.attr("#thread-log .msg.out", "data-status") in ("queued", "sent"))
    # replying took the conversation: the header follows the same live copy
    page.wait_text("#thread-log .activity", "Lucas Martin took this conversation")
    page.wait(lambda d: "You" in page.text(".assign-btn"), timeout=2)
    page.screenshot("live-state-window-reopened")
    assert page.console_errors() == []


def _rows(page) -> list[str]:
    return page.texts(".conv-row .snippet")


def test_window_sort_puts_closed_windows_last_and_follows_live_messages(page, make, fake_graph):
    agent = make.user("agent", name="Lucas Martin")
    inbox = make.inbox("messenger", members=[agent])
    t = now()
    make.inbound(inbox, contact="psid-closed", text="closed today", at=t - timedelta(hours=25))
    make.inbound(
        inbox, contact="psid-soon", text="18 minutes left", at=t - timedelta(hours=23, minutes=42)
    )
    make.inbound(inbox, contact="psid-later", text="20 hours left", at=t - timedelta(hours=4))
    page.login(agent.email)
    page.js(
        "const s = document.getElementById('sort'); s.value = 'window_expiring';"
        "s.dispatchEvent(new Event('change'))"
    )
    order = ["18 minutes left", "20 hours left", "closed today"]
    page.wait(lambda d: _rows(page) == order, message=f"list is {_rows(page)}")
    page.screenshot("window-sort")

    # the customer with 18 minutes left writes again: a fresh 24 hours puts them below 20 hours
    post_messenger(page.url, inbox, "psid-soon", "still there", "m_soon_2")
    order = ["20 hours left", "still there", "closed today"]
    page.wait(lambda d: _rows(page) == order, message=f"list is {_rows(page)}")


def test_thread_shows_when_the_customer_sent_it_and_when_it_arrived_on_hover(
    page, make, fake_graph
):
    agent = make.user("agent", name="Lucas Martin")
    inbox = make.inbox("messenger", members=[agent])
    page.login(agent.email)
    sent = now() - timedelta(minutes=40)  # Meta retried the webhook for 40 minutes
    post_messenger(
        page.url,
        inbox,
        "psid-slow",
        "sent a while ago",
        "m_slow_1",
        at_ms=int(sent.timestamp() * 1000),
    )
    post_messenger(page.url, inbox, "psid-slow", "sent just now", "m_slow_2")
    page.click(".conv-row", "sent just now")
    page.wait_text("#thread-log .msg.in", "sent just now")
    times = page.js(
        "return [...document.querySelectorAll('#thread-log .msg.in .msg-time')].map((e) =>"
        " ({text: e.textContent, datetime: e.getAttribute('datetime'), title: e.title}))"
    )
    late, prompt = times
    shown = page.js(
        "return new Date(arguments[0]).toLocaleTimeString(document.documentElement.lang,"
        " {hour: '2-digit', minute: '2-digit'})",
        sent.isoformat(),
    )
    assert (
        abs(page.js("return Date.parse(arguments[0])", late["datetime"]) / 1000 - sent.timestamp())
        < 1
    )
    assert late["text"] == shown
    assert "arrived" in late["title"] and late["title"].startswith("Sent ")
    assert "arrived" not in prompt["title"]  # on time: one time, nothing more to say
