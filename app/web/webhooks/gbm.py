"""``POST /webhooks/gbm``: the handshake and Business Messages events (via the intake)."""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask import jsonify, request

from app.extensions import db
from app.inbox import intake
from app.models import Inbox
from app.web.webhooks import bp, log, same, text
from connectors import gbm


@bp.post("/gbm")
def gbm_webhook():
    """Handshake: echo the secret when the client token matches an inbox. Events: verify, store."""
    raw = request.get_data(cache=True)
    try:
        payload = json.loads(raw or b"null")
    except ValueError:
        log.warning("gbm: body is not JSON")
        return text("body is not JSON", 400)
    if not isinstance(payload, dict):
        return text("body is not a JSON object", 400)

    shake = gbm.handshake(payload)
    if shake is not None:
        client_token, secret = shake
        inboxes = db.session.scalars(sa.select(Inbox).where(Inbox.channel == "gbm"))
        if any(same(client_token, i.config.get("client_token")) for i in inboxes):
            return text(secret)
        log.warning("gbm: handshake with an unknown client token")
        return text("unknown client token", 403)

    body = gbm.unwrap(payload) or {}
    agent = body.get("agent")
    inbox = (
        db.session.scalars(
            sa.select(Inbox).where(Inbox.channel == "gbm", Inbox.route_key == agent)
        ).first()
        if agent
        else None
    )
    if inbox is None:
        # cannot be verified without an inbox; acknowledge so Google does not retry for 7 days
        log.warning("gbm: event for unknown agent %r ignored", agent)
        return jsonify({"status": "ignored", "reason": "unknown agent"}), 200
    connector = gbm.GbmConnector(inbox.config)
    if not connector.verify_signature(raw, request.headers.get("X-Goog-Signature")):
        log.warning("gbm: bad or missing X-Goog-Signature for inbox %s", inbox.id)
        return text("invalid signature", 403)
    with intake.receiving():  # stored, then threaded like Messenger bodies (app.inbox.intake)
        result = intake.accept(intake.store("gbm", raw, [inbox.id]))
    if result is None:
        return jsonify({"status": "ok", "queued": True})
    return jsonify({"status": "ok", "stored": len(result.created), "duplicates": result.duplicates})


@intake.parser("gbm")
def parse_stored(row, inboxes: dict[int, Inbox]) -> dict[int, list]:
    """A stored Business Messages body -> its events, for the agent's inbox."""
    events = gbm.parse(json.loads(row.body))
    return {inbox_id: events for inbox_id in inboxes}
