"""Fixtures of the security suite."""

from __future__ import annotations

import pytest

from tests.security.feed import Feed


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
