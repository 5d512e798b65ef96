"""Medians and percentiles by group agree with the plain answer, whatever the sizes.

Reports read a year's values as one text per column and group them with numpy; checked
here against sorting Python lists, with ids too large to pack beside their seconds, and
against the database (rows come back aligned, column by column).
"""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import sqlalchemy as sa

from app.inbox.report_stats import counts_up_to, grouped, int_columns, merged, summary


def _plain(values, keys) -> dict:
    out = defaultdict(list)
    for v, k in zip(values, keys, strict=True):
        out[k].append(v)
    return {k: sorted(v) for k, v in out.items()}


def _check(values, keys):
    got = grouped(np.array(values, dtype=np.int64), np.array(keys, dtype=np.int64))
    want = _plain(values, keys)
    assert sorted(got) == sorted(want)
    for k, v in want.items():
        assert got[k].tolist() == v
        assert summary(got[k]) == summary(v)


def test_groups_hold_their_values_in_order():
    rng = random.Random(7)
    values = [rng.choice([0, 1, 59, 60, 3600, rng.randrange(10**7)]) for _ in range(5000)]
    _check(values, [rng.randrange(-3, 40) for _ in values])  # the day index may be negative


def test_ids_or_seconds_too_large_to_pack_are_grouped_all_the_same():
    rng = random.Random(8)
    values = [rng.randrange(10**6) for _ in range(2000)]
    _check(values, [rng.choice([1, 2**40, 2**50]) for _ in values])
    _check([2**45, 5, 2**41, 7], [1, 1, 2, 2])


def test_summary_median_p90_and_nothing():
    assert summary([]) == {"median": None, "p90": None, "count": 0}
    assert summary(np.array([], dtype=np.int64))["median"] is None
    assert summary([720]) == {"median": 720, "p90": 720, "count": 1}
    # an even count: the mean of the middle two, in whole seconds
    assert summary(np.array([60, 121])) == {"median": 90, "p90": 121, "count": 2}
    ten = np.arange(1, 11) * 60
    assert summary(ten) == {"median": 330, "p90": 540, "count": 10}
    assert grouped(np.array([], dtype=np.int64), np.array([], dtype=np.int64)) == {}
    assert merged([]).tolist() == []
    assert merged([np.array([5, 9]), np.array([1, 7])]).tolist() == [1, 5, 7, 9]


def test_counts_up_to_each_bound():
    ordered = np.array([0, 300, 301, 900, 5000])
    assert counts_up_to(ordered, (300, 900, 3600)) == [2, 2, 0, 1]
    assert counts_up_to(np.array([], dtype=np.int64), (300,)) == [0, 0]


def test_columns_come_back_aligned_from_the_database(session):
    table = sa.Table(
        "stats_probe",
        sa.MetaData(),
        *(sa.Column(name, sa.Integer) for name in "abc"),
        prefixes=["TEMPORARY"],
    )
    table.create(session.connection())
    rows = [(n * 7 % 1000, n % 13, -n) for n in range(3000)]
    session.execute(table.insert(), [dict(zip("abc", row, strict=True)) for row in rows])
    query = sa.select(table.c.a, table.c.b, table.c.c)
    a, b, c = int_columns(session, query)
    assert list(zip(a.tolist(), b.tolist(), c.tolist(), strict=True)) == rows
    empty = int_columns(session, query.where(table.c.a < 0))
    assert [x.tolist() for x in empty] == [[], [], []]
