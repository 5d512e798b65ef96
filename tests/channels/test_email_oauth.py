"""Mailboxes connected by signing in with Microsoft or Google (OAuth 2.0 + PKCE, XOAUTH2).

The admin's browser is the test client (signed in with a session cookie); the
providers' sign-in servers are :class:`~tests.channels.oauth_fake.FakeAuthServer`
behind ``responses``; IMAP is a private Dovecot taking XOAUTH2 with the current
access token as its password; SMTP is an ``aiosmtpd`` server taking XOAUTH2.
"""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
import sqlalchemy as sa

from app.clock import now
from app.models import Inbox, Message
from app.runtime import worker
from app.runtime.jobs import mail as mail_job
from app.sealed import seal, unseal
from tests.channels.harness import Api, run_worker
from tests.channels.oauth_fake import FakeAuthServer
from tests.channels.oauth_fake import xoauth_smtp as xoauth_smtp  # noqa: F401  (fixture)
from tests.channels.test_email_flow import mail, post
from tests.connectors.imap_server import dovecot as dovecot  # noqa: F401  (pytest fixture)

OURS = "support@shop.example"


@pytest.fixture
def fake(app):
    server = FakeAuthServer(account=OURS)
    app.config.update(server.settings)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        server.install(mock)
        yield server


@pytest.fixture
def admin(make):
    return make.user("admin", name="Ada Admin")


@pytest.fixture
def browser(client, admin):
    """The admin's browser, signed in."""
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = client.post(
        "/login",
        data={"email": admin.email, "password": "correct horse battery", "csrf_token": token},
    )
    assert resp.status_code in (302, 303)
    return client


def sign_in(browser, fake, provider="microsoft", inbox="new", **args):
    """Start -> the provider's consent -> the callback; returns the callback's response."""
    start = browser.get(f"/oauth/{provider}/start", query_string={"inbox": inbox, **args})
    assert start.status_code == 302, start.get_data(as_text=True)
    answer = fake.consent(start.headers["Location"])
    return browser.get(f"/oauth/{provider}/callback", query_string=answer)


def oauth_inbox(make, app, fake, dovecot=None, smtp_port=None, expires_in=3600, **extra):
    """An inbox already signed in (tokens the fake knows), reading Dovecot and/or sending SMTP."""
    answer = fake.consent(
        "https://x/?response_type=code&code_challenge_method=S256&code_challenge=-"
        "&redirect_uri=r&client_id=c&state=s"
    )
    grant = fake.codes.pop(answer["code"])
    grant.refresh_token = "refresh-0"
    fake.grants.append(grant)
    config = {
        "address": OURS,
        "auth": "oauth",
        "oauth_provider": "microsoft",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port or 2525,
        "smtp_security": "none",
        "smtp_user": OURS,
        "oauth_access_token": seal(app.config, "access-0"),
        "oauth_refresh_token": seal(app.config, "refresh-0"),
        "oauth_expires_at": (now() + timedelta(seconds=expires_in)).isoformat(),
        "oauth_account": OURS,
        **extra,
    }
    if dovecot is not None:
        config.update(
            imap_host=dovecot.host,
            imap_port=dovecot.port,
            imap_user=dovecot.user,
            imap_security="none",
        )
    row = make.inbox("email", **config)
    return SimpleNamespace(id=row.id, token=row.inbound_token)  # the worker detaches rows


def stored_config(session, inbox_id) -> dict:
    session.expire_all()
    return dict(session.get(Inbox, inbox_id).config)


# --------------------------------------------------------------------------- signing in


def test_sign_in_with_microsoft_connects_a_new_mailbox_with_sealed_tokens(
    app, browser, fake, session, make, admin
):
    start = browser.get("/oauth/microsoft/start", query_string={"inbox": "new"})
    assert start.status_code == 302
    url = urlsplit(start.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.path == "/contoso.example/oauth2/v2.0/authorize"  # the tenant, not "common"
    assert query["client_id"] == "ms-client"
    assert query["redirect_uri"] == "http://localhost/oauth/microsoft/callback"
    assert "https://outlook.office.com/IMAP.AccessAsUser.All" in query["scope"].split()
    assert "https://outlook.office.com/SMTP.Send" in query["scope"].split()
    assert "offline_access" in query["scope"].split()
    assert query["code_challenge_method"] == "S256" and len(query["state"]) >= 32

    answer = fake.consent(start.headers["Location"])
    done = browser.get("/oauth/microsoft/callback", query_string=answer)
    assert done.status_code == 302
    inbox = session.scalars(sa.select(Inbox)).one()
    assert done.headers["Location"].startswith(f"/admin/inboxes/{inbox.id}")
    exchange, graph = fake.token_calls  # the verifier matched the challenge (else refused)
    assert exchange["grant_type"] == "authorization_code" and exchange["code_verifier"]
    # the code is redeemed for the mail servers; the same grant then gives Graph's send token
    assert "graph.microsoft.com" not in exchange["scope"]
    assert graph["grant_type"] == "refresh_token" and "Mail.Send" in graph["scope"]
    config = inbox.config
    assert inbox.route_key == OURS and not inbox.needs_reconnect
    assert config["auth"] == "oauth" and config["oauth_provider"] == "microsoft"
    assert config["imap_host"] == "outlook.office365.com"
    assert config["smtp_host"] == "smtp.office365.com" and config["smtp_port"] == 587
    # encrypted at rest: the database never holds the tokens in the clear
    assert "access-" not in str(config) and "refresh-" not in str(config)
    assert unseal(app.config, config["oauth_access_token"]) == fake.issued[0]
    assert unseal(app.config, config["oauth_graph_token"]) == fake.graph_issued[0]
    assert "graph-" not in str(config)
    # and no API answer carries them, sealed or not
    listed = Api(browser, make.headers(admin)).get("/inboxes")
    assert "oauth_access_token" not in str(listed) and "oauth_refresh_token" not in str(listed)
    assert "sealed:" not in str(listed) and "auth': 'oauth'" in str(listed)
    page = browser.get(f"/admin/inboxes/{inbox.id}").get_data(as_text=True)
    assert "sealed:" not in page and "access-" not in page


def test_sign_in_with_google_asks_for_offline_access(app, browser, fake, session):
    start = browser.get("/oauth/google/start", query_string={"inbox": "new"})
    query = {k: v[0] for k, v in parse_qs(urlsplit(start.headers["Location"]).query).items()}
    assert query["scope"].split()[0] == "https://mail.google.com/"
    assert query["access_type"] == "offline" and query["prompt"] == "consent"
    done = browser.get(
        "/oauth/google/callback", query_string=fake.consent(start.headers["Location"])
    )
    assert done.status_code == 302
    config = session.scalars(sa.select(Inbox)).one().config
    assert config["imap_host"] == "imap.gmail.com" and config["smtp_host"] == "smtp.gmail.com"
    assert config["oauth_provider"] == "google"


def test_a_wrong_missing_or_foreign_state_is_refused_and_nothing_stored(
    app, browser, fake, session, make, client
):
    start = browser.get("/oauth/microsoft/start", query_string={"inbox": "new"})
    answer = fake.consent(start.headers["Location"])
    wrong = browser.get("/oauth/microsoft/callback", query_string={**answer, "state": "forged"})
    assert wrong.status_code == 400
    assert "not started from this browser session" in wrong.get_data(as_text=True)
    missing = browser.get("/oauth/microsoft/callback", query_string={"code": answer["code"]})
    assert missing.status_code == 400
    # the state of another provider's callback does not fit either
    other = browser.get("/oauth/google/callback", query_string=answer)
    assert other.status_code == 400
    assert session.scalars(sa.select(Inbox)).all() == []
    assert fake.token_calls == []  # the code was never traded


def test_only_admins_start_or_finish_a_sign_in(app, client, make, fake):
    lead = make.user("lead")
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post(
        "/login",
        data={"email": lead.email, "password": "correct horse battery", "csrf_token": token},
    )
    assert client.get("/oauth/microsoft/start").status_code == 403
    assert client.get("/oauth/microsoft/callback?code=x&state=y").status_code == 403


def test_a_refused_consent_shows_the_providers_words_and_the_redirect_uri(browser, fake):
    start = browser.get("/oauth/microsoft/start", query_string={"inbox": "new"})
    state = fake.consent(start.headers["Location"])["state"]
    resp = browser.get(
        "/oauth/microsoft/callback",
        query_string={
            "state": state,
            "error": "access_denied",
            "error_description": "AADSTS65004: User declined to consent.",
        },
    )
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "AADSTS65004: User declined to consent." in page
    assert "http://localhost/oauth/microsoft/callback" in page


def test_missing_client_settings_are_named(app, browser, fake):
    app.config["GOOGLE_CLIENT_SECRET"] = None
    resp = browser.get("/oauth/google/start")
    assert resp.status_code == 400
    assert "GOOGLE_CLIENT_SECRET" in resp.get_data(as_text=True)


# --------------------------------------------------------------------------- tokens in use


def test_an_expired_token_is_refreshed_before_the_poll_and_the_rotated_one_kept(
    app, make, fake, dovecot, session
):
    inbox = oauth_inbox(make, app, fake, dovecot, expires_in=60)  # within the refresh margin
    dovecot.set_password("access-2")  # what the fake issues next: access-0 is refused now
    dovecot.deliver(mail(subject="Where is my parcel?"))
    result = mail_job.poll_inbox(inbox.id, force=True)
    assert result.error is None and result.stored == 1
    (refresh,) = fake.refreshes()
    assert refresh["refresh_token"] == "refresh-0" and "offline_access" in refresh["scope"]
    config = stored_config(session, inbox.id)
    assert unseal(app.config, config["oauth_refresh_token"]) == "refresh-2"  # rotated, saved
    assert unseal(app.config, config["oauth_access_token"]) == "access-2"
    # a second poll uses the stored token: no other refresh
    assert mail_job.poll_inbox(inbox.id, force=True).error is None
    assert len(fake.refreshes()) == 1


def test_a_provider_that_does_not_rotate_keeps_the_old_refresh_token(app, make, fake, session):
    from app.connections import live_config

    fake.rotate = False
    inbox = oauth_inbox(make, app, fake, expires_in=-10)
    assert live_config(session.get(Inbox, inbox.id))["oauth_access_token"] == "access-2"
    config = stored_config(session, inbox.id)
    assert unseal(app.config, config["oauth_refresh_token"]) == "refresh-0"
    assert "oauth_refresh_token" not in live_config(session.get(Inbox, inbox.id))


def test_a_reply_goes_out_over_smtp_with_xoauth2_and_its_threading_headers(
    app, make, fake, client, xoauth_smtp, session
):
    sink, port = xoauth_smtp
    agent = make.user("agent")
    inbox = oauth_inbox(make, app, fake, smtp_port=port, expires_in=-10)
    from app.models import InboxMember

    session.add(InboxMember(inbox_id=inbox.id, user_id=agent.id))
    session.commit()
    sink.good.add("access-2")  # only the refreshed token opens the server
    assert post(client, inbox, mail(mid="first@mail.example.com")).status_code == 200
    api = Api(client, make.headers(agent))
    conv = api.only_conversation()
    api.reply(conv["id"], "It left our warehouse today.")
    assert run_worker() == 1
    assert sink.logins == [(OURS, "access-2")]
    sent = sink.last()
    assert sent["In-Reply-To"] == "<first@mail.example.com>"
    assert "<first@mail.example.com>" in sent["References"]
    assert sent["From"].addresses[0].addr_spec == OURS
    (out,) = api.messages(conv["id"], direction="outbound")
    assert out["status"] == "sent"


def test_a_revoked_grant_pauses_replies_until_the_admin_signs_in_again(
    app, make, fake, client, browser, xoauth_smtp, session, time_machine
):
    sink, port = xoauth_smtp
    agent = make.user("agent")
    inbox = oauth_inbox(make, app, fake, smtp_port=port, expires_in=-10)
    from app.models import InboxMember

    session.add(InboxMember(inbox_id=inbox.id, user_id=agent.id))
    session.commit()
    fake.revoke()
    agent_client = app.test_client()  # ``client`` is the admin's browser here
    post(agent_client, inbox, mail(mid="second@mail.example.com"))
    api = Api(agent_client, make.headers(agent))
    conv = api.only_conversation()
    api.reply(conv["id"], "Your parcel is on its way.")
    run_worker()
    session.expire_all()
    row = session.get(Inbox, inbox.id)
    assert row.needs_reconnect
    assert "AADSTS70008: The refresh token has expired due to inactivity." in row.last_error
    assert "Trace ID" not in row.last_error
    (out,) = api.messages(conv["id"], direction="outbound")
    assert out["status"] == "queued"  # kept, not failed
    assert sink.received == []
    # the worker does not ask the provider again while the inbox waits for a new sign-in
    calls = len(fake.refreshes())
    time_machine.move_to(now() + timedelta(minutes=5))
    run_worker()
    assert len(fake.refreshes()) == calls and sink.received == []
    # the admin reconnects: signs in again for this inbox
    fake.revoked = None
    app.config.update(  # the provider's SMTP server, here the local fake
        MICROSOFT_SMTP_HOST="127.0.0.1",
        MICROSOFT_SMTP_PORT=str(port),
        MICROSOFT_SMTP_SECURITY="none",
    )
    done = sign_in(browser, fake, inbox=inbox.id)
    assert done.status_code == 302, done.get_data(as_text=True)
    session.expire_all()
    row = session.get(Inbox, inbox.id)
    assert not row.needs_reconnect and row.last_error is None
    assert "oauth_error" not in row.config
    sink.good.add(unseal(app.config, row.config["oauth_access_token"]))
    assert run_worker() == 1
    assert len(sink.received) == 1
    (out,) = api.messages(conv["id"], direction="outbound")
    assert out["status"] == "sent"


def test_polling_a_mailbox_whose_grant_was_revoked_says_so_and_asks_once(
    app, make, fake, dovecot, session
):
    inbox = oauth_inbox(make, app, fake, dovecot, expires_in=-10)
    fake.revoke("AADSTS50173: The provided grant has expired due to it being revoked.")
    dovecot.deliver(mail(subject="Anyone there?"))
    first = mail_job.poll_inbox(inbox.id, force=True)
    assert "AADSTS50173" in first.error and first.stored == 0
    session.expire_all()
    row = session.get(Inbox, inbox.id)
    assert row.needs_reconnect
    assert row.last_error.startswith("Reconnect needed: Microsoft 365 refused the sign-in")
    assert mail_job.poll_inbox(inbox.id, force=True).error == first.error
    assert len(fake.refreshes()) == 1  # not asked again until the admin signs in
    assert "method=XOAUTH2" not in dovecot.log()  # the mailbox was never tried with a dead token


def test_an_unreachable_sign_in_server_retries_without_marking_the_inbox(
    app, make, fake, client, xoauth_smtp, session
):
    sink, port = xoauth_smtp
    agent = make.user("agent")
    inbox = oauth_inbox(make, app, fake, smtp_port=port, expires_in=-10)
    from app.models import InboxMember

    session.add(InboxMember(inbox_id=inbox.id, user_id=agent.id))
    session.commit()
    fake.down = True
    post(client, inbox, mail(mid="third@mail.example.com"))
    api = Api(client, make.headers(agent))
    conv = api.only_conversation()
    api.reply(conv["id"], "Checking.")
    worker.run_once()
    session.expire_all()
    row = session.get(Inbox, inbox.id)
    assert not row.needs_reconnect
    assert "temporarily_unavailable" in (row.last_error or "")
    msg = session.scalars(sa.select(Message).where(Message.direction == "outbound")).one()
    assert msg.status == "queued"
    assert "oauth_error" not in row.config  # nothing kept: the next attempt asks again
