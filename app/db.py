"""Dialect helpers: what SQLite and PostgreSQL spell differently, in one place.

Insert-ignore (``INSERT ... ON CONFLICT DO NOTHING``), row locks, ``IN (...)``
chunks, PostgreSQL's one-array-per-column INSERT, and the SQLite connection
pragmas. Statements are built once per database and cached: building one cost
as much as running it. No Flask here.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.clock import naive

#: Keys in ``IN (...)`` lists per statement: within every database's parameter limit.
CHUNK = 500


def dialect(session: Session) -> str:
    """The name of the database ``session`` talks to (``postgresql``, ``sqlite``)."""
    return session.get_bind().dialect.name


def chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    """Slices for IN (...) lists that stay within every database's parameter limit."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def lock_for_update(session: Session, stmt):
    """Row locks where the database has them (PostgreSQL); SQLite serialises writers."""
    if dialect(session) == "postgresql":
        return stmt.with_for_update()
    return stmt


_INSERT_IGNORE: dict[tuple, sa.Insert] = {}


def insert_ignore_stmt(session: Session, model, conflict: list[str], *returning: str) -> sa.Insert:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING ...`` for ``model``, built once per dialect.

    Building an INSERT per row cost more than running it, and, being a Core
    statement on the table, it does not flush the session's pending changes first.
    """
    name = dialect(session)
    key = (name, model, tuple(conflict), returning)
    stmt = _INSERT_IGNORE.get(key)
    if stmt is None:
        insert = postgresql.insert if name == "postgresql" else sqlite.insert
        table = model.__table__
        stmt = insert(table).on_conflict_do_nothing(index_elements=conflict)
        if returning:
            stmt = stmt.returning(*(table.c[column] for column in returning))
        _INSERT_IGNORE[key] = stmt
    return stmt


def insert_ignore(session: Session, model, values: dict, conflict: list[str]) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING; returns the new id or None when it existed."""
    stmt = insert_ignore_stmt(session, model, conflict, "id")
    with session.no_autoflush:  # pending changes are flushed by their owner, not here
        return session.execute(stmt, values).scalar()


def insert_ignore_many(
    session: Session, model, rows: list[dict], conflict: list[str], *more: str
) -> list:
    """:func:`insert_ignore` of many rows in one statement; returns the ids of the new ones
    (with ``more`` columns: ``(id, *more)`` tuples)."""
    if not rows:
        return []
    stmt = insert_ignore_stmt(session, model, conflict, "id", *more)
    with session.no_autoflush:
        result = session.execute(stmt, rows)
        return [tuple(row) for row in result] if more else list(result.scalars())


@functools.cache
def array_insert_ignore(
    model,
    columns: tuple[str, ...],
    conflict: tuple[str, ...],
    returning: tuple[str, ...],
    json_columns: tuple[str, ...] = (),
) -> sa.Insert:
    """PostgreSQL: many rows as one array per column, ``INSERT ... SELECT FROM unnest``.

    A multi-row ``VALUES`` list has a parameter per column per row: psycopg
    rewrote its placeholders on every batch (too long to cache) and the server
    parsed them all. With arrays the statement is the same short text for any
    number of rows. ``json_columns`` are sent as JSON text and cast to jsonb;
    pass the values through :func:`as_arrays`.
    """
    table = model.__table__
    arrays = [
        sa.bindparam(
            name,
            type_=postgresql.ARRAY(
                sa.Text if name in json_columns else _plain_type(table.c[name].type)
            ),
        )
        for name in columns
    ]
    rows = sa.func.unnest(*arrays).table_valued(*columns).render_derived(name="v")
    picked = [
        sa.cast(rows.c[name], postgresql.JSONB) if name in json_columns else rows.c[name]
        for name in columns
    ]
    return (
        postgresql.insert(table)
        .from_select(list(columns), sa.select(*picked))
        .on_conflict_do_nothing(index_elements=list(conflict))
        .returning(*(table.c[name] for name in returning))
    )


def as_arrays(
    rows: list[dict],
    columns: Sequence[str],
    *,
    times: Sequence[str] = (),
    json_columns: Sequence[str] = (),
) -> dict[str, list]:
    """Row dicts -> one list per column, as the arrays of :func:`array_insert_ignore` take them.

    ``times`` are passed as naive UTC (the column types' own conversion is
    skipped in arrays), ``json_columns`` as JSON text.
    """
    out: dict[str, list] = {name: [row[name] for row in rows] for name in columns}
    for name in times:
        out[name] = [naive(at) for at in out[name]]
    for name in json_columns:
        out[name] = [json.dumps(value) for value in out[name]]
    return out


def _plain_type(column_type) -> sa.types.TypeEngine:
    """The database type under a decorator (times are passed already as naive UTC)."""
    return (
        column_type.impl_instance
        if isinstance(column_type, sa.types.TypeDecorator)
        else column_type
    )


def sqlite_pragmas(dbapi_conn, _record) -> None:
    """SQLite connections: WAL + busy timeout so readers and the writer do not block each other."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
