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

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np

from app.channels.base import N_


@dataclass(frozen=True)
class Waits:
    """Customers' waits, one per position in each array (numpy, as many as there are).

    ``age_s``: seconds since the wait began; ``answered``: whether a person answered;
    ``wait_s`` how long that took on the wall clock and ``business_s`` inside business
    hours (0 when unanswered).
    """

    age_s: np.ndarray
    answered: np.ndarray
    wait_s: np.ndarray
    business_s: np.ndarray


@dataclass(frozen=True)
class Responsiveness:
    """Meta's "very responsive": ``min_rate`` of customers answered within ``within``."""

    period: timedelta = timedelta(days=7)
    within: timedelta = timedelta(minutes=15)
    min_rate: float = 0.9
    label: str = N_("Very responsive")
    kind: str = "responsiveness"

    def evaluate(self, waits: Waits) -> dict[str, Any]:
        """The badge's figures over the waits that began in the last ``period``.

        A wait still open and younger than ``within`` can still be answered in time: it
        is not counted yet.
        """
        limit = self.within.total_seconds()
        answered = waits.wait_s[waits.answered]
        in_time = int(np.count_nonzero(answered <= limit))
        total = int(np.count_nonzero(waits.answered | (waits.age_s >= limit)))
        rate = len(answered) / total if total else None
        within_rate = in_time / total if total else None
        return {
            "kind": self.kind,
            "label": self.label,
            "period_days": self.period.days,
            "customers": total,
            "answered": len(answered),
            "response_rate": None if rate is None else round(rate, 4),
            "median_response_s": int(np.median(answered)) if len(answered) else None,
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

    def evaluate(self, waits: Waits) -> dict[str, Any]:
        """The estimate over the waits that began in the last ``period``."""
        cutoff = self.cutoff.total_seconds()
        answered = waits.answered
        late = np.where(answered, waits.wait_s, waits.age_s) >= cutoff
        weight = np.maximum(0.0, 1 - waits.age_s[answered] / self.period.total_seconds())
        weights = float(weight.sum())
        total = float(weight @ waits.business_s[answered])
        return {
            "kind": self.kind,
            "label": self.label,
            "period_days": self.period.days,
            "customers": len(answered),
            "answered": int(np.count_nonzero(answered)),
            "estimated_response_s": int(round(total / weights)) if weights else None,
            "cutoff_s": int(self.cutoff.total_seconds()),
            "over_cutoff": int(np.count_nonzero(late)),
        }
