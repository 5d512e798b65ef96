"""Logging in and out, the first-admin set-up, and who is asking (session or token)."""

from __future__ import annotations

from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from app.clock import now
from app.extensions import db, limiter
from app.extensions import login as login_manager
from app.models import ApiToken, User
from app.models.user import hash_token
from connectors.email.address import normalize_address

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Session cookie -> user."""
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    return user if user is not None and user.active else None


def user_for_token(token: str | None) -> User | None:
    """API token -> user (one query), or None."""
    if not token:
        return None
    row = db.session.execute(
        sa.select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == hash_token(token), User.active.is_(True))
    ).scalar()
    return row


@login_manager.request_loader
def load_user_from_request(req) -> User | None:
    """``Authorization: Bearer <token>`` -> user, for the API and scripts."""
    header = req.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return user_for_token(header[7:].strip())
    return None


@login_manager.unauthorized_handler
def unauthorized():
    """API callers get JSON 401; people get the login page."""
    if request.path.startswith("/api/"):
        from flask import jsonify

        return jsonify(
            {"error": {"code": "unauthorized", "message": "Log in or send a bearer token."}}
        ), 401
    return redirect(url_for("auth.login", next=request.full_path))


def _safe_next(target: str | None) -> str:
    if not target:
        return url_for("pages.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/"):
        return url_for("pages.index")
    return target


def needs_setup() -> bool:
    """True until the first admin exists."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def login():
    """The sign-in form."""
    if needs_setup():
        return redirect(url_for("auth.setup"))
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    error = None
    if request.method == "POST":
        email = normalize_address(request.form.get("email"))
        password = request.form.get("password") or ""
        user = db.session.scalar(sa.select(User).where(sa.func.lower(User.email) == email))
        if user is None or not user.active or not user.check_password(password):
            error = _("Wrong email or password.")
        else:
            login_user(user, remember=bool(request.form.get("remember")))
            user.last_seen_at = now()
            db.session.commit()
            return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", error=error), (401 if error else 200)


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    """Create the first admin on a new install (only while there is no user)."""
    if not needs_setup():
        return redirect(url_for("auth.login"))
    error = None
    if request.method == "POST":
        name = (request.form.get("name") or "").strip()
        email = normalize_address(request.form.get("email"))
        password = request.form.get("password") or ""
        if not name or "@" not in email:
            error = _("Enter your name and a valid email address.")
        elif len(password) < 8:
            error = _("Choose a password of at least 8 characters.")
        else:
            user = User(name=name, email=email, role="admin")
            user.set_password(password)
            db.session.add(user)
            db.session.commit()
            login_user(user)
            return redirect(url_for("pages.index"))
    return render_template("auth/setup.html", error=error)


@bp.post("/logout")
@login_required
def logout():
    """Sign out (POST, CSRF-protected)."""
    logout_user()
    session.pop("lang", None)
    flash(_("You are signed out."))
    return redirect(url_for("auth.login"))
