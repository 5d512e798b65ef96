"""Mentions and hand-offs in a real Chromium: a teammate is called into a note and sees it
arrive live in their own browser; a conversation is handed to a colleague."""

from __future__ import annotations

import pytest
import requests
from selenium.webdriver.common.keys import Keys

pytestmark = pytest.mark.browser

PORTUGUESE = "Olá, o meu pedido ainda não chegou, vocês podem verificar onde está?"


def _people(page) -> list[str]:
    """The names the open people menu offers, in order (the Unassign row has no person)."""
    return page.texts(".assign-menu .menu-item > span:not([class])")


def _open_people_menu(page) -> None:
    """Open the header's people menu (again, if a live update re-drew the header meanwhile)."""

    def opened(d):
        if not page.js("const m = document.querySelector('.assign-menu'); return m && !m.hidden"):
            page.click(".assign-btn")
        return bool(_people(page))

    page.wait(opened)


def _badge(page) -> str:
    return page.js(
        "const b = document.querySelector('#bell .badge'); return b.hidden ? '' : b.textContent"
    )


def test_a_mentioned_teammate_sees_the_notification_arrive_live(page, teammate, make):
    ana = make.user("agent", name="Ana Souza")
    bo = make.user("agent", name="Bo Lindqvist")
    make.user("lead", name="Lea Martin")  # sees every inbox: may be mentioned
    cy = make.user("agent", name="Cyrus Tehrani")  # works in another inbox only
    inbox = make.inbox("sms", members=[ana, bo])
    make.inbox("sms", members=[cy])
    conv_id = make.inbound(inbox, contact="+5511987654321", text=PORTUGUESE).conversation_id

    teammate.login(bo.email)
    teammate.wait(lambda d: _badge(teammate) == "1")  # the new conversation
    page.login(ana.email)
    page.click(".conv-row", "o meu pedido")
    page.wait_text("#thread-log .msg.in", "o meu pedido")
    page.click(".ctab[data-mode='note']")
    assert page.wait_css(".mention-hint").text.endswith("mention a teammate")
    box = page.css("#composer-text")
    box.send_keys("Can you check the carrier? @")
    page.wait_css(".mention-pop")
    offered = page.texts(".mention-pop .mention-item .canned-title")
    assert offered == ["Bo Lindqvist", "Lea Martin"]  # who can see it; not me, not Cyrus
    page.screenshot("mention-popup")
    box.send_keys(Keys.ARROW_DOWN)
    assert page.text(".mention-item.active .canned-title") == "Lea Martin"
    box.send_keys(Keys.ARROW_UP)
    assert page.text(".mention-item.active .canned-title") == "Bo Lindqvist"
    assert page.attr("#composer-text", "aria-activedescendant") == f"mention-{bo.id}"
    box.send_keys(Keys.ENTER)
    page.wait(lambda d: page.css(".mention-pop").get_attribute("hidden") is not None)
    assert page.js("return document.getElementById('composer-text').value") == (
        f"Can you check the carrier? @[Bo Lindqvist](user:{bo.id}) "
    )
    # typing filters; Escape closes the popup and leaves the note being written
    box.send_keys("and @le")
    page.wait(lambda d: page.texts(".mention-pop .mention-item .canned-title") == ["Lea Martin"])
    box.send_keys(Keys.ESCAPE)
    page.wait(lambda d: page.css(".mention-pop").get_attribute("hidden") is not None)
    assert page.js("return document.activeElement.id") == "composer-text"
    box.send_keys(Keys.BACKSPACE * 3, "please")
    box.send_keys(Keys.CONTROL, Keys.ENTER)
    page.wait_text("#thread-log .msg.note .mention", "@Bo Lindqvist")
    page.wait(lambda d: int(page.attr("#thread-log .msg.note", "data-id") or 0) > 0)  # stored
    mine = (
        "return document.querySelector('#thread-log .msg.note .mention').classList.contains('me')"
    )
    assert page.js(mine) is False  # the author sees Bo's chip, not their own
    assert "Can you check the carrier?" in page.text("#thread-log .msg.note .msg-text")
    assert "user:" not in page.text("#thread-log .msg.note .msg-text")
    page.screenshot("mention-note-sent")

    # Bo's browser: the bell counts it at once, says who and opens the note
    teammate.wait(lambda d: _badge(teammate) == "2")
    teammate.click("#bell")
    item = teammate.wait_text(".notif-list .notif", "Ana Souza mentioned you in a note")
    note_id = page.attr("#thread-log .msg.note", "data-id")
    assert item.get_attribute("href").endswith(f"/#c={conv_id}&m={note_id}")
    teammate.screenshot("mention-notification-live")
    item.click()
    teammate.wait_text("#thread-log .msg.note .mention.me", "@Bo Lindqvist")
    teammate.wait_css("#thread-log .msg.note.flash")
    teammate.screenshot("mention-note-opened")
    assert page.console_errors() == [] and teammate.console_errors() == []


def test_a_note_shows_markup_and_html_as_text(page, make, live_server):
    ana = make.user("agent", name="Ana Souza")
    bo = make.user("agent", name="Bo Lindqvist")
    inbox = make.inbox("sms", members=[ana, bo])
    conv_id = make.inbound(inbox, contact="+33612345678", text="Bonjour").conversation_id
    body = (
        f'@[<img src=x onerror="window.__pwned=1">](user:{bo.id}) '
        "<b>bold?</b> <script>window.__pwned=2</script>"
    )
    resp = requests.post(
        f"{live_server.url}/api/v1/conversations/{conv_id}/messages",
        json={"body": body, "private": True},
        headers={"Authorization": f"Bearer {make.token(ana)}"},
        timeout=10,
    )
    assert resp.status_code == 201
    page.login(ana.email)
    page.click(".conv-row", "Bonjour")
    chip = page.wait_css("#thread-log .msg.note .mention")
    assert chip.text == '@<img src=x onerror="window.__pwned=1">'
    text = page.text("#thread-log .msg.note .msg-text")
    assert "<b>bold?</b> <script>window.__pwned=2</script>" in text
    assert (
        page.js(
            "return document.querySelectorAll('#thread-log .msg.note img, #thread-log .msg.note b, #thread-log .msg.note script').length"
        )
        == 0
    )
    assert page.js("return window.__pwned === undefined") is True


def test_an_agent_hands_a_conversation_to_a_colleague_from_the_people_menu(page, make, client):
    ana = make.user("agent", name="Ana Souza", languages=["en"])
    bo = make.user("agent", name="Bo Lindqvist", languages=["pt", "en"])
    lead = make.user("lead", name="Lea Martin")
    inbox = make.inbox("sms", members=[ana, bo])
    make.inbound(inbox, contact="+5511987654321", text=PORTUGUESE)

    page.login(ana.email)
    row = page.wait_text(".conv-row", "o meu pedido")
    assert row.find_element("css selector", ".lang-chip").text == "PT"
    page.click(".conv-row", "o meu pedido")
    page.wait_text("#thread-log .msg.in", "o meu pedido")
    assert page.text("#thread-head .lang-chip") == "Portuguese"
    _open_people_menu(page)
    assert _people(page) == ["Ana Souza (you)", "Bo Lindqvist", "Lea Martin"]
    assert "null" not in page.text(".assign-menu .menu-list")  # no stray last row
    assert page.text(f".assign-menu .menu-item[data-user-id='{bo.id}'] .spoken") == "PT · EN"
    page.screenshot("handoff-people-menu")
    page.click(f".assign-menu .menu-item[data-user-id='{bo.id}']")
    page.wait(lambda d: "Bo Lindqvist" in page.text(".assign-btn"))
    page.wait_text("#thread-log .activity", "Ana Souza assigned this to Bo Lindqvist")
    page.screenshot("handoff-assigned")

    # the lead restricts agents to taking conversations: the menu follows live
    resp = client.patch(
        f"/api/v1/inboxes/{inbox.id}",
        json={"agents_assign_others": False},
        headers=make.headers(lead),
    )
    assert resp.status_code == 200

    def only_me(d):
        _open_people_menu(page)
        if _people(page) == ["Ana Souza (you)"]:
            return True
        page.click(".assign-btn")  # close it; look again after the live update
        return False

    page.wait(only_me)
    page.click(".assign-menu .menu-item", "Ana Souza")
    page.wait_text("#thread-log .activity", "Ana Souza took this conversation")
    assert page.console_errors() == []


def test_agents_say_which_languages_they_speak(page, make, client):
    ana = make.user("agent", name="Ana Souza")
    make.inbox("sms", members=[ana])
    page.login(ana.email)
    page.click("#user-btn")
    page.click("#menu-languages")
    page.wait_css("dialog.modal")
    labels = page.texts("dialog.modal .toggle-row")
    assert labels == ["English", "French", "Portuguese", "Arabic", "Persian"]
    page.click("dialog.modal .toggle-row", "Portuguese")
    page.click("dialog.modal .toggle-row", "French")
    page.screenshot("languages-i-speak")
    page.click("dialog.modal .btn.primary")
    page.wait_text(".toast", "Saved")
    assert page.all("dialog.modal") == []
    me = client.get("/api/v1/me", headers=make.headers(ana)).get_json()
    assert me["languages"] == ["fr", "pt"]


def test_a_lead_sets_the_hand_off_rules_of_an_inbox(page, make):
    from app.extensions import db
    from app.models import Inbox

    lead = make.user("lead", name="Lea Martin")
    inbox = make.inbox("sms")
    page.login(lead.email, ready=False)
    page.get(f"/admin/inboxes/{inbox.id}")
    page.wait_css("#inbox-settings")
    others = page.css('input[name="agents_assign_others"]')
    takes = page.css('input[name="reply_assigns"]')
    assert others.is_selected() and takes.is_selected()  # both on by default
    page.click("#inbox-settings .toggle-row", "Agents can hand conversations to teammates")
    page.screenshot("inbox-settings-handoffs")
    page.click('#inbox-settings button[type="submit"]')
    page.wait_css("#saved-note")
    db.session.expire_all()
    settings = db.session.get(Inbox, inbox.id).settings
    assert settings["agents_assign_others"] is False and settings["reply_assigns"] is True
