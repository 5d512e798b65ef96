"""The team's users: the list, and adding and changing users (admins)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify
from flask_login import current_user

from app.clock import now
from app.extensions import db
from app.inbox import signals, team
from app.inbox.assignment import open_load
from app.models import User
from app.models.user import AVAILABILITY, ROLES, password_problem
from app.web.api.base import bp, json_body, need_admin
from app.web.api.errors import ApiError
from app.web.auth import end_sign_ins
from app.web.schemas import user_admin_dict
from connectors.email.address import normalize_address


@bp.get("/users")
def users_list():
    """Everyone on the team (names, roles, availability; no secrets)."""
    users = db.session.scalars(sa.select(User).where(User.active.is_(True)).order_by(User.name))
    return jsonify({"items": [u.to_dict() for u in users]})


def _user_fields(data: dict, user: User, creating: bool) -> None:
    """Check and set the fields given in ``data`` (all the required ones when ``creating``)."""
    if "name" in data or creating:
        name = str(data.get("name") or "").strip()
        if not name:
            raise ApiError(422, "invalid", "name is required.")
        user.name = name[:120]
    if "email" in data or creating:
        email = normalize_address(str(data.get("email") or ""))
        if "@" not in email or len(email) > 254:
            raise ApiError(422, "invalid", "email must be an email address.")
        taken = db.session.scalar(
            sa.select(User.id).where(sa.func.lower(User.email) == email, User.id != (user.id or 0))
        )
        if taken:
            raise ApiError(409, "duplicate", "Someone already uses that email address.")
        user.email = email
    if "role" in data or creating:
        role = data.get("role") or "agent"
        if role not in ROLES:
            raise ApiError(422, "invalid", "role must be agent, lead or admin.")
        if user.id == current_user.id and role != "admin":
            raise ApiError(422, "invalid", "You cannot remove your own admin role.")
        user.role = role
    if "capacity" in data:
        cap = data["capacity"]
        if not isinstance(cap, int) or isinstance(cap, bool) or not 0 <= cap <= 1000:
            raise ApiError(422, "invalid", "capacity must be a whole number from 0 to 1000.")
        user.capacity = cap
    if "availability" in data:
        if data["availability"] not in AVAILABILITY:
            raise ApiError(422, "invalid", "availability must be online, away or busy.")
        user.availability = data["availability"]
    if "active" in data:
        if not isinstance(data["active"], bool):
            raise ApiError(422, "invalid", "active must be true or false.")
        if user.id == current_user.id and not data["active"]:
            raise ApiError(422, "invalid", "You cannot deactivate yourself.")
        user.active = data["active"]
    if "password" in data or creating:
        password = data.get("password") or ""
        problem = password_problem(str(password), user.email)
        if problem:
            raise ApiError(422, "invalid", problem)
        user.set_password(password)


@bp.post("/users")
def user_create():
    """Add a user (admins)."""
    need_admin()
    user = User(created_at=now())
    _user_fields(json_body(), user, creating=True)
    db.session.add(user)
    db.session.commit()
    return jsonify(user_admin_dict(user)), 201


@bp.patch("/users/<int:user_id>")
def user_update(user_id: int):
    """Change a user's name, role, capacity, availability, password or deactivate them."""
    need_admin()
    user = db.session.get(User, user_id)
    if user is None:
        raise ApiError(404, "not_found", "No such user.")
    data = json_body()
    _user_fields(data, user, creating=False)
    if "password" in data or not user.active:
        end_sign_ins(user.id)  # every browser signed in as them must sign in again
    if "active" in data and not user.active:
        team.release_conversations(db.session, user, by=current_user)
    db.session.commit()
    if {"password", "active", "role"} & data.keys():
        signals.access_changed.send(user.id)
    load = open_load(db.session, [user.id]).get(user.id, 0)
    return jsonify(user_admin_dict(user, load))
