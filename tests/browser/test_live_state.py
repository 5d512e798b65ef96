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
