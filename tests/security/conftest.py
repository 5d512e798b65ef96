"""Fixtures of the security suite; it shares the browser fixtures (a real Chromium) of
``tests/browser``."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import (  # noqa: F401  (pytest fixtures)
    browser,
    page,
    pytest_collection_modifyitems,  # noqa: F401  (skip reasons)
)
from tests.security.feed import Feed

PASSWORD = "correct horse battery"


def csrf_from(html: str) -> str:
    """The CSRF token a page carries (form field or meta tag)."""
    found = re.search(r'name="csrf[-_]token" (?:value|content)="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def browser_login(client, email: str, password: str = PASSWORD, remember: bool = False):
    """Sign in through the form as a browser does; returns the response."""
    token = csrf_from(client.get("/login").get_data(as_text=True))
    data = {"email": email, "password": password, "csrf_token": token}
    if remember:
        data["remember"] = "1"
    return client.post("/login", data=data)


@pytest.fixture
def feeds():
    """Feeds opened by a test, closed at its end."""
    opened: list[Feed] = []

    def open_feed(url: str, token: str | None = None, origin=None, host=None, **options) -> Feed:
        feed = Feed(origin, host)
        opened.append(feed)
        return feed.connect(url, token, **options)

    yield open_feed
    for feed in opened:
        feed.close()
