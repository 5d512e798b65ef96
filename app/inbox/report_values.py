"""The first responses and closes of a report's period, as numpy columns.

Those of the days that have ended are kept between reports (:mod:`report_cache`): a
year's report reads its hundred thousand values once, not at every request.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.inbox.report_cache import kept, settled_day
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
    """Seconds, slot, inbox and agent of the rows in slots ``[lo, hi)`` (32-bit, as their
    columns are: half the memory kept)."""
    query = sa.select(*source.columns()).where(*source.where(lo, hi))
    return [c.astype(np.int32) for c in int_columns(session, query)]


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


def period_columns(session: Session, source: Source, p: Period) -> list[np.ndarray]:
    """Seconds, slot, inbox and agent (:data:`NOBODY` for none) of the period's rows,
    narrowed to its inboxes and agent."""
    lo, hi = slot_of(p.lo), slot_of(p.hi)
    cut = min(max(lo, settled_day() * QUARTERS), hi)  # [lo, cut) has ended
    parts = []
    if lo < cut:
        parts.append(
            kept(
                session,
                (source.name, lo, cut),
                lambda: _read(session, source, lo, cut),
                _sums,
                lambda: _stored_sums(session, source, lo, cut),
            )
        )
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
