"""The event bus: live events are queued on the session and sent after commit.

Domain code calls :func:`publish` while it works; nothing leaves the process
until the transaction commits, and a rollback drops the queued events. The
sender (Socket.IO, registered by ``app.realtime``) decides who receives what
from the ``audience``: ``("inbox", id)`` reaches the inbox's members and every
lead; ``("user", id)`` reaches one user.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

Audience = tuple[str, int]


@dataclass(frozen=True)
class Event:
    """One live event: a contract name, its API payload and who may see it."""

    name: str
    payload: Any
    audience: tuple[Audience, ...]


_sinks: list[Callable[[list[Event]], None]] = []
_KEY = "switchboard_events"


def add_sink(sink: Callable[[list[Event]], None]) -> None:
    """Register a receiver of committed events (Socket.IO; tests)."""
    if sink not in _sinks:
        _sinks.append(sink)


def remove_sink(sink: Callable[[list[Event]], None]) -> None:
    """Unregister a receiver."""
    if sink in _sinks:
        _sinks.remove(sink)


def publish(session: Session, name: str, payload: Any, *audience: Audience) -> None:
    """Queue an event to go out when ``session`` commits."""
    session.info.setdefault(_KEY, []).append(Event(name, payload, tuple(audience)))


def dispatch(events: list[Event]) -> None:
    """Hand events to every sink; a failing sink never breaks the request."""
    for sink in list(_sinks):
        try:
            sink(events)
        except Exception:  # noqa: BLE001 - live delivery is best effort after commit
            log.exception("event sink failed")


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    events = session.info.pop(_KEY, None)
    if events:
        dispatch(events)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_KEY, None)
