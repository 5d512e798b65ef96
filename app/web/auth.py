"""Logging in and out, the first-admin set-up, and who is asking (session or token)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from app.clock import aware, now
from app.extensions import db, limiter
from app.extensions import login as login_manager
from app.inbox import signals
from app.models import ApiToken, LoginSession, User
from app.models.user import MIN_PASSWORD_LENGTH, check_login, hash_token, password_problem
from app.prepared import PREPARED
from connectors.email.address import normalize_address

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(login_id: str) -> User | None:
    """Session or remember cookie (``<user id>:<sign-in key>``) -> user, while that sign-in lasts."""
    user_id, _, key = login_id.partition(":")
    if not user_id.isdigit() or not key:
        return None
    user = db.session.execute(
        sa.select(User)
        .join(LoginSession, LoginSession.user_id == User.id)
        .where(
            User.id == int(user_id),
            LoginSession.key_hash == hash_token(key),
            User.active.is_(True),
        ),
        execution_options=PREPARED,  # every request of a signed-in browser
    ).scalar()
    if user is not None:
        user.login_key = key
    return user


TOKEN_USE_RESOLUTION = timedelta(hours=1)  # how often a token's last use is written down


def user_for_token(token: str | None) -> User | None:
    """API token -> user (one query), or None when unknown, expired or the user is inactive."""
    if not token:
        return None
    found = db.session.execute(
        sa.select(User, ApiToken)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == hash_token(token), User.active.is_(True)),
        execution_options=PREPARED,  # every API request
    ).first()
    if found is None:
        return None
    user, row = found
    at = now()
    if row.expires_at is not None and aware(row.expires_at) <= at:
        return None
    if row.last_used_at is None or at - aware(row.last_used_at) > TOKEN_USE_RESOLUTION:
        db.session.execute(sa.update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=at))
        db.session.commit()
    return user


@login_manager.request_loader
def load_user_from_request(req) -> User | None:
    """``Authorization: Bearer <token>`` -> user, for the API and scripts."""
    header = req.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        user = user_for_token(header[7:].strip())
        if user is not None:
            g.sb_token_user = True  # the API skips CSRF only for this
        return user
    return None


def token_authenticated() -> bool:
    """True when this request's user came from a valid bearer token (not from a cookie)."""
    return bool(g.get("sb_token_user"))


def sign_in(user: User, remember: bool = False) -> None:
    """Start a revocable sign-in for ``user`` in this browser."""
    row, key = LoginSession.start(user, request.headers.get("User-Agent"))
    db.session.add(row)
    db.session.commit()
    user.login_key = key
    login_user(user, remember=remember)


def end_sign_ins(user_id: int) -> None:
    """End every sign-in of a user (password changed, deactivated, "sign out everywhere").

    Their session and remember cookies stop working at their next request; the
    caller commits. Live sockets are cut through the ``access_changed`` signal.
    """
    db.session.execute(sa.delete(LoginSession).where(LoginSession.user_id == user_id))


@login_manager.unauthorized_handler
def unauthorized():
    """API callers get JSON 401; people get the login page."""
    if request.path.startswith("/api/"):
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
@limiter.limit(
    lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"],
    methods=["POST"],
    key_func=lambda: "account:" + normalize_address(request.form.get("email"))[:254],
)
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
        if not check_login(user, password):
            error = _("Wrong email or password.")
        else:
            user.last_seen_at = now()
            sign_in(user, remember=bool(request.form.get("remember")))
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
        elif password_problem(password, email):
            error = _(
                "Choose a password of at least %(n)d characters that is not a common one.",
                n=MIN_PASSWORD_LENGTH,
            )
        else:
            user = User(name=name, email=email, role="admin")
            user.set_password(password)
            db.session.add(user)
            db.session.commit()
            sign_in(user)
            return redirect(url_for("pages.index"))
    return render_template("auth/setup.html", error=error)


@bp.post("/logout")
@login_required
def logout():
    """Sign out (POST, CSRF-protected): this sign-in ends, so a copied cookie is worthless too."""
    key, user_id = current_user.login_key, current_user.id
    if key:
        db.session.execute(sa.delete(LoginSession).where(LoginSession.key_hash == hash_token(key)))
        db.session.commit()
    logout_user()
    signals.access_changed.send(user_id)  # the live feed opened by this sign-in closes too
    session.pop("lang", None)
    flash(_("You are signed out."))
    return redirect(url_for("auth.login"))
