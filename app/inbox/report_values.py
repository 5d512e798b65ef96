"""The first responses and closes of a report's period, as numpy columns.

Both are recorded as they happen, at the 15-minute slot they happen in (a first response
at its answer, a close at the close), so the rows of a UTC day that has ended do not
change any more, unless history is deleted (a deleted conversation's or inbox's rows go
with it) or a user is (their rows lose the agent).

Each process keeps the columns of the settled days it was last asked for
(:class:`_Settled`), with the rows of the current UTC day read in full at every report.
At most once a minute a report checks the kept columns against the database with a count
and sums over the same index (a deletion or a late insert changes the count, a lost
agent a sum) and reads them again if they differ: history deleted or recorded late (a
seed) shows within a minute. A year's report reads a hundred thousand values once a
minute at most instead of at every request.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import now
from app.inbox.report_rollups import DAY, Period, offsets
from app.inbox.report_stats import int_columns
from app.models import ReportEvent, ReportWait
from app.models.report import NOBODY, QUARTERS, slot_of


@dataclass(frozen=True)
class Source:
    """Where a kind of value is read: its seconds, slot, inbox and agent, and which rows."""

    name: str
    table: type
    seconds: str
    slot: str
    agent: str
    which: tuple

    def columns(self) -> tuple:
        t = self.table
        return (
            sa.func.coalesce(getattr(t, self.seconds), 0),
            getattr(t, self.slot),
            t.inbox_id,
            sa.func.coalesce(getattr(t, self.agent), NOBODY),
        )

    def where(self, lo: int, hi: int) -> tuple:
        column = getattr(self.table, self.slot)
        return (*self.which, column >= lo, column < hi)


#: A customer's first answer: seconds within business hours, at the slot it was given.
FIRSTS = Source(
    "firsts", ReportWait, "business_s", "answered_slot", "agent_id", (ReportWait.first.is_(True),)
)
#: A close: seconds since the conversation started or was last reopened.
CLOSES = Source(
    "closes", ReportEvent, "seconds", "slot", "user_id", (ReportEvent.kind == "closed",)
)


def _read(session: Session, source: Source, lo: int, hi: int) -> list[np.ndarray]:
    """Seconds, slot, inbox and agent of the rows in slots ``[lo, hi)``."""
    query = sa.select(*source.columns()).where(*source.where(lo, hi))
    return int_columns(session, query)


def _sums(columns: list[np.ndarray]) -> tuple[int, ...]:
    seconds, _slots, inboxes, agents = columns
    return (len(seconds), int(seconds.sum()), int(inboxes.sum()), int(agents.sum()))


def _stored_sums(session: Session, source: Source, lo: int, hi: int) -> tuple[int, ...]:
    seconds, _slot, inbox, agent = source.columns()
    row = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(seconds), 0),
            sa.func.coalesce(sa.func.sum(inbox), 0),
            sa.func.coalesce(sa.func.sum(agent), 0),
        ).where(*source.where(lo, hi))
    ).one()
    return tuple(int(n) for n in row)


@dataclass
class _Kept:
    columns: list[np.ndarray]
    checked: float  # time.monotonic() of the last check


class _Settled:
    """The columns of a few ranges of settled slots, per source (most recent last)."""

    KEEP = 4
    #: How often kept columns are checked against the database.
    CHECK_SECONDS = 60.0

    def __init__(self) -> None:
        self.ranges: OrderedDict[tuple, _Kept] = OrderedDict()
        self.lock = threading.Lock()

    def _valid(self, session: Session, source: Source, lo: int, hi: int, kept: _Kept) -> bool:
        if time.monotonic() - kept.checked < self.CHECK_SECONDS:
            return True
        if _stored_sums(session, source, lo, hi) != _sums(kept.columns):
            return False
        kept.checked = time.monotonic()
        return True

    def columns(self, session: Session, source: Source, lo: int, hi: int) -> list[np.ndarray]:
        key = (source.name, lo, hi)
        with self.lock:
            kept = self.ranges.get(key)
        if kept is not None and self._valid(session, source, lo, hi, kept):
            with self.lock:
                self.ranges.move_to_end(key)
            return kept.columns
        fresh = _Kept(_read(session, source, lo, hi), time.monotonic())
        with self.lock:
            self.ranges[key] = fresh
            while len(self.ranges) > self.KEEP:
                self.ranges.popitem(last=False)
        return fresh.columns


_SETTLED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _settled(session: Session) -> _Settled:
    """The cache of the database the session talks to."""
    engine = session.get_bind()
    engine = getattr(engine, "engine", engine)  # a Connection's Engine
    cache = _SETTLED.get(engine)
    if cache is None:
        cache = _SETTLED[engine] = _Settled()
    return cache


def period_columns(session: Session, source: Source, p: Period) -> list[np.ndarray]:
    """Seconds, slot, inbox and agent (:data:`NOBODY` for none) of the period's rows,
    narrowed to its inboxes and agent."""
    lo, hi = slot_of(p.lo), slot_of(p.hi)
    today = slot_of(now()) // QUARTERS * QUARTERS
    cut = min(max(lo, today), hi)  # [lo, cut) has settled, [cut, hi) may still change
    parts = []
    if lo < cut:
        parts.append(_settled(session).columns(session, source, lo, cut))
    if cut < hi:
        parts.append(_read(session, source, cut, hi))
    columns = [np.concatenate(c) for c in zip(*parts, strict=True)]
    keep = None
    if p.inbox_ids is not None:
        keep = np.isin(columns[2], np.array(p.inbox_ids, dtype=np.int64))
    if p.agent_id is not None:
        mine = columns[3] == p.agent_id
        keep = mine if keep is None else keep & mine
    return columns if keep is None else [c[keep] for c in columns]


def local_day_of(slots: np.ndarray, p: Period) -> np.ndarray:
    """The local day (days since the epoch) of each slot, in the period's time zone."""
    spans = offsets(p)
    starts = np.array([start for start, _ in spans], dtype=np.int64)
    shifts = np.array([off for _, off in spans], dtype=np.int64)
    index = np.maximum(np.searchsorted(starts, slots, side="right") - 1, 0)
    return (slots + shifts[index]) // DAY
