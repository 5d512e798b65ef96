"""What a platform shows customers about how fast a business answers, as its adapter's rule.

An adapter sets ``badge`` to one of these (``None``: the platform shows nothing). Each
rule reads the customers' waits of one inbox (:class:`Wait`, from ``report_waits``) and
says where the inbox stands, as the platform computes it:

- :class:`Responsiveness` (Meta, Messenger): over the last 7 days, the share of
  customers answered, the median response time, and the "very responsive" badge,
  which Meta gives a Page that answers 90 % of messages within 15 minutes.
- :class:`ResponseEstimate` (Google): the estimated response time Google shows, a
  recency-weighted average over 90 days of response times counted within business
  hours; and the customers left unanswered past 24 hours (Google may switch messaging
  off for such a business).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.channels.base import N_


@dataclass(frozen=True)
class Wait:
    """One customer's wait: when it began, when (and how fast) a person answered."""

    started_at: datetime
    answered: bool
    wait_s: int | None  # wall clock
    business_s: int | None  # inside business hours


@dataclass(frozen=True)
class Responsiveness:
    """Meta's "very responsive": ``min_rate`` of customers answered within ``within``."""

    period: timedelta = timedelta(days=7)
    within: timedelta = timedelta(minutes=15)
    min_rate: float = 0.9
    label: str = N_("Very responsive")
    kind: str = "responsiveness"

    def evaluate(self, waits: list[Wait], at: datetime) -> dict[str, Any]:
        """The badge's figures over the waits that began in the last ``period``.

        A wait still open and younger than ``within`` can still be answered in time: it
        is not counted yet.
        """
        limit = self.within.total_seconds()
        counted = [w for w in waits if w.answered or at - w.started_at >= self.within]
        answered = [w.wait_s or 0 for w in counted if w.answered]
        in_time = sum(1 for s in answered if s <= limit)
        total = len(counted)
        rate = len(answered) / total if total else None
        within_rate = in_time / total if total else None
        return {
            "kind": self.kind,
            "label": self.label,
            "period_days": self.period.days,
            "customers": total,
            "answered": len(answered),
            "response_rate": None if rate is None else round(rate, 4),
            "median_response_s": int(statistics.median(answered)) if answered else None,
            "within_s": int(limit),
            "answered_within": in_time,
            "within_rate": None if within_rate is None else round(within_rate, 4),
            "min_rate": self.min_rate,
            "very_responsive": within_rate is not None and within_rate >= self.min_rate,
        }


@dataclass(frozen=True)
class ResponseEstimate:
    """Google's estimated response time: a recency-weighted average within business hours.

    A wait's weight falls linearly with its age, from 1 (now) to 0 (``period`` ago).
    """

    period: timedelta = timedelta(days=90)
    cutoff: timedelta = timedelta(hours=24)
    label: str = N_("Estimated response time")
    kind: str = "estimate"

    def evaluate(self, waits: list[Wait], at: datetime) -> dict[str, Any]:
        """The estimate over the waits that began in the last ``period``."""
        span = self.period.total_seconds()
        total = weights = 0.0
        answered = 0
        late = 0
        for w in waits:
            if not w.answered:
                late += at - w.started_at >= self.cutoff
                continue
            answered += 1
            late += (w.wait_s or 0) >= self.cutoff.total_seconds()
            weight = max(0.0, 1 - (at - w.started_at).total_seconds() / span)
            total += weight * (w.business_s or 0)
            weights += weight
        return {
            "kind": self.kind,
            "label": self.label,
            "period_days": self.period.days,
            "customers": len(waits),
            "answered": answered,
            "estimated_response_s": int(round(total / weights)) if weights else None,
            "cutoff_s": int(self.cutoff.total_seconds()),
            "over_cutoff": late,
        }
