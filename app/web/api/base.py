"""The ``/api/v1`` blueprint every resource module adds its routes to, the gate every
request passes (authentication, then CSRF for cookie-authenticated writes), and the
request helpers the resource modules share.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from app.clock import aware
from app.extensions import csrf, db
from app.inbox.queries import can_see
from app.models import Conversation
from app.web.api.errors import ApiError, api_error_response
from app.web.auth import token_authenticated

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)
bp.register_error_handler(ApiError, api_error_response)


@bp.before_request
def auth_and_csrf() -> None:
    """A valid bearer token needs no CSRF token; every cookie-authenticated write does.

    (Any ``Authorization`` header, even a bogus one, used to skip the check.)
    """
    if not current_user.is_authenticated:
        raise ApiError(401, "unauthorized", "Log in or send a bearer token.")
    if request.method not in ("GET", "HEAD", "OPTIONS") and not token_authenticated():
        try:
            csrf.protect()
        except CSRFError as exc:
            raise ApiError(403, "csrf_failed", exc.description) from exc


def json_body() -> dict:
    """The request's JSON object (400 ``bad_request`` for anything else)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "Send a JSON object body.")
    return data


def parse_time(value, field: str) -> datetime | None:
    """An ISO 8601 time from a request field, as aware UTC; None when absent or empty."""
    if value in (None, ""):
        return None
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ApiError(422, "invalid", f"{field} must be an ISO 8601 time.") from exc
    return aware(dt)


def visible_conversation(conversation_id: int) -> Conversation:
    """The conversation, when the user may see it; 404 otherwise (whether or not it exists)."""
    conv = db.session.get(Conversation, conversation_id)
    if conv is None or not can_see(db.session, current_user, conv.inbox_id):
        raise ApiError(404, "not_found", "No such conversation.")
    return conv


def need_lead() -> None:
    """403 unless the user is a team lead or an admin."""
    if not current_user.is_lead:
        raise ApiError(403, "forbidden", "Only team leads and admins can do this.")


def need_admin() -> None:
    """403 unless the user is an admin."""
    if not current_user.is_admin:
        raise ApiError(403, "forbidden", "Only admins can do this.")
