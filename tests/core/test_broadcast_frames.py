"""Broadcasts written at once: every socket gets every event whole and in order.

Under gevent (``python wsgi.py``, gunicorn) an event for a room is framed once and
written to each socket by the emitting greenlet (``app.realtime.serving.AtOnce``);
what a socket's buffer cannot take is left to that socket's writer. Here a real
server holds three agents over raw WebSockets, read in wire order as a browser
reads them (the python-socketio client runs each event's handler in a thread of
its own, so the order its handlers run in says nothing of the wire): two read all
the time, the third has a tiny receive buffer and stops reading while a burst of
long messages arrives. All offer permessage-deflate as browsers do. The readers
get every message at once; the stalled one, once it reads again, finds every
frame whole and in order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests
from engineio import packet as eio_packet
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage
from wsproto.extensions import PerMessageDeflate

from app.realtime.serving import framed
from tests.processes import start_web

BURST, PER_WEBHOOK = 2000, 100
FILLER = "w" * 1900  # long messages: the stalled socket's buffers fill within the burst


def _signed_batch(inbox, texts: list[str]) -> tuple[bytes, dict]:
    """One customer's messages as one signed Messenger delivery."""
    now_ms = int(time.time() * 1000)
    messaging = [
        {
            "sender": {"id": "psid-burst"},
            "recipient": {"id": inbox.route_key},
            "timestamp": now_ms,
            "message": {"mid": f"mid.{uuid.uuid4().hex}", "text": text},
        }
        for text in texts
    ]
    body = json.dumps(
        {
            "object": "page",
            "entry": [{"id": inbox.route_key, "time": now_ms, "messaging": messaging}],
        }
    ).encode()
    secret = inbox.config["app_secret"].encode()
    sig = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Hub-Signature-256": sig}


def _client(deflate: bool) -> tuple[WSConnection, WSConnection]:
    """A server and a client protocol that shook hands (with permessage-deflate or not)."""
    client, server = WSConnection(ConnectionType.CLIENT), WSConnection(ConnectionType.SERVER)
    extensions = [PerMessageDeflate()] if deflate else []
    server.receive_data(client.send(Request(host="x", target="/", extensions=extensions)))
    list(server.events())
    client.receive_data(server.send(AcceptConnection(extensions=extensions)))
    assert isinstance(next(client.events()), AcceptConnection)
    return server, client


@pytest.mark.parametrize("deflate", [False, True])
@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_a_frame_made_once_reads_back_on_any_connection(size, deflate):
    text = '42["message.created",{"body":"' + "é" * size + '"}]'
    pkt = eio_packet.Packet(eio_packet.MESSAGE, text[1:])
    frame = framed(pkt)
    assert framed(pkt) is frame  # made once per packet, whatever the number of sockets
    _server, client = _client(deflate)
    client.receive_data(frame)
    (event,) = list(client.events())
    assert isinstance(event, TextMessage) and event.message_finished
    assert event.data == text


class RawAgent:
    """An agent's socket over raw TCP (a browser's handshake); ``small_buffer`` makes a
    reader whose buffers fill at once when it stops reading."""

    def __init__(self, url: str, token: str, small_buffer: bool = False) -> None:
        parts = urlsplit(url)
        self.sock = socket.socket()
        if small_buffer:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((parts.hostname, parts.port))
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.texts: list[str] = []
        self.bodies: list[str] = []  # of the message.created events, in wire order
        self._send(
            Request(
                host=parts.netloc,
                target="/socket.io/?EIO=4&transport=websocket",
                extensions=[PerMessageDeflate()],
            )
        )
        self.read_until(lambda: self.texts and self.texts[0].startswith("0"))  # Engine.IO open
        self._send(TextMessage(data="40" + json.dumps({"token": token})))
        self.read_until(lambda: any(t.startswith("40") for t in self.texts))

    def _send(self, event) -> None:
        self.sock.sendall(self.ws.send(event))

    def read_until(self, done, timeout: float = 30) -> None:
        self.sock.settimeout(timeout)
        parts = ""
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"only {len(self.bodies)} messages arrived"
            data = self.sock.recv(65536)
            assert data, "the server closed the connection"
            self.ws.receive_data(data)
            for event in self.ws.events():  # a torn frame raises here
                if isinstance(event, TextMessage):
                    parts += event.data
                    if event.message_finished:
                        self._received(parts)
                        parts = ""

    def _received(self, text: str) -> None:
        if text == "2":  # Engine.IO ping: answered as a browser does
            self._send(TextMessage(data="3"))
        elif text.startswith('42["message.created"'):
            self.bodies.append(json.loads(text[2:])[1]["body"])
        self.texts.append(text)

    def read_in_background(self, count: int) -> threading.Thread:
        """Read until ``count`` messages arrived, in a thread; errors end up in ``self.error``."""
        self.error: BaseException | None = None

        def run():
            try:
                self.read_until(lambda: len(self.bodies) >= count)
            except BaseException as exc:  # reported by the test
                self.error = exc

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


@pytest.mark.slow
def test_every_socket_gets_every_event_whole_and_in_order_while_one_stalls(
    make, database_url, tmp_path
):
    agent = make.user(name="Ana")
    inbox = make.inbox("messenger", members=[agent])
    token = make.token(agent)
    proc, url = start_web(database_url, tmp_path, "web")
    assert "Using worker: gevent" in proc.output()
    expected = [f"burst-{n} {FILLER}" for n in range(BURST)]
    agents: list[RawAgent] = []
    try:
        readers = [RawAgent(url, token) for _ in range(2)]
        agents += readers
        stalled = RawAgent(url, token, small_buffer=True)
        agents.append(stalled)
        threads = [reader.read_in_background(BURST) for reader in readers]
        for start in range(0, BURST, PER_WEBHOOK):  # one customer, one conversation
            body, headers = _signed_batch(inbox, expected[start : start + PER_WEBHOOK])
            resp = requests.post(
                url + "/webhooks/messenger", data=body, headers=headers, timeout=10
            )
            assert resp.status_code == 200, resp.text

        # a socket that does not read holds nobody else up
        for reader, thread in zip(readers, threads, strict=True):
            thread.join(40)
            assert reader.error is None and not thread.is_alive(), (
                f"{len(reader.bodies)} of {BURST}: {reader.error!r}\n{proc.output()[-3000:]}"
            )
            assert reader.bodies == expected

        stalled.read_until(lambda: len(stalled.bodies) >= BURST)
        assert stalled.bodies == expected
    finally:
        for agent_socket in agents:
            agent_socket.sock.close()
        proc.stop()
