"""Reading many plain rows fast."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session


def fetch(session: Session, query: sa.Select) -> list[tuple]:
    """The rows of ``query`` as the driver returns them (plain tuples, no type processing).

    For thousands of rows of plain values (ids, counts, seconds): SQLAlchemy's row objects
    would cost several times the query itself.
    """
    result = session.connection().execute(query)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()
