"""The live inbox in a real Chromium: what an agent sees and does all day."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from app.clock import now
from tests.browser.conftest import post_messenger, quiet_hours_thread, run_worker

pytestmark = pytest.mark.browser


def _count(page, key: str) -> str:
    return page.text(f"#count-{key}")


def test_webhook_appears_live_then_assign_reply_and_close(page, make, app, fake_graph):
    agent = make.user("agent", name="Lucas Martin")
    make.user("lead", name="Nadia Karimi")
    inbox = make.inbox("messenger", members=[agent])
    make.inbound(
        inbox,
        contact="psid-old-1",
        text="Is the blue one back in stock?",
        at=now() - timedelta(hours=3),
    )
    make.inbound(
        inbox,
        contact="psid-old-2",
        text="Thanks, that worked!",
        at=now() - timedelta(hours=22, minutes=30),
    )

    fake_graph.profiles["psid-amira"] = "Amira Haddad"
    page.login(agent.email)
    page.js("window.__sameDocument = true")
    page.wait(lambda d: _count(page, "unassigned") == "2")
    assert _count(page, "mine") == "0"

    # a customer writes: the webhook is stored and pushed to the open page
    post_messenger(
        page.url, inbox, "psid-amira", "Bonjour, ma commande n'est pas arrivée", "m_live_1"
    )
    row = page.wait_text(".conv-row", "ma commande n'est pas arrivée")
    page.wait(lambda d: _count(page, "unassigned") == "3")
    assert page.js("return window.__sameDocument") is True, "the page reloaded"
    assert row.find_element("css selector", ".unread-badge").text == "1"
    assert "left" in row.find_element("css selector", ".chip").text  # 24-hour window chip
    page.screenshot("inbox-list-new-message")

    # open it; a second message arrives live in the thread
    page.click(".conv-row", "ma commande n'est pas arrivée")
    page.wait_text("#thread-log .msg.in", "ma commande n'est pas arrivée")
    assert page.css("#thread-log .msg.in .msg-text").get_attribute("dir") == "auto"
    post_messenger(page.url, inbox, "psid-amira", "مرحبا، هل وصل الطرد؟", "m_live_2")
    page.wait_text("#thread-log .msg.in", "مرحبا، هل وصل الطرد؟")
    assert "Messenger 24-hour window" in page.text(".composer-banner")

    # assign to myself: the Mine count follows
    page.click(".assign-btn")
    page.click(".assign-menu .menu-item", "Lucas Martin")
    page.wait(lambda d: "You" in page.text(".assign-btn"))
    page.wait(lambda d: _count(page, "mine") == "1" and _count(page, "unassigned") == "2")
    page.wait_text("#thread-log .activity", "Lucas Martin took this conversation")

    # reply with Ctrl+Enter; the worker sends it to the (fake) Graph API
    box = page.css("#composer-text")
    assert box.get_attribute("spellcheck") == "true"
    box.send_keys("Bonjour Amira, je regarde votre commande tout de suite.")
    box.send_keys(Keys.CONTROL, Keys.ENTER)
    page.wait_text("#thread-log .msg.out", "je regarde votre commande")
    page.wait(lambda d: page.attr("#thread-log .msg.out", "data-status") == "queued")
    assert run_worker(app) >= 1
    page.wait(lambda d: page.attr("#thread-log .msg.out .tick", "data-status") == "sent")
    sends = fake_graph.sends()
    assert sends and sends[-1]["json"]["message"]["text"].startswith("Bonjour Amira")
    assert sends[-1]["json"]["recipient"] == {"id": "psid-amira"}
    page.screenshot("inbox-thread-reply-sent")

    # Mine filter shows only mine; Unassigned shows the other two
    page.click('[data-assignee="me"]')
    page.wait(lambda d: len(page.all(".conv-row")) == 1)
    page.click('[data-assignee="unassigned"]')
    page.wait(lambda d: len(page.all(".conv-row")) == 2)
    page.click('[data-assignee="any"]')
    page.wait(lambda d: len(page.all(".conv-row")) == 3)

    # close it: it leaves the Open list, shows under Closed, and the counts drop
    page.click(".close-btn")
    page.wait(lambda d: len(page.all(".conv-row")) == 2)
    page.wait(lambda d: _count(page, "all") == "2" and _count(page, "mine") == "0")
    page.status_tab("closed")
    page.wait(lambda d: len(page.all(".conv-row")) == 1 and _count(page, "all") == "1")
    assert "Bonjour Amira" in page.text(".conv-row .snippet")
    page.status_tab("open")
    page.wait(lambda d: _count(page, "all") == "2")
    assert page.console_errors() == []


def test_an_open_menu_survives_a_live_update(page, make, fake_graph):
    """A customer writing while the agent picks a teammate does not close the menu under the mouse."""
    agent = make.user("agent", name="Lucas Martin")
    make.user("agent", name="Nadia Karimi")
    inbox = make.inbox("messenger", members=[agent])
    fake_graph.profiles["psid-amira"] = "Amira Haddad"
    page.login(agent.email)
    post_messenger(page.url, inbox, "psid-amira", "Where is my parcel?", "m_menu_1")
    page.click(".conv-row", "Where is my parcel?")
    page.wait_text("#thread-log .msg.in", "Where is my parcel?")

    page.click(".assign-btn")
    search = page.css(".assign-menu .menu-search")
    search.send_keys("luc")
    post_messenger(page.url, inbox, "psid-amira", "Any news?", "m_menu_2")
    page.wait_text("#thread-log .msg.in", "Any news?")  # the header was drawn again meanwhile
    assert page.js("return !document.querySelector('.assign-menu').hidden"), "the menu closed"
    assert page.js("return document.activeElement.classList.contains('menu-search')")
    assert page.texts(".assign-menu .menu-item > span:not([class])") == ["Lucas Martin (you)"]
    page.css(".assign-menu .menu-item").click()
    page.wait(lambda d: "You" in page.text(".assign-btn"))


def test_reply_in_doubt_is_shown_and_sent_again_only_by_the_agent(page, make, app, fake_graph):
    agent = make.user("agent", name="Lucas Martin")
    inbox = make.inbox("messenger", members=[agent])
    make.inbound(inbox, contact="psid-doubt", text="Can I change the size?", at=now())
    page.login(agent.email)
    page.click(".conv-row", "change the size")
    page.wait_text("#thread-log .msg.in", "change the size")
    box = page.wait_css("#composer-text")
    box.send_keys("Yes, reply with the size you want.")
    box.send_keys(Keys.CONTROL, Keys.ENTER)
    page.wait(lambda d: page.attr("#thread-log .msg.out", "data-status") == "queued")

    fake_graph.drop_next = True  # Meta read the reply, and the answer never came back
    run_worker(app)
    page.wait(lambda d: page.attr("#thread-log .msg.out", "data-status") == "unknown")
    assert "Delivery unknown" in page.text("#thread-log .msg.out .tick")
    assert "may or may not have been delivered" in page.text("#thread-log .msg-error.unknown")
    page.screenshot("thread-reply-delivery-unknown")
    run_worker(app)
    assert len(fake_graph.sends()) == 1  # not sent again by itself

    page.click("#thread-log .msg-error.unknown button", "Send again")
    page.wait(lambda d: page.attr("#thread-log .msg.out", "data-status") == "queued")
    run_worker(app)
    page.wait(lambda d: page.attr("#thread-log .msg.out .tick", "data-status") == "sent")
    assert len(fake_graph.sends()) == 2
    assert page.console_errors() == []


def test_closed_messenger_window_locks_the_reply(page, make):
    agent = make.user("agent", name="Lucas Martin")
    inbox = make.inbox("messenger", members=[agent])
    make.inbound(
        inbox, contact="psid-late", text="Hello? Anyone there?", at=now() - timedelta(hours=25)
    )

    page.login(agent.email)
    row = page.wait_text(".conv-row", "Anyone there?")
    assert "Window closed" in row.text
    page.click(".conv-row", "Anyone there?")
    banner = page.wait_css(".composer-banner.red")
    assert "Messenger 24-hour window closed" in banner.text
    assert "7-day human agent" in banner.text  # says what could still apply, and where
    assert not page.css("#composer-text").is_displayed()
    assert page.css(".send-btn").get_attribute("disabled") is not None
    page.screenshot("composer-window-closed")

    # a private note is still possible
    page.click(".composer-banner button")
    box = page.wait_css("#composer-text")
    box.send_keys("Customer waited too long; call them tomorrow.")
    page.click(".send-btn")
    page.wait_text("#thread-log .msg.note", "call them tomorrow")
    assert "Private note" in page.text("#thread-log .msg.note")
    page.screenshot("composer-private-note")


def test_human_agent_window_is_named(page, make):
    lead = make.user("lead", name="Nadia Karimi")
    inbox = make.inbox("messenger", settings={"human_agent": True})
    make.inbound(
        inbox, contact="psid-ha", text="Can you still help?", at=now() - timedelta(hours=30)
    )

    page.login(lead.email)
    row = page.wait_text(".conv-row", "Can you still help?")
    assert "7-day human agent" in row.text
    page.click(".conv-row", "Can you still help?")
    banner = page.wait_css(".composer-banner")
    assert "7-day human agent rule" in banner.text
    assert page.css("#composer-text").is_enabled()


def test_window_banner_names_the_channels_rule_in_the_agents_language(page, make):
    agent = make.user("agent", name="Claire Dubois", locale="fr")
    inbox = make.inbox("messenger", members=[agent], settings={"human_agent": True})
    make.inbound(inbox, contact="psid-fr", text="Bonjour !", at=now() - timedelta(hours=1))

    page.login(agent.email)
    page.click(".conv-row", "Bonjour")
    banner = page.wait_css(".composer-banner")
    assert "Fenêtre Messenger de 24 heures : encore" in banner.text
    assert "un agent humain peut encore répondre jusqu" in banner.text  # the longer window
    chip = page.css(".thread-head .ch-messenger")
    assert chip.get_attribute("title") == "Messenger"
    # drawn as the adapter says: its shape, in Messenger blue
    assert chip.get_attribute("innerHTML").startswith('<svg viewBox="0 0 20 20"')
    assert chip.value_of_css_property("color") == "rgba(10, 124, 255, 1)"
    assert page.console_errors() == []


def test_guard_asks_to_review_new_customer_message(page, make):
    agent = make.user("agent", name="Lucas Martin")
    inbox = make.inbox("messenger", members=[agent])
    make.inbound(inbox, contact="psid-g", text="Where is my parcel?")

    page.login(agent.email)
    page.click(".conv-row", "Where is my parcel?")
    box = page.wait_css("#composer-text")
    box.send_keys("It left our warehouse this morning.")
    post_messenger(page.url, inbox, "psid-g", "Never mind, it just arrived!", "m_guard_1")
    page.wait_text(".guard-notice", "sent a new message while you were writing")
    box.send_keys(Keys.CONTROL, Keys.ENTER)
    dialog = page.wait_css("dialog.modal")
    assert "wrote again" in dialog.text and "it just arrived" in dialog.text
    page.screenshot("composer-new-activity-guard")
    page.click("dialog.modal .modal-foot .btn.primary")  # review first
    assert (
        page.css("#composer-text").get_attribute("value") == "It left our warehouse this morning."
    )
    assert not page.all("#thread-log .msg.out")


def test_sms_counter_and_quiet_hours(page, make, app):
    agent = make.user("agent", name="Lucas Martin")
    inbox = make.inbox(
        "sms",
        members=[agent],
        settings={"quiet_hours": {"start": "00:00", "end": "23:59"}, "timezone": "UTC"},
    )
    make.inbound(
        inbox,
        contact="+14155550123",
        text="Can I change my delivery slot?",
        at=now() - timedelta(hours=3),
    )

    page.login(agent.email)
    page.click(".conv-row", "delivery slot")
    box = page.wait_css("#composer-text")
    box.send_keys("Sure, which day suits you?")
    counter = page.wait_css(".sms-counter")
    assert "GSM-7" in counter.text and "1 SMS" in counter.text
    box.send_keys(" 🙂")
    page.wait(lambda d: "Unicode" in page.text(".sms-counter"))
    page.screenshot("composer-sms-counter")
    box.send_keys(Keys.CONTROL, Keys.ENTER)
    dialog = page.wait_css("dialog.modal")
    assert "quiet hours" in dialog.text.lower()
    page.click("dialog.modal .modal-foot .btn.primary")
    page.wait_text("#thread-log .msg.out", "which day suits you")
    page.wait_text("#thread-log .msg.out", "Scheduled for")
    page.screenshot("composer-quiet-hours-scheduled")


def test_the_newest_message_stays_in_view_when_the_composer_shows_a_notice(page, make):
    """The composer's notice (quiet hours here) is drawn after the messages and takes room from
    the thread: the customer's newest message must stay in view, not slide under it."""
    agent, newest = quiet_hours_thread(make, "Last: it is urgent")

    page.login(agent.email)
    page.click(".conv-row", "it is urgent")
    target = page.wait_css(f"#m{newest.id}")
    page.wait_css(".composer-banner.amber")
    page.wait(lambda d: page.in_thread_view(target), message="the newest message is in view")

    # scrolled up to read, the agent stays there when the thread's room changes
    top = "return document.getElementById('thread-log').scrollTop"
    page.js("document.getElementById('thread-log').scrollTop = 0")
    page.wait(lambda d: page.js(top) == 0)
    page.driver.set_window_size(1280, 820)
    try:
        time.sleep(0.3)
        assert page.js(top) == 0, "still at the top"
    finally:
        page.driver.set_window_size(1280, 900)


def test_sensitive_data_warning(page, make):
    agent = make.user("agent")
    inbox = make.inbox("messenger", members=[agent])
    make.inbound(inbox, contact="psid-s", text="I want to pay now")
    page.login(agent.email)
    page.click(".conv-row", "pay now")
    box = page.wait_css("#composer-text")
    box.send_keys("Please send me your card number and the CVV.")
    box.send_keys(Keys.CONTROL, Keys.ENTER)
    dialog = page.wait_css("dialog.modal")
    assert "card number" in dialog.text
    page.click("dialog.modal .modal-foot .btn.primary")  # edit message
    assert not page.all("#thread-log .msg.out")


def test_arabic_interface_is_right_to_left(page, make):
    agent = make.user("agent", name="Omar Benali", locale="ar")
    inbox = make.inbox("messenger", members=[agent])
    make.inbound(inbox, contact="psid-ar", text="مرحبا، هل يمكنني إرجاع المنتج؟")

    page.login(agent.email)
    assert page.js("return document.documentElement.dir") == "rtl"
    assert page.js("return document.documentElement.lang") == "ar"
    sidebar = page.css(".sidebar").rect
    listpane = page.css(".list-pane").rect
    thread = page.css(".thread-pane").rect
    assert sidebar["x"] > listpane["x"] > thread["x"], "panes are not mirrored"
    assert page.text('[data-status-tab="open"]').split() == ["مفتوحة", "1"]  # and its count
    page.click(".conv-row", "إرجاع المنتج")
    page.wait_css("#composer-text")
    page.screenshot("inbox-arabic-rtl")


def test_phone_width_shows_list_then_thread(page, make):
    agent = make.user("agent")
    inbox = make.inbox("messenger", members=[agent])
    make.inbound(inbox, contact="psid-p", text="Do you deliver on Sundays?")
    page.resize(390, 844)
    page.login(agent.email)
    assert page.css(".list-pane").is_displayed()
    assert not page.css(".thread-pane").is_displayed()
    page.screenshot("phone-list")
    page.click(".conv-row", "Sundays")
    page.wait_css("#composer-text")
    assert not page.css(".list-pane").is_displayed()
    page.screenshot("phone-thread")
    page.click(".back-btn")
    page.wait(lambda d: page.css(".list-pane").is_displayed())


def test_keyboard_shortcuts(page, make):
    agent = make.user("agent")
    inbox = make.inbox("messenger", members=[agent])
    for i in range(3):
        make.inbound(inbox, contact=f"psid-k{i}", text=f"Question number {i}")
    page.login(agent.email)
    page.wait(lambda d: len(page.all(".conv-row")) == 3)
    keys = ActionChains(page.driver)
    keys.send_keys("j").send_keys("j").send_keys(Keys.ENTER).perform()
    page.wait_text("#thread-log .msg.in", "Question number 1")
    ActionChains(page.driver).send_keys("r").perform()
    page.wait(lambda d: d.switch_to.active_element.get_attribute("id") == "composer-text")
    ActionChains(page.driver).send_keys(Keys.ESCAPE).send_keys("?").perform()
    dialog = page.wait_css("dialog.modal")
    assert "Keyboard shortcuts" in dialog.text
    page.screenshot("keyboard-shortcuts")


def test_reconnect_catches_up_on_missed_messages(page, make):
    agent = make.user("agent")
    inbox = make.inbox("messenger", members=[agent])
    make.inbound(inbox, contact="psid-r0", text="First question")
    page.login(agent.email)
    page.click(".conv-row", "First question")
    page.wait_text("#thread-log .msg.in", "First question")

    page.js("window.switchboard.socket.disconnect()")  # the network drops
    page.wait_css("#conn-state")
    post_messenger(page.url, inbox, "psid-r1", "Message sent while you were offline", "m_off_1")
    make.inbound(inbox, contact="psid-r0", text="And a follow-up in the open thread")
    assert not [r for r in page.texts(".conv-row") if "while you were offline" in r]

    page.js("window.switchboard.socket.connect()")  # back online: catch up without reload
    page.wait_text(".conv-row", "while you were offline")
    page.wait_text("#thread-log .msg.in", "follow-up in the open thread")
    page.wait(lambda d: not page.css("#conn-state").is_displayed())


def test_teammate_presence_shows_in_list_and_thread(page, make, live_server):
    import socketio

    agent = make.user("agent", name="Lucas Martin")
    mate = make.user("agent", name="Sofia Costa")
    inbox = make.inbox("messenger", members=[agent, mate])
    msg = make.inbound(inbox, contact="psid-pr", text="Can someone help me?")
    page.login(agent.email)
    page.click(".conv-row", "Can someone help me?")
    page.wait_css("#composer-text")

    other = socketio.Client(reconnection=False)
    other.connect(live_server.url, auth={"token": make.token(mate)}, transports=["websocket"])
    try:
        other.emit("presence", {"conversation_id": msg.conversation_id, "state": "viewing"})
        page.wait_text(".thread-presence", "Sofia Costa is viewing")
        other.emit("presence", {"conversation_id": msg.conversation_id, "state": "replying"})
        page.wait_text(".thread-presence", "Sofia Costa is replying")
        page.wait_text(".conv-row .viewing.replying", "Sofia")
        page.screenshot("inbox-teammate-replying")
    finally:
        other.disconnect()
    page.wait(lambda d: not page.all(".conv-row .viewing"))


def test_snooze_contact_panel_and_notifications(page, make, client):
    agent = make.user("agent", name="Lucas Martin")
    lead = make.user("lead", name="Nadia Karimi")
    messenger = make.inbox("messenger", members=[agent])
    sms = make.inbox("sms", members=[agent])
    first = make.inbound(
        messenger, contact="psid-n", text="Is my refund done?", contact_name="Amira Haddad"
    )
    make.inbound(sms, contact="+14155550188", text="Other question by text")

    page.login(agent.email)
    page.wait(lambda d: page.text("#bell .badge") == "2")  # the two new conversations
    # a team lead assigns a conversation: the bell lights up without reload
    resp = client.post(
        f"/api/v1/conversations/{first.conversation_id}/assign",
        headers=make.headers(lead),
        json={"assignee_id": agent.id},
    )
    assert resp.status_code == 200
    page.wait(lambda d: page.text("#bell .badge") == "3")
    page.click("#bell")
    item = page.wait_text(
        "#bell-panel .notif", "Nadia Karimi assigned you the conversation with Amira Haddad"
    )
    # each name the team or the customer wrote is isolated (an RTL name keeps its place)
    names = item.find_elements("css selector", ".notif-text bdi")
    assert [b.text for b in names] == ["Nadia Karimi", "Amira Haddad"]
    page.screenshot("notifications-panel")
    page.click("#bell-panel .notif")
    page.wait_text("#thread-log .msg.in", "Is my refund done?")
    placeholder = page.css("#composer-text").get_attribute("placeholder")
    assert placeholder == "Write a reply to \u2068Amira Haddad\u2069…"  # the name isolated

    # the contact panel lists identities and the contact's conversations
    page.click(".panel-toggle")
    page.wait_text("#contact-pane .ident-list", "psid-n")
    page.wait_text("#contact-pane .other-convs", "Is my refund done?")
    page.screenshot("contact-panel")
    page.click(".close-contact")

    # snooze until tomorrow: it leaves Open and waits under Snoozed
    page.click(".thread-actions .menu-wrap button", "Snooze")
    page.click(".thread-actions .menu-item", "Tomorrow")
    page.wait(lambda d: not [r for r in page.texts(".conv-row") if "refund" in r])
    page.status_tab("snoozed")
    page.wait_text(".conv-row", "Is my refund done?")


def test_search_box_narrows_the_list_and_escape_brings_it_back(page, make):
    agent = make.user("agent", name="Lucas Martin")
    inbox = make.inbox("messenger", members=[agent])
    make.inbound(inbox, contact="psid-s1", contact_name="Beatriz Nakamura", text="Hi there")
    make.inbound(inbox, contact="psid-s2", text="Order_1234 still not here (50% off?)")
    make.inbound(inbox, contact="psid-s3", text="Thanks a lot")
    page.login(agent.email)
    page.wait(lambda d: len(page.all(".conv-row")) == 3)

    box = page.css("#search")
    box.send_keys("nakamura")
    page.wait(lambda d: len(page.all(".conv-row")) == 1, message="name search")
    assert "Beatriz Nakamura" in page.text(".conv-row")

    box.clear()
    box.send_keys("order_1234")  # typed as is: "_" is not a wildcard
    page.wait(lambda d: "Order_1234" in page.text(".conv-row") and len(page.all(".conv-row")) == 1)

    box.send_keys(Keys.ESCAPE)
    page.wait(lambda d: len(page.all(".conv-row")) == 3, message="escape clears the search")


def test_activity_lines_show_in_the_agents_language(page, make):
    from app.extensions import db
    from app.inbox import assignment
    from app.models import Conversation

    lead = make.user("lead", name="Nadia Karimi")
    agent = make.user("agent", name="Lucas Martin", locale="fr")
    inbox = make.inbox("messenger", members=[agent])
    msg = make.inbound(inbox, contact="psid-fr", text="Bonjour, une question sur ma commande")
    assignment.assign(db.session, db.session.get(Conversation, msg.conversation_id), agent, by=lead)
    db.session.commit()

    page.login(agent.email)
    page.click(".conv-row", "une question sur ma commande")
    page.wait_text("#thread-log .activity", "Nadia Karimi a attribué ceci à Lucas Martin")


def test_a_full_server_pauses_live_updates_and_the_browser_comes_back_later(page, make, app):
    agent = make.user("agent")
    inbox = make.inbox("messenger", members=[agent])
    make.inbound(inbox, contact="psid-b0", text="Hello while busy")
    cap = app.wsgi_app  # app.realtime.serving.SocketCap: MAX_SOCKETS of this process
    cap.limit = 0  # every socket this process may hold is taken
    page.login(agent.email, ready=False)
    page.wait_text(".conv-row", "Hello while busy")  # the inbox itself loads as usual
    busy = page.wait_css("#conn-busy")
    assert "Live updates paused: server busy, retrying" in busy.text
    assert not page.css("#conn-state").is_displayed()
    assert page.js("return document.body.dataset.live") == "busy"

    cap.limit = 100  # room again: the browser's next try (5-30 s, at random) gets in
    page.wait(lambda d: page.js("return document.body.dataset.live") == "on", timeout=45)
    assert not page.css("#conn-busy").is_displayed()
