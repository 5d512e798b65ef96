"""``POST /webhooks/email/inbound/<token>``: one raw RFC 822 message (Postfix pipe, providers)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify, request

from app.clock import now
from app.extensions import db
from app.models import Inbox
from app.web.webhooks import bp, log, same, store, text


@bp.post("/email/inbound/<token>")
def email_inbound(token: str):
    """Store one raw message for the inbox the token belongs to (404 for unknown tokens)."""
    inbox = db.session.scalars(
        sa.select(Inbox).where(Inbox.channel == "email", Inbox.inbound_token == token)
    ).first()
    if inbox is None or not same(token, inbox.inbound_token):
        return text("not found", 404)
    raw = request.get_data(cache=False)
    if not raw.strip():
        return text("empty message", 400)
    from app.inbox import email_ingest

    result = email_ingest.ingest_raw(db.session, inbox, [raw], now())
    if result is None:
        log.info("email: message for inbox %s dropped (mail loop)", inbox.id)
        return jsonify({"status": "dropped", "reason": "loop"}), 200
    return jsonify({"status": "ok", "stored": len(result.created), "duplicates": result.duplicates}), 200
