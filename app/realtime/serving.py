"""How Socket.IO is served: whole WebSocket frames, and a cap on sockets per process.

**Whole frames.** simple-websocket writes each frame with one ``socket.send()``.
A blocking socket writes it all, but under gevent a send on a full buffer may
write only part of the frame and return; the rest is lost and the next frame
lands in the middle of this one (simple-websocket issue #45). Here every write of
a WebSocket connection goes through :class:`WholeFrameSocket`: ``sendall`` under a
per-connection lock, so a frame is written whole and two greenlets (the writer
and the reader answering a ping) never interleave theirs. :func:`install` puts it
in place of Engine.IO's WebSocket class for the server's async mode; it is the one
place the fix lives.

**The cap.** Each open socket costs memory (one greenlet and its buffers), not a
thread, so the limit is memory: ``MAX_SOCKETS`` Engine.IO sessions per process
(``config.default_max_sockets`` sizes it from the memory available). A handshake past
the cap is answered at once with ``503`` and ``Retry-After``, before any upgrade,
and the browser tries again later; requests that are not new sockets pass
untouched. The count is Engine.IO's own registry of sessions in this process,
less those already closed: it shrinks as each socket disconnects. Under gevent
the check and the registration of the new session run without a switch in
between, so the cap is exact.
"""

from __future__ import annotations

import json
import sys
import threading
from urllib.parse import parse_qs

import simple_websocket
from engineio.async_drivers import _websocket_wsgi

RETRY_AFTER_SECONDS = 10


class WholeFrameSocket:
    """A socket whose ``send`` writes everything, one writer at a time."""

    def __init__(self, sock) -> None:
        self._sock = sock
        self._lock = threading.Lock()  # gevent's lock once the process is patched

    def send(self, data: bytes, *args) -> int:
        with self._lock:
            self._sock.sendall(data, *args)
        return len(data)

    sendall = send

    def __getattr__(self, name):
        return getattr(self._sock, name)


class WholeFrameServer(simple_websocket.Server):
    """simple-websocket's server side, writing through :class:`WholeFrameSocket`."""

    def handshake(self):
        # Base.__init__ sets self.sock, then shakes hands (the first write), then starts
        # the reader: wrapping here covers every write the connection will make
        self.sock = WholeFrameSocket(self.sock)
        super().handshake()


class _WholeFrames:
    """Engine.IO's WebSocket adapter with :class:`WholeFrameServer` as its server."""

    def __call__(self, environ, start_response):
        self.ws = WholeFrameServer(environ, **self.server_args)
        ret = self.app(self)
        if self.ws.mode == "gunicorn":
            raise StopIteration()
        if self.ws.mode == "werkzeug":
            raise ConnectionError()
        return ret


class ThreadingWholeFrames(_WholeFrames, _websocket_wsgi.SimpleWebSocketWSGI):
    """For ``async_mode="threading"``."""


def _gevent_class():
    from engineio.async_drivers import gevent as gevent_driver

    base = gevent_driver.WebSocketWSGI
    if not issubclass(base, _websocket_wsgi.SimpleWebSocketWSGI):
        return base  # gevent-websocket serves the sockets itself
    return type("GeventWholeFrames", (_WholeFrames, base), {})


def async_mode() -> str:
    """``gevent`` in a process gevent has patched (gunicorn's gevent worker), else ``threading``."""
    monkey = sys.modules.get("gevent.monkey")
    return "gevent" if monkey is not None and monkey.is_module_patched("socket") else "threading"


def install(eio_server) -> None:
    """Make ``eio_server`` (an ``engineio.Server``) write whole frames."""
    if eio_server.async_mode == "gevent":
        ws_class = _gevent_class()
    elif eio_server.async_mode == "threading":
        ws_class = ThreadingWholeFrames
    else:
        return
    eio_server._async = {**eio_server._async, "websocket": ws_class}


class SocketCap:
    """WSGI middleware: refuse a new Engine.IO session once ``limit`` are open here."""

    def __init__(self, wsgi_app, eio_server, limit: int, path: str = "/socket.io/") -> None:
        self.wsgi_app = wsgi_app
        self.eio = eio_server
        self.limit = limit
        self.path = path
        self.refused = 0

    def open_sockets(self) -> int:
        """Sessions of this process not closed yet (a closed one may wait a moment to be reaped)."""
        return sum(1 for sock in list(self.eio.sockets.values()) if not sock.closed)

    def __call__(self, environ, start_response):
        if (
            environ.get("PATH_INFO", "").startswith(self.path)
            and "sid" not in parse_qs(environ.get("QUERY_STRING", ""))
            and self.open_sockets() >= self.limit
        ):
            self.refused += 1
            body = json.dumps(
                {
                    "error": "server_busy",
                    "message": f"This server holds its maximum of {self.limit} live "
                    "connections; try again shortly.",
                    "retry_after": RETRY_AFTER_SECONDS,
                }
            ).encode()
            start_response(
                "503 Service Unavailable",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    ("Retry-After", str(RETRY_AFTER_SECONDS)),
                    ("Cache-Control", "no-store"),
                ],
            )
            return [body]
        return self.wsgi_app(environ, start_response)
