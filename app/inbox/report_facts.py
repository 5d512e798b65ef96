"""Facts for reports, recorded as they happen, so a report never re-reads the history.

The receivers here listen to the domain's signals (:mod:`app.inbox.wiring`) and write
two tables (:mod:`app.models.report`):

- ``report_events``: a conversation started (``new``), was ``closed`` (with its
  resolution time, from its start or its last reopening), ``reopened`` (by an agent or
  by the customer writing again) or ``assigned``.
- ``report_counts``: per inbox, UTC day and 15-minute slot, the events above and the
  messages stored (inbound, outbound, and per sender), incremented as they happen:
  messages by :func:`count_messages` for rows inserted as statements (customer
  messages) and by a flush listener (:func:`connect`) for messages added to a session.
- ``report_waits``: each wait of a customer for an answer, from their first unanswered
  message (the platform's send time) to the first human reply, in wall-clock seconds and
  in seconds inside the inbox's business hours; a reply window that closed on it and a
  response target it passed are marked on it.

All times are UTC; reports apply a time zone when they read them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, object_session

from app.clock import aware, now
from app.db import dialect
from app.inbox import hours
from app.models import (
    Conversation,
    Inbox,
    Message,
    ReportCount,
    ReportEvent,
    ReportWait,
    User,
)
from app.models.report import NOBODY, QUARTERS, slot_of

#: (created_at, inbox_id, direction, sender_user_id, automated) of one stored message.
MessageFacts = tuple[datetime, int, str, int | None, bool]


def message_keys(created_at, inbox_id, direction, sender_user_id, automated):
    """The counters one message adds to: ``(kind, user_id, slot, inbox_id)`` each."""
    if direction not in ("inbound", "outbound"):
        return ()
    slot = slot_of(aware(created_at))
    keys = [(direction, NOBODY, slot, inbox_id)]
    if sender_user_id is not None:
        keys.append((f"{direction}_by", sender_user_id, slot, inbox_id))
        if direction == "outbound" and not automated:
            keys.append(("reply", sender_user_id, slot, inbox_id))
    return keys


_UPSERT: dict[tuple[str, int | None], sa.Insert] = {}


def _upsert(name: str, quarter: int | None) -> sa.Insert:
    """``INSERT ... ON CONFLICT DO UPDATE SET q<n> = q<n> + excluded.q<n>``, built once.

    For one slot's column, or (``quarter`` None) for every column of the day; the day's
    ``total`` with them.
    """
    stmt = _UPSERT.get((name, quarter))
    if stmt is None:
        insert = postgresql.insert if name == "postgresql" else sqlite.insert
        table = ReportCount.__table__
        columns = [f"q{n}" for n in (range(QUARTERS) if quarter is None else (quarter,))]
        columns.append("total")
        stmt = insert(table)
        stmt = _UPSERT[(name, quarter)] = stmt.on_conflict_do_update(
            index_elements=["kind", "user_id", "day", "inbox_id"],
            set_={c: table.c[c] + stmt.excluded[c] for c in columns},
        )
    return stmt


def count_messages(session: Session, messages: Iterable[MessageFacts]) -> None:
    """Add stored messages to the slot counters (one statement, keys in a fixed order)."""
    counts: Counter = Counter()
    for facts in messages:
        for key in message_keys(*facts):
            counts[key] += 1
    add_counts(session, counts)


def add_counts(session: Session, counts: Counter) -> None:
    """Add ``{(kind, user_id, slot, inbox_id): n}`` to the counters (keys in a fixed order)."""
    if not counts:
        return
    quarters = {slot % QUARTERS for (_k, _u, slot, _i) in counts}
    name = dialect(session)
    if len(quarters) > 1:  # many slots (a bulk load): whole days, one statement
        days: dict[tuple, dict] = {}
        for (kind, user, slot, inbox_id), n in sorted(counts.items()):
            day, quarter = divmod(slot, QUARTERS)
            row = days.get((kind, user, day, inbox_id))
            if row is None:
                row = days[(kind, user, day, inbox_id)] = {
                    "kind": kind,
                    "user_id": user,
                    "day": day,
                    "inbox_id": inbox_id,
                    **{f"q{q}": 0 for q in range(QUARTERS)},
                    "total": 0,
                }
            row[f"q{quarter}"] += n
            row["total"] += n
        stmt, rows = _upsert(name, None), list(days.values())
    else:  # as things happen: one slot's column
        (quarter,) = quarters
        stmt = _upsert(name, quarter)
        rows = [
            {
                "kind": k,
                "user_id": u,
                "day": s // QUARTERS,
                "inbox_id": i,
                f"q{quarter}": n,
                "total": n,
            }
            for (k, u, s, i), n in sorted(counts.items())
        ]
    with session.no_autoflush:
        session.connection().execute(stmt, rows)


def event_keys(kind: str, slot: int, inbox_id: int, user_id: int | None):
    """The counters one conversation event adds to."""
    keys = [(kind, NOBODY, slot, inbox_id)]
    if user_id is not None:
        keys.append((f"{kind}_by", user_id, slot, inbox_id))
    return keys


def wait_keys(slot: int, inbox_id: int, agent_id: int | None, late: bool):
    """The counters an answered wait adds to: ``answered`` and, when it had passed its
    response target first, ``late``; each also for the agent who answered."""
    keys = []
    for kind in ("answered", "late") if late else ("answered",):
        keys += event_keys(kind, slot, inbox_id, agent_id)
    return keys


def _after_flush(session: Session, _context) -> None:
    """Messages added to a session are counted as they are inserted."""
    added = [obj for obj in session.new if isinstance(obj, Message)]
    if added:
        count_messages(
            session,
            (
                (m.created_at or now(), m.inbox_id, m.direction, m.sender_user_id, m.automated)
                for m in added
            ),
        )


def connect() -> None:
    """Count the messages every session flushes (connecting twice changes nothing)."""
    if not sa.event.contains(Session, "after_flush", _after_flush):
        sa.event.listen(Session, "after_flush", _after_flush)


def record_event(
    session: Session,
    kind: str,
    conv: Conversation,
    at: datetime,
    user_id: int | None = None,
    seconds: int | None = None,
) -> ReportEvent:
    """Store one conversation event (``new``, ``closed``, ``reopened``, ``assigned``)."""
    at = aware(at)
    event = ReportEvent(
        kind=kind,
        at=at,
        slot=slot_of(at),
        conversation_id=conv.id,
        inbox_id=conv.inbox_id,
        user_id=user_id,
        seconds=seconds,
    )
    session.add(event)
    add_counts(session, Counter(event_keys(kind, event.slot, conv.inbox_id, user_id)))
    return event


def _open_waits(session: Session, conv: Conversation) -> list[ReportWait]:
    return _open_waits_of(session, [conv.id]).get(conv.id, [])


def _open_waits_of(session: Session, conv_ids: list[int]) -> dict[int, list[ReportWait]]:
    """The open waits of several conversations in one query: conversation id -> waits."""
    out: dict[int, list[ReportWait]] = {}
    if conv_ids:
        for wait in session.scalars(
            sa.select(ReportWait)
            .where(ReportWait.conversation_id.in_(conv_ids), ReportWait.answered_at.is_(None))
            .order_by(ReportWait.started_at, ReportWait.id)
        ):
            out.setdefault(wait.conversation_id, []).append(wait)
    return out


def wait_started(session: Session, conv: Conversation, waits: list[ReportWait]) -> None:
    """The customer waits for an answer since ``conv.waiting_since``: open (or move) its wait.

    ``waits``: the conversation's open waits (:func:`_open_waits_of`, read for a batch).
    """
    since = aware(conv.waiting_since)
    if since is None:
        return
    if not waits:
        session.add(ReportWait(conversation_id=conv.id, inbox_id=conv.inbox_id, started_at=since))
    elif since < aware(waits[0].started_at):  # a message that arrived late was sent earlier
        waits[0].started_at = since


def answered(session: Session, conv: Conversation, at: datetime, by: User | None) -> None:
    """A person replied at ``at``: the customer's open waits end, timed in and out of hours."""
    waits = _open_waits(session, conv)
    if not waits:
        return
    before = session.scalar(
        sa.select(ReportWait.id)
        .where(ReportWait.conversation_id == conv.id, ReportWait.answered_at.is_not(None))
        .limit(1)
    )
    schedule = conv.inbox.setting("business_hours")
    at = aware(at)
    counts: Counter = Counter()
    for wait in waits:
        started = aware(wait.started_at)
        wait.answered_at = at
        wait.answered_slot = slot_of(at)
        wait.agent_id = by.id if by is not None else conv.assignee_id
        wait.wait_s = max(0, int((at - started).total_seconds()))
        wait.business_s = hours.open_seconds(schedule, started, at)
        wait.first = before is None
        before = True
        late = wait.breached_at is not None
        counts.update(wait_keys(wait.answered_slot, wait.inbox_id, wait.agent_id, late))
    add_counts(session, counts)


def _mark_open_wait(session: Session, conv: Conversation, **values) -> None:
    """Mark the customer's open waits (or, where none was recorded, a new one)."""
    waits = _open_waits(session, conv)
    if not waits:
        since = aware(conv.waiting_since)
        if since is None:
            return
        waits = [ReportWait(conversation_id=conv.id, inbox_id=conv.inbox_id, started_at=since)]
        session.add(waits[0])
    for wait in waits:
        for column, value in values.items():
            if getattr(wait, column) is None:
                setattr(wait, column, value)
        if wait.agent_id is None:
            wait.agent_id = conv.assignee_id


def _opened_at(session: Session, conv: Conversation) -> datetime:
    """When the conversation last began: its last reopening, else its start."""
    reopened = session.scalar(
        sa.select(sa.func.max(ReportEvent.at)).where(
            ReportEvent.conversation_id == conv.id, ReportEvent.kind == "reopened"
        )
    )
    return aware(reopened) if reopened is not None else aware(conv.created_at)


# --------------------------------------------------------------------------- receivers


def on_conversation_created(conv: Conversation, *, session: Session, **_) -> None:
    """Receiver of ``signals.conversation_created``: a new conversation."""
    record_event(session, "new", conv, conv.created_at or now())


def on_customer_wrote(
    inbox: Inbox,
    *,
    session: Session,
    conversations: list[Conversation],
    reopened: set[int] = frozenset(),
    at: datetime,
    **_,
) -> None:
    """Receiver of ``signals.customer_wrote``: the customers' waits start; reopenings."""
    for conv in conversations:
        if conv.id in reopened:
            record_event(session, "reopened", conv, at)
    waiting = [conv for conv in conversations if conv.waiting_since is not None]
    waits = _open_waits_of(session, [conv.id for conv in waiting])  # one query for the batch
    for conv in waiting:
        wait_started(session, conv, waits.get(conv.id, []))


def on_agent_replied(conv: Conversation, *, at: datetime, by: User | None = None, **_) -> None:
    """Receiver of ``signals.agent_replied``: the waits it answers end."""
    session = object_session(conv)
    if session is not None and conv.id is not None:
        answered(session, conv, at, by)


def on_reply_held(conv: Conversation, *, session: Session, message, **_) -> None:
    """Receiver of ``signals.reply_held``: the waits the held reply answered are open again."""
    sent = aware(message.created_at)
    counts: Counter = Counter()
    for wait in session.scalars(
        sa.select(ReportWait).where(
            ReportWait.conversation_id == conv.id, ReportWait.answered_at >= sent
        )
    ):
        late = wait.breached_at is not None
        counts.subtract(wait_keys(wait.answered_slot, wait.inbox_id, wait.agent_id, late))
        wait.answered_at = wait.answered_slot = wait.wait_s = wait.business_s = None
        wait.first = False
    add_counts(session, counts)


def on_status_changed(conv: Conversation, *, session: Session, previous: str, **_) -> None:
    """Receiver of ``signals.status_changed``: closed (resolution time) or reopened."""
    if conv.status == "closed" and previous != "closed":
        at = aware(conv.closed_at) or now()
        seconds = max(0, int((at - _opened_at(session, conv)).total_seconds()))
        record_event(session, "closed", conv, at, conv.assignee_id, seconds)
    elif previous == "closed" and conv.status != "closed":
        record_event(session, "reopened", conv, now())


def on_assigned(conv: Conversation, *, session: Session, assignee: User | None, **_) -> None:
    """Receiver of ``signals.assigned``: an assignment (to nobody: not counted)."""
    if assignee is not None:
        record_event(session, "assigned", conv, now(), assignee.id)


def on_reply_window_missed(conv: Conversation, *, session: Session, at: datetime, **_) -> None:
    """Receiver of ``signals.reply_window_missed``: the wait lost its reply window."""
    _mark_open_wait(session, conv, window_missed_at=aware(at))


def on_response_breached(conv: Conversation, *, session: Session, due_at: datetime, **_) -> None:
    """Receiver of ``signals.response_breached``: the wait passed its response target."""
    _mark_open_wait(session, conv, breached_at=aware(due_at))
