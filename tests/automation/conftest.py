"""Fixtures for the timer, automation and assignment tests.

Time moves with ``time_machine`` (``app.clock.now`` reads ``datetime.now(UTC)``); jobs
run through ``registry.run_job`` (the lock) or their functions directly. Providers are
faked at the HTTP boundary: a Graph API at ``http://graph.fake`` (``responses``).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest
import responses
import time_machine

from tests.automation.helpers import FakeGraph


@pytest.fixture
def clock():
    """Travel in time: ``clock.to(dt)`` / ``clock.shift(minutes=..)`` (the clock does not tick)."""

    class Clock:
        def __init__(self) -> None:
            self.traveller = None
            self.at = None

        def to(self, dt: datetime) -> datetime:
            self.stop()
            self.at = dt
            self.traveller = time_machine.travel(dt, tick=False)
            self.traveller.start()
            return dt

        def shift(self, **delta) -> datetime:
            return self.to(self.at + timedelta(**delta))

        def stop(self) -> None:
            if self.traveller is not None:
                self.traveller.stop()
                self.traveller = None

    c = Clock()
    yield c
    c.stop()


@pytest.fixture
def graph(app):
    """The fake Graph at ``MESSENGER_GRAPH_URL`` (http://graph.fake in the test app)."""
    base = app.config["MESSENGER_GRAPH_URL"].rstrip("/")
    version = app.config["MESSENGER_GRAPH_VERSION"]
    fake = FakeGraph()
    prefix = re.escape(f"{base}/{version}")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(
            responses.POST, re.compile(prefix + r"/me/messages(\?.*)?$"), callback=fake.messages
        )
        rsps.add_callback(
            responses.GET,
            re.compile(prefix + r"/\d+(\?.*)?$"),
            callback=lambda r: (200, {}, json.dumps({"id": "1"})),
        )
        yield fake
