"""A full process refuses one more live connection at once and keeps answering the API.

The real server (``python wsgi.py`` on ``PORT``: gunicorn's gevent worker) with
``MAX_SOCKETS=3``: three agents' sockets connect, the next ones are refused at
the Engine.IO handshake with 503, ``Retry-After`` and the reason, and an API
request is answered meanwhile; once a socket closes, a new one is let in.
"""

from __future__ import annotations

import time

import pytest
import requests
import socketio

from tests.processes import start_web

pytestmark = [pytest.mark.slow]


def test_sockets_past_the_cap_are_refused_at_once_while_the_api_answers(
    make, database_url, tmp_path
):
    agent = make.user(name="Ana")
    make.inbox("messenger", members=[agent])
    token = make.token(agent)
    proc, url = start_web(database_url, tmp_path, "web", MAX_SOCKETS="3")
    # python wsgi.py serves through the production server, on the PORT it was given
    assert "Using worker: gevent" in proc.output()
    assert "development server" not in proc.output()
    clients = [socketio.Client(reconnection=False) for _ in range(5)]
    try:
        connected, refused = [], []
        for client in clients:
            started = time.monotonic()
            try:
                client.connect(
                    url, auth={"token": token}, transports=["websocket"], wait_timeout=10
                )
                connected.append(client)
            except socketio.exceptions.ConnectionError:
                refused.append(time.monotonic() - started)
        assert len(connected) == 3, proc.output()
        assert len(refused) == 2
        assert max(refused) < 2  # refused at once, not left hanging

        # the reason, as a browser's handshake sees it
        started = time.monotonic()
        busy = requests.get(url + "/socket.io/?EIO=4&transport=polling", timeout=5)
        assert time.monotonic() - started < 2
        assert busy.status_code == 503
        assert busy.headers["Retry-After"] == "10"
        assert busy.json()["error"] == "server_busy"
        assert "maximum of 3 live connections" in busy.json()["message"]

        # the API keeps answering while the process holds all the sockets it may
        started = time.monotonic()
        resp = requests.get(
            url + "/api/v1/conversations?limit=25",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        assert resp.status_code == 200
        assert time.monotonic() - started < 2

        # a socket that leaves makes room for the next one
        connected[0].disconnect()
        late = socketio.Client(reconnection=False)
        deadline = time.monotonic() + 10
        while not late.connected and time.monotonic() < deadline:
            try:
                late.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=5)
            except socketio.exceptions.ConnectionError:
                time.sleep(0.2)
        assert late.connected
        late.disconnect()
    finally:
        for client in clients:
            if client.connected:
                client.disconnect()
        proc.stop()
