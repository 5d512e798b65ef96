"""Setting Switchboard up from the web in a real Chromium: the first-run checklist, adding
inboxes against fake providers, failing checks next to their field, and repairing a paused
inbox so its queued reply goes out."""

from __future__ import annotations

import pytest

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
