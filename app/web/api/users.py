"""The team's users."""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify

from app.extensions import db
from app.models import User
from app.web.api.base import bp


@bp.get("/users")
def users_list():
    """Everyone on the team (names, roles, availability; no secrets)."""
    users = db.session.scalars(sa.select(User).where(User.active.is_(True)).order_by(User.name))
    return jsonify({"items": [u.to_dict() for u in users]})
