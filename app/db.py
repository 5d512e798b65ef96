"""Dialect helpers the app and the intake share (no Flask, no models)."""

from __future__ import annotations


def sqlite_pragmas(dbapi_conn, _record) -> None:
    """WAL + busy timeout so readers and the writer do not block each other."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
