""" "Forgot password": a mailed one-time link that sets a new password and ends the other
sign-ins; the answer never tells whether an address has an account."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
import time_machine

from app.clock import now
from tests.browser.conftest import run_worker
from tests.channels.harness import smtp_sink  # noqa: F401  (pytest fixture)
from tests.security.conftest import browser_login, csrf_from

NEW_PASSWORD = "a brand new passphrase 7"


@pytest.fixture(autouse=True)
def _separate_browsers(client):
    """(``client`` makes every test client drop the previous request's user and CSRF token,
    as separate browsers do.)"""


@pytest.fixture
def mail(app, smtp_sink):  # noqa: F811
    sink, port = smtp_sink
    app.config.update(
        NOTIFY_SMTP_URL=f"smtp://127.0.0.1:{port}", PUBLIC_URL="https://inbox.shop.example"
    )
    return sink


def _forgot(app, email: str):
    browser = app.test_client()
    token = csrf_from(browser.get("/login").get_data(as_text=True))
    answer = browser.post("/forgot", data={"email": email, "csrf_token": token})
    page = browser.get("/login").get_data(as_text=True)
    return answer, page


def _link(sink) -> str:
    text = sink.last().get_body(("plain",)).get_content()
    return re.search(r"https://inbox\.shop\.example(/reset/\S+)", text).group(1)


def test_the_answer_is_the_same_for_a_known_and_an_unknown_address(app, make, mail):
    make.user("agent", email="ana@example.com")
    known, known_page = _forgot(app, "ana@example.com")
    unknown, unknown_page = _forgot(app, "nobody@example.com")
    assert known.status_code == unknown.status_code == 302
    said = re.compile(r'<p class="alert info" role="status">(.*?)</p>', re.S)
    assert said.search(known_page).group(1).replace("ana@", "X@") == said.search(
        unknown_page
    ).group(1).replace("nobody@", "X@")
    assert "on its way" in known_page
    run_worker(app)
    assert len(mail.received) == 1 and mail.last()["To"] == "ana@example.com"


def test_reset_sets_the_password_and_ends_every_other_sign_in(app, make, mail):
    agent = make.user("agent", email="ana@example.com", locale="fr")
    laptop = app.test_client()
    assert browser_login(laptop, agent.email, remember=True).status_code == 302
    assert laptop.get("/api/v1/me").status_code == 200
    stolen_remember = laptop.get_cookie("remember_token").value

    _forgot(app, "ana@example.com")
    run_worker(app)
    assert "nouveau mot de passe" in mail.last()["Subject"]  # in the user's language
    path = _link(mail)

    phone = app.test_client()
    page = phone.get(path)
    assert page.status_code == 200
    answer = phone.post(
        path,
        data={"password": NEW_PASSWORD, "csrf_token": csrf_from(page.get_data(as_text=True))},
    )
    assert answer.status_code == 302
    assert phone.get("/api/v1/me").get_json()["email"] == "ana@example.com"  # signed in here

    assert laptop.get("/api/v1/me").status_code == 401  # the old session's next call
    other = app.test_client()
    other.set_cookie("remember_token", stolen_remember)
    assert other.get("/api/v1/me").status_code == 401
    assert browser_login(app.test_client(), agent.email).status_code == 401  # old password
    assert browser_login(app.test_client(), agent.email, NEW_PASSWORD).status_code == 302

    used = app.test_client().get(path)
    assert used.status_code == 410 and "already used" in used.get_data(as_text=True)


def test_a_reset_link_lasts_an_hour_and_only_the_newest_works(app, make, mail):
    make.user("agent", email="ana@example.com")
    _forgot(app, "ana@example.com")
    run_worker(app)
    first = _link(mail)
    _forgot(app, "ana@example.com")
    run_worker(app)
    second = _link(mail)
    assert app.test_client().get(first).status_code == 404
    assert app.test_client().get(second).status_code == 200
    with time_machine.travel(now() + timedelta(hours=1, minutes=1), tick=False):
        late = app.test_client().get(second)
        assert late.status_code == 410 and "expired" in late.get_data(as_text=True)


def test_without_mail_the_login_page_says_to_ask_an_admin_and_the_operator_is_told(
    app, make, caplog
):
    make.user("agent", email="ana@example.com")
    with caplog.at_level(logging.WARNING):
        answer, page = _forgot(app, "ana@example.com")
    assert answer.status_code == 302
    assert "Ask an admin" in page
    assert "NOTIFY_SMTP_URL is not set" in caplog.text
    from app.models import OutboxItem, PasswordReset

    assert make.db.session.query(PasswordReset).count() == 0
    assert make.db.session.query(OutboxItem).count() == 0


def test_forgot_is_rate_limited(app, make, mail):
    app.config["FORGOT_ACCOUNT_RATE_LIMIT"] = "2 per minute"
    make.user("agent", email="ana@example.com")
    codes = [_forgot(app, "ana@example.com")[0].status_code for _ in range(3)]
    assert codes == [302, 302, 429]
    # another address from elsewhere is still served
    assert _forgot(app, "bo@example.com")[0].status_code == 302


def test_forgot_needs_the_csrf_token(app, make, mail):
    make.user("agent", email="ana@example.com")
    assert app.test_client().post("/forgot", data={"email": "ana@example.com"}).status_code == 400
    run_worker(app)
    assert mail.received == []
