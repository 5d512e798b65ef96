"""The webhook intake: store a verified body in one INSERT, answer, thread it in bulk.

A provider's webhook is answered as soon as its authenticated body is committed
to ``webhook_intake`` (durable: nothing is lost if the process dies now). The
rows are then ingested, many at a time, and removed (see below for how):

- when the process is idle, the request that stored the row ingests it before
  answering (a provider, a test or a curl sees the message in the inbox at once);
- when another thread is already ingesting, the request only wakes this
  process's drainer thread, which takes every pending row in batches: a burst
  costs one transaction and one set of live events per batch, not per message;
- the ``intake_sweep`` job takes rows left by a process that stopped, and rows
  whose ingest failed (retried with back-off, then kept as ``failed`` with the
  error for ``flask intake retry``); a body that would fail the same way again
  (its parser cannot read it, or the database refuses one of its values) is
  kept as ``failed`` at once.

In PostgreSQL the bodies wait in the main database and are claimed by deleting
them (``DELETE ... RETURNING``) inside the ingest transaction, skipping rows
other processes hold (``FOR UPDATE SKIP LOCKED``), so several processes may
drain at once. With SQLite they wait in a file of their own beside the inbox's
(``switchboard-intake.db``), so storing a body never waits for SQLite's one
writer while a batch is being threaded; rows are deleted there once their
messages are committed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, current_app

from app import channels
from app.backoff import backoff
from app.channels import all_channels
from app.clock import aware, now
from app.cooperative import next_turn
from app.db import sqlite_pragmas  # the same settings as the inbox's own file
from app.extensions import db
from app.inbox import email_ingest, ingest
from app.models import Inbox, WebhookIntake
from app.runtime.loop import Loop
from connectors import base as cb

log = logging.getLogger(__name__)

BATCH_ROWS = 200  # webhook bodies per ingest transaction
MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(seconds=10)

#: stream -> parser: a claimed row (its columns) -> {inbox id: events}, only for the row's
#: verified inboxes. Each channel's adapter parses its own stored bodies (``parse_stored``);
#: a row's ``channel`` names its stream: the channel, or ``channel.kind`` for another of
#: its URLs (``sms.status``: delivery receipts). Mail channels' rows are raw RFC 822
#: messages, threaded by :mod:`app.inbox.email_ingest` (batch order, loops, bounces).
Parser = Callable[[sa.Row, dict[int, Inbox]], dict[int, list[cb.InboundEvent]]]
PARSERS: dict[str, Parser] = {
    stream: adapter.parse_stored for adapter in all_channels() for stream in adapter.streams()
}


class BadBody(ValueError):
    """A stored body its channel's parser cannot read: kept as failed at once, never retried."""


_drain_lock = threading.Lock()  # one ingest transaction at a time in this process
_sqlite_writer = threading.Lock()


def parser(channel: str) -> Callable[[Parser], Parser]:
    """Register how a channel's stored bodies become events (instead of its adapter's)."""

    def register(func: Parser) -> Parser:
        PARSERS[channel] = func
        return func

    return register


def writer_turn():
    """On SQLite, let this process's writers of webhook data take turns.

    SQLite has one writer at a time and its busy handler is not fair: under a
    burst some threads starved past the busy timeout. Queued on a lock they wait
    their turn instead. PostgreSQL needs no such turn.
    """
    if db.engine.dialect.name == "sqlite":
        return _sqlite_writer
    return contextlib.nullcontext()


# --------------------------------------------------------------------------- storing


_TABLE = WebhookIntake.__table__
_COLUMNS = tuple(_TABLE.c)
_INSERT = _TABLE.insert()  # built once, run with each body's values
_file_lock = threading.Lock()  # this process's writers of the intake file take turns
_engine_guard = threading.Lock()


def intake_url_for(database_url: str | sa.URL) -> str | None:
    """Where bodies wait when the inbox is a SQLite file: ``<name>-intake<.ext>`` beside it.

    None (the main database) for PostgreSQL and for an in-memory SQLite database.
    """
    url = sa.make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    path = Path(url.database)
    return str(url.set(database=str(path.with_name(f"{path.stem}-intake{path.suffix or '.db'}"))))


def _own_engine() -> sa.Engine | None:
    """The intake's own SQLite file, or None when bodies wait in the main database.

    SQLite has one writer per file: with the bodies in the inbox's file, every
    webhook waited for the ingest transaction under way before it could store its
    body and answer. In a file of their own, storing never waits for threading.
    The file holds only bodies in transit; it is created on first use.
    """
    app = current_app._get_current_object()
    state = app.extensions.setdefault("switchboard_intake", {})
    if "engine" in state:
        return state["engine"]
    with _engine_guard:
        if "engine" not in state:
            url = intake_url_for(app.config["SQLALCHEMY_DATABASE_URI"])
            engine = None
            if url is not None:
                engine = sa.create_engine(
                    url,
                    pool_size=20,
                    max_overflow=20,
                    connect_args={"timeout": 30, "check_same_thread": False},
                )
                sa.event.listen(engine, "connect", sqlite_pragmas)
                with contextlib.suppress(sa.exc.OperationalError):  # another process made it
                    WebhookIntake.metadata.create_all(engine, tables=[_TABLE])
                weakref.finalize(app, engine.dispose)
            state["engine"] = engine
    return state["engine"]


def write(stmt, params: dict | None = None) -> sa.CursorResult:
    """Run one statement where the bodies wait, committed."""
    engine = _own_engine()
    if engine is not None:
        with _file_lock, engine.begin() as conn:
            return conn.execute(stmt, params)
    with writer_turn():
        try:
            result = db.session.execute(stmt, params)
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
    return result


def read(stmt, params: dict | None = None) -> list[sa.Row]:
    """The rows of one query where the bodies wait."""
    engine = _own_engine()
    if engine is None:
        return db.session.execute(stmt, params).all()
    with engine.connect() as conn:
        return conn.execute(stmt, params).all()


def store(
    channel: str, body: bytes, inbox_ids: Iterable[int], received_at: datetime | None = None
) -> int:
    """Commit one verified webhook body; returns the row id. Raises on a database error."""
    values = {
        "channel": channel,
        "inbox_ids": sorted(set(inbox_ids)),
        "body": body,
        "received_at": received_at or now(),
        "state": "pending",
        "attempts": 0,
    }
    return write(_INSERT, values).inserted_primary_key[0]


@dataclass
class DrainResult:
    """What one drain did (summed over its batches)."""

    rows: int = 0
    failed: int = 0
    created: list[int] = field(default_factory=list)
    duplicates: int = 0
    updated: int = 0
    dropped: int = 0  # mail dropped unstored (loops)

    def add(self, other: DrainResult) -> None:
        self.rows += other.rows
        self.failed += other.failed
        self.created += other.created
        self.duplicates += other.duplicates
        self.updated += other.updated
        self.dropped += other.dropped


_inflight = 0  # webhook bodies of this process between their INSERT and their answer
_inflight_guard = threading.Lock()


@contextlib.contextmanager
def receiving():
    """Wrap a webhook's store-and-answer: tells :func:`accept` whether others arrive too."""
    global _inflight
    with _inflight_guard:
        _inflight += 1
    try:
        yield
    finally:
        with _inflight_guard:
            _inflight -= 1


def accept(row_id: int) -> DrainResult | None:
    """After :func:`store`: ingest the row now if this process is idle, else hand it over.

    Idle means no other webhook is being received and nothing is being ingested:
    then the request answers with the message already in the inbox. Under load
    the drainer takes the rows together, which costs far less per message.
    Under gevent the loop turns once first: SQLite calls never wait, so webhooks
    that arrived while this one was stored are not yet counted in ``_inflight``
    and would each be threaded alone (85 msg/s measured).
    Returns what was ingested, or None when the row was left to the drainer.
    """
    next_turn()
    if _inflight > 1 or not _drain_lock.acquire(blocking=False):
        wake()
        return None
    try:
        result = drain_batch(ids=[row_id])
    finally:
        _drain_lock.release()
    if result is None or result.rows == 0:
        wake()  # failed, or another process took it: the drainer and the sweep see to it
        return None
    return result


# --------------------------------------------------------------------------- draining


def _due(ids: bool):
    """The ids of the next rows due, oldest first: ``:at``, ``:limit`` and, if ``ids``, ``:ids``."""
    due = sa.select(_TABLE.c.id).where(
        _TABLE.c.state == "pending",
        sa.or_(_TABLE.c.next_attempt_at.is_(None), _TABLE.c.next_attempt_at <= sa.bindparam("at")),
    )
    if ids:
        due = due.where(_TABLE.c.id.in_(sa.bindparam("ids", expanding=True)))
    return due.order_by(_TABLE.c.id).limit(sa.bindparam("limit", type_=sa.Integer))


# Built once: constructing these per batch cost about as much as running them.
_READ_DUE = {
    ids: sa.select(*_COLUMNS)
    .where(_TABLE.c.id.in_(_due(ids).scalar_subquery()))
    .order_by(_TABLE.c.id)
    for ids in (False, True)
}
_DELETE_DUE = {
    (dialect, ids): sa.delete(_TABLE)
    .where(
        _TABLE.c.id.in_(
            (
                _due(ids).with_for_update(skip_locked=True)
                if dialect == "postgresql"
                else _due(ids)
            ).scalar_subquery()
        )
    )
    .returning(*_COLUMNS)
    for dialect in ("postgresql", "sqlite")
    for ids in (False, True)
}
_DELETE_IDS = sa.delete(_TABLE).where(_TABLE.c.id.in_(sa.bindparam("ids", expanding=True)))
_INBOXES = sa.select(Inbox).where(Inbox.id.in_(sa.bindparam("ids", expanding=True)))


def _take(session, limit: int, ids: list[int] | None, at: datetime) -> list[sa.Row]:
    """The next due rows, taken for the ingest transaction under way.

    In the main database one ``DELETE ... RETURNING`` both claims and removes
    them: the commit that stores their messages makes it final, a rollback (or a
    process that died) puts them back; PostgreSQL skips rows another process
    holds (``FOR UPDATE SKIP LOCKED``). From the intake's own SQLite file they are
    read, and deleted by :func:`_settle` once the messages are committed (this
    process drains one batch at a time; were it to die in between, the batch
    would be ingested again, and ingest skips what it already stored).
    """
    params = {"at": at, "limit": limit, **({"ids": ids} if ids is not None else {})}
    if _own_engine() is not None:
        return read(_READ_DUE[ids is not None], params)
    dialect = "postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"
    taken = session.execute(_DELETE_DUE[dialect, ids is not None], params).all()
    return sorted(taken, key=lambda row: row.id)


def _settle(row_ids: list[int]) -> None:
    """After the ingest commit: remove the rows from the intake's own file."""
    if row_ids and _own_engine() is not None:
        write(_DELETE_IDS, {"ids": row_ids})


def _adapter(stream: str) -> type[channels.Channel]:
    """The adapter of a row's stream (``channel`` or ``channel.kind``); KeyError: none."""
    return channels.get(stream.split(".", 1)[0])


def _events_of(rows: list[sa.Row], inboxes: dict[int, Inbox]) -> dict[int, list]:
    """Parse the rows: inbox id -> [(event, its row's receipt time)]."""
    grouped: dict[int, list[tuple[cb.InboundEvent, datetime]]] = {}
    for row in rows:
        parse = PARSERS.get(row.channel)
        if parse is None:  # a channel registered after this module was imported
            parse = _adapter(row.channel).parse_stored
        mine = {i: inboxes[i] for i in (row.inbox_ids or []) if i in inboxes}
        received = aware(row.received_at)
        try:
            parsed = parse(row, mine)
        except Exception as exc:  # noqa: BLE001 - authentic but unreadable: keep it, say why
            raise BadBody(f"webhook body {row.id} ({row.channel}) is malformed: {exc!r}") from exc
        for inbox_id, evs in parsed.items():
            grouped.setdefault(inbox_id, []).extend((ev, received) for ev in evs)
    return grouped


def _ingest_mail(rows: list[sa.Row], inboxes: dict[int, Inbox], stand_in: bool) -> DrainResult:
    """Raw messages, one batch per inbox; ``stand_in``: kept unreadable (values refused)."""
    session = db.session
    result = DrainResult()
    mine: dict[int, list[sa.Row]] = {}
    for row in rows:
        for inbox_id in row.inbox_ids or []:
            if inbox_id in inboxes:
                mine.setdefault(inbox_id, []).append(row)
    for inbox_id, its in mine.items():
        inbox = inboxes[inbox_id]
        if stand_in:
            for row in its:
                done = email_ingest.keep_unreadable(
                    session, inbox, row.body, aware(row.received_at), commit=False
                )
                result.created += done.created
                result.duplicates += done.duplicates
            continue
        done = email_ingest.ingest_raw(
            session,
            inbox,
            [row.body for row in its],
            [aware(row.received_at) for row in its],
            commit=False,
        )
        if done is None:
            result.dropped += len(its)
            continue
        result.dropped += done.dropped
        result.created += done.created
        result.duplicates += done.duplicates
        result.updated += done.updated
    return result


def _ingest_rows(rows: list[sa.Row], stand_in: bool = False) -> DrainResult:
    """Ingest the claimed rows; the caller commits."""
    session = db.session
    result = DrainResult(rows=len(rows))
    wanted = sorted({i for row in rows for i in (row.inbox_ids or [])})
    inboxes = {i.id: i for i in session.scalars(_INBOXES, {"ids": wanted})} if wanted else {}
    mail = {row.id for row in rows if _adapter(row.channel).mail}
    if mail:
        result.add(_ingest_mail([row for row in rows if row.id in mail], inboxes, stand_in))
    grouped = _events_of([row for row in rows if row.id not in mail], inboxes)
    for inbox_id, pairs in grouped.items():
        inbox = inboxes[inbox_id]
        done = ingest.ingest(
            session, inbox, [ev for ev, _ in pairs], [at for _, at in pairs], commit=False
        )
        result.created += done.created
        result.duplicates += done.duplicates
        result.updated += done.updated
    return result


def drain_batch(ids: list[int] | None = None, limit: int = BATCH_ROWS) -> DrainResult | None:
    """Take up to ``limit`` due rows (only ``ids`` if given), ingest them, commit.

    When the batch fails its rows are ingested one by one, so one bad body never
    holds the others back. Returns None only when the rows could not be taken.
    """
    session = db.session
    at = now()
    row_ids: list[int] = []
    result = None
    with writer_turn():
        try:
            rows = _take(session, limit, ids, at)
            row_ids = [r.id for r in rows]
            result = _ingest_rows(rows) if rows else DrainResult()
            session.commit()
        except Exception:
            session.rollback()
            if not row_ids:
                log.exception("intake: taking webhook bodies failed")
                return None
            log.exception(
                "intake: a batch of %d webhook bodies failed; ingesting them one by one",
                len(row_ids),
            )
            result = None
    if result is not None:
        _settle(row_ids)
        return result
    total = DrainResult()
    for row_id in row_ids:
        total.add(_drain_one(row_id))
    return total


def _drain_one(row_id: int) -> DrainResult:
    """Ingest one row alone; on failure count the attempt and schedule a retry.

    Mail whose values the database refuses is kept once as an unreadable stand-in
    with the original attached (``email_ingest.keep_unreadable``), never lost.
    """
    session = db.session
    at = now()
    failure: BaseException | None = None
    for stand_in in (False, True):
        rows: list[sa.Row] = []
        with writer_turn():
            try:
                rows = _take(session, 1, [row_id], at)
                result = _ingest_rows(rows, stand_in) if rows else DrainResult()
                session.commit()
            except Exception as exc:  # noqa: BLE001 - the row keeps the error; nothing is lost
                session.rollback()
                log.exception("intake: webhook body %s could not be ingested", row_id)
                failure = exc
            else:
                failure = None
        if failure is None or stand_in or not _keeps_refused(rows, failure):
            break
        log.warning("intake: mail %s refused by the database; kept as unreadable", row_id)
    if failure is None:
        _settle([r.id for r in rows])
        return result
    row = next(iter(read(sa.select(_TABLE.c.attempts).where(_TABLE.c.id == row_id))), None)
    if row is None:
        return DrainResult()
    attempts = MAX_ATTEMPTS if _fails_again(failure) else (row.attempts or 0) + 1
    values: dict = {"attempts": attempts, "error": f"{type(failure).__name__}: {failure}"[:2000]}
    if attempts >= MAX_ATTEMPTS:  # a bad body would fail the same way again: not retried
        values["state"] = "failed"
        log.error(
            "intake: webhook body %s failed %d times; kept as failed (flask intake retry)",
            row_id,
            attempts,
        )
    else:
        values.update(
            state="pending", next_attempt_at=at + backoff(attempts, RETRY_BASE.total_seconds())
        )
    write(sa.update(_TABLE).where(_TABLE.c.id == row_id).values(**values))
    return DrainResult(failed=1)


def _keeps_refused(rows: list[sa.Row], failure: BaseException) -> bool:
    """True when the row is mail the database refused: it is kept as a stand-in instead."""
    return isinstance(failure, sa.exc.DataError) and any(_adapter(r.channel).mail for r in rows)


def _fails_again(failure: BaseException) -> bool:
    """True when ingesting the row again would fail the same way: no retry then.

    A body its parser cannot read, or one holding a value the database refuses
    (``DataError``: a NUL or an over-long id on PostgreSQL), is kept as failed at
    once; anything else (a lock, a lost connection) is retried with back-off.
    """
    return isinstance(failure, BadBody | sa.exc.DataError)


def drain_all(max_batches: int = 1000) -> DrainResult:
    """Ingest every due row (this thread holds the process's drain turn)."""
    total = DrainResult()
    with _drain_lock:
        for _ in range(max_batches):
            result = drain_batch()
            if result is None:
                continue
            total.add(result)
            if result.rows + result.failed == 0:
                break
    return total


def pending_count() -> int:
    """Rows waiting to be threaded (failed ones excluded)."""
    return read(sa.select(sa.func.count()).select_from(_TABLE).where(_TABLE.c.state != "failed"))[
        0
    ][0]


def rows(state: str | None = None) -> list[sa.Row]:
    """The stored bodies (only those in ``state`` if given), oldest first."""
    q = sa.select(*_COLUMNS).order_by(_TABLE.c.id)
    return read(q.where(_TABLE.c.state == state) if state else q)


def retry_failed() -> int:
    """Put failed rows back in the queue (after a fix); returns how many."""
    return write(
        sa.update(_TABLE)
        .where(_TABLE.c.state == "failed")
        .values(state="pending", attempts=0, next_attempt_at=None)
    ).rowcount


# --------------------------------------------------------------------------- drainer thread


def _drain_step() -> bool:
    """One run of the drainer: every due row, then the session goes back to the pool.

    True when it found rows: the loop then knows a burst is under way and gathers the
    next wake-up's rows for a moment (see :class:`Drainer`).
    """
    try:
        found = drain_all()
    finally:
        db.session.remove()
    return found.rows + found.failed > 0


class Drainer(Loop):
    """This process's background ingester: woken by webhooks, also sweeps every few seconds.

    A wake-up during a burst (within ``gather`` of a run that found rows) waits
    ``gather`` seconds first, so the burst is drained in one run; a lone row is drained
    at once. Rows a failed run left stay pending for the next.
    """

    def __init__(self, app: Flask, interval: float, gather: float = 0.0) -> None:
        super().__init__(
            app, _drain_step, interval, name="switchboard-intake", wait_first=True, gather=gather
        )


_drainer: Drainer | None = None
_drainer_pid: int | None = None
_drainer_guard = threading.Lock()


def wake() -> None:
    """Wake this process's drainer, starting it on first use (after any fork)."""
    global _drainer, _drainer_pid
    app = current_app._get_current_object()
    if not app.config.get("INTAKE_DRAINER", True):
        return  # tests drain explicitly
    with _drainer_guard:
        if _drainer is None or _drainer_pid != os.getpid() or not _drainer.is_alive():
            _drainer = Drainer(
                app,
                float(app.config.get("INTAKE_SWEEP_SECONDS", 2.0)),
                float(app.config.get("INTAKE_GATHER_MS", 50)) / 1000,
            )
            _drainer_pid = os.getpid()
            _drainer.start()
    _drainer.wake()


def stop_drainer() -> None:
    """Stop this process's drainer thread (tests, shutdown)."""
    global _drainer
    with _drainer_guard:
        if _drainer is not None:
            _drainer.stop()
            _drainer.join(5)
            _drainer = None
