"""The one background loop: a thread that runs a step inside an app context, again and again.

Used by the intake's drainer and the outbox worker. Between runs it waits for
``interval`` seconds or until woken (:meth:`Loop.wake`); a step that says it
found work (returns something true) runs again at once. An exception in a step
is logged and the loop goes on: the work it left stays queued for the next run.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask

log = logging.getLogger(__name__)


class Loop(threading.Thread):
    """Runs ``step()`` in ``app``'s context until :meth:`stop` (a daemon thread).

    ``wait_first`` waits before the first run (a loop that is woken when there
    is work); ``gather`` is a pause after a wake-up that comes within ``gather`` of a
    run that found work, so a burst is handled in one run while a lone piece of work
    (a customer writing on a quiet afternoon) is handled at once.
    """

    def __init__(
        self,
        app: Flask,
        step: Callable[[], Any],
        interval: float,
        *,
        name: str,
        wait_first: bool = False,
        gather: float = 0.0,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.app = app
        self.step = step
        self.interval = interval
        self.wait_first = wait_first
        self.gather = gather
        self.wake_event = threading.Event()
        self.stop_event = threading.Event()
        self.last_busy = -math.inf  # when a run that found work ended (monotonic)

    def run(self) -> None:
        """Run the step; when it found nothing, wait for a wake-up or the interval."""
        if self.wait_first:
            self._pause()
        while not self.stop_event.is_set():
            try:
                with self.app.app_context():
                    busy = self.step()
            except Exception:  # noqa: BLE001 - keep looping; the work stays queued
                log.exception("%s: loop error", self.name)
                busy = False
            if busy:
                self.last_busy = time.monotonic()
            else:
                self._pause()

    def _pause(self) -> None:
        woken = self.wake_event.wait(self.interval)
        if woken and self.gather > 0 and time.monotonic() - self.last_busy < self.gather:
            time.sleep(self.gather)
        self.wake_event.clear()

    def wake(self) -> None:
        """Run the step soon (now, unless it is running)."""
        self.wake_event.set()

    def stop(self) -> None:
        """End the loop after the current run."""
        self.stop_event.set()
        self.wake_event.set()
