"""What reports read of the UTC days that have ended, kept in memory between reports.

Report facts are recorded as things happen, at the 15-minute slot they happen in, so
what a day that has ended holds does not change any more, unless history is deleted (a
deleted conversation's or inbox's facts go with it), a user is (their facts lose the
agent) or facts are recorded late (a seed, a migration's backfill).

Each process keeps, per database, the last few reads of such days (:func:`kept`) and
uses them for the reports that ask the same again; the current UTC day is always read.
At most once a minute a report checks a kept read against the database by a digest
(counts and sums over the same rows, read from an index) and reads it again when they
differ: history deleted or recorded late shows within a minute.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from app.clock import now
from app.models.report import QUARTERS, slot_of

T = TypeVar("T")


def settled_day() -> int:
    """The current UTC day (days since the epoch): the days before it have ended."""
    return slot_of(now()) // QUARTERS


@dataclass
class _Kept:
    value: Any
    digest: Hashable
    checked: float  # time.monotonic() of the last check


class Kept:
    """The reads of one database, the most recently used last."""

    KEEP = 8
    #: How often a kept read is checked against the database.
    CHECK_SECONDS = 60.0

    def __init__(self) -> None:
        self.reads: OrderedDict[Hashable, _Kept] = OrderedDict()
        self.lock = threading.Lock()

    def get(
        self,
        key: Hashable,
        load: Callable[[], T],
        digest: Callable[[T], Hashable],
        stored: Callable[[], Hashable],
    ) -> T:
        with self.lock:
            kept = self.reads.get(key)
        if kept is not None:
            fresh = time.monotonic() - kept.checked < self.CHECK_SECONDS
            if fresh or stored() == kept.digest:
                if not fresh:
                    kept.checked = time.monotonic()
                with self.lock:
                    self.reads.move_to_end(key)
                return kept.value
        value = load()
        with self.lock:
            self.reads[key] = _Kept(value, digest(value), time.monotonic())
            while len(self.reads) > self.KEEP:
                self.reads.popitem(last=False)
        return value


_KEPT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def kept(
    session: Session,
    key: Hashable,
    load: Callable[[], T],
    digest: Callable[[T], Hashable],
    stored: Callable[[], Hashable],
) -> T:
    """``load()``, or what it returned before for ``key`` in this database.

    ``key`` must name everything the read depends on (its days among them, all ended);
    ``digest(value)`` and ``stored()`` (the same digest read from the database, cheaply)
    tell whether a kept value is still right.
    """
    engine = session.get_bind()
    engine = getattr(engine, "engine", engine)  # a Connection's Engine
    cache = _KEPT.get(engine)
    if cache is None:
        cache = _KEPT[engine] = Kept()
    return cache.get(key, load, digest, stored)
