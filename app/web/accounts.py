"""The pages of one-time links: accepting an invitation, "forgot password" and the reset.

``/invite/<token>``: the invited person chooses their name, password and language,
and is signed in. ``POST /forgot`` (the login page's form) mails a reset link and
answers the same whether or not the address has an account; ``/reset/<token>``
sets the new password and ends every other sign-in of that user (session and
remember cookies, live sockets), as a password change by an admin does.
"""

from __future__ import annotations

import logging

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

from app.clock import now
from app.extensions import db, limiter
from app.inbox import accounts, signals
from app.models import Invite, PasswordReset
from app.models.user import MIN_PASSWORD_LENGTH
from app.urls import public_base_url
from app.web.auth import end_sign_ins, sign_in
from app.web.ui import locale_code
from connectors.email.address import normalize_address

log = logging.getLogger(__name__)

bp = Blueprint("accounts", __name__)


def _mail_on() -> bool:
    return bool(current_app.config.get("NOTIFY_SMTP_URL"))


def _link_refused(problem: str, kind: str):
    """The page for a link that cannot be used (never a 500): why, and what to do."""
    status = 404 if problem == "unknown" else 410
    return render_template("auth/link_invalid.html", problem=problem, kind=kind), status


def _error_text(exc: accounts.AccountError) -> str:
    if exc.code == "weak_password":
        return _(
            "Choose a password of at least %(n)d characters that is not a common one "
            "and not your email address.",
            n=MIN_PASSWORD_LENGTH,
        )
    if exc.code == "already_member":
        return _("Someone on the team already uses this email address: sign in instead.")
    if exc.code == "invalid":
        return _("Enter your name.")
    return _("This account is no longer active.")


@bp.route("/invite/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def invite(token: str):
    """Accept an invitation: name, password and language, then straight into the inbox."""
    row = accounts.find_link(db.session, Invite, token)
    problem = accounts.link_problem(row, now())
    if problem:
        return _link_refused(problem, "invite")
    langs = current_app.config["LANGUAGES"]
    error = None
    if request.method == "POST":
        chosen = request.form.get("locale")
        locale = chosen if chosen in langs else locale_code()
        try:
            user = accounts.accept(
                db.session,
                row,
                name=request.form.get("name") or "",
                password=request.form.get("password") or "",
                locale=locale,
                at=now(),
            )
        except accounts.AccountError as exc:
            db.session.rollback()
            error = _error_text(exc)
        else:
            user.last_seen_at = now()
            db.session.commit()
            sign_in(user)
            session["lang"] = locale
            return redirect(url_for("pages.index"))
    return render_template("auth/invite.html", invite=row, error=error), (422 if error else 200)


@bp.post("/forgot")
@limiter.limit(lambda: current_app.config["FORGOT_RATE_LIMIT"])
@limiter.limit(
    lambda: current_app.config["FORGOT_ACCOUNT_RATE_LIMIT"],
    key_func=lambda: "forgot:" + normalize_address(request.form.get("email"))[:254],
)
def forgot():
    """Mail a reset link; the answer is the same whether or not the address has an account."""
    email = normalize_address(request.form.get("email"))
    if "@" not in email:
        flash(_("Enter the email address you sign in with."))
        return redirect(url_for("auth.login"))
    if not _mail_on():
        log.warning(
            "password reset asked for %s, but NOTIFY_SMTP_URL is not set: no mail was sent; "
            "an admin can set a new password under Settings > Users",
            email,
        )
        flash(
            _(
                "Password reset by email is not set up on this server. Ask an admin to set "
                "a new password for you."
            )
        )
        return redirect(url_for("auth.login"))
    accounts.request_reset(
        db.session,
        email,
        now(),
        current_app.config["SECRET_KEY"],
        mail=True,
        base_url=public_base_url(current_app.config, request.host_url),
    )
    db.session.commit()
    flash(
        _(
            "If an account uses %(email)s, a link to choose a new password is on its way. "
            "It works for one hour.",
            email=email,
        )
    )
    return redirect(url_for("auth.login"))


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def reset(token: str):
    """Choose a new password; every other sign-in of the account ends."""
    row = accounts.find_link(db.session, PasswordReset, token)
    problem = accounts.link_problem(row, now())
    if problem:
        return _link_refused(problem, "reset")
    error = None
    if request.method == "POST":
        try:
            user = accounts.complete_reset(
                db.session, row, request.form.get("password") or "", now()
            )
        except accounts.AccountError as exc:
            db.session.rollback()
            error = _error_text(exc)
        else:
            end_sign_ins(user.id)
            db.session.commit()
            signals.access_changed.send(user.id)  # their open live feeds close
            sign_in(user)
            return redirect(url_for("pages.index"))
    return render_template("auth/reset.html", error=error), (422 if error else 200)
