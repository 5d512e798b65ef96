"""Telling every web process that a user's access changed, so each re-checks its own sockets.

Only the process that holds a socket knows whose it is, so the news has to reach
them all. python-socketio's Redis queue carries disconnects and room changes by
socket id only, so the news goes on a Redis channel of its own
(``<SOCKETIO_CHANNEL>:access``), read by a thread in each web process. One
process without Redis handles it where it happened. A process that missed the
news (Redis briefly away, a CLI change on the embedded default) catches up on
the socket's next heartbeat, which re-checks too.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable

log = logging.getLogger(__name__)

Handler = Callable[[int, bool], None]  # (user id, cut every socket of theirs)


class LocalAccessBus:
    """One process: the change is handled at once, here."""

    def __init__(self, handle: Handler) -> None:
        self.handle = handle

    def publish(self, user_id: int, cut: bool = False) -> None:
        """Re-check (or, with ``cut``, close) the user's sockets."""
        _safely(self.handle, user_id, cut)

    def listen(self) -> None:
        """Nothing to read from."""


class RedisAccessBus:
    """Several processes: handled here at once, and published for the others."""

    def __init__(self, client, channel: str, handle: Handler, start_task) -> None:
        self.r = client
        self.channel = channel
        self.handle = handle
        self.start_task = start_task
        self.host_id = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._listening = False

    def publish(self, user_id: int, cut: bool = False) -> None:
        """Re-check the user's sockets here and tell the other processes to."""
        _safely(self.handle, user_id, cut)
        message = json.dumps({"host": self.host_id, "user": user_id, "cut": cut})
        try:
            self.r.publish(self.channel, message)
        except Exception:  # noqa: BLE001 - the change is committed; heartbeats catch up
            log.exception(
                "could not tell the other processes that user %s's access changed", user_id
            )

    def listen(self) -> None:
        """Start reading the channel, once per process (called before a socket is let in).

        Returns once Redis confirmed the subscription, so no change committed
        after a socket's rooms were read can go unheard.
        """
        with self._lock:
            if self._listening:
                return
            try:
                pubsub = self.r.pubsub()
                pubsub.subscribe(self.channel)
                pubsub.get_message(timeout=5)  # the subscription's confirmation
            except Exception:  # noqa: BLE001 - sockets still work; heartbeats re-check them
                log.exception("cannot read access changes from Redis; will try again")
                return
            self._listening = True
        self.start_task(self._run, pubsub)

    def _run(self, pubsub) -> None:
        while True:
            try:
                message = pubsub.get_message(timeout=30)
            except Exception:  # noqa: BLE001 - Redis went away: redis-py reconnects and resubscribes
                log.exception("reading access changes from Redis failed; retrying")
                time.sleep(1)
                continue
            if not message or message.get("type") != "message":
                continue
            try:
                data = json.loads(message["data"])
                user_id, cut = int(data["user"]), bool(data.get("cut"))
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring a malformed access change: %r", message.get("data"))
                continue
            if data.get("host") != self.host_id:
                _safely(self.handle, user_id, cut)


def _safely(handle: Handler, user_id: int, cut: bool) -> None:
    try:
        handle(user_id, cut)
    except Exception:  # noqa: BLE001 - never break the request that changed access
        log.exception("re-checking the sockets of user %s failed", user_id)
