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

**Broadcasts written at once.** An event for a room goes to every socket in it.
Engine.IO queues it for each socket's writer greenlet, which wakes, frames it and
writes it: with a thousand sockets that is a thousand switches and framings per
event, and a request arriving meanwhile waits behind all of them. Under gevent,
:func:`install` lets the emitting greenlet write the frame itself whenever the
socket has nothing queued and its writer is idle (then nothing can be ahead of
it): one framing per event, shared by every socket, and a non-blocking write.
What the socket's buffer cannot take at once is queued for the writer as it is,
so order is kept and a slow reader never holds the others up. The events of one
commit reach each socket in one write (:meth:`AtOnce.together`), and a long
broadcast pauses every few dozen writes so that requests are served meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import struct
import threading
from urllib.parse import parse_qs

import simple_websocket
from engineio.async_drivers import _websocket_wsgi

from app.cooperative import gevent_patched, next_turn

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

    def busy(self) -> bool:
        """A frame is being written (its writer waits for the buffer to drain)."""
        return self._lock.locked()

    def send_now(self, data: bytes) -> int:
        """Write what the buffer takes without waiting (gevent); how many bytes went."""
        raw = getattr(self._sock, "_sock", None)  # gevent's wrapped OS socket, non-blocking
        if raw is None:
            return 0
        try:
            return raw.send(data)
        except OSError:  # full (or gone: the writer finds out and closes the connection)
            return 0

    def __getattr__(self, name):
        return getattr(self._sock, name)


class WholeFrameServer(simple_websocket.Server):
    """simple-websocket's server side, writing through :class:`WholeFrameSocket`."""

    def handshake(self):
        # Base.__init__ sets self.sock, then shakes hands (the first write), then starts
        # the reader: wrapping here covers every write the connection will make
        self.sock = WholeFrameSocket(self.sock)
        super().handshake()

    def send(self, data):
        if isinstance(data, Frame):  # framed already (the rest of a frame written at once)
            if not self.connected:
                raise simple_websocket.ConnectionClosed(self.close_reason, self.close_message)
            self.sock.send(data)
            return
        super().send(data)

    def idle(self, eio_socket) -> bool:
        """Nothing of this socket is queued or being written, so a frame written now from
        another greenlet cannot overtake one (under gevent nothing runs between a writer
        taking a packet from the queue and writing it)."""
        return (
            self.connected
            and not eio_socket.closed
            and eio_socket.upgraded
            and not eio_socket.upgrading
            and eio_socket.queue.empty()
            and not self.sock.busy()
        )

    def write_now(self, eio_socket, data: bytes) -> None:
        """Write the frames ``data`` of an :meth:`idle` socket without waiting; what its
        buffer does not take is queued for its writer."""
        if not eio_socket.check_ping_timeout():
            return  # gone quiet: being closed, as Engine.IO drops a packet then
        sent = self.sock.send_now(data)
        if sent < len(data):
            eio_socket.queue.put(_Rest(Frame(data[sent:])))


class Frame(bytes):
    """Bytes of WebSocket frames, written as they are."""


class _Rest:
    """The unwritten end of a frame, queued for the socket's writer (which calls ``encode``)."""

    def __init__(self, data: Frame) -> None:
        self.data = data

    def encode(self) -> Frame:
        return self.data


def framed(pkt) -> bytes:
    """``pkt`` as one unmasked, uncompressed WebSocket frame (RFC 6455 5.2), made once per
    packet: a broadcast sends the same packet object to every socket."""
    frame = getattr(pkt, "sb_frame", None)
    if frame is None:
        data = pkt.encode()
        opcode = 0x82 if isinstance(data, bytes) else 0x81  # FIN + binary / text
        payload = data if isinstance(data, bytes) else data.encode()
        size = len(payload)
        if size < 126:
            head = struct.pack("!BB", opcode, size)
        elif size < 1 << 16:
            head = struct.pack("!BBH", opcode, 126, size)
        else:
            head = struct.pack("!BBQ", opcode, 127, size)
        frame = pkt.sb_frame = head + payload
    return frame


class _WholeFrames:
    """Engine.IO's WebSocket adapter with :class:`WholeFrameServer` as its server."""

    def __call__(self, environ, start_response):
        self.ws = WholeFrameServer(environ, **self.server_args)
        eio_socket = getattr(self.app, "__self__", None)  # the handler is the socket's method
        if eio_socket is not None:
            eio_socket.sb_ws = self.ws
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
    return "gevent" if gevent_patched() else "threading"


def install(sio_server) -> None:
    """Make ``sio_server`` (a ``socketio.Server``) write whole frames, broadcasts at once."""
    eio_server = sio_server.eio
    if eio_server.async_mode == "gevent":
        ws_class = _gevent_class()
        sio_server.sb_at_once = AtOnce(sio_server)
    elif eio_server.async_mode == "threading":
        ws_class = ThreadingWholeFrames
    else:
        return
    eio_server._async = {**eio_server._async, "websocket": ws_class}


class AtOnce:
    """Under gevent: broadcasts written by the emitting greenlet (see the module's docstring).

    Emits take turns (a lock): one may let other greenlets run every ``every`` writes
    (a request waits a few milliseconds, not a whole broadcast), and no other emit can
    slip a later event in front of its frames meanwhile. Within :meth:`together`, the
    frames of each socket are written in one piece at the end (the events of one
    commit: one write and one wake-up of the browser instead of one per event).
    """

    def __init__(self, sio_server, every: int = 50) -> None:
        self.eio = sio_server.eio
        self.every = every
        self.written = 0  # writes made at once
        self._send_packet = self.eio.send_packet
        self._emit = sio_server.manager.emit
        self._turn = threading.RLock()  # gevent's once the process is patched
        self._emitting = False
        self._held: dict | None = None  # within together(): socket -> (session, frames)
        self.eio.send_packet = self.send_packet
        sio_server.manager.emit = self.emit

    def emit(self, *args, **kwargs):
        with self._turn:
            outer, self._emitting = self._emitting, True
            try:
                return self._emit(*args, **kwargs)
            finally:
                self._emitting = outer

    @contextlib.contextmanager
    def together(self):
        """Hold the frames emitted within the block; write each socket's in one piece."""
        with self._turn:
            if self._held is not None:  # within an outer block: that one writes
                yield
                return
            self._held = {}
            outer, self._emitting = self._emitting, True
            try:
                yield
            finally:
                held, self._held = self._held, None
                try:
                    for ws, (eio_socket, frames) in held.items():
                        self._write(ws, eio_socket, b"".join(frames))
                finally:
                    self._emitting = outer

    def send_packet(self, sid, pkt) -> None:
        eio_socket = self.eio.sockets.get(sid)
        ws = getattr(eio_socket, "sb_ws", None)
        if ws is not None and self._held is not None:
            entry = self._held.get(ws)
            if entry is not None:  # frames held already: this one goes after them
                entry[1].append(framed(pkt))
                return
            if ws.idle(eio_socket):
                self._held[ws] = (eio_socket, [framed(pkt)])
                return
        elif ws is not None and ws.idle(eio_socket):
            ws.write_now(eio_socket, framed(pkt))
            self._paced()
            return
        self._send_packet(sid, pkt)

    def _write(self, ws, eio_socket, data: bytes) -> None:
        """Write a socket's held frames; behind what was queued while the flush paused."""
        if ws.idle(eio_socket):
            ws.write_now(eio_socket, data)
        elif ws.connected and not eio_socket.closed:  # a ping went first while we paused
            eio_socket.queue.put(_Rest(Frame(data)))
        self._paced()

    def _paced(self) -> None:
        """Count a write; within an emit, let the loop turn every ``every`` of them."""
        self.written += 1
        if self._emitting and self.written % self.every == 0:
            next_turn()


def together(sio_server):
    """A block whose live events reach each socket in one write (gevent; else as they come)."""
    at_once = getattr(sio_server, "sb_at_once", None)
    return at_once.together() if at_once is not None else contextlib.nullcontext()


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
