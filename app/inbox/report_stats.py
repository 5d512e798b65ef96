"""Medians and 90th percentiles of many whole seconds, whole and by group, with numpy.

A year's report holds a hundred thousand first responses and as many closes, and wants
their medians and 90th percentiles overall, by day, inbox, channel and agent. Read row
by row and sorted as Python lists that costs a couple of hundred milliseconds; here the
database hands each column over as one text (:func:`int_columns`), and numpy sorts and
groups them in a few milliseconds (:func:`grouped`).
"""

from __future__ import annotations

import math

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

EMPTY = np.empty(0, dtype=np.int64)


def _sql_function(name: str, doc: str, type_, sqlite: str, postgresql: str) -> type:
    """An SQL function of one argument written differently by each database; ``sqlite``
    and ``postgresql`` are its SQL with ``{}`` for the argument."""
    attributes = {"type": type_, "name": name, "__doc__": doc, "inherit_cache": True}
    function = type(name, (FunctionElement,), attributes)

    def render(template):
        return lambda element, compiler, **kw: template.format(
            compiler.process(element.clauses, **kw)
        )

    compiles(function, "sqlite")(render(sqlite))
    compiles(function)(render(postgresql))
    return function


int_list = _sql_function(
    "int_list",
    "SQL aggregate: a column's integers as one comma-separated text (NULLs left out).",
    sa.Text(),
    "group_concat({}, ',')",
    "string_agg(CAST({} AS TEXT), ',')",
)
epoch_seconds = _sql_function(
    "epoch_seconds",
    "SQL: a stored (naive UTC) time as whole seconds since the epoch.",
    sa.BigInteger(),
    "CAST(strftime('%s', {}) AS INTEGER)",
    "CAST(floor(extract(epoch FROM {})) AS BIGINT)",
)


def int_columns(session: Session, query: sa.Select) -> list[np.ndarray]:
    """The columns of ``query``'s rows, as int64 arrays aligned row by row.

    The columns must be integers and never NULL (coalesce them): both databases feed
    the rows to every aggregate of a query in the same order, so the texts align.
    """
    texts = session.execute(
        query.with_only_columns(*(int_list(c) for c in query.selected_columns))
    ).one()
    return [np.fromstring(t, dtype=np.int64, sep=",") if t else EMPTY for t in texts]


def summary(ordered) -> dict:
    """``{median, p90, count}`` of whole seconds in ascending order (p90: nearest rank)."""
    n = len(ordered)
    if not n:
        return {"median": None, "p90": None, "count": 0}
    p90 = ordered[max(0, math.ceil(0.9 * n) - 1)]
    middle = ordered[n // 2] if n % 2 else (int(ordered[n // 2 - 1]) + int(ordered[n // 2])) / 2
    return {"median": int(middle), "p90": int(p90), "count": n}


#: Seconds below 2**40 (35,000 years) leave the bits above them for a group's number.
_SHIFT = 40
_GROUPS = 1 << (63 - _SHIFT)


def grouped(values: np.ndarray, keys: np.ndarray) -> dict[int, np.ndarray]:
    """``{key: its values ascending}`` of values (seconds, never negative) and their keys.

    Each key's number is put above its value's bits and the lot sorted once.
    """
    if not len(values):
        return {}
    values, keys = values.astype(np.int64, copy=False), keys.astype(np.int64, copy=False)
    low = int(keys.min())
    span = int(keys.max()) - low
    if span < _GROUPS and int(values.max()) < 1 << _SHIFT:
        packed = np.sort(((keys - low) << _SHIFT) | values)
        ordered_keys = (packed >> _SHIFT) + low
        ordered = packed & ((1 << _SHIFT) - 1)
    else:  # ids or seconds too large to pack: the slower sort by two keys
        order = np.lexsort((values, keys))
        ordered_keys, ordered = keys[order], values[order]
    cuts = np.flatnonzero(np.diff(ordered_keys)) + 1
    starts = [0, *cuts.tolist()]
    return {
        int(ordered_keys[start]): part
        for start, part in zip(starts, np.split(ordered, cuts), strict=True)
    }


def merged(groups) -> np.ndarray:
    """The values of several groups in one ascending array."""
    groups = list(groups)
    return np.sort(np.concatenate(groups)) if groups else EMPTY


def counts_up_to(ordered: np.ndarray, bounds) -> list[int]:
    """How many values fall at or below each bound, and above the last one."""
    ends = np.searchsorted(ordered, bounds, side="right").tolist() + [len(ordered)]
    return [end - start for start, end in zip([0, *ends], ends, strict=False)]
