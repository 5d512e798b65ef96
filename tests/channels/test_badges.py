"""The platforms' badge rules, on waits whose ages and times are known to the second."""

from __future__ import annotations

import numpy as np

from app.channels.badges import ResponseEstimate, Responsiveness, Waits

DAY = 86400


def _waits(*rows) -> Waits:
    """``(age_s, answered, wait_s, business_s)`` per wait."""
    age, answered, wait_s, business_s = (np.array(c) for c in zip(*rows, strict=True))
    return Waits(age, answered.astype(bool), wait_s, business_s)


def test_meta_counts_an_open_wait_only_once_it_is_fifteen_minutes_old():
    rule = Responsiveness()
    waits = _waits(
        (3 * DAY, True, 600, 600),
        (2 * DAY, True, 300, 300),
        (DAY, True, 1800, 900),  # answered, but after 15 minutes
        (899, False, 0, 0),  # 14:59 old: can still be answered in time
        (900, False, 0, 0),  # 15:00 old and unanswered: counts against the Page
    )
    badge = rule.evaluate(waits)
    assert (badge["customers"], badge["answered"], badge["answered_within"]) == (4, 3, 2)
    assert badge["median_response_s"] == 600
    assert badge["within_rate"] == 0.5 and badge["very_responsive"] is False
    assert rule.evaluate(_waits((100, False, 0, 0)))["within_rate"] is None


def test_google_weighs_recent_answers_more_and_counts_those_past_a_day():
    rule = ResponseEstimate()
    waits = _waits(
        (0, True, 600, 600),  # weight 1
        (45 * DAY, True, 7200, 1200),  # halfway through the 90 days: weight 0.5
        (89 * DAY, True, 90000, 40000),  # answered after more than 24 hours
        (25 * 3600, False, 0, 0),  # unanswered for more than 24 hours
        (3600, False, 0, 0),
    )
    badge = rule.evaluate(waits)
    weight = 1 / 90  # the oldest answer's
    expected = (600 + 0.5 * 1200 + weight * 40000) / (1.5 + weight)
    assert badge["estimated_response_s"] == round(expected)
    assert (badge["customers"], badge["answered"], badge["over_cutoff"]) == (5, 3, 2)
    assert rule.evaluate(_waits((3600, False, 0, 0)))["estimated_response_s"] is None
