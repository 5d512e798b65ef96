"""Joining and getting back in, in a real Chromium: accepting an invitation, and
resetting a forgotten password from the login page."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import run_worker
from tests.channels.harness import smtp_sink  # noqa: F401  (pytest fixture)
from tests.security.conftest import browser_login

pytestmark = pytest.mark.browser

NEW_PASSWORD = "violet kettle harbour 31"


def _type(page, selector: str, text: str) -> None:
    el = page.css(selector)
    el.clear()
    el.send_keys(text)


def test_an_invited_teammate_joins_in_their_own_language(page, make):
    admin = make.user("admin", name="Ada Admin")
    page.login(admin.email, ready=False)
    page.get("/admin/users")
    page.wait_css("#invites-table")
    page.click("#invite-user")
    page.wait_css("#new-invite-form")
    _type(page, '#new-invite-form input[name="email"]', "noor@example.com")
    _type(page, '#new-invite-form input[name="name"]', "Noor")
    page.js("document.querySelector('#new-invite-form select[name=role]').value = 'lead'")
    page.click(".modal-foot .btn.primary")
    link_el = page.wait_css("code.invite-link")
    link = link_el.text
    assert re.match(r"http://127\.0\.0\.1:\d+/invite/[\w-]{40,}$", link), link
    page.screenshot("team-invite-link-to-hand-over")
    page.click(".modal-foot .btn.primary")  # OK
    row = page.wait_text("#invites-table tbody tr", "noor@example.com")
    assert "Team lead" in row.text and "Copy link" in row.text
    page.screenshot("team-pending-invitations")

    # the invited person opens the link in a browser of their own
    page.driver.delete_all_cookies()
    page.driver.get(link)
    page.wait_css("#invite-form")
    assert page.css('#invite-form input[name="name"]').get_attribute("value") == "Noor"
    _type(page, '#invite-form input[name="name"]', "Noor Haddad")
    page.css('#invite-form input[name="password"]').send_keys(NEW_PASSWORD)
    page.js("document.querySelector('#invite-form select[name=locale]').value = 'fr'")
    page.screenshot("team-invite-accept-form")
    page.click('#invite-form button[type="submit"]')
    page.wait(lambda d: "/invite/" not in d.current_url)
    page.wait_ready()
    assert page.js("return document.documentElement.lang") == "fr"
    assert page.js("return JSON.parse(document.getElementById('boot').textContent).me.name") == (
        "Noor Haddad"
    )
    page.screenshot("team-invite-accepted-inbox-fr")

    assert page.console_errors() == []

    # the link is spent: opening it again explains why (a 410 page)
    page.driver.get(link)
    page.wait_css("#link-problem")
    assert "already used" in page.text("#link-problem") or "déjà" in page.text("#link-problem")
    page.screenshot("team-invite-link-used")


def test_a_forgotten_password_is_reset_from_the_login_page(page, make, app, client, smtp_sink):  # noqa: F811
    # (``client`` gives test clients that authenticate each request afresh, as browsers do)
    sink, port = smtp_sink
    app.config["NOTIFY_SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    agent = make.user("agent", name="Ana Agent", email="ana@example.com")
    laptop = app.test_client()
    assert browser_login(laptop, agent.email).status_code == 302  # signed in elsewhere

    page.get("/login")
    page.click("#forgot summary")
    _type(page, '#forgot-form input[name="email"]', "ana@example.com")
    page.screenshot("password-forgot-form")
    page.click('#forgot-form button[type="submit"]')
    page.wait_text(".alert.info", "on its way")
    page.screenshot("password-forgot-sent")

    run_worker(app)  # the outbox worker mails the link
    text = sink.last().get_body(("plain",)).get_content()
    link = re.search(r"http://127\.0\.0\.1:\d+/reset/\S+", text).group(0)

    page.driver.get(link)
    page.wait_css("#reset-form")
    page.css('#reset-form input[name="password"]').send_keys(NEW_PASSWORD)
    page.screenshot("password-reset-form")
    page.click('#reset-form button[type="submit"]')
    page.wait(lambda d: "/reset/" not in d.current_url)
    page.wait_ready()
    page.screenshot("password-reset-signed-in")

    assert laptop.get("/api/v1/me").status_code == 401  # the other sign-in ended
    page.driver.delete_all_cookies()
    page.login(agent.email, NEW_PASSWORD)
    assert page.console_errors() == []
