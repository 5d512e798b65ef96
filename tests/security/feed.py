"""A Socket.IO client that records the live feed it receives, as an attacker's script would."""

from __future__ import annotations

import threading
import time

import socketio


class Feed:
    """One Socket.IO connection and every event it received, in order."""

    def __init__(self, origin: str | None = None, host: str | None = None) -> None:
        """``origin``: the Origin header to send ("" none at all; None the client's default,
        which is the server's own origin over WebSocket and none over long-polling);
        ``host``: the Host header, as a proxy in front would send it."""
        ws: dict = {}
        if origin == "":
            ws["suppress_origin"] = True
        elif origin:
            ws["origin"] = origin
        if host:
            ws["host"] = host
        self.origin, self.host = origin, host
        self.sio = socketio.Client(reconnection=False, websocket_extra_options=ws)
        self.events: list[tuple[str, object]] = []
        self.cond = threading.Condition()
        self.disconnected = threading.Event()

        @self.sio.on("*")
        def any_event(name, data=None):
            with self.cond:
                self.events.append((name, data))
                self.cond.notify_all()

        @self.sio.on("disconnect")
        def on_disconnect(*_args):
            self.disconnected.set()

    def connect(
        self,
        url: str,
        token: str | None = None,
        headers: dict | None = None,
        transport: str = "websocket",
    ) -> Feed:
        """Connect over one transport (no upgrade); raises ConnectionError when refused."""
        headers = dict(headers or {})
        if transport == "polling":  # the WebSocket handshake takes them from the options
            if self.origin:
                headers["Origin"] = self.origin
            if self.host:
                headers["Host"] = self.host
        auth = {"token": token} if token else None
        self.sio.connect(url, auth=auth, headers=headers, transports=[transport], wait_timeout=10)
        return self

    def bodies(self) -> list[str]:
        """The bodies of the ``message.created`` events received so far."""
        with self.cond:
            return [d.get("body") for n, d in self.events if n == "message.created"]

    def wait_body(self, body: str, timeout: float = 5) -> bool:
        """Wait until a ``message.created`` with ``body`` arrives."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while body not in [d.get("body") for n, d in self.events if n == "message.created"]:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def named(self, name: str) -> list:
        """The payloads of the events called ``name`` received so far."""
        with self.cond:
            return [d for n, d in self.events if n == name]

    def wait_for(self, name: str, test, timeout: float = 5) -> bool:
        """Wait until an event ``name`` whose payload passes ``test`` arrives."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not any(n == name and test(d) for n, d in self.events):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def close(self) -> None:
        """Disconnect if still connected."""
        if self.sio.connected:
            self.sio.disconnect()


def both_saw(control: Feed, other: Feed, body: str) -> tuple[bool, bool]:
    """Whether ``control`` received ``body`` (within 5 s) and then whether ``other`` did too.

    ``control`` is allowed to see the event: once it arrived, the same emit has
    reached every room it was sent to, so a short grace is enough for ``other``.
    """
    seen = control.wait_body(body, 5)
    time.sleep(0.5)
    return seen, body in other.bodies()
