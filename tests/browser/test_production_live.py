"""Chromium on the production server: live events arrive, in order, as the agent watches.

``python wsgi.py`` serves through gunicorn's gevent worker, where an event for a
room is framed once and written to every socket by the emitting greenlet
(``app/realtime/serving.py``). Chromium negotiates permessage-deflate; those frames
go uncompressed, which a browser must read like any other. The other browser tests
use the threaded test server, which writes through each socket's writer.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import Page, post_messenger
from tests.processes import start_web

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_live_events_reach_chromium_from_the_production_server(
    browser, make, database_url, tmp_path
):
    agent = make.user("agent", name="Lucas Martin")
    inbox = make.inbox("messenger", members=[agent])
    proc, url = start_web(database_url, tmp_path, "web")
    try:
        page = Page(browser, url)
        browser.set_window_size(1280, 900)
        page.get("/healthz")
        browser.delete_all_cookies()
        page.login(agent.email)
        page.js("window.__sameDocument = true")

        post_messenger(url, inbox, "psid-amira", "Bonjour, ma commande n'est pas arrivée", "m_p1")
        page.wait_text(".conv-row", "ma commande n'est pas arrivée")
        page.click(".conv-row", "ma commande n'est pas arrivée")
        page.wait_text("#thread-log .msg.in", "ma commande n'est pas arrivée")

        # a burst, long enough that every length of frame header is used
        sent = [f"suite {n} " + "é" * (40 * n) for n in range(1, 16)]
        for n, text in enumerate(sent):
            post_messenger(url, inbox, "psid-amira", text, f"m_p{n + 2}")
        page.wait_text("#thread-log .msg.in", "suite 15 ", timeout=20)
        shown = [t for t in page.texts("#thread-log .msg.in .msg-text") if t.startswith("suite")]
        assert shown == sent
        assert page.js("return window.__sameDocument") is True, "the page reloaded"
        errors = [
            e
            for e in browser.get_log("browser")
            if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]  # of /healthz
        ]
        assert not errors, errors
    finally:
        proc.stop()
