"""Report facts for seeded conversations (:mod:`app.inbox.seed`), as if they had happened.

For each seeded conversation: its start, an assignment, its closes (with resolution
times) and a reopening when the customer wrote after a close; each wait of the
customer from their first unanswered message to the next reply (no business hours on
the demo inboxes: all of it counts), the reply window it lost and the response target
it passed when the reply came late; and the events and messages in the counters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.inbox.report_facts import event_keys, message_keys, wait_keys
from app.models.report import slot_of

EVENT_COLS = ("id", "kind", "at", "slot", "conversation_id", "inbox_id", "user_id", "seconds")
WAIT_COLS = (
    "id",
    "conversation_id",
    "inbox_id",
    "started_at",
    "answered_at",
    "answered_slot",
    "agent_id",
    "first",
    "wait_s",
    "business_s",
    "window_missed_at",
    "breached_at",
)
#: A customer's wait longer than this lost the reply window and passed the target.
LATE = timedelta(hours=24)


@dataclass
class SeedFacts:
    """Rows of ``report_events`` and ``report_waits`` and message counts, in bulk."""

    dt: object  # datetime -> the driver's value (see ``seed._Writer``)
    next_id: Callable[[str], int]  # a table's name -> the id of its next row (``seed._Ids``)
    events: list[tuple] = field(default_factory=list)
    waits: list[tuple] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    def _event(self, kind, at, conv_id, inbox_id, user_id=None, seconds=None) -> None:
        slot = slot_of(at)
        self.events.append(
            (
                self.next_id("report_events"),
                kind,
                self.dt(at),
                slot,
                conv_id,
                inbox_id,
                user_id,
                seconds,
            )
        )
        for key in event_keys(kind, slot, inbox_id, user_id):
            self.counts[key] += 1

    def conversation(
        self,
        conv_id: int,
        inbox_id: int,
        started: datetime,
        assignee: int | None,
        closed: bool,
        messages: list[tuple[datetime, bool, int | None]],
        reopen_after: int | None,
    ) -> None:
        """One conversation: ``messages`` are (time, inbound, sender user); ``reopen_after``
        the index of a reply after which it was closed and the customer reopened it."""
        self._event("new", started, conv_id, inbox_id)
        if assignee is not None:
            self._event("assigned", started + timedelta(seconds=30), conv_id, inbox_id, assignee)
        opened = started
        waiting: datetime | None = None
        answered_once = False
        for n, (at, inbound, sender) in enumerate(messages):
            for key in message_keys(
                at, inbox_id, "inbound" if inbound else "outbound", sender, False
            ):
                self.counts[key] += 1
            if inbound:
                if n > 0 and reopen_after is not None and n == reopen_after + 1:
                    self._event("reopened", at, conv_id, inbox_id)
                    opened = at
                if waiting is None:
                    waiting = at
                continue
            if waiting is not None:
                self._wait(conv_id, inbox_id, waiting, at, sender, not answered_once)
                answered_once, waiting = True, None
            if n == reopen_after:
                seconds = int((at - opened).total_seconds())
                self._event("closed", at, conv_id, inbox_id, assignee, seconds)
        if waiting is not None:
            self._wait(conv_id, inbox_id, waiting, None, assignee, False)
        if closed:
            end = messages[-1][0]
            seconds = int((end - opened).total_seconds())
            self._event("closed", end, conv_id, inbox_id, assignee, seconds)

    def _wait(self, conv_id, inbox_id, started, answered, agent, first) -> None:
        wait_s = None if answered is None else int((answered - started).total_seconds())
        late = wait_s is not None and wait_s > LATE.total_seconds()
        if answered is not None:
            for key in wait_keys(slot_of(answered), inbox_id, agent, late):
                self.counts[key] += 1
        self.waits.append(
            (
                self.next_id("report_waits"),
                conv_id,
                inbox_id,
                self.dt(started),
                self.dt(answered),
                None if answered is None else slot_of(answered),
                agent,
                first and answered is not None,
                wait_s,
                wait_s,
                self.dt(started + LATE) if late else None,
                self.dt(started + LATE) if late else None,
            )
        )

    def take(self) -> tuple[list[tuple], list[tuple], Counter]:
        """The rows gathered since the last call (and forget them)."""
        out = (self.events, self.waits, self.counts)
        self.events, self.waits, self.counts = [], [], Counter()
        return out
