"""The signed-in user: profile, availability and language, API tokens, sign-ins and
notification settings."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app, jsonify
from flask_login import current_user

from app.clock import iso, now
from app.extensions import db
from app.inbox import assignment, events, language, notifications, queries, signals
from app.models import ApiToken, LoginSession
from app.models.user import AVAILABILITY, hash_token
from app.web.api.base import bp, json_body
from app.web.api.errors import ApiError
from app.web.auth import end_sign_ins


@bp.get("/me")
def me():
    """The signed-in user."""
    return jsonify(current_user.to_dict())


@bp.get("/me/unread")
def me_unread():
    """How many conversations wait unread for me (mine, or unassigned in my inboxes)."""
    return jsonify({"conversations": queries.unread_conversations(db.session, current_user)})


@bp.patch("/me")
def me_patch():
    """Change my availability, my interface language or the languages I speak with customers."""
    data = json_body()
    if "availability" in data:
        if data["availability"] not in AVAILABILITY:
            raise ApiError(422, "invalid", "availability must be online, away or busy.")
        current_user.availability = data["availability"]
        if data["availability"] == "online":  # back: the unassigned queue may have waited
            db.session.flush()
            assignment.capacity_freed(db.session, current_user.id)
    if "locale" in data:
        if data["locale"] not in current_app.config["LANGUAGES"]:
            raise ApiError(422, "invalid", "Unsupported language.")
        current_user.locale = data["locale"]
    if "languages" in data:
        try:
            current_user.languages = language.spoken(data["languages"])
        except language.InvalidLanguages as exc:
            raise ApiError(422, "invalid", str(exc)) from exc
    events.publish(db.session, "presence.updated", {"user": current_user.to_dict()}, ("all", 0))
    db.session.commit()
    return jsonify(current_user.to_dict())


@bp.get("/me/tokens")
def my_tokens():
    """My API tokens (names and dates; a token itself is shown only when created)."""
    rows = db.session.scalars(
        sa.select(ApiToken).where(ApiToken.user_id == current_user.id).order_by(ApiToken.id)
    )
    return jsonify({"items": [row.to_dict() for row in rows]})


@bp.post("/me/tokens")
def my_token_create():
    """A new API token for me: ``{"name", "expires_in_days"?}``; the token is in this answer only."""
    data = json_body()
    name = str(data.get("name") or "api").strip()[:80] or "api"
    days = data.get("expires_in_days")
    expires_at = None
    if days is not None:
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3650:
            raise ApiError(422, "invalid", "expires_in_days must be a whole number from 1 to 3650.")
        expires_at = now() + timedelta(days=days)
    row, clear = ApiToken.issue(current_user, name=name, expires_at=expires_at)
    db.session.add(row)
    db.session.commit()
    return jsonify({**row.to_dict(), "token": clear}), 201


@bp.delete("/me/tokens/<int:token_id>")
def my_token_delete(token_id: int):
    """Revoke one of my API tokens: it stops working at once (live connections included)."""
    row = db.session.get(ApiToken, token_id)
    if row is None or row.user_id != current_user.id:
        raise ApiError(404, "not_found", "No such token.")
    db.session.delete(row)
    db.session.commit()
    signals.access_changed.send(current_user.id)
    return "", 204


@bp.get("/me/sessions")
def my_sessions():
    """Where I am signed in (browser sign-ins); ``current`` marks this one."""
    key = current_user.login_key
    mine = hash_token(key) if key else None
    rows = db.session.scalars(
        sa.select(LoginSession)
        .where(LoginSession.user_id == current_user.id)
        .order_by(LoginSession.id)
    )
    items = [
        {
            "id": row.id,
            "created_at": iso(row.created_at),
            "user_agent": row.user_agent,
            "current": row.key_hash == mine,
        }
        for row in rows
    ]
    return jsonify({"items": items})


@bp.delete("/me/sessions")
def my_sessions_end():
    """Sign out everywhere: every browser sign-in of mine ends, this one too."""
    end_sign_ins(current_user.id)
    db.session.commit()
    signals.access_changed.send(current_user.id)
    return "", 204


@bp.get("/me/notification-settings")
def notification_settings_get():
    """Which kinds notify me in the app, as a desktop notification, and by email when offline."""
    return jsonify(notifications.settings_dict(current_user))


@bp.patch("/me/notification-settings")
def notification_settings_patch():
    """Change ``{"kinds": {"assigned": {"in_app": true, "desktop": true, "email": false}}}``."""
    try:
        notifications.update_settings(current_user, json_body())
    except notifications.InvalidSettings as exc:
        raise ApiError(422, "invalid", str(exc)) from exc
    db.session.commit()
    return jsonify(notifications.settings_dict(current_user))
