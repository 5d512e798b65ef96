"""Mailboxes connected by signing in with Microsoft or Google, in Chromium, end to end.

Against :class:`~tests.channels.signin_server.SignInServer` (consent page, token
endpoint, introspection, Graph ``sendMail`` over real HTTP), a private Dovecot whose
``oauth2`` passdb asks that server whether each XOAUTH2 token is live, and a local
SMTP server taking ``AUTH XOAUTH2`` with the tokens the same server says are live:
the admin clicks "Sign in with ...", consents, lands on the inbox page connected; a
mail is polled; the reply goes out with its threading headers; the token is
refreshed when it expires; a revoked grant turns the inbox "needs reconnecting" and
signing in again delivers the reply that waited.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from selenium.webdriver.common.keys import Keys

from app.clock import now
from app.extensions import db
from app.models import Inbox, Message
from app.runtime.jobs import mail as mail_job
from app.runtime.jobs import registry
from tests.browser.conftest import run_worker
from tests.channels.oauth_fake import XoauthSmtp
from tests.channels.signin_server import SignInServer
from tests.connectors.imap_server import DovecotServer, dovecot_available, free_port

pytestmark = pytest.mark.browser

OURS = "support@shop.example"
LABEL = {"microsoft": "Microsoft", "google": "Google"}


def mail(n: int, subject: str) -> bytes:
    return (
        f"From: Cara Client <cara@example.org>\r\nTo: {OURS}\r\nSubject: {subject}\r\n"
        f"Message-ID: <order-{n}@example.org>\r\nDate: Sun, 06 Dec 2026 06:0{n}:00 +0000\r\n"
        f"\r\nHello, this is message {n} about my order.\r\n"
    ).encode()


@pytest.fixture
def signin(app):
    server = SignInServer(account=OURS)
    app.config.update(server.settings())
    yield server
    server.stop()


@pytest.fixture
def mailbox(signin):
    if not dovecot_available():
        pytest.skip("Dovecot is not installed (apt-get install dovecot-imapd)")
    server = DovecotServer.start_new(
        user=OURS, password="pw-never-used-9x", introspection_url=signin.introspection_url
    )
    yield server
    server.close()


@pytest.fixture
def smtp(signin):
    sink, port = XoauthSmtp(live=signin.live), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, auth_require_tls=False)
    controller.start()
    yield sink, port
    controller.stop()


def point_at(app, provider: str, mailbox: DovecotServer, smtp_port: int) -> None:
    """The provider's mail servers, here the local ones."""
    prefix = provider.upper()
    app.config.update(
        {
            f"{prefix}_IMAP_HOST": mailbox.host,
            f"{prefix}_IMAP_PORT": str(mailbox.port),
            f"{prefix}_IMAP_SECURITY": "none",
            f"{prefix}_SMTP_HOST": "127.0.0.1",
            f"{prefix}_SMTP_PORT": str(smtp_port),
            f"{prefix}_SMTP_SECURITY": "none",
        }
    )


def consent(page, provider: str) -> None:
    """On the provider's consent page: accept."""
    page.wait_text("h1", f"Sign in with {LABEL[provider]}")
    page.click("#accept")


def age_tokens(app, inbox_id: int) -> None:
    """An hour passes: the stored tokens are about to expire."""
    with app.app_context():
        inbox = db.session.get(Inbox, inbox_id)
        past = (now() - timedelta(seconds=5)).isoformat()
        config = dict(inbox.config)
        config["oauth_expires_at"] = past
        if config.get("oauth_graph_expires_at"):
            config["oauth_graph_expires_at"] = past
        inbox.config = config
        db.session.commit()


def inbox_row(app) -> Inbox:
    with app.app_context():
        row = db.session.scalars(sa.select(Inbox)).one()
        db.session.expunge(row)
        return row


def reply(page, app, text: str) -> None:
    """Send ``text`` from the composer and wait until the server has queued it."""
    box = page.css("#composer-text")
    box.send_keys(text)
    box.send_keys(Keys.CONTROL, Keys.ENTER)
    page.wait_text("#thread-log .msg.out", text)

    def stored(_) -> bool:
        with app.app_context():
            return db.session.scalars(sa.select(Message).where(Message.body == text)).first()

    page.wait(stored, message="reply stored")


@pytest.mark.parametrize(
    ("provider", "smtp_auth"),
    [("microsoft", True), ("google", True), ("microsoft", False)],
    ids=["microsoft", "google", "microsoft-graph"],
)
def test_sign_in_receive_reply_refresh_revoke_and_reconnect(
    page, make, app, signin, mailbox, smtp, provider, smtp_auth
):
    sink, smtp_port = smtp
    sink.smtp_auth_off = not smtp_auth  # Microsoft 365 with SMTP AUTH turned off: Graph sends
    point_at(app, provider, mailbox, smtp_port)
    name = f"{provider}-{'smtp' if smtp_auth else 'graph'}"
    admin = make.user("admin", name="Ada Admin")
    page.login(admin.email, ready=False)

    # the admin signs the mailbox in from the Add inbox page
    page.get("/admin/inboxes/new")
    page.click('.channel-card[data-channel="email"]')
    page.click(f'#connect-card a[data-sign-in="{provider}"]')
    page.wait_css("#scopes")
    scopes = page.text("#scopes")
    assert ("IMAP.AccessAsUser.All" if provider == "microsoft" else "https://mail.google.com/") in (
        scopes
    )
    page.screenshot(f"signin-{name}-consent")
    consent(page, provider)
    page.wait(lambda d: "signed_in=" in d.current_url, timeout=20, message="back on the inbox")
    page.wait_text("#check-results", "IMAP login accepted", timeout=30)
    checks = page.text("#check-results")
    if smtp_auth:
        assert "accepted the login" in checks
    else:
        assert "Microsoft Graph" in checks and "5.7.139" in checks
    assert "access-" not in page.driver.page_source  # no token is ever rendered
    page.screenshot(f"signin-{name}-connected")
    inbox = inbox_row(app)
    assert inbox.config["auth"] == "oauth" and inbox.config["oauth_provider"] == provider
    assert mailbox.dir.joinpath("dovecot.log").read_text().count("method=XOAUTH2") >= 1

    # a mail in the mailbox appears in the inbox; the reply goes out threaded
    mailbox.deliver(mail(1, "Order 1001 is late"))
    assert registry.run_job(app, "imap_poll") is True
    page.get("/")
    page.click(".conv-row", "message 1")
    page.wait_text("#thread-log .msg.in", "message 1 about my order")
    reply(page, app, "It left our warehouse today.")

    def sent() -> list:
        return [g["mime"] for g in signin.graph_sent] if not smtp_auth else sink.received

    page.wait(lambda d: run_worker(app) >= 0 and sent(), timeout=20, message="reply sent")
    if smtp_auth:
        first = sink.last()
        assert sink.logins and sink.logins[-1][1] in signin.auth.issued  # AUTH XOAUTH2
    else:
        from email import policy
        from email.parser import BytesParser

        first = BytesParser(policy=policy.default).parsebytes(signin.graph_sent[-1]["mime"])
        assert signin.graph_sent[-1]["path"] == "/v1.0/me/sendMail"
    assert first["In-Reply-To"] == "<order-1@example.org>"
    assert "<order-1@example.org>" in first["References"]
    page.wait(lambda d: page.attr("#thread-log .msg.out .tick", "data-status") == "sent")

    # an hour later the token expires: it is refreshed without anyone noticing
    refreshes = len(signin.auth.refreshes())
    signin.dead.update(signin.auth.issued)  # the old token no longer opens the mailbox
    age_tokens(app, inbox.id)
    mailbox.deliver(mail(2, "Order 1002 is late too"))
    with app.app_context():  # the job's next run, a minute later
        assert mail_job.poll_inbox(inbox.id, force=True).stored == 1
    page.get("/")
    page.wait_text(".conv-row", "message 2", timeout=15)
    assert len(signin.auth.refreshes()) > refreshes
    assert signin.introspected[-1] == signin.auth.issued[-1]  # Dovecot saw the new token

    # the grant is revoked: the inbox needs reconnecting, the reply waits
    signin.revoke("AADSTS50173: The provided grant has expired due to it being revoked.")
    age_tokens(app, inbox.id)
    page.click(".conv-row", "message 2")
    page.wait_text("#thread-log .msg.in", "message 2 about my order")
    reply(page, app, "We are on it.")
    run_worker(app)
    with app.app_context():
        row = db.session.get(Inbox, inbox.id)
        assert row.needs_reconnect and "AADSTS50173" in row.last_error
        waiting = db.session.scalars(
            sa.select(Message).where(Message.body == "We are on it.")
        ).one()
        assert waiting.status == "queued"
    page.get(f"/admin/inboxes/{inbox.id}")
    page.wait_text("#health-grid", "Needs reconnecting")
    assert "AADSTS50173" in page.text("#health-grid")
    assert "until you sign in to it again" in page.text("#inbox-admin")
    page.screenshot(f"signin-{name}-needs-reconnecting")

    # the admin signs in again from the inbox's Credentials section: the reply goes out
    signin.restore()
    before = len(sent())
    page.click(f'#reconnect a[data-sign-in="{provider}"]')
    consent(page, provider)
    page.wait(lambda d: "signed_in=" in d.current_url, timeout=20, message="reconnected")
    page.wait_text("#check-results", "IMAP login accepted", timeout=30)
    page.wait(lambda d: run_worker(app) >= 0 and len(sent()) > before, timeout=20)
    with app.app_context():
        row = db.session.get(Inbox, inbox.id)
        assert not row.needs_reconnect
    page.screenshot(f"signin-{name}-reconnected")
