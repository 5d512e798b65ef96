"""Hot reads that PostgreSQL plans once per connection, not once per request.

Planning the conversation list's page query (the conversations with their
inbox, contact, identities, labels and assignee) took PostgreSQL about a
millisecond, more than running it; the sign-in lookup and the tab counts were
planned on every request too. A statement run with :data:`PREPARED` is prepared
on its connection the first time (psycopg's ``prepare=True``); later runs skip
parsing, and once PostgreSQL has seen it five times it may settle on a generic
plan and skip planning. Only statements whose best plan does not depend on their
values take the option (equalities on indexed columns, a literal ``LIMIT``);
searches, whose plans depend on the words, never do.

psycopg drops every prepared statement of a connection when a transaction
ends in ``ROLLBACK``, and every request used to end that way (the session is
closed, which rolls back). :func:`end_read_only` ends a transaction that only
read with ``COMMIT`` instead, which for such a transaction is the same thing.
A statement other than a ``SELECT`` (``INSERT``, ``UPDATE``, ``DELETE``, a
savepoint, ``WITH ... UPDATE``, anything) marks the transaction as written, and
changes the session holds but has not flushed count too: such a transaction is
left to the usual rollback, so a request that changed rows and returned without
committing still loses those changes.

No Flask here: :mod:`app` installs it on the engine and calls
:func:`end_read_only` when an app context ends.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

#: Execution option of a statement PostgreSQL should keep prepared on its connection.
PREPARED = {"sb_prepared": True}

_WROTE = "sb_wrote"  # in Connection.info: this transaction ran something other than a SELECT


def limit(value: int):
    """``value`` for ``LIMIT`` written into the SQL: with a parameter, a generic plan
    cannot know how many rows are wanted and PostgreSQL keeps planning every time."""
    return sa.bindparam("sb_limit", value, unique=True, literal_execute=True)


def install(engine: sa.Engine) -> None:
    """Watch ``engine``'s transactions for writes; on PostgreSQL, honour :data:`PREPARED`."""
    if event.contains(engine, "begin", _begun):
        return
    event.listen(engine, "begin", _begun)
    event.listen(engine, "before_cursor_execute", _note_write)
    if engine.dialect.name == "postgresql":
        event.listen(engine, "do_execute", _execute)


def _begun(conn) -> None:
    conn.info[_WROTE] = False


def _note_write(conn, _cursor, statement: str, _params, _context, executemany: bool) -> None:
    if executemany or statement.lstrip()[:6].upper() != "SELECT":
        conn.info[_WROTE] = True


def _execute(cursor, statement, parameters, context) -> bool:
    # None leaves psycopg its own rule (prepare what one transaction runs five times)
    prepare = True if context.execution_options.get("sb_prepared") else None
    cursor.execute(statement, parameters, prepare=prepare)
    return True


def end_read_only(session: Session) -> None:
    """Commit ``session``'s transaction if it only read; otherwise leave it as it is.

    A transaction that failed (a flush or a statement the view caught and answered) is
    left as it is too: closing the session rolls it back, as it always did.
    """
    try:
        if not session.in_transaction() or session.new or session.dirty or session.deleted:
            return
        if session.connection().info.get(_WROTE, True):
            return
        session.commit()
    except sa.exc.SQLAlchemyError:
        return
