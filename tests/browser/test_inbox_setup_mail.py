"""A mailbox connected from the browser: SMTP and IMAP checked live, a mail polled, a reply sent.

Against a private Dovecot (IMAP) and a local SMTP server: nothing but the browser
and the background jobs a running server has.
"""

from __future__ import annotations

import pytest
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from app.runtime.jobs import registry
from tests.browser.conftest import run_worker
from tests.channels.harness import smtp_sink  # noqa: F401 - a fixture
from tests.connectors.imap_server import DovecotServer, dovecot_available

pytestmark = pytest.mark.browser

MAIL = (
    b"From: Cara Client <cara@example.org>\r\n"
    b"To: alice@shop.example\r\n"
    b"Subject: Where is parcel 77?\r\n"
    b"Message-ID: <parcel-77@example.org>\r\n"
    b"Date: Sun, 06 Dec 2026 06:00:00 +0000\r\n"
    b"\r\n"
    b"Hello, parcel 77 has not arrived yet.\r\n"
)


def _connect_form(page, values: dict[str, str]) -> None:
    page.click('.channel-card[data-channel="email"]')
    page.wait_css("#connect-form")
    page.css("#f-name").send_keys("Support mail")
    for name, value in values.items():
        el = page.css(f'#connect-form [data-config="{name}"]')
        el.clear()
        el.send_keys(value)
    for name in ("smtp_security", "imap_security"):
        Select(page.css(f'#connect-form [data-config="{name}"]')).select_by_value("none")


@pytest.fixture
def mailbox():
    """A private Dovecot whose password appears nowhere else in a page."""
    if not dovecot_available():
        pytest.skip("Dovecot is not installed (apt-get install dovecot-imapd)")
    server = DovecotServer.start_new(password="Dv9-kq3x-7mailbox")
    try:
        yield server
    finally:
        server.close()


def test_admin_connects_a_mailbox_receives_a_mail_and_the_reply_goes_out(
    page,
    make,
    app,
    mailbox,
    smtp_sink,  # noqa: F811 - a fixture
):
    dovecot = mailbox
    sink, smtp_port = smtp_sink
    admin = make.user("admin", name="Ada Admin")
    page.login(admin.email, ready=False)
    page.get("/admin/inboxes/new")
    page.wait_css('.channel-card[data-channel="email"]')
    values = {
        "address": "alice@shop.example",
        "smtp_host": "127.0.0.1",
        "smtp_port": str(smtp_port),
        "imap_host": dovecot.host,
        "imap_port": str(dovecot.port),
        "imap_user": dovecot.user,
        "imap_password": "not-the-password",
    }
    _connect_form(page, values)
    page.click('#connect-form button[type="submit"]')
    # the IMAP server's refusal is shown next to the password, and nothing is stored
    page.wait_text("#connect-form .field-error", "refused the login", timeout=30)
    assert "/new" in page.driver.current_url
    page.screenshot("setup-email-imap-refused")

    pw = page.css('#connect-form [data-config="imap_password"]')
    pw.clear()
    pw.send_keys(dovecot.password)
    page.click('#connect-form button[type="submit"]')
    page.wait(lambda d: "/new" not in d.current_url, timeout=45, message="connected page")
    page.wait_text("body", "IMAP login", timeout=10)
    text = page.text("body")
    assert "accepted the login" in text and "the folder INBOX is there" in text
    assert dovecot.password not in page.driver.page_source  # a secret is never rendered
    page.screenshot("setup-email-connected")

    dovecot.append(MAIL)
    assert registry.run_job(app, "imap_poll") is True  # what the running server does each minute
    page.get("/")
    page.click(".conv-row", "parcel 77")
    page.wait_text("#thread-log .msg.in", "parcel 77 has not arrived")
    box = page.css("#composer-text")
    box.send_keys("It is with the courier and arrives tomorrow.")
    box.send_keys(Keys.CONTROL, Keys.ENTER)
    page.wait_text("#thread-log .msg.out", "arrives tomorrow")
    page.wait(lambda d: run_worker(app) >= 0 and sink.received, timeout=15, message="sent")
    sent = sink.last()
    assert sent["In-Reply-To"] == "<parcel-77@example.org>"
    assert sent["To"] == "Cara Client <cara@example.org>"
    assert "arrives tomorrow" in sink.texts()[-1]
    page.wait(lambda d: page.attr("#thread-log .msg.out .tick", "data-status") == "sent")
    page.screenshot("setup-email-replied")
