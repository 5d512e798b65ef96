"""What gets an agent's attention, in a real Chromium: the unread count in the tab's title and
icon, counts on the status tabs, desktop notifications offered once, automated mail marked and
hidden on request, and on a phone the inbox and channel filters and bulk selection."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from app.extensions import db
from app.models import Conversation
from tests.browser.conftest import SCREENSHOTS, post_messenger

pytestmark = pytest.mark.browser

OURS = "support@shop.example"


def _tabs(page) -> dict[str, str]:
    return page.js(
        "return Object.fromEntries([...document.querySelectorAll('[data-status-count]')]"
        ".map((e) => [e.dataset.statusCount, e.textContent]))"
    )


def _icon_badge(page):
    return page.js(
        "const l = document.querySelector('link[rel=icon]');"
        "return [l.dataset.unread || null, l.href.slice(0, 22)]"
    )


def test_title_icon_and_tabs_count_what_waits_and_follow_it_live(page, make):
    ana = make.user(name="Ana Lima")
    inbox = make.inbox("messenger", members=[ana])
    first = make.inbound(inbox, contact="psid-a1", contact_name="Amira Haddad", text="Refund?")
    make.inbound(inbox, contact="psid-a2", contact_name="Jonas Berg", text="Size exchange")
    later = make.inbound(inbox, contact="psid-a3", contact_name="Mei Tanaka", text="Ship to Japan?")
    pending = db.session.get(Conversation, later.conversation_id)
    pending.status = "pending"
    db.session.commit()

    page.login(ana.email)
    page.wait(lambda d: d.title.startswith("(3) "), message="the title counts 3 unread")
    assert page.driver.title == "(3) Inbox · Switchboard"
    page.wait(lambda d: _icon_badge(page) == ["3", "data:image/png;base64,"])
    page.wait(lambda d: _tabs(page) == {"open": "2", "pending": "1", "snoozed": "0", "closed": "0"})
    assert page.text('[data-status-tab="open"]').split() == ["Open", "2"]

    # a customer writes: the title, the icon and the Open tab count her at once
    post_messenger(page.url, inbox, "psid-a4", "Is the shop open today?", "m_att_1")
    page.wait(lambda d: d.title.startswith("(4) "), message="the new conversation is counted")
    page.wait(lambda d: _icon_badge(page)[0] == "4")
    page.wait(lambda d: _tabs(page)["open"] == "3")
    page.screenshot("attention-title-and-tab-counts")
    icon = page.js("return document.querySelector('link[rel=icon]').href").split(",", 1)[1]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "attention-favicon.png").write_bytes(base64.b64decode(icon))

    # opening a conversation reads it: one fewer
    page.click(f'.conv-item[data-id="{first.conversation_id}"] .conv-row')
    page.wait(lambda d: d.title.startswith("(3) "), message="reading it takes it off the count")
    # the "Mine" view counts my conversations per status (none yet)
    page.click(".sidebar [data-assignee=me]")
    page.wait(lambda d: _tabs(page) == {"open": "0", "pending": "0", "snoozed": "0", "closed": "0"})
    assert page.console_errors() == []


def test_desktop_notifications_are_offered_once_and_on_by_default(page, make, browser):
    ana = make.user(name="Ana Lima")
    make.inbox("messenger", members=[ana])
    browser.execute_cdp_cmd("Browser.resetPermissions", {})
    page.login(ana.email)
    if page.js("return Notification.permission") != "default":
        pytest.skip("this Chromium decides notification permission itself")
    bar = page.wait_css(".notify-prompt")
    assert "Turn on desktop notifications" in bar.text
    page.screenshot("attention-notification-prompt")
    page.click("#bell")
    assert page.js("return document.getElementById('notif-sound').checked") is True
    # not allowed by the browser yet: the switch says so
    assert page.js("return document.getElementById('notif-desktop').checked") is False
    page.click("#bell")
    page.click(".notify-prompt .icon-btn")  # "Not now"
    page.wait(lambda d: not page.all(".notify-prompt"))
    page.driver.refresh()
    page.wait_ready()
    assert page.all(".notify-prompt") == []  # asked once

    # allowed in the browser: desktop notifications are on without touching the switch
    browser.execute_cdp_cmd(
        "Browser.grantPermissions", {"origin": page.url, "permissions": ["notifications"]}
    )
    page.driver.refresh()
    page.wait_ready()
    page.click("#bell")
    assert page.js("return document.getElementById('notif-desktop').checked") is True
    browser.execute_cdp_cmd("Browser.resetPermissions", {})
    assert page.console_errors() == []


def _mail(client, inbox, frm: str, subject: str, body: str, *headers: str) -> None:
    raw = "\r\n".join(
        [
            f"From: {frm}",
            f"To: {OURS}",
            f"Subject: {subject}",
            f"Date: {format_datetime(datetime.now(UTC) - timedelta(minutes=1))}",
            f"Message-ID: <{abs(hash((frm, subject)))}@mail.example.com>",
            *headers,
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "",
            body,
            "",
        ]
    ).encode()
    resp = client.post(
        f"/webhooks/email/inbound/{inbox.inbound_token}", data=raw, content_type="message/rfc822"
    )
    assert resp.status_code < 300


def _names(page) -> list[str]:
    return page.texts(".conv-item .conv-name")


def test_automated_mail_is_marked_and_can_be_hidden(page, make, client):
    ana = make.user(name="Ana Lima")
    inbox = make.inbox("email", members=[ana], address=OURS)
    _mail(
        client,
        inbox,
        "Brand News <news@brand.example>",
        "Spring sale",
        "50% off",
        "List-Unsubscribe: <mailto:u@brand.example>",
    )
    _mail(client, inbox, "Gail Porter <gail@example.com>", "Order 1042", "Where is my parcel?")

    page.login(ana.email)
    page.wait(lambda d: sorted(_names(page)) == ["Brand News", "Gail Porter"])
    news = page.wait_text(".conv-item", "Brand News")
    assert "Automated" in news.find_element("css selector", ".chips").text
    assert "Automated" not in page.wait_text(".conv-item", "Gail Porter").text
    # the thread marks the machine's message
    page.click(".conv-item .conv-row", "Brand News")
    page.wait_text(".msg.in .msg-meta", "Automated")
    page.screenshot("attention-automated-mark")

    page.click("#automated-filter")
    page.wait(lambda d: _names(page) == ["Gail Porter"])
    assert page.attr("#automated-filter", "aria-pressed") == "true"
    page.wait(lambda d: _tabs(page)["open"] == "1")
    page.screenshot("attention-automated-hidden")
    # remembered like the other filters
    page.driver.refresh()
    page.wait_ready()
    page.wait(lambda d: _names(page) == ["Gail Porter"])
    page.click("#automated-filter")
    page.wait(lambda d: len(_names(page)) == 2)
    assert page.console_errors() == []


def test_a_phone_has_the_inbox_and_channel_filters_and_bulk_selection(page, make):
    ana = make.user(name="Ana Lima")
    shop = make.inbox("messenger", members=[ana])
    texts = make.inbox("sms", members=[ana])
    shop.name, texts.name = "Shop Page", "Shop Texts"
    db.session.commit()
    make.inbound(shop, contact="psid-p1", contact_name="Amira Haddad", text="Refund?")
    make.inbound(shop, contact="psid-p2", contact_name="Jonas Berg", text="Exchange")
    make.inbound(texts, contact="+14155550101", contact_name="Mei Tanaka", text="Open today?")
    make.inbound(texts, contact="+14155550102", contact_name="Noel Ortiz", text="Thanks")

    page.resize(390, 844)
    page.login(ana.email)
    page.wait(lambda d: len(_names(page)) == 4)
    assert not page.css(".sidebar").is_displayed()

    # the sidebar's filters, in a menu
    page.click("#filters-btn")
    menu = page.wait_css("#filter-menu")
    assert [b.text for b in menu.find_elements("css selector", ".menu-item")] == [
        "All inboxes",
        "Shop Page",
        "Shop Texts",
        "Messenger",
        "SMS",
    ]
    page.screenshot("attention-phone-filter-menu")
    page.click("#filter-menu .menu-item", "Shop Texts")
    page.wait(lambda d: sorted(_names(page)) == ["Mei Tanaka", "Noel Ortiz"])
    assert "active" in page.attr("#filters-btn", "class")
    assert page.text("#list-title") == "All · Shop Texts"
    page.click("#filters-btn")
    page.click("#filter-menu .menu-item", "Messenger")
    page.wait(lambda d: sorted(_names(page)) == ["Amira Haddad", "Jonas Berg"])
    page.click("#filters-btn")
    page.click("#filter-menu .menu-item", "All inboxes")
    page.wait(lambda d: len(_names(page)) == 4)

    # selection: tap rows to select them, then close them together
    assert not any(c.is_displayed() for c in page.all(".conv-check"))
    page.click("#select-btn")
    page.wait_css("#bulk-bar")
    page.click(".conv-item .conv-row", "Jonas Berg")
    page.click(".conv-item .conv-row", "Noel Ortiz")
    page.wait(lambda d: page.text("#bulk-bar .bulk-count") == "2 selected")
    assert "#c=" not in page.driver.current_url  # tapping selected, it opened nothing
    page.screenshot("attention-phone-bulk-selection")
    page.click("#bulk-bar .bulk-close")
    page.wait(lambda d: sorted(_names(page)) == ["Amira Haddad", "Mei Tanaka"])
    page.wait_text(".toast", "2 conversations closed")
    page.click("#bulk-bar .bulk-clear")  # leave selection mode
    page.wait(lambda d: not page.css("#bulk-bar").is_displayed())
    page.click(".conv-item .conv-row", "Mei Tanaka")  # rows open again
    page.wait(lambda d: "#c=" in d.current_url)
    assert page.console_errors() == []
