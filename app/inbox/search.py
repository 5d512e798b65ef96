"""Full-history search behind the conversation list's ``q``.

What an agent types is looked for in the words of every message (inbound,
outbound, notes; an email by its new text), in contact names and subjects (word
prefixes, any case, any accents: "noel" finds "Noël") and in the contact's
addresses (any part of an identity, e-mail or phone; a phone number typed in any
format, "(415) 555-9876", also as its E.164 form and its digits).

Both databases answer from indexes kept in step by the database (migration 0014):
SQLite's FTS5 tables, PostgreSQL's full text (``sb_search``: ``simple`` with
``unaccent``) and trigram indexes. A word found in very many messages is answered
from its newest ``MESSAGE_CAP`` matches: the list then shows those and its counts
say they are capped (at least that many).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass

import sqlalchemy as sa
from markupsafe import Markup, escape
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from app.inbox.rows import fetch
from app.models import Contact, ContactIdentity, Conversation, Message
from connectors.sms import phone as phones

MESSAGE_CAP = 1000  # matching messages read at most for one search
PEOPLE_CAP = 1000  # conversations found by name and address, or by subject, at most
SNIPPET_BEFORE = 50
SNIPPET_AFTER = 110
_WORD = re.compile(r"\w+")
_PHONE_CHARS = re.compile(r"[\s()+.\-/]")


def fold(text: str) -> str:
    """``text`` without case or accents ("Noël" -> "noel"), as the indexes compare it."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


@dataclass(frozen=True)
class Query:
    """One search: the text as typed, its folded words and the address forms to look for."""

    text: str
    words: tuple[str, ...]
    handles: tuple[str, ...]
    typing: bool = False  # the text ends with a word, perhaps still being typed

    @classmethod
    def parse(cls, text: str, region: str | None = None) -> Query:
        """Words for the full-text indexes; the text, and a phone number's forms, for addresses."""
        words = tuple(dict.fromkeys(_WORD.findall(fold(text))))[:16]
        handles = [text]
        digits = re.sub(r"\D", "", text)
        if len(digits) >= 4 and _PHONE_CHARS.sub("", text).isdigit():
            e164 = phones.normalise(text, region)
            handles += [h for h in (e164, digits) if h]
        typing = bool(words) and bool(_WORD.match(text[-1]))
        return cls(text=text, words=words, handles=tuple(dict.fromkeys(handles)), typing=typing)


@dataclass
class Found:
    """The conversations a search found (before the list's own filters)."""

    ids: set[int]
    capped: bool
    newest: dict[int, int]  # conversation id -> its newest matching message


def find(session: Session, query: Query, visible) -> Found:
    """Conversations in the ``visible`` inboxes (a subquery; None = all) matching ``query``."""
    dialect = session.get_bind().dialect.name
    newest: dict[int, int] = {}
    capped = False
    if query.words:
        hits = (_pg_hits if dialect == "postgresql" else _sqlite_hits)(session, query, visible)
        capped = len(hits) > MESSAGE_CAP
        for conv_id, msg_id in hits[:MESSAGE_CAP]:
            # the newest matches overall hold each listed conversation's newest one
            newest[conv_id] = max(msg_id, newest.get(conv_id, 0))
    ids = set(newest)
    for q in _people(dialect, query, visible):  # newest conversations first
        people = [row[0] for row in fetch(session, q.limit(PEOPLE_CAP + 1))]
        capped = capped or len(people) > PEOPLE_CAP
        ids.update(people[:PEOPLE_CAP])
    return Found(ids=ids, capped=capped, newest=newest)


def id_in(session: Session, col, ids) -> sa.ColumnElement[bool]:
    """``col IN ids`` with the ids as one parameter (a thousand bound values cost more)."""
    ids = sorted(ids)
    if session.get_bind().dialect.name == "postgresql":
        # the ids are looked up, and only they sorted (not the sort index walked for them);
        # sent as one text the server splits (a list would be converted element by element)
        listed = sa.func.string_to_array(",".join(map(str, ids)), ",")
        return col.in_(sa.select(sa.func.unnest(sa.cast(listed, postgresql.ARRAY(sa.BigInteger)))))
    if session.get_bind().dialect.name == "sqlite":
        each = sa.func.json_each(json.dumps(ids)).table_valued("value")
        return col.in_(sa.select(each.c.value))
    return col.in_(ids)


# --------------------------------------------------------------------------- messages


def _stars(query: Query, prefix: str) -> list[bool]:
    """Which words match as beginnings: "all", none, or the "last" one when the text ends
    with it ("refun" finds "refund"; "50%" finds "50", not "500")."""
    n = len(query.words)
    if prefix == "all":
        return [True] * n
    return [prefix == "last" and query.typing and i == n - 1 for i in range(n)]


def _fts(query: Query, prefix: str = "all") -> str:
    """An FTS5 query: every word (as a phrase of its tokens: "order_12" is "order" "12")."""
    marks = _stars(query, prefix)
    return " ".join(
        f'"{w}"' + ("*" if star else "") for w, star in zip(query.words, marks, strict=True)
    )


def _tsquery(query: Query, prefix: str) -> str:
    """A ``to_tsquery`` text, every word; ``\\w`` words need no quoting."""
    marks = _stars(query, prefix)
    return " & ".join(
        f"'{w}'" + (":*" if star else "") for w, star in zip(query.words, marks, strict=True)
    )


def _sqlite_message_ids(query: Query, prefix: str):
    return (
        sa.select(sa.literal_column("rowid"))
        .select_from(sa.table("search_messages"))
        .where(sa.literal_column("search_messages").op("MATCH")(_fts(query, prefix)))
    )


def _sqlite_hits(session: Session, query: Query, visible) -> list:
    """Whole words first: a common word's newest matches come straight off its index
    (FTS5 reads rowids backwards). Fewer than the cap: the last word as a beginning too
    ("refund" finds "refunded"), which reads every word so beginning, fine for a rare one."""
    for prefix in ("none", "last"):
        if prefix == "last" and not query.typing:
            break
        fts = _sqlite_message_ids(query, prefix).subquery()
        q = sa.select(Message.conversation_id, Message.id).join(fts, Message.id == fts.c.rowid)
        if visible is not None:
            q = q.where(Message.inbox_id.in_(visible))
        hits = fetch(session, q.order_by(fts.c.rowid.desc()).limit(MESSAGE_CAP + 1))
        if len(hits) > MESSAGE_CAP:
            break
    return hits


PG_RECENT = 10_000  # PostgreSQL: newest messages checked one by one before the index


def _pg_hits(session: Session, query: Query, visible) -> list:
    """The newest messages first, checked row by row on their stored vector: a common
    word fills the cap there (its index would list every match, a hundred thousand
    rows). Otherwise the GIN index, which lists a rarer word's matches quickly."""
    tsq = sa.func.to_tsquery(sa.literal_column("'sb_search'::regconfig"), _tsquery(query, "last"))
    vector = sa.literal_column("messages.search_vector")
    base = sa.select(Message.conversation_id, Message.id)
    if visible is not None:
        base = base.where(Message.inbox_id.in_(visible))
    newest = session.scalar(sa.select(sa.func.max(Message.id))) or 0
    recent = base.where(Message.id > newest - PG_RECENT, vector.op("@@")(tsq))
    hits = fetch(session, recent.order_by(Message.id.desc()).limit(MESSAGE_CAP + 1))
    if len(hits) > MESSAGE_CAP:
        return hits
    # "id + 0": sorted after the index lists the matches, not by walking the primary key
    indexed = base.where(vector.op("@@")(tsq)).order_by((Message.id + 0).desc())
    return fetch(session, indexed.limit(MESSAGE_CAP + 1))


def matches(session: Session, query: Query, found: Found, conversation_ids) -> dict[int, dict]:
    """For each listed conversation, its newest matching message: ``{"message_id", "snippet"}``.

    The snippet is HTML: the message text escaped, the words found in ``<mark>``.
    """
    wanted = [found.newest[c] for c in conversation_ids if c in found.newest]
    if not wanted:
        return {}
    rows = session.execute(
        sa.select(Message.conversation_id, Message.id, Message.body).where(Message.id.in_(wanted))
    ).all()
    return {
        row.conversation_id: {
            "message_id": row.id,
            "snippet": snippet(row.body or "", query.words, _stars(query, "last")),
        }
        for row in rows
    }


def snippet(body: str, words, stars=None) -> str:
    """A short escaped excerpt of ``body`` around the first word found, words in ``<mark>``
    (``stars``: which words match as beginnings; all when not given)."""
    stars = stars or [True] * len(words)

    def found(token: str) -> bool:
        token = fold(token)
        return any(
            token.startswith(w) if star else token == w
            for w, star in zip(words, stars, strict=True)
        )

    spans = [m.span() for m in _WORD.finditer(body) if found(m.group())]
    if not spans:
        return str(escape(body[: SNIPPET_BEFORE + SNIPPET_AFTER]))
    start = max(0, spans[0][0] - SNIPPET_BEFORE)
    end = min(len(body), spans[0][0] + SNIPPET_AFTER)
    if start > 0:  # begin and end on a word
        space = body.find(" ", start)
        start = space + 1 if 0 <= space < spans[0][0] else start
    if end < len(body):
        space = body.rfind(" ", spans[0][1], end)
        end = space if space > 0 else end
    out, at = [], start
    for s, e in spans:
        if s < start or e > end:
            continue
        out += [escape(body[at:s]), Markup("<mark>"), escape(body[s:e]), Markup("</mark>")]
        at = e
    out.append(escape(body[at:end]))
    text = Markup("").join(out)
    text = " ".join(str(text).split())  # line breaks of an email: one line in the list
    return ("…" if start > 0 else "") + text + ("…" if end < len(body) else "")


# --------------------------------------------------------------------------- people


def _people(dialect: str, query: Query, visible) -> list:
    """Queries for the conversations whose contact's name or address, or whose subject,
    matches: newest first (FTS5 reads its rowids backwards)."""
    contacts = _pg_contacts(query) if dialect == "postgresql" else _sqlite_contacts(query)
    newest_first = Conversation.id.desc()
    out = [(sa.select(Conversation.id).where(Conversation.contact_id.in_(contacts)), newest_first)]
    if dialect == "postgresql":
        by_subject = sa.select(Conversation.id).where(_pg_folded_has(Conversation.subject, query))
        out.append((by_subject, newest_first))
    elif query.words:
        fts = (
            sa.select(sa.literal_column("rowid"))
            .select_from(sa.table("search_subjects"))
            .where(sa.literal_column("search_subjects").op("MATCH")(_fts(query)))
            .subquery()
        )
        by_subject = sa.select(Conversation.id).join(fts, Conversation.id == fts.c.rowid)
        out.append((by_subject, fts.c.rowid.desc()))
    if visible is not None:
        out = [(q.where(Conversation.inbox_id.in_(visible)), order) for q, order in out]
    return [q.order_by(order) for q, order in out]


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _pg_folded_has(col, query: Query):
    """``col`` holds the text, accents and case aside (trigram index on ``sb_fold(col)``)."""
    pattern = sa.func.sb_fold(sa.literal(_like(query.text)))
    return sa.func.sb_fold(col).like(pattern, escape="\\")


def _pg_contacts(query: Query):
    def has(col, text):
        return col.ilike(_like(text), escape="\\")

    parts = [sa.select(Contact.id).where(_pg_folded_has(Contact.name, query))]
    for h in query.handles:
        parts += [
            sa.select(Contact.id).where(has(Contact.email, h)),
            sa.select(Contact.id).where(has(Contact.phone, h)),
            sa.select(ContactIdentity.contact_id).where(has(ContactIdentity.external_id, h)),
        ]
    return sa.union_all(*parts)


def _sqlite_contacts(query: Query):
    parts = []
    if query.words:
        parts.append(
            sa.select(sa.literal_column("rowid"))
            .select_from(sa.table("search_names"))
            .where(sa.literal_column("search_names").op("MATCH")(_fts(query)))
        )
    long = [h for h in query.handles if len(h) >= 3]  # a trigram index reads 3 characters
    if long:
        phrase = " OR ".join('"' + h.replace('"', '""') + '"' for h in long)
        parts.append(
            sa.select(sa.literal_column("rowid"))
            .select_from(sa.table("search_handles"))
            .where(sa.literal_column("search_handles").op("MATCH")(phrase))
        )
    for h in query.handles:
        if len(h) < 3:
            parts.append(
                sa.select(ContactIdentity.contact_id).where(
                    ContactIdentity.external_id.icontains(h, autoescape=True)
                )
            )
    return sa.union_all(*parts)
