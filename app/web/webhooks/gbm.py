"""``POST /webhooks/gbm``: the handshake and Business Messages events (via the intake).

Google signs every event with the inbox's client token, but the inbox is found
by the ``agent`` inside the body, so the body is read before it can be verified.
A body without an ``agent`` that can name an inbox is refused with 400 unless
one of our agents' keys signed it: then it is acknowledged (Google would retry
it for 7 days) and kept in the intake, where it fails once and waits for an admin.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify, request

from app.extensions import db
from app.inbox import intake
from app.models import Inbox
from app.web.webhooks import bp, log, same, text
from connectors import gbm
from connectors.base import UnreadableBody, read_json


@bp.post("/gbm")
def gbm_webhook():
    """Handshake: echo the secret when the client token matches an inbox. Events: verify, store."""
    raw = request.get_data(cache=True)
    try:
        payload = read_json(raw)
    except UnreadableBody:
        payload = None

    shake = gbm.handshake(payload)
    if shake is not None:
        client_token, secret = shake
        inboxes = db.session.scalars(sa.select(Inbox).where(Inbox.channel == "gbm"))
        if any(same(client_token, i.config.get("client_token")) for i in inboxes):
            return text(secret)
        log.warning("gbm: handshake with an unknown client token")
        return text("unknown client token", 403)

    signature = request.headers.get("X-Goog-Signature")
    try:
        agent = gbm.agent_of(payload)
    except UnreadableBody as exc:
        signed_by = [
            i.id
            for i in db.session.scalars(sa.select(Inbox).where(Inbox.channel == "gbm"))
            if signature and gbm.GbmConnector(i.config).verify_signature(raw, signature)
        ]
        if not signed_by:
            log.warning("gbm: unreadable body refused (%s)", exc)
            return text("unreadable body", 400)
        log.warning("gbm: signed body cannot be read (%s); kept as failed, acknowledged", exc)
        with intake.receiving():
            intake.accept(intake.store("gbm", raw, signed_by))
        return jsonify({"status": "ignored", "reason": "malformed"}), 200

    inbox = db.session.scalars(
        sa.select(Inbox).where(Inbox.channel == "gbm", Inbox.route_key == agent)
    ).first()
    if inbox is None:
        # cannot be verified without an inbox; acknowledge so Google does not retry for 7 days
        log.warning("gbm: event for unknown agent %r ignored", agent)
        return jsonify({"status": "ignored", "reason": "unknown agent"}), 200
    connector = gbm.GbmConnector(inbox.config)
    if not connector.verify_signature(raw, signature):
        log.warning("gbm: bad or missing X-Goog-Signature for inbox %s", inbox.id)
        return text("invalid signature", 403)
    with intake.receiving():  # stored, then threaded like Messenger bodies (app.inbox.intake)
        result = intake.accept(intake.store("gbm", raw, [inbox.id]))
    if result is None:
        return jsonify({"status": "ok", "queued": True})
    return jsonify({"status": "ok", "stored": len(result.created), "duplicates": result.duplicates})
