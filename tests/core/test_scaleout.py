"""Scale-out: several web processes share live events through Redis."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid

import pytest
import requests
import socketio

from tests.processes import redis_url_or_skip, start_web

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def _signed_message(secret: str, page_id: str, text: str) -> tuple[bytes, dict]:
    body = json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": page_id,
                    "time": int(time.time() * 1000),
                    "messaging": [
                        {
                            "sender": {"id": "psid-77"},
                            "recipient": {"id": page_id},
                            "timestamp": int(time.time() * 1000),
                            "message": {"mid": f"mid.{uuid.uuid4().hex}", "text": text},
                        }
                    ],
                }
            ],
        }
    ).encode()
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Hub-Signature-256": sig}


def test_event_raised_in_one_process_reaches_a_client_of_another(app, make, database_url, tmp_path):
    redis_url = redis_url_or_skip()
    agent = make.user(name="Ana")
    inbox = make.inbox("messenger", members=[agent])
    token = make.token(agent)
    secret, page_id = inbox.config["app_secret"], inbox.route_key
    channel = f"switchboard-test-{uuid.uuid4().hex[:8]}"
    extra = {"REDIS_URL": redis_url, "SOCKETIO_CHANNEL": channel}
    a, url_a = start_web(database_url, tmp_path, "web-a", **extra)
    b, url_b = start_web(database_url, tmp_path, "web-b", **extra)
    client = socketio.Client(reconnection=False)
    got: list[dict] = []
    arrived = threading.Event()

    @client.on("message.created")
    def on_message(data):
        got.append(data)
        arrived.set()

    try:
        try:
            client.connect(url_b, auth={"token": token}, transports=["websocket"], wait_timeout=30)
        except socketio.exceptions.ConnectionError as exc:
            pytest.fail(f"could not connect to process B: {exc}\n{b.output()}")
        body, headers = _signed_message(secret, page_id, "Sent to process A")
        resp = requests.post(url_a + "/webhooks/messenger", data=body, headers=headers, timeout=10)
        assert resp.status_code == 200, resp.text
        assert arrived.wait(10), f"no event reached process B\nA:\n{a.output()}\nB:\n{b.output()}"
        assert got[0]["body"] == "Sent to process A"
    finally:
        client.disconnect()
        a.stop()
        b.stop()
