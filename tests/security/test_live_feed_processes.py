"""Finding A across processes: access revoked through web process A reaches sockets on B.

Two ``python wsgi.py`` processes share the test database and Redis, as in
``tests/core/test_scaleout.py``; the admin acts through A, the agent's socket is
held by B, customer messages arrive as signed webhooks on A.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import pytest
import requests

from tests.processes import redis_url_or_skip, start_web
from tests.security.feed import both_saw

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def two_processes(app, database_url, tmp_path):
    """Web processes A and B on one Redis channel: ``(url_a, url_b, logs)``."""
    redis_url = redis_url_or_skip()
    extra = {"REDIS_URL": redis_url, "SOCKETIO_CHANNEL": f"sb-sec-{uuid.uuid4().hex[:8]}"}
    a, url_a = start_web(database_url, tmp_path, "web-a", **extra)
    try:
        b, url_b = start_web(database_url, tmp_path, "web-b", **extra)
    except Exception:
        a.stop()
        raise
    try:
        yield url_a, url_b, lambda: f"A:\n{a.output()[-3000:]}\nB:\n{b.output()[-3000:]}"
    finally:
        a.stop()
        b.stop()


def _customer_writes(url: str, inbox, text: str) -> None:
    """A Messenger message to ``inbox``, delivered as a signed webhook to ``url``."""
    now_ms = int(time.time() * 1000)
    body = json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": inbox.route_key,
                    "time": now_ms,
                    "messaging": [
                        {
                            "sender": {"id": f"psid-{uuid.uuid4().hex[:6]}"},
                            "recipient": {"id": inbox.route_key},
                            "timestamp": now_ms,
                            "message": {"mid": f"mid.{uuid.uuid4().hex}", "text": text},
                        }
                    ],
                }
            ],
        }
    ).encode()
    secret = inbox.config["app_secret"].encode()
    sig = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    resp = requests.post(
        url + "/webhooks/messenger",
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text


def test_an_agent_deactivated_on_one_process_is_cut_off_on_another(make, two_processes, feeds):
    url_a, url_b, logs = two_processes
    ana, bo = make.user(name="Ana"), make.user(name="Bo")
    inbox = make.inbox("messenger", members=[ana, bo])
    admin = make.headers(make.user("admin"))
    ana_feed, bo_feed = feeds(url_b, make.token(ana)), feeds(url_b, make.token(bo))

    resp = requests.patch(
        f"{url_a}/api/v1/users/{ana.id}", json={"active": False}, headers=admin, timeout=10
    )
    assert resp.status_code == 200, resp.text
    assert ana_feed.disconnected.wait(5), f"Ana's socket on B stayed open\n{logs()}"

    _customer_writes(url_a, inbox, "after Ana left")
    seen, leaked = both_saw(bo_feed, ana_feed, "after Ana left")
    assert seen, logs()
    assert not leaked


def test_an_agent_removed_from_an_inbox_on_one_process_stops_receiving_it_on_another(
    make, two_processes, feeds
):
    url_a, url_b, logs = two_processes
    ana, bo = make.user(name="Ana"), make.user(name="Bo")
    sales = make.inbox("messenger", members=[ana, bo])
    billing = make.inbox("messenger", members=[ana])
    admin = make.headers(make.user("admin"))
    ana_feed, bo_feed = feeds(url_b, make.token(ana)), feeds(url_b, make.token(bo))

    resp = requests.put(
        f"{url_a}/api/v1/inboxes/{sales.id}/members",
        json={"user_ids": [bo.id]},
        headers=admin,
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    removed = time.monotonic()
    # the change travels through Redis: probe until Ana stops getting the inbox (at most 5 s)
    n = 0
    while True:
        n += 1
        _customer_writes(url_a, sales, f"sales probe {n}")
        seen, leaked = both_saw(bo_feed, ana_feed, f"sales probe {n}")
        assert seen, logs()
        if not leaked:
            break
        assert time.monotonic() - removed < 5, f"Ana still gets the inbox on B\n{logs()}"
    _customer_writes(url_a, sales, "sales after")
    seen, leaked = both_saw(bo_feed, ana_feed, "sales after")
    assert seen and not leaked
    _customer_writes(url_a, billing, "billing still hers")
    assert ana_feed.wait_body("billing still hers"), logs()
