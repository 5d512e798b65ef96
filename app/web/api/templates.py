"""Message templates: the approved ones an inbox may send outside its reply window.

Read from the provider through the channel's adapter (``Channel.list_templates``)
and kept briefly, so that opening the composer does not call the provider each time.
Sending one is ``POST /conversations/<id>/messages`` with ``template`` (:mod:`.messages`).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import current_app, jsonify
from flask_login import current_user

from app import channels
from app.connections import connector_for
from app.extensions import db
from app.inbox.queries import can_see
from app.models import Inbox
from app.web.api.base import bp
from app.web.api.errors import ApiError

CACHE_SECONDS = 300.0
_lock = threading.Lock()


def _cache() -> dict[tuple[int, str], tuple[float, list[dict[str, Any]]]]:
    """This application's templates by inbox (one per app: a test's never leaks into the next)."""
    return current_app.extensions.setdefault("sb_templates", {})


def approved(inbox: Inbox, fresh: bool = False) -> list[dict[str, Any]]:
    """The inbox's approved templates (cached ``CACHE_SECONDS`` per inbox and credentials).

    Raises :class:`ApiError`: 404 when the channel has no templates, 502 with the
    provider's reason when they cannot be read.
    """
    channel = channels.get(inbox.channel)
    if not channel.templates:
        raise ApiError(404, "not_found", "This inbox's channel has no message templates.")
    key = (inbox.id, str(sorted((inbox.config or {}).items())))
    cache = _cache()
    with _lock:
        hit = cache.get(key)
    if hit is not None and not fresh and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    try:
        found = channel.list_templates(connector_for(inbox))
    except LookupError as exc:
        raise ApiError(502, "provider_error", f"The templates could not be read: {exc}") from exc
    with _lock:
        cache[key] = (time.monotonic(), found)
    return found


def find(inbox: Inbox, name: str, language: str) -> dict[str, Any] | None:
    """The approved template ``name`` in ``language`` (read again once when not known)."""
    for fresh in (False, True):
        for template in approved(inbox, fresh=fresh):
            if template["name"] == name and template["language"] == language:
                return template
    return None


@bp.get("/inboxes/<int:inbox_id>/templates")
def inbox_templates(inbox_id: int):
    """``{"items": [{"name", "language", "category", "status", "header", "body", "footer",
    "params", "header_params", "unsupported"}]}``: ``unsupported`` says why the inbox
    cannot send one (``media_header``, ``button_params``, ``named_params``), else null."""
    inbox = db.session.get(Inbox, inbox_id)
    if inbox is None or not can_see(db.session, current_user, inbox.id):
        raise ApiError(404, "not_found", "No such inbox.")
    return jsonify({"items": approved(inbox)})
