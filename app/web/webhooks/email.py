"""``POST /webhooks/email/inbound/<token>``: one raw RFC 822 message (Postfix pipe, providers).

The token in the URL is the inbox's secret ``inbound_token`` (404 otherwise, so
the URL reveals nothing). The body is the message exactly as received
(``message/rfc822``; any content type is accepted, since pipes and providers
differ). The answer is 2xx only once the message is committed; a database error
answers 500 so the sender retries, and a replay stores nothing new. A message
whose values the database refuses (``DataError``: it would fail the same way on
every retry) is kept as an unreadable stand-in with the original attached.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify, request

from app.clock import now
from app.extensions import db
from app.models import Inbox
from app.web.webhooks import bp, log, same, text
from connectors.base import routing_key

TOKEN_LENGTH = Inbox.inbound_token.type.length


@bp.post("/email/inbound/<token>")
def email_inbound(token: str):
    """Store one raw message for the inbox the token belongs to (404 for unknown tokens)."""
    inbox = None
    key = routing_key(token, max_length=TOKEN_LENGTH)  # never NUL or 3,000 characters into SQL
    if key is not None:
        inbox = db.session.scalars(
            sa.select(Inbox).where(Inbox.channel == "email", Inbox.inbound_token == key)
        ).first()
    if inbox is None or not same(token, inbox.inbound_token):
        return text("not found", 404)
    raw = request.get_data(cache=False)
    if not raw.strip():
        return text("empty message", 400)
    from app.inbox import email_ingest

    try:
        result = email_ingest.ingest_raw(db.session, inbox, [raw], now())
    except sa.exc.DataError:  # refused the same way on every retry: keep it unreadable, once
        db.session.rollback()
        log.exception(
            "email: the database refused a message for inbox %s; kept as unreadable", inbox.id
        )
        result = email_ingest.keep_unreadable(db.session, inbox, raw, now())
    except Exception:
        db.session.rollback()
        log.exception("email: storing a message for inbox %s failed", inbox.id)
        raise
    if result is None:
        log.info("email: message for inbox %s dropped (mail loop)", inbox.id)
        return jsonify({"status": "dropped", "reason": "loop"}), 200
    return jsonify(
        {
            "status": "ok",
            "stored": len(result.created),
            "duplicates": result.duplicates,
            "updated": result.updated,
        }
    ), 200
