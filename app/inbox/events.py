"""The event bus: live events are queued on the session and sent after commit.

Domain code says what happened while it works, in two ways:

- :func:`changed` marks a model object (a conversation, a message) under an event
  name; the domain never builds the API object itself. Just before the
  transaction commits (after a flush, while the session can still load what the
  payload needs) each marked object is serialised once, by the serialiser the
  web layer registered for its class (:func:`serialiser`), from its final state.
- :func:`publish` queues an event whose payload is a plain dict (typing,
  presence, counts, notifications).

Marks of one object collapse, so a transaction sends one event per object:

- the event goes out at the position of the object's LAST mark, so that it
  follows every event its payload accounts for (a ``message.created`` comes
  before the ``conversation.updated`` that follows it, as clients expect);
- ``<kind>.created`` and ``<kind>.updated`` of one object make one event, named
  ``<kind>.created`` if the object was created in this transaction (a new
  conversation that is also assigned and greeted is one ``conversation.created``
  with its final state), else ``<kind>.updated``; any other event name collapses
  only with marks of the same name;
- the audiences of the collapsed marks are merged, in order.

Nothing leaves the process until the transaction commits, and a rollback drops
the queued events and marks. The sender (Socket.IO, registered by
``app.realtime``) decides who receives what from the ``audience``:
``("inbox", id)`` reaches the inbox's members and every lead; ``("user", id)``
reaches one user.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

Audience = tuple[str, int]
Serialiser = Callable[[Any], Any]


@dataclass(frozen=True)
class Event:
    """One live event: a contract name, its API payload and who may see it."""

    name: str
    payload: Any
    audience: tuple[Audience, ...]


@dataclass(frozen=True)
class _Mark:
    """A changed object waiting to be serialised at commit."""

    name: str
    obj: Any
    audience: tuple[Audience, ...]


_sinks: list[Callable[[list[Event]], None]] = []
_serialisers: dict[type, Serialiser] = {}
_KEY = "switchboard_events"
#: Event names that collapse into one event per object (``created`` wins).
_LIFECYCLE = ("created", "updated")


def add_sink(sink: Callable[[list[Event]], None]) -> None:
    """Register a receiver of committed events (Socket.IO; tests)."""
    if sink not in _sinks:
        _sinks.append(sink)


def remove_sink(sink: Callable[[list[Event]], None]) -> None:
    """Unregister a receiver."""
    if sink in _sinks:
        _sinks.remove(sink)


def serialiser(cls: type, fn: Serialiser) -> None:
    """Register how objects of ``cls`` (and its subclasses) become event payloads.

    The app factory registers the API objects of the web layer; the domain never
    imports them.
    """
    _serialisers[cls] = fn


def serialiser_for(cls: type) -> Serialiser | None:
    """The serialiser registered for ``cls`` or its nearest base class, if any."""
    for base in cls.__mro__:
        fn = _serialisers.get(base)
        if fn is not None:
            return fn
    return None


def publish(session: Session, name: str, payload: Any, *audience: Audience) -> None:
    """Queue an event with a ready payload (a plain dict) to go out when ``session`` commits."""
    session.info.setdefault(_KEY, []).append(Event(name, payload, tuple(audience)))


def changed(session: Session, name: str, obj: Any, *audience: Audience) -> None:
    """Mark ``obj`` as changed: event ``name`` goes out with its API object after commit.

    The payload is built just before commit from the object's final state, once
    per object and transaction; see the module docstring for how marks collapse.
    """
    if serialiser_for(type(obj)) is None:
        raise LookupError(f"no event serialiser registered for {type(obj).__name__}")
    session.info.setdefault(_KEY, []).append(_Mark(name, obj, tuple(audience)))


def dispatch(events: list[Event]) -> None:
    """Hand events to every sink; a failing sink never breaks the request."""
    for sink in list(_sinks):
        try:
            sink(events)
        except Exception:  # noqa: BLE001 - live delivery is best effort after commit
            log.exception("event sink failed")


def _identity(obj: Any) -> tuple:
    """What makes two marked objects the same row (the Python object while it has no id)."""
    ident = getattr(obj, "id", None)
    return (type(obj), ident) if ident is not None else (type(obj), "object", id(obj))


def _group(name: str) -> str:
    """Names whose marks collapse together: ``conversation.created``/``.updated`` are one."""
    kind, _, verb = name.rpartition(".")
    return f"{kind}.*" if kind and verb in _LIFECYCLE else name


def resolve(queue: list[Event | _Mark]) -> list[Event]:
    """Turn a transaction's queue into events: marks collapse and are serialised once each.

    Plain events keep their places; each group of marks (one object, one
    :func:`_group`) becomes one event at the place of its last mark.
    """
    last: dict[tuple, int] = {}
    marks: dict[tuple, list[_Mark]] = {}
    for i, item in enumerate(queue):
        if isinstance(item, _Mark):
            key = (_identity(item.obj), _group(item.name))
            last[key] = i
            marks.setdefault(key, []).append(item)
    at_end = {i: key for key, i in last.items()}
    payloads: dict[tuple, Any] = {}
    out: list[Event] = []
    for i, item in enumerate(queue):
        if isinstance(item, Event):
            out.append(item)
            continue
        key = at_end.get(i)
        if key is None:  # an earlier mark of an object marked again later
            continue
        group = marks[key]
        names = [m.name for m in group]
        name = next((n for n in names if n.endswith(".created")), names[-1])
        audience = tuple(dict.fromkeys(a for m in group for a in m.audience))
        ident = key[0]
        if ident not in payloads:
            obj = item.obj  # the object last marked: the final state
            payloads[ident] = serialiser_for(type(obj))(obj)
        out.append(Event(name, payloads[ident], audience))
    return out


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    """Serialise the marked objects while the session can still load (after commit it cannot)."""
    if session.in_nested_transaction():  # a savepoint: the transaction goes on
        return
    queue = session.info.get(_KEY)
    if not queue or not any(isinstance(item, _Mark) for item in queue):
        return
    inserted = {id(obj) for obj in session.new}
    session.flush()
    _reload(session, [m.obj for m in queue if isinstance(m, _Mark) and id(m.obj) not in inserted])
    session.info[_KEY] = resolve(queue)


def _reload(session: Session, objs: list) -> None:
    """Read the marked rows again, one query per class, before they are serialised.

    The session may have loaded a row before another transaction changed it (a
    conversation read, then assigned by a teammate's reply, then marked read here):
    serialised from memory, the event would carry the old assignee and undo the
    teammate's change in every browser. Everything this transaction wrote is flushed,
    so reading again loses nothing and gives the row as it will be once committed.
    """
    by_mapper: dict = {}
    for obj in objs:
        state = sa.inspect(obj)
        if state.persistent and state.identity is not None and len(state.identity) == 1:
            by_mapper.setdefault(state.mapper, set()).add(state.identity[0])
    for mapper, ids in by_mapper.items():
        pk = mapper.primary_key[0]
        query = sa.select(mapper).where(pk.in_(ids)).execution_options(populate_existing=True)
        session.scalars(query).unique().all()


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    """Send what the transaction queued (a released savepoint sends nothing yet)."""
    if session.in_nested_transaction():
        return
    queue = session.info.pop(_KEY, None)
    if not queue:
        return
    events = [item for item in queue if isinstance(item, Event)]
    if len(events) != len(queue):  # marked during the final flush: too late to load anything
        late = [(item.name, _identity(item.obj)) for item in queue if isinstance(item, _Mark)]
        log.error("objects marked after the commit began were not sent: %r", late)
    if events:
        dispatch(events)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_KEY, None)
