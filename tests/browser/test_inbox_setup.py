"""Setting Switchboard up from the web in a real Chromium: the first-run checklist, adding
inboxes against fake providers, failing checks next to their field, and repairing a paused
inbox so its queued reply goes out."""

from __future__ import annotations

import pytest

from tests.browser.conftest import run_worker
from tests.browser.providers import FakeGraph, FakeTwilio

pytestmark = pytest.mark.browser


def _steps(page) -> dict[str, bool]:
    return page.js(
        "const out = {}; document.querySelectorAll('#first-run [data-step]').forEach("
        "(li) => { out[li.dataset.step] = li.classList.contains('done'); }); return out"
    )


def test_first_run_checklist_ticks_itself_and_is_for_admins_only(page, make):
    admin = make.user("admin", name="Ada Admin")
    page.login(admin.email)
    page.wait_css("#first-run")
    assert "New messages will appear here" in page.text("#list-empty")
    assert _steps(page) == {"connect": False, "team": False, "hours": False}
    assert "3 of 3 steps left" in page.text("#first-run")
    page.screenshot("first-run-checklist-empty")
    page.click("#first-run a.btn", "Add an inbox")
    page.wait(lambda d: d.current_url.endswith("/admin/inboxes/new"))
    page.wait_css("#channel-picker .channel-card")

    # the app's own state ticks the steps: an inbox, a teammate
    inbox = make.inbox("messenger")
    agent = make.user("agent", name="Lucas Martin")
    page.get("/")
    page.wait_ready()
    page.wait_css("#first-run")
    assert _steps(page) == {"connect": True, "team": True, "hours": False}
    assert "1 of 3 steps left" in page.text("#first-run")
    href = page.attr("#first-run [data-step=hours] a", "href")
    assert href.endswith(f"/admin/inboxes/{inbox.id}#sec-hours")
    page.screenshot("first-run-checklist-two-done")

    # a greeting completes it: the checklist goes away
    inbox.settings = {"greeting": "Hi! We answer within the hour."}
    make.db.session.commit()
    page.get("/")
    page.wait_ready()
    page.wait_css("#list-empty")
    assert not page.js("return document.getElementById('first-run').hidden === false")

    # an agent on a fresh install sees the plain empty state
    inbox.settings = {}
    make.db.session.commit()
    page.js("document.cookie = ''")
    page.get("/healthz")
    page.driver.delete_all_cookies()
    page.login(agent.email)
    page.wait_css("#list-empty")
    assert page.js("return document.getElementById('first-run').hidden")
    assert not page.all("#first-run [data-step]")
    assert page.console_errors() == []


# --------------------------------------------------------------------------- adding inboxes

PAGE_ID = "104857600123"
SID = "AC" + "a1" * 16


@pytest.fixture
def graph(app):
    fake = FakeGraph(PAGE_ID)
    app.config["MESSENGER_GRAPH_URL"] = fake.url
    yield fake
    fake.stop()


@pytest.fixture
def twilio(app):
    fake = FakeTwilio(SID, "twilio-auth-token-1", {"+14155550100": "PN" + "b2" * 16})
    app.config["TWILIO_API_URL"] = fake.url
    app.config["TWILIO_MESSAGING_URL"] = fake.url
    yield fake
    fake.stop()


def _fill(page, values: dict[str, str]) -> None:
    for name, value in values.items():
        el = page.css(
            f'#connect-form [data-config="{name}"], #credentials-form [data-config="{name}"]'
        )
        el.clear()
        el.send_keys(value)


def _pick(page, channel: str, name: str) -> None:
    page.click(f'.channel-card[data-channel="{channel}"]')
    page.wait_css("#connect-form")
    page.css("#f-name").send_keys(name)


def _no_overflow(page, selector: str) -> bool:
    return page.js(
        "return [...document.querySelectorAll(arguments[0])].every("
        "(el) => el.scrollWidth <= el.clientWidth + 1)",
        selector,
    )


def test_admin_adds_a_messenger_page_and_sees_the_verification_turn_green(
    page, make, graph, live_server
):
    admin = make.user("admin", name="Ada Admin")
    graph.tokens.add("EAAG-page-token")
    page.login(admin.email, ready=False)
    page.get("/admin/inboxes")
    page.click("#add-inbox-btn")
    page.wait_css('.channel-card[data-channel="messenger"]')
    assert "Page access token" in page.text('.channel-card[data-channel="messenger"]')
    page.screenshot("setup-pick-channel")
    _pick(page, "messenger", "Corner Shop Page")
    _fill(
        page,
        {
            "page_id": PAGE_ID,
            "page_token": "EAAG-page-token",
            "app_secret": "meta-app-secret",
            "verify_token": "pick-a-verify-token",
        },
    )
    graph.delay = 0.6
    page.click('#connect-form button[type="submit"]')
    page.wait_text('#connect-form button[type="submit"]', "Checking…")
    page.screenshot("setup-messenger-checking")
    graph.delay = 0

    # connected: the inbox's page, with what to paste into Meta's console once
    page.wait(lambda d: "?connected=1" in d.current_url)
    page.wait_css("#done-note")
    setup = page.text("#inbox-setup")
    assert f"{live_server.url}/webhooks/messenger" in setup
    assert _no_overflow(page, "#inbox-setup .copy-field code, #inbox-setup .card-body")
    page.wait_text("#check-results", "subscribed")  # what Connect set up on Meta's side
    state = page.css("#webhook-state")
    assert "Waiting for Meta's verification call" in state.text
    source = page.driver.page_source
    assert "EAAG-page-token" not in source and "meta-app-secret" not in source
    page.screenshot("setup-messenger-connected")
    assert graph.calls("POST", f"/{PAGE_ID}/subscribed_apps")  # from the Connect button alone

    # Meta's verification call arrives: the waiting state turns green by itself
    import requests

    resp = requests.get(
        live_server.url + "/webhooks/messenger",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": "pick-a-verify-token",
            "hub.challenge": "1158201444",
        },
        timeout=10,
    )
    assert resp.status_code == 200 and resp.text == "1158201444"
    page.wait(lambda d: page.attr("#webhook-state", "data-webhook-state") == "verified", 15)
    assert "Verified" in page.text("#webhook-state")
    # "Check now" asks Meta again and shows each check's result
    graph.tokens.discard("EAAG-page-token")  # the token expired meanwhile
    page.click("#check-now")
    page.wait_text("#check-results .check-item.bad", "refused by Meta")
    assert "verified our URL" in page.text("#check-results")
    page.screenshot("setup-messenger-verified")

    # the inboxes list: the setup values wrap inside their cards
    page.get("/admin/inboxes")
    page.wait_css(".inbox-card")
    assert _no_overflow(page, ".inbox-card .card-body, .inbox-card .copy-field code")
    assert page.console_errors() == []


def test_admin_adds_a_twilio_number_and_its_inbound_url_is_set(page, make, twilio, live_server):
    from app.models import Inbox

    admin = make.user("admin", name="Ada Admin")
    page.login(admin.email, ready=False)
    page.get("/admin/inboxes/new")
    _pick(page, "sms", "Shop texts")
    _fill(
        page,
        {"number": "+1 415 555 0100", "account_sid": SID, "auth_token": "twilio-auth-token-1"},
    )
    page.click('#connect-form button[type="submit"]')
    page.wait(lambda d: "?connected=1" in d.current_url)
    page.wait_text("#check-results", "now come to")
    assert "A2P 10DLC" in page.text("#check-results .check-item.warn")  # Twilio's warning
    page.screenshot("setup-twilio-connected")

    (update,) = twilio.calls("POST", "/IncomingPhoneNumbers/PN")
    assert update["body"]["SmsUrl"].startswith(live_server.url + "/webhooks/sms/twilio")
    assert update["body"]["SmsMethod"] == "POST"
    make.db.session.expire_all()
    assert make.db.session.query(Inbox).one().config["number"] == "+14155550100"
    assert "twilio-auth-token-1" not in page.driver.page_source


def test_refusals_are_shown_next_to_the_field_and_nothing_is_stored(page, make, twilio):
    from app.models import Inbox

    admin = make.user("admin", name="Ada Admin")
    page.login(admin.email, ready=False)
    page.get("/admin/inboxes/new")
    _pick(page, "sms", "Shop texts")
    # a required field left empty: the server's 422 names it
    _fill(page, {"account_sid": SID, "auth_token": "wrong-token"})
    page.click('#connect-form button[type="submit"]')
    err = page.wait_text('.field[data-field="number"] .field-error', "required")
    assert err.is_displayed()
    # the provider refuses the credentials: the failing check sits next to the Auth token
    _fill(page, {"number": "+14155550100"})
    page.click('#connect-form button[type="submit"]')
    page.wait_text('.field[data-field="auth_token"] .field-error', "Twilio refused")
    assert "Authenticate" in page.text("#connect-form .check-list .check-item.bad")
    assert page.text('.field[data-field="number"] .field-error') == ""
    page.screenshot("setup-check-failed")
    assert "/admin/inboxes/new" in page.driver.current_url
    assert make.db.session.query(Inbox).count() == 0


def test_a_paused_messenger_inbox_is_reconnected_and_its_reply_goes_out(
    page, make, graph, live_server, app
):
    from app.models import Message

    admin = make.user("admin", name="Ada Admin")
    inbox = make.inbox(
        "messenger",
        page_id=PAGE_ID,
        page_token="EAAG-expired",
        app_secret="meta-app-secret",
        verify_token="vt-1",
        members=[admin],
    )
    inbox.name = "Corner Shop Page"
    make.db.session.commit()
    make.inbound(inbox, contact="psid-77", text="Where is my order?")
    page.login(admin.email)
    page.click(".conv-row")
    page.wait_css("#composer-text").send_keys("It shipped this morning.")
    page.click(".send-btn")
    page.wait_text("#thread-log .msg", "It shipped this morning.")
    # stored (not only drawn): then the worker sees it
    page.wait(lambda d: page.attr("#thread-log .msg.out", "data-status") == "queued")
    run_worker(app)  # Meta refuses the expired token: the inbox pauses, the reply waits
    make.db.session.expire_all()
    assert make.db.session.get(type(inbox), inbox.id).needs_reconnect is True
    reply = make.db.session.query(Message).filter_by(body="It shipped this morning.").one()
    assert reply.status == "queued"

    # the red badge opens the reconnect form directly
    page.get("/admin/inboxes")
    page.click("[data-reconnect-link]")
    page.wait(lambda d: d.current_url.endswith(f"/admin/inboxes/{inbox.id}#reconnect"))
    page.wait_css("#credentials-form")
    page.wait(lambda d: page.js("return document.activeElement.dataset.config") == "page_token")
    assert "set" in page.text('.field[data-field="page_token"]')
    assert page.css('[data-config="page_id"]').get_attribute("value") == PAGE_ID
    # the human agent approval is a setting: one switch on the page, under Settings
    assert len(page.all('input[name="human_agent"], [data-config="human_agent"]')) == 1
    assert page.all('#inbox-settings input[name="human_agent"]')
    page.screenshot("setup-reconnect-form")

    # a token Meta still refuses: the old one stays, the error sits by the field
    page.css('[data-config="page_token"]').send_keys("EAAG-also-bad")
    page.click('#credentials-form button[type="submit"]')
    page.wait_text('.field[data-field="page_token"] .field-error', "refused by Meta")

    graph.tokens.add("EAAG-fresh")
    _fill(page, {"page_token": "EAAG-fresh"})
    page.click('#credentials-form button[type="submit"]')
    page.wait(lambda d: "?saved=1" in d.current_url)
    page.wait_css("#done-note")
    assert "Needs reconnecting" not in page.text("#inbox-health")
    assert "EAAG-fresh" not in page.driver.page_source
    page.screenshot("setup-reconnected")

    run_worker(app)  # the paused reply goes out with the new token
    assert graph.sends()[-1]["auth"] == "Bearer EAAG-fresh"
    assert graph.sends()[-1]["body"]["message"]["text"] == "It shipped this morning."
    page.get(f"/#c={reply.conversation_id}")
    page.wait_ready()
    page.wait_text("#thread-log .msg", "Sent")
    page.screenshot("setup-paused-reply-sent")


def test_mail_presets_fill_the_servers_and_disconnect_keeps_the_history(page, make):
    from app.models import Inbox

    admin = make.user("admin", name="Ada Admin")
    page.login(admin.email, ready=False)
    page.get("/admin/inboxes/new")
    _pick(page, "email", "Support mail")
    from selenium.webdriver.support.select import Select

    Select(page.css("#preset")).select_by_visible_text("Fastmail")
    assert page.css('[data-config="smtp_host"]').get_attribute("value") == "smtp.fastmail.com"
    assert page.css('[data-config="smtp_port"]').get_attribute("value") == "465"
    assert page.css('[data-config="imap_host"]').get_attribute("value") == "imap.fastmail.com"
    link = page.css(".preset-note a")
    assert link.get_attribute("href").startswith("https://www.fastmail.com/")
    # the login is the address: both user fields follow it as it is typed...
    page.css('[data-config="address"]').send_keys("help@acme.example")
    for user in ("smtp_user", "imap_user"):
        assert page.css(f'[data-config="{user}"]').get_attribute("value") == "help@acme.example"
    # ...until the admin writes another login there
    _fill(page, {"imap_user": "mailer"})
    page.css('[data-config="address"]').send_keys("m")
    assert page.css('[data-config="smtp_user"]').get_attribute("value") == "help@acme.examplem"
    assert page.css('[data-config="imap_user"]').get_attribute("value") == "mailer"
    page.screenshot("setup-email-preset")

    # Disconnect asks first; the conversations stay readable
    inbox = make.inbox("messenger", members=[admin])
    make.inbound(inbox, contact="psid-9", text="Is the shop open on Sunday?")
    page.get(f"/admin/inboxes/{inbox.id}")
    page.wait(lambda d: page.js("return document.body.dataset.ready === '1'"))
    page.click("#disconnect")
    page.wait_css("dialog.modal")
    assert "stay readable" in page.text("dialog.modal")
    page.click("dialog.modal .btn.danger")
    page.wait(lambda d: "?disconnected=1" in d.current_url)
    assert "Disconnected" in page.text("#inbox-health")
    assert not page.all("#reconnect")
    make.db.session.expire_all()
    assert make.db.session.get(Inbox, inbox.id).active is False
    page.get("/")
    page.wait_ready()
    page.wait_text(".conv-row", "open on Sunday")
