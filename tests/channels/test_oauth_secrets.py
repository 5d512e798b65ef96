# ruff: noqa: F811 (the fixtures imported below are test arguments)
"""Admins are told before a sign-in app's client secret expires (and after it has)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.clock import now
from app.models import Notification
from app.runtime.jobs import registry
from app.runtime.jobs.secrets import watch_client_secrets
from tests.channels.harness import Api
from tests.channels.test_email_oauth import admin, browser  # noqa: F401  (fixtures)


@pytest.fixture
def microsoft_app(app):
    app.config.update(MICROSOFT_CLIENT_ID="ms-client", MICROSOFT_CLIENT_SECRET="ms-secret")
    return app


def expires_in(app, days: int) -> str:
    day = (now() + timedelta(days=days)).date().isoformat()
    app.config["MICROSOFT_CLIENT_SECRET_EXPIRES"] = day
    return day


def notes(session, kind="client_secret_expiring"):
    session.expire_all()
    return list(session.scalars(sa.select(Notification).where(Notification.kind == kind)))


def test_admins_are_told_once_from_fourteen_days_before_the_secret_expires(
    microsoft_app, make, session, admin, browser
):
    app = microsoft_app
    agent = make.user("agent")
    expires_in(app, 15)
    with app.app_context():
        assert watch_client_secrets() == 0  # not yet
    day = expires_in(app, 14)
    assert registry.run_job(app, "watch_client_secrets") is True  # what the server runs hourly
    (note,) = notes(session)
    assert note.user_id == admin.id and note.user_id != agent.id
    assert note.data["provider"] == "Microsoft 365" and note.data["expires"] == day
    assert day in note.data["text"] and note.data["url"] == "/admin/inboxes"
    with app.app_context():
        assert watch_client_secrets() == 0  # once per secret, however often the job runs
    assert len(notes(session)) == 1
    # the inbox pages keep saying it until the secret is replaced
    page = browser.get("/admin/inboxes").get_data(as_text=True)
    assert 'data-secret-expiring="microsoft"' in page and day in page
    (email,) = [
        c
        for c in Api(app.test_client(), make.headers(admin)).get("/channels")
        if c["channel"] == "email"
    ]
    (ms,) = [p for p in email["sign_in"] if p["name"] == "microsoft"]
    assert ms["secret_expiring"] and ms["secret_expires"] == day
    # a new secret with a new expiry: the warning goes
    expires_in(app, 700)
    page = browser.get("/admin/inboxes").get_data(as_text=True)
    assert "data-secret-expiring" not in page


def test_an_expired_secret_is_said_to_have_expired(microsoft_app, make, session, admin):
    day = expires_in(microsoft_app, -1)
    with microsoft_app.app_context():
        assert watch_client_secrets() == 1
    (note,) = notes(session)
    assert f"expired on {day}" in note.data["text"]


def test_a_secret_expiry_that_is_not_a_date_is_ignored(microsoft_app, make, session, admin):
    microsoft_app.config["MICROSOFT_CLIENT_SECRET_EXPIRES"] = "next spring"
    with microsoft_app.app_context():
        assert watch_client_secrets() == 0
