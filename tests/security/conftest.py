"""The browser fixtures of ``tests/browser`` for the findings a browser must confirm."""

from tests.browser.conftest import browser, page  # noqa: F401  (pytest fixtures)
