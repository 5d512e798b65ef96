"""A failing inbox in a real Chromium: the banner, the waiting reply, the due chip that stays."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.keys import Keys

from app.clock import now
from app.extensions import db
from app.inbox import credentials
from app.models import Inbox
from tests.browser.conftest import run_worker

pytestmark = pytest.mark.browser

WAITING = "Waiting: the inbox needs reconnecting"


def test_expired_token_shows_banners_and_a_waiting_reply_until_reconnected(
    page, make, app, fake_graph
):
    admin = make.user("admin", name="Ada Admin")
    inbox = make.inbox("messenger", members=[admin])
    inbox_id = inbox.id
    make.inbound(inbox, contact="psid-maya", text="Where is my parcel?", at=now())
    page.login(admin.email)
    assert page.all("#list-health .health-banner") == []

    page.click(".conv-row", "Where is my parcel?")
    page.wait_text("#thread-log .msg.in", "Where is my parcel?")
    box = page.wait_css("#composer-text")
    box.send_keys("It is on its way, arriving tomorrow.")
    box.send_keys(Keys.CONTROL, Keys.ENTER)
    page.wait(lambda d: page.attr("#thread-log .msg.out", "data-status") == "queued")

    # Meta says the Page token expired: the inbox pauses, and everyone sees it live
    fake_graph.fail_sends = {
        "code": 190,
        "message": "Error validating access token: Session has expired.",
        "type": "OAuthException",
    }
    run_worker(app)
    page.wait_text("#thread-log .msg.out .msg-error", WAITING)
    assert "Waiting" in page.text("#thread-log .msg.out .tick")
    banner = page.wait_text("#thread-health .health-banner", "is not working")
    assert "Session has expired" in banner.text
    link = banner.find_element("css selector", "a")
    assert link.get_attribute("href").endswith(f"/admin/inboxes/{inbox_id}#reconnect")
    page.wait_text("#list-health .health-banner", "is not working")
    # the customer is not answered yet: the response target still shows
    page.wait(lambda d: page.all('#thread-head [data-timer="due"]'))
    assert "Due in" in page.text('#thread-head [data-timer="due"]')
    # the bell says it once (after the new conversation)
    page.wait(lambda d: page.text("#bell .badge") == "2")
    page.screenshot("inbox-paused-reply-waiting")

    # fresh credentials: the banner goes away and the reply goes out
    fake_graph.fail_sends = None
    with app.app_context():
        credentials.reconnect(
            db.session, db.session.get(Inbox, inbox_id), {"page_token": "EAAG-fresh"}
        )
        db.session.commit()
    run_worker(app)
    page.wait(lambda d: page.attr("#thread-log .msg.out .tick", "data-status") == "sent")
    page.wait(lambda d: not page.all("#thread-health .health-banner"))
    page.wait(lambda d: not page.all("#list-health .health-banner"))
    assert page.all("#thread-log .msg.out .msg-error") == []
    page.wait(lambda d: not page.all('#thread-head [data-timer="due"]'))
    assert len(fake_graph.sends()) == 2
    assert page.console_errors() == []
