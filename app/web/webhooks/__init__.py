"""Webhooks the providers call: authenticate, parse with the connector, store, answer.

Every route follows the same order: route the request to an inbox, verify it
(a forged request gets 403 and stores nothing), parse it into normalised events,
store them with ``ingest`` (committed before we answer 2xx), then answer.

Bodies are read with the connectors' strict readers (``connectors.base.read_json``,
``routing_key``): a routing value reaches SQL only as a short string, and a body
that cannot be read never answers 5xx. Unsigned, it gets 400 (or 403 where the
signature is checked first); authentic but malformed, it is logged, acknowledged
so the provider does not retry forever, and kept in the intake as ``failed``.
"""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, current_app, request

from app.extensions import csrf, db, limiter
from app.inbox.ingest import ingest
from app.models import Inbox

log = logging.getLogger("switchboard.webhooks")

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)
limiter.exempt(bp)


def same(a: str | None, b: str | None) -> bool:
    """Constant-time string comparison that is False for missing values."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


def request_url() -> str:
    """The URL the provider called: ``PUBLIC_URL`` + path (behind proxies), else the request's."""
    public = current_app.config.get("PUBLIC_URL")
    if public:
        full = request.full_path if request.query_string else request.path
        return public.rstrip("/") + full
    return request.url


def store(inbox: Inbox, events: list, received_at=None):
    """Ingest and commit; a database failure propagates as 500 so the provider retries."""
    try:
        return ingest(db.session, inbox, events, received_at)
    except Exception:
        db.session.rollback()
        log.exception("ingest failed for inbox %s", inbox.id)
        raise


def text(body: str, status: int = 200, content_type: str = "text/plain; charset=utf-8"):
    """A plain response."""
    return body, status, {"Content-Type": content_type}


from app.web.webhooks import email, gbm, messenger, sms  # noqa: E402,F401  (registers routes)
