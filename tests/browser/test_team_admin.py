"""Team leads' and admins' pages in a real Chromium."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.clock import now

pytestmark = pytest.mark.browser


def test_team_view_shows_load_risk_and_queue(page, make):
    lead = make.user("lead", name="Nadia Karimi")
    agent = make.user("agent", name="Lucas Martin", capacity=4)
    make.user("agent", name="Sofia Costa", availability="away")
    inbox = make.inbox("messenger", members=[agent])
    from app.inbox import assignment
    from app.models import Conversation

    for i in range(3):
        make.inbound(
            inbox,
            contact=f"psid-t{i}",
            text=f"Order question {i}",
            at=now() - timedelta(hours=23, minutes=10 * i),
        )
    convs = make.db.session.query(Conversation).order_by(Conversation.id).all()
    assignment.assign(make.db.session, convs[0], agent)
    assignment.assign(make.db.session, convs[1], agent)
    make.db.session.commit()

    page.login(lead.email, ready=False)
    page.get("/team")
    page.wait_text("#agents-table", "Lucas Martin")
    page.wait(lambda d: page.text("#stat-queue") == "1")
    assert "2 of 4" in page.text("#agents-table")
    assert "Away" in page.text("#agents-table")
    # "online" is a connected browser: Lucas is available but has no browser open
    lucas = page.wait_text("#agents-table tbody tr", "Lucas Martin")
    assert "Offline" in lucas.text and "Available" in lucas.text
    page.wait(lambda d: page.text("#stat-risk") == "3")  # every window closes within 2 h
    assert "oldest waiting" in page.text("#stat-queue-sub")
    page.screenshot("team-view")

    # select many conversations in the list and assign them at once
    page.get("/")
    page.wait_ready()
    page.wait(lambda d: len(page.all(".conv-row")) == 3)
    page.js("document.querySelectorAll('.conv-check').forEach((c) => c.click())")
    page.wait_css("#bulk-bar")
    assert "3 selected" in page.text("#bulk-bar")
    page.screenshot("inbox-bulk-select")
    page.click("#bulk-bar .bulk-assign")
    page.click("#bulk-bar .bulk-assign-menu .menu-item", "Lucas Martin")
    page.wait(lambda d: page.text("#count-unassigned") == "0")


def test_admin_inboxes_show_webhook_url_and_health(page, make, live_server):
    admin = make.user("admin", name="Ada Admin")
    inbox = make.inbox("messenger", verify_token="verify-me-please")
    make.inbound(inbox, contact="psid-a", text="Hi")
    email_inbox = make.inbox("email")

    page.login(admin.email, ready=False)
    page.get("/admin/inboxes")
    card = page.wait_css(f'[data-inbox-id="{inbox.id}"]')
    assert f"{live_server.url}/webhooks/messenger" in card.text
    page.wait_css(f'[data-inbox-id="{inbox.id}"] .inbox-title .ch-messenger svg')  # its icon
    assert "Messenger ·" in card.text
    assert "verify-me-please" not in card.text  # masked until revealed
    card.find_element("css selector", "[data-reveal]").click()
    page.wait(lambda d: "verify-me-please" in page.text(f'[data-inbox-id="{inbox.id}"]'))
    assert "Receiving" in card.text
    email_card = page.css(f'[data-inbox-id="{email_inbox.id}"]')
    assert "Inbound URL" in email_card.text
    page.screenshot("admin-inboxes")

    page.get(f"/admin/inboxes/{inbox.id}")
    page.wait_css("#inbox-settings")
    human = page.css('input[name="human_agent"]')
    assert not human.is_selected()
    human.click()
    page.click('#inbox-settings button[type="submit"]')
    page.wait_css("#saved-note")
    from app.extensions import db
    from app.models import Inbox

    db.session.expire_all()
    assert db.session.get(Inbox, inbox.id).settings["human_agent"] is True
    page.screenshot("admin-inbox-settings")


def test_lead_sees_tokens_hidden(page, make):
    lead = make.user("lead")
    make.inbox("messenger", verify_token="secret-verify")
    page.login(lead.email, ready=False)
    page.get("/admin/inboxes")
    page.wait_text(".readonly-note", "Only admins")
    assert "secret-verify" not in page.js("return document.body.innerHTML")


def test_canned_reply_inserted_with_variables(page, make):
    lead = make.user("lead", name="Nadia Karimi")
    inbox = make.inbox("messenger")
    make.inbound(inbox, contact="psid-c", text="Where is my order?", contact_name="Amira Haddad")

    page.login(lead.email, ready=False)
    page.get("/admin/canned")
    page.click("#add-canned")
    page.wait_css("dialog.modal")
    page.css('dialog input[name="shortcut"]').send_keys("thanks")
    page.css('dialog input[name="title"]').send_keys("Thank you")
    page.css('dialog textarea[name="body"]').send_keys(
        "Hi {{contact.first_name}}, thanks for writing! {{agent.first_name}}"
    )
    page.click("dialog .modal-foot .btn.primary")
    page.wait_text("#canned-table", "/thanks")
    page.screenshot("admin-canned")

    page.get("/")
    page.wait_ready()
    page.click(".conv-row", "Where is my order?")
    box = page.wait_css("#composer-text")
    box.send_keys("/than")
    page.wait_css(".canned-item")
    from selenium.webdriver.common.keys import Keys

    box.send_keys(Keys.ENTER)
    page.wait(lambda d: box.get_attribute("value") == "Hi Amira, thanks for writing! Nadia")


def test_first_admin_setup_then_user_menu(page, app):
    page.get("/login")
    page.wait(lambda d: d.current_url.endswith("/setup"))
    page.screenshot("setup-first-admin")
    page.css('input[name="name"]').send_keys("Ada Admin")
    page.css('input[name="email"]').send_keys("ada@example.com")
    page.css('input[name="password"]').send_keys("a-long-password")
    page.click('form button[type="submit"]')
    page.wait_ready()
    assert "Ada Admin" in page.text(".topbar")

    # availability and language live in the user menu
    page.click("#user-btn")
    page.click("#user-menu label.radio-row", "Busy")
    page.wait(lambda d: "busy" in page.attr("#user-btn .presence-dot", "class"))
    from app.extensions import db
    from app.models import User

    def saved(field, value):
        db.session.expire_all()
        return getattr(db.session.scalar(db.select(User)), field) == value

    page.wait(lambda d: saved("availability", "busy"))
    from selenium.webdriver.support.select import Select

    Select(page.css("#lang-select")).select_by_value("fr")
    page.wait(lambda d: page.js("return document.documentElement.lang") == "fr")
    page.wait_ready()
    assert page.text('[data-status-tab="open"]').split() == ["Ouvertes", "0"]  # and its count
    assert saved("locale", "fr")
