"""Realistic synthetic data, bulk-inserted: ``flask --app wsgi demo seed``.

Rows are built as tuples and go in by chunks through the driver itself (SQLite
``executemany``, PostgreSQL ``COPY``), so a million messages load in seconds
instead of building a million ORM objects. Rows of a chunk refer to each other
(a message to its conversation), so their ids are assigned here, but only under
the tables' write lock taken for that chunk's transaction (:func:`_reserve`):
seeding an inbox that is taking messages at the same time is safe.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import channels
from app.clock import now
from app.inbox import report_facts, windows
from app.inbox.seed_facts import EVENT_COLS, WAIT_COLS, SeedFacts
from app.models import (
    Contact,
    ContactIdentity,
    Conversation,
    Inbox,
    InboxMember,
    Message,
    ReportEvent,
    ReportWait,
    User,
)

CHUNK = 5000
SQLITE_SEED_CACHE_KIB = -262144  # negative: KiB, so 256 MiB

FIRST = [
    "Amina",
    "Lucas",
    "Sofia",
    "Omar",
    "Chloé",
    "Mateus",
    "Yuki",
    "Darius",
    "Leila",
    "Noah",
    "Fatima",
    "Hugo",
    "Beatriz",
    "Reza",
    "Emma",
    "Karim",
    "Ana",
    "Sara",
    "Jonas",
    "Maya",
]
LAST = [
    "Haddad",
    "Martin",
    "Silva",
    "Rahimi",
    "Dubois",
    "Costa",
    "Tanaka",
    "Moradi",
    "Nguyen",
    "Smith",
    "Benali",
    "Pereira",
    "Laurent",
    "Karimi",
    "Schmidt",
    "Ali",
    "Santos",
    "Ito",
]
CUSTOMER = [
    "Hi, my order #{n} hasn't arrived yet. Can you check?",
    "Bonjour, je voudrais changer l'adresse de livraison.",
    "Olá! Vocês abrem no domingo?",
    "مرحبا، هل يمكنني إرجاع المنتج؟",
    "سلام، سفارش من کی ارسال می‌شود؟",
    "Is the blue one back in stock?",
    "I was charged twice for order {n}.",
    "Can I pick it up at the store instead?",
    "Thanks, that worked!",
    "What are your opening hours on holidays?",
]
AGENT = [
    "Thanks for reaching out! Let me look into order {n} for you.",
    "I've updated the address, you're all set.",
    "Yes, we're open 10:00-16:00 on Sundays.",
    "I'm sorry about that, I've refunded the duplicate charge.",
    "It's back in stock as of this morning.",
]


def _ensure_demo_setup(session: Session) -> tuple[list[Inbox], list[User]]:
    inboxes = list(session.scalars(sa.select(Inbox).order_by(Inbox.id)))
    if not inboxes:
        demo = [
            (
                "messenger",
                "Demo Page",
                "100000000000001",
                {
                    "page_id": "100000000000001",
                    "page_token": "demo",
                    "app_secret": "demo",
                    "verify_token": "demo",
                },
            ),
            (
                "sms",
                "Demo SMS +1 415 555 0100",
                "+14155550100",
                {
                    "provider": "twilio",
                    "number": "+14155550100",
                    "account_sid": "AC" + "0" * 32,
                    "auth_token": "demo",
                },
            ),
            (
                "email",
                "Demo support mailbox",
                "support@example.com",
                {
                    "address": "support@example.com",
                    "smtp_host": "127.0.0.1",
                    "smtp_port": 2525,
                    "smtp_security": "none",
                },
            ),
            (
                "gbm",
                "Demo GBM agent",
                "brands/demo/agents/demo",
                {"agent": "brands/demo/agents/demo", "client_token": "demo", "service_account": {}},
            ),
        ]
        for channel, name, key, config in demo:
            session.add(
                Inbox(channel=channel, name=name, route_key=key, config=config, settings={})
            )
        session.flush()
        inboxes = list(session.scalars(sa.select(Inbox).order_by(Inbox.id)))
    agents = list(session.scalars(sa.select(User).where(User.role == "agent")))
    if not agents:
        for first in ("Alex", "Sam", "Rita", "Yusuf"):
            user = User(email=f"{first.lower()}@demo.example", name=f"{first} (demo)", role="agent")
            user.set_password("demo-password")
            session.add(user)
        session.flush()
        agents = list(session.scalars(sa.select(User).where(User.role == "agent")))
    for inbox in inboxes:
        for agent in agents:
            if session.get(InboxMember, {"inbox_id": inbox.id, "user_id": agent.id}) is None:
                session.add(InboxMember(inbox_id=inbox.id, user_id=agent.id))
    session.commit()
    return inboxes, agents


SEEDED_TABLES = (
    "contacts",
    "contact_identities",
    "conversations",
    "messages",
    "report_events",
    "report_waits",
)


class _Ids:
    """The ids of the seeded rows, never one another writer takes meanwhile.

    Rows of a chunk refer to each other (a message to its conversation), so their
    ids are chosen here. SQLite: each chunk's transaction starts with
    ``BEGIN IMMEDIATE`` (the database's one writer until its commit) and counts on
    from each table's ``max(id)`` read then. PostgreSQL: ids come from each table's
    own sequence, a block at a time, as the server's own INSERTs take theirs.
    Without this, a message stored between reading ``max(id)`` and the INSERT took
    an id the chunk then reused (``UNIQUE constraint failed: messages.id``).
    """

    BLOCKS = (1_000, 50_000)  # PostgreSQL: the first block per table, the largest

    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name
        self.free: dict[str, Iterator[int]] = {}
        self.block: dict[str, int] = {}

    def begin_chunk(self) -> None:
        """Open the chunk's transaction (SQLite: holding the write lock)."""
        if self.dialect == "postgresql":
            return
        session = self.session
        if self.dialect == "sqlite":
            raw = session.connection().connection.driver_connection
            if raw.in_transaction:
                session.commit()
                raw = session.connection().connection.driver_connection
            raw.execute("BEGIN IMMEDIATE")
        for table in SEEDED_TABLES:
            top = session.scalar(sa.text(f"SELECT COALESCE(MAX(id), 0) FROM {table}"))
            self.free[table] = itertools.count(top + 1)

    def __call__(self, table: str) -> int:
        """The id of ``table``'s next seeded row."""
        try:
            return next(self.free[table])
        except (KeyError, StopIteration):  # PostgreSQL: the next block of the sequence
            block = self.session.scalars(
                sa.text(
                    "SELECT nextval(pg_get_serial_sequence(:table, 'id')) "
                    "FROM generate_series(1, :n) ORDER BY 1"
                ),
                {"table": table, "n": self.block.get(table, self.BLOCKS[0])},
            ).all()
            self.block[table] = min(len(block) * 2, self.BLOCKS[1])
            self.free[table] = iter(block)
            return next(self.free[table])


def _external_id(channel: str, n: int) -> str:
    return channels.get(channel).sample_contact_id(n)


MESSAGE_COLS = (
    "id",
    "conversation_id",
    "inbox_id",
    "direction",
    "body",
    "sender_name",
    "provider_id",
    "platform_at",
    "status",
    "automated",
    "sender_user_id",
    "meta",
    "created_at",
    "updated_at",
)
CONTACT_COLS = ("id", "name", "created_at")
IDENTITY_COLS = ("id", "contact_id", "inbox_id", "channel", "external_id", "data", "created_at")
CONVERSATION_COLS = (
    "id",
    "inbox_id",
    "contact_id",
    "identity_id",
    "status",
    "assignee_id",
    "priority",
    "subject",
    "token",
    "snooze_until",
    "last_inbound_at",
    "waiting_since",
    "last_outbound_at",
    "last_activity_at",
    "window_expires_at",
    "window_open_until",
    "response_due_at",
    "unread_count",
    "last_message_direction",
    "last_message_body",
    "last_message_at",
    "requested_live_agent",
    "context",
    "closed_at",
    "created_at",
)


class _Writer:
    """Bulk rows (tuples) into a table the fastest way the database offers.

    SQLite: the driver's ``executemany`` with tuples, datetimes pre-formatted as
    SQLAlchemy stores them, with a larger page cache while seeding (the random
    inserts into the indexes otherwise thrash the default 2 MB one).
    PostgreSQL (psycopg 3): ``COPY ... FROM STDIN``.
    Anything else: SQLAlchemy Core ``executemany``. The first two skip the
    per-row, per-column Python type processing of the ORM layer.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        bind = session.get_bind()
        self.dialect = bind.dialect.name
        self.copy = self.dialect == "postgresql" and bind.dialect.driver == "psycopg"
        if self.dialect == "sqlite":
            # every time here is UTC: ISO text without the "+00:00", as SQLAlchemy stores it
            self.dt = lambda d: None if d is None else d.isoformat(" ", "microseconds")[:26]
            self.empty_json = "{}"
        elif self.copy:
            self.dt = lambda d: None if d is None else d.replace(tzinfo=None)
            self.empty_json = "{}"
        else:
            self.dt = lambda d: d
            self.empty_json = {}

    def write(self, table: str, cols: tuple[str, ...], rows: list[tuple]) -> None:
        """Insert ``rows`` (values in ``cols`` order) into ``table``."""
        if not rows:
            return
        raw = self.session.connection().connection.driver_connection
        names = ", ".join(cols)
        if self.dialect == "sqlite":
            raw.execute(f"PRAGMA cache_size={SQLITE_SEED_CACHE_KIB}")
            marks = ", ".join("?" * len(cols))
            raw.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
        elif self.copy:
            with raw.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            model = {
                "contacts": Contact,
                "contact_identities": ContactIdentity,
                "conversations": Conversation,
                "messages": Message,
                "report_events": ReportEvent,
                "report_waits": ReportWait,
            }[table]
            self.session.execute(sa.insert(model), [dict(zip(cols, r, strict=True)) for r in rows])

    def done(self) -> None:
        """Give the pooled SQLite connection its default page cache back."""
        if self.dialect == "sqlite":
            self.session.connection().connection.driver_connection.execute(
                "PRAGMA cache_size=-2000"
            )


#: Minutes an agent takes to reply, and how often: most within 15 minutes, a few the next day.
REPLY_MINUTES = ((0.6, 1, 15), (0.25, 15, 60), (0.1, 60, 8 * 60), (0.05, 8 * 60, 30 * 60))


def _reply_minutes(rng: random.Random) -> int:
    pick = rng.random()
    for share, lo, hi in REPLY_MINUTES:
        if pick < share:
            return rng.randint(lo, hi)
        pick -= share
    return rng.randint(1, 15)


def seed(
    session: Session,
    n_conversations: int,
    messages_per_conversation: int,
    rng: random.Random | None = None,
    days: int = 365,
) -> dict:
    """Insert ``n_conversations`` conversations with ``messages_per_conversation`` messages each.

    They start over the last ``days`` days; the report facts (starts, assignments,
    closes, reopenings, customers' waits and message counts) go in with them.
    """
    rng = rng or random.Random(42)
    inboxes, agents = _ensure_demo_setup(session)
    out = _Writer(session)
    dt, empty = out.dt, out.empty_json
    at = now()
    at_s = dt(at)
    ids = _Ids(session)
    facts = SeedFacts(dt, ids)
    contacts, idents, convs, msgs = [], [], [], []
    total_msgs = 0
    statuses = ["open"] * 4 + ["pending", "snoozed"] + ["closed"] * 4
    boxes = [(inbox.id, inbox.channel) for inbox in inboxes]
    agent_ids = [agent.id for agent in agents]

    def flush() -> None:
        nonlocal contacts, idents, convs, msgs
        if not convs:
            return
        out.write("contacts", CONTACT_COLS, contacts)
        out.write("contact_identities", IDENTITY_COLS, idents)
        out.write("conversations", CONVERSATION_COLS, convs)
        out.write("messages", MESSAGE_COLS, msgs)
        events, waits, counts = facts.take()
        out.write("report_events", EVENT_COLS, events)
        out.write("report_waits", WAIT_COLS, waits)
        report_facts.add_counts(session, counts)
        contacts, idents, convs, msgs = [], [], [], []
        session.commit()

    for i in range(n_conversations):
        if not convs:
            ids.begin_chunk()
        inbox_id, channel = boxes[i % len(boxes)]
        contact_id, ident_id = ids("contacts"), ids("contact_identities")
        conv_id = ids("conversations")
        n = contact_id
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        ext = _external_id(channel, n)
        contacts.append((contact_id, name, at_s))
        idents.append((ident_id, contact_id, inbox_id, channel, ext, empty, at_s))
        status = rng.choice(statuses)
        started = at - timedelta(minutes=rng.randint(5, 60 * 24 * days))
        assignee = rng.choice(agent_ids) if rng.random() < 0.6 else None
        replier = assignee or rng.choice(agent_ids)
        last_at = started
        timeline = []
        last_in = None
        last_out = None
        last_dir, last_body = "inbound", ""
        for m in range(messages_per_conversation):
            inbound = m % 2 == 0 or rng.random() < 0.2
            text = (rng.choice(CUSTOMER) if inbound else rng.choice(AGENT)).format(
                n=1000 + n % 9000
            )
            step = rng.randint(1, 90) if inbound or m == 0 else _reply_minutes(rng)
            last_at = last_at + timedelta(minutes=step, seconds=rng.randint(0, 59))
            if last_at > at:
                last_at = at - timedelta(seconds=messages_per_conversation - m)
            last_s = dt(last_at)
            msg_id = ids("messages")
            msgs.append(
                (
                    msg_id,
                    conv_id,
                    inbox_id,
                    "inbound" if inbound else "outbound",
                    text,
                    name if inbound else "Agent",
                    f"seed-{msg_id}",
                    last_s,
                    "received" if inbound else "delivered",
                    False,
                    None if inbound else replier,
                    empty,
                    last_s,
                    last_s,
                )
            )
            timeline.append((last_at, inbound, None if inbound else replier))
            total_msgs += 1
            if inbound:
                last_in = last_at
            else:
                last_out = last_at
            last_dir, last_body = ("inbound" if inbound else "outbound"), text
        waiting = last_in if (last_dir == "inbound" and status != "closed") else None
        reopen_after = None
        if rng.random() < 0.15:  # closed once after a reply, then the customer wrote again
            turns = [
                k for k in range(len(timeline) - 1) if not timeline[k][1] and timeline[k + 1][1]
            ]
            reopen_after = rng.choice(turns) if turns else None
        facts.conversation(
            conv_id, inbox_id, started, assignee, status == "closed", timeline, reopen_after
        )
        snooze = at + timedelta(hours=rng.randint(1, 48)) if status == "snoozed" else None
        convs.append(
            (
                conv_id,
                inbox_id,
                contact_id,
                ident_id,
                status,
                assignee,
                0,
                "Order question" if channels.get(channel).mail else None,
                f"{conv_id:016x}",
                dt(snooze),
                dt(last_in),
                dt(waiting),
                dt(last_out),
                dt(last_at),
                dt(windows.final_expiry(channel, last_in, False)),
                dt(windows.standard_expiry(channel, last_in)),
                dt(windows.response_due_at(waiting, 24)),
                1 if waiting else 0,
                last_dir,
                last_body[:280],
                dt(last_at),
                False,
                empty,
                dt(last_at) if status == "closed" else None,
                dt(started),
            )
        )
        if len(msgs) >= CHUNK * 4 or len(convs) >= CHUNK:
            flush()
    flush()
    out.done()
    return {"conversations": n_conversations, "messages": total_msgs}
