"""What happened in the domain, told to whoever listens (blinker signals, as indico does).

A module that changes something sends a signal once the change is made; the
modules that care connect to it, so neither imports the other. The receivers
are connected in one place, :mod:`app.inbox.wiring` (``create_app`` calls it),
and run in the order they were connected there, synchronously, in the sender's
session and transaction: a rollback undoes what they did too. No Flask here.

``access_changed`` is sent after commit (the live feed re-reads the user); the
domain signals are sent before it, where the change is made.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableSet

from blinker import NamedSignal, Namespace


class _InOrder(MutableSet):
    """A set that keeps insertion order: blinker then calls receivers as they were connected."""

    def __init__(self, items: Iterable = ()) -> None:
        self._items = dict.fromkeys(items)

    def __contains__(self, item) -> bool:
        return item in self._items

    def __iter__(self) -> Iterator:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item) -> None:
        self._items[item] = None

    def discard(self, item) -> None:
        self._items.pop(item, None)

    def copy(self) -> _InOrder:
        return _InOrder(self._items)


class _Signal(NamedSignal):
    """A named signal whose receivers run in the order they were connected."""

    set_class = _InOrder


class _Namespace(Namespace):
    def signal(self, name: str, doc: str | None = None) -> NamedSignal:
        if name not in self:
            self[name] = _Signal(name, doc)
        return self[name]


_signals = _Namespace()

access_changed = _signals.signal(
    "access-changed",
    doc="""What a user may see changed; sender: the user's id.

    Sent after commit when the user is deactivated (or reactivated), their role
    changes, their password changes, they sign out everywhere, they join or leave
    an inbox, or one of their API tokens is revoked.
    The live feed re-checks that user's open sockets in every process: those
    that may no longer connect are closed, the others follow the new inboxes.
    """,
)

conversation_created = _signals.signal(
    "conversation-created",
    doc="""A customer's message started a conversation; sender: the conversation.

    Keyword: ``session``. Sent by ingest for each conversation a batch started,
    after the batch is stored and before its live events. Assignment offers the
    conversation to an agent.
    """,
)

customer_wrote = _signals.signal(
    "customer-wrote",
    doc="""Customers (not their machines) wrote in conversations of an inbox; sender: the inbox.

    Keywords: ``session``, ``conversations`` (in the order the batch touched them),
    ``created`` (ids of those the batch started), ``reopened`` (ids of closed ones the
    customer reopened), ``at`` (when the batch arrived).
    Sent by ingest once per batch, after its live events. Automation clears the
    follow-up timer and the inactive and declined flags, returns a conversation
    whose assignee is away to the queue, tells the inbox of new conversations, and
    sends the greeting and the away message.
    """,
)

agent_replied = _signals.signal(
    "agent-replied",
    doc="""A person answered the customer; sender: the conversation.

    Keywords: ``at``, ``by`` (the agent; None for a reply sent from the platform's own
    inbox). Sent when an agent's reply is queued (or, scheduled, goes out), and by
    ingest for a reply sent from the platform's own inbox. Automation marks response
    breaches answered and starts the follow-up timer; reports record the answer.
    """,
)

reply_held = _signals.signal(
    "reply-held",
    doc="""An agent's queued reply cannot go out yet (its inbox is paused); sender: the conversation.

    Keywords: ``session``, ``message`` (the reply). Sent when the reply had answered the
    customer's wait: the customer is not answered until it goes out (``agent_replied``
    then follows), so reports take back the answer it recorded.
    """,
)

reply_posted = _signals.signal(
    "reply-posted",
    doc="""An agent's reply to the customer passed the send-time checks; sender: the conversation.

    Keywords: ``session``, ``by`` (the agent). Sent by ``replies.post_message`` before
    the reply is stored and queued (also for a scheduled reply). Assignment gives an
    unassigned conversation to the agent who replies, where the inbox says so
    (``reply_assigns``), so the channel hears of the new representative first.
    """,
)

note_added = _signals.signal(
    "note-added",
    doc="""A private note was stored; sender: the conversation.

    Keywords: ``session``, ``message`` (the note), ``by`` (its author, or None).
    Notifications tell each teammate the note mentions (``@[Name](user:<id>)``) who
    can see the conversation.
    """,
)

status_changed = _signals.signal(
    "status-changed",
    doc="""A conversation's status was set (open, pending, snoozed, closed); sender: it.

    Keywords: ``session``, ``previous`` (the status before), ``by`` (the user, or
    None for Switchboard). Sent by ``conversations.set_status`` after its activity
    line and live events. The channel hooks queue what the platform shows (GBM:
    the representative left); closing an assigned conversation frees its
    assignee's capacity, so assignment hands out the queue.
    """,
)

assigned = _signals.signal(
    "assigned",
    doc="""A conversation's assignee was set or cleared; sender: the conversation.

    Keywords: ``session``, ``assignee`` (the user, or None), ``by`` (the user who
    assigned, or None for automatic assignment). Sent by ``assignment.assign``
    after its activity line, before its live events. Notifications tell the
    assignee (unless they took it themselves); the channel hooks queue what the
    platform shows (GBM: the representative joined).
    """,
)

inbox_failing = _signals.signal(
    "inbox-failing",
    doc="""An inbox started failing (an incident opened); sender: the inbox.

    Keywords: ``session``, ``incident`` (``{number, reason, source, message, since}``).
    Sent once per incident by :func:`app.inbox.health.inbox_failing` (the worker, the
    IMAP poll, the silence job), after the inbox's state and its ``inbox.updated``
    event. Notifications tell the admins.
    """,
)

inbox_recovered = _signals.signal(
    "inbox-recovered",
    doc="""A failing inbox works again (its incident closed); sender: the inbox.

    Keywords: ``session``, ``incident`` (the closed one). Sent by
    :func:`app.inbox.health.inbox_recovered`: a send or poll succeeded, or the
    credentials were replaced. Notifications tell the admins.
    """,
)

reply_window_missed = _signals.signal(
    "reply-window-missed",
    doc="""A platform's reply window closed while the customer waited; sender: the conversation.

    Keywords: ``session``, ``at`` (when the window closed). Sent once per window by the
    window job, with its activity line. Reports count a missed window.
    """,
)

response_breached = _signals.signal(
    "response-breached",
    doc="""A customer waited past the inbox's response target; sender: the conversation.

    Keywords: ``session``, ``due_at`` (the target). Sent once per target by the
    response-due job, when it records the breach. Reports count it against the wait.
    """,
)
