"""Whether this process runs under gevent, and letting its loop turn.

Under gunicorn's gevent worker (``python wsgi.py`` too) every request, socket and
background job is a greenlet of one loop. A greenlet runs until it waits, and
SQLite calls never wait: code that must let others in says so with
:func:`next_turn`.
"""

from __future__ import annotations

import sys


def gevent_patched() -> bool:
    """gevent has patched this process (its sockets cooperate)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("socket")


def next_turn() -> None:
    """Under gevent, resume on the loop's next turn, after it polled for I/O; else nothing.

    Any positive time does it: ``sleep(0)`` may resume this greenlet before the loop
    looks at its sockets, so a request that just connected would still wait.
    """
    if gevent_patched():
        import gevent

        gevent.sleep(1e-6)
