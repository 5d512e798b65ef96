"""``/webhooks/messenger``: the verify handshake and batched Page events."""

from __future__ import annotations

import contextlib
import json
import threading

import sqlalchemy as sa
from flask import jsonify, request

from app.extensions import db
from app.models import Inbox
from app.web.webhooks import bp, log, store, text
from connectors import messenger

_sqlite_writer = threading.Lock()


def _writer_turn():
    """On SQLite, let this process's webhook threads write one after another.

    SQLite has one writer at a time and its busy handler is not fair: under a burst of
    concurrent large batches some threads starved past the busy timeout and answered
    500. Queued on a lock they wait their turn instead. PostgreSQL needs no such turn.
    """
    if db.engine.dialect.name == "sqlite":
        return _sqlite_writer
    return contextlib.nullcontext()


@bp.get("/messenger")
def messenger_verify():
    """Meta's subscription handshake: echo ``hub.challenge`` when the verify token matches."""
    args = request.args
    given = args.get("hub.verify_token")
    if args.get("hub.mode") == "subscribe" and given:
        inboxes = db.session.scalars(sa.select(Inbox).where(Inbox.channel == "messenger"))
        if any(messenger.verify_token_matches(given, i.config.get("verify_token") or "") for i in inboxes):
            return text(args.get("hub.challenge", ""))
    log.warning("messenger: verification with a wrong token or mode")
    return text("verification failed", 403)


@bp.post("/messenger")
def messenger_events():
    """Verify ``X-Hub-Signature-256`` over the raw body, route each entry by Page id, store."""
    raw = request.get_data(cache=True)
    header = request.headers.get("X-Hub-Signature-256")
    try:
        payload = json.loads(raw or b"null")
    except ValueError:
        payload = None
    page_ids = messenger.page_ids(payload) if isinstance(payload, dict) else []
    inboxes = {
        i.route_key: i
        for i in db.session.scalars(
            sa.select(Inbox).where(Inbox.channel == "messenger", Inbox.route_key.in_(page_ids))
        )
    } if page_ids else {}
    # The body is signed with the app secret; accept it if a routed inbox's secret verifies it.
    secrets = {i.config.get("app_secret") for i in inboxes.values()} if inboxes else {
        i.config.get("app_secret")
        for i in db.session.scalars(sa.select(Inbox).where(Inbox.channel == "messenger"))
    }
    verified = {s for s in secrets if s and messenger.check_signature(raw, header, s)}
    if not verified:
        log.warning("messenger: bad or missing X-Hub-Signature-256 (%d bytes)", len(raw))
        return text("invalid signature", 403)
    if not isinstance(payload, dict):
        log.warning("messenger: signed body is not a JSON object; acknowledged")
        return jsonify({"status": "ignored", "reason": "malformed"}), 200
    events = messenger.parse(payload)
    by_inbox: dict[int, list] = {}
    unknown = set()
    for ev in events:
        inbox = inboxes.get(ev.inbox_key)
        if inbox is None or inbox.config.get("app_secret") not in verified:
            unknown.add(ev.inbox_key)
            continue
        by_inbox.setdefault(inbox.id, []).append(ev)
    if unknown:
        log.warning("messenger: events for unknown Pages %s ignored", sorted(unknown))
    stored = duplicates = 0
    with _writer_turn():
        for inbox_id, evs in by_inbox.items():
            result = store(db.session.get(Inbox, inbox_id), evs)
            stored += len(result.created)
            duplicates += result.duplicates
    return jsonify({"status": "ok", "stored": stored, "duplicates": duplicates})
