"""My notifications: the list and marking them read."""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify, request
from flask_login import current_user

from app.clock import now
from app.extensions import db
from app.models import Notification
from app.web.api.base import bp


@bp.get("/notifications")
def notifications_list():
    """My notifications, newest first; ``unread=1`` for unread only."""
    q = sa.select(Notification).where(Notification.user_id == current_user.id)
    if request.args.get("unread") in ("1", "true"):
        q = q.where(Notification.read_at.is_(None))
    rows = db.session.scalars(q.order_by(Notification.id.desc()).limit(100))
    return jsonify({"items": [n.to_dict() for n in rows]})


@bp.post("/notifications/read")
def notifications_read():
    """Mark some (``ids``) or all of my notifications read."""
    data = request.get_json(silent=True) or {}
    q = sa.update(Notification).where(
        Notification.user_id == current_user.id, Notification.read_at.is_(None)
    )
    if isinstance(data.get("ids"), list):
        q = q.where(Notification.id.in_([i for i in data["ids"] if isinstance(i, int)]))
    db.session.execute(q.values(read_at=now()))
    db.session.commit()
    return jsonify({"ok": True})
