"""WebSocket frames arrive whole even when the socket writes only a few bytes per send().

Under gevent a ``send()`` on a full socket buffer may write part of a frame and
return. The fake socket here always does: each ``send()`` writes at most 7 bytes.
simple-websocket as released loses the rest of every frame on such a socket;
``app.realtime.serving.WholeFrameServer`` writes every frame whole, one writer at
a time, so a browser reads every event intact and in order.
"""

from __future__ import annotations

import socket
import threading

import pytest
import simple_websocket
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from app.realtime.serving import WholeFrameServer

DRIBBLE = 7


class Dribbling:
    """A socket whose ``send()`` writes at most a few bytes, as a busy non-blocking one may."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def send(self, data: bytes, *_flags) -> int:
        return self._sock.send(bytes(data[:DRIBBLE]))

    def sendall(self, data: bytes, *_flags) -> None:
        view = memoryview(data)
        while view:
            view = view[self.send(view) :]

    def __getattr__(self, name):
        return getattr(self._sock, name)


def _pair(server_class):
    """A server-side WebSocket over a dribbling socket, and the client's end and protocol."""
    server_sock, client_sock = socket.socketpair()
    client = WSConnection(ConnectionType.CLIENT)
    request = client.send(Request(host="inbox.example", target="/socket.io/"))
    environ = {"werkzeug.socket": Dribbling(server_sock)}
    for line in request.decode().split("\r\n")[1:]:
        if ": " in line:
            name, value = line.split(": ", 1)
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    ws = server_class(environ)
    return ws, client_sock, client


def _read_messages(client_sock, client, expected: int, timeout: float = 10) -> list[str] | None:
    """Every text message the client's end receives until ``expected`` arrived (or it stops).

    None when the handshake's answer never arrived whole.
    """
    client_sock.settimeout(timeout)
    messages, accepted, parts = [], False, ""
    while len(messages) < expected:
        try:
            data = client_sock.recv(65536)
        except TimeoutError:
            break
        if not data:
            break
        client.receive_data(data)
        try:
            for event in client.events():
                if isinstance(event, AcceptConnection):
                    accepted = True
                elif isinstance(event, TextMessage):
                    parts += event.data
                    if event.message_finished:
                        messages.append(parts)
                        parts = ""
        except Exception:  # noqa: BLE001 - a corrupted stream: what arrived is the answer
            break
    return messages if accepted else None


def _events(writer: int, count: int) -> list[str]:
    return [
        f'42["message.created",{{"w":{writer},"n":{n},"body":"{"x" * (40 + 97 * n % 3000)}"}}]'
        for n in range(count)
    ]


def test_released_simple_websocket_loses_frames_on_a_partial_send():
    ws, client_sock, client = _pair(simple_websocket.Server)
    try:
        sent = _events(0, 5)
        for text in sent:
            ws.send(text)
        assert _read_messages(client_sock, client, len(sent), timeout=1) != sent
    finally:
        ws.connected = False
        client_sock.close()


def test_every_frame_arrives_whole_and_in_order_from_concurrent_writers():
    ws, client_sock, client = _pair(WholeFrameServer)
    sent = {writer: _events(writer, 40) for writer in (1, 2, 3)}
    try:
        writers = [
            threading.Thread(target=lambda texts=texts: [ws.send(t) for t in texts])
            for texts in sent.values()
        ]
        for t in writers:
            t.start()
        received = _read_messages(client_sock, client, 120)
        for t in writers:
            t.join(5)
    finally:
        ws.close()
        client_sock.close()
    assert len(received) == 120
    for writer, texts in sent.items():
        # each writer's events arrive intact, in the order it sent them
        assert [m for m in received if f'"w":{writer},' in m] == texts


@pytest.mark.parametrize("size", [1, 126, 65536 + 3])
def test_frames_of_every_length_class_arrive_whole(size):
    ws, client_sock, client = _pair(WholeFrameServer)
    writer = threading.Thread(target=ws.send, args=("y" * size,))
    try:
        writer.start()  # a long frame fills the socket's buffer until the client reads
        assert _read_messages(client_sock, client, 1) == ["y" * size]
        writer.join(5)
    finally:
        ws.close()
        client_sock.close()
