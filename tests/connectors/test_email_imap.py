"""IMAP polling with a UID cursor against a private Dovecot (connectors.email.imap)."""

from __future__ import annotations

import pytest

from connectors.base import ConnectorOptions
from connectors.email import EmailConnector, ImapError, ImapPoller
from connectors.email.parse import parse_email

from .imap_server import dovecot as dovecot  # noqa: F401  (pytest fixture)
from .imap_server import free_port

OPTIONS = ConnectorOptions(timeout=(5, 5))
pytestmark = pytest.mark.slow  # starts Dovecot processes


def mail(n: int) -> bytes:
    return (
        f"From: customer{n}@example.com\r\n"
        f"To: alice@shop.example\r\n"
        f"Subject: Message {n}\r\n"
        f"Message-ID: <msg-{n}@example.com>\r\n"
        f"Date: Mon, 4 Mar 2024 10:{n:02d}:00 +0000\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Body {n} – ünïcödé\r\n"
    ).encode()


def ids(mails) -> list[str]:
    return [parse_email(m.raw, "alice@shop.example").message_id for m in mails]


def test_cursor_survives_an_outage_and_never_rereads(dovecot):  # noqa: F811
    for n in (1, 2, 3):
        dovecot.append(mail(n))
    poller = ImapPoller(dovecot.config, OPTIONS)

    first, cursor = poller.fetch_new(None)
    assert ids(first) == ["msg-1@example.com", "msg-2@example.com", "msg-3@example.com"]
    assert [m.uid for m in first] == sorted(m.uid for m in first)
    assert first[0].raw == mail(1)  # the raw bytes, untouched
    assert cursor["folder"] == "INBOX" and cursor["last_uid"] == first[-1].uid
    assert cursor["uidvalidity"] > 0

    again, same = poller.fetch_new(cursor)
    assert again == [] and same == cursor

    dovecot.stop()  # outage: the poll fails clearly, the cursor stays
    with pytest.raises(ImapError, match="Cannot connect to the IMAP server"):
        poller.fetch_new(cursor)
    dovecot.deliver(mail(4))  # the MTA keeps delivering meanwhile
    dovecot.deliver(mail(5))
    dovecot.start()

    after, cursor2 = poller.fetch_new(cursor)
    assert sorted(ids(after)) == ["msg-4@example.com", "msg-5@example.com"]
    assert min(m.uid for m in after) > cursor["last_uid"]
    assert cursor2["last_uid"] == max(m.uid for m in after)
    assert poller.fetch_new(cursor2)[0] == []

    flags = dovecot.flags()
    assert len(flags) == 5
    assert all("\\Seen" not in f for f in flags.values())  # BODY.PEEK: still unread


def test_first_run_fetches_everything_in_batches(dovecot):  # noqa: F811
    for n in range(1, 6):
        dovecot.append(mail(n))
    poller = ImapPoller(dovecot.config, OPTIONS)
    seen: list[str] = []
    cursor = None
    batches = []
    while True:
        mails, cursor = poller.fetch_new(cursor, limit=2)
        batches.append((len(mails), poller.has_more))
        if not mails:
            break
        seen += ids(mails)
    assert batches == [(2, True), (2, True), (1, False), (0, False)]
    assert seen == [f"msg-{n}@example.com" for n in range(1, 6)]


def test_uidvalidity_change_restarts_from_the_beginning(dovecot):  # noqa: F811
    dovecot.append(mail(1))
    dovecot.append(mail(2))
    poller = ImapPoller(dovecot.config, OPTIONS)
    _, cursor = poller.fetch_new(None)
    stale = {**cursor, "uidvalidity": cursor["uidvalidity"] + 1}
    mails, fresh = poller.fetch_new(stale)
    assert ids(mails) == ["msg-1@example.com", "msg-2@example.com"]  # deduped by Message-ID
    assert fresh == cursor
    other_folder = {**cursor, "folder": "Archive"}
    assert len(poller.fetch_new(other_folder)[0]) == 2


def test_empty_folder(dovecot):  # noqa: F811
    mails, cursor = ImapPoller(dovecot.config, OPTIONS).fetch_new(None)
    assert mails == [] and cursor["last_uid"] == 0


def test_wrong_password_is_an_auth_failure(dovecot):  # noqa: F811
    config = {**dovecot.config, "imap_password": "wrong"}
    with pytest.raises(ImapError, match="refused the login") as err:
        ImapPoller(config, OPTIONS).fetch_new(None)
    assert err.value.auth_failed


def test_missing_folder(dovecot):  # noqa: F811
    config = {**dovecot.config, "imap_folder": "Nope"}
    with pytest.raises(ImapError, match="'Nope' does not exist"):
        ImapPoller(config, OPTIONS).fetch_new(None)


def test_starttls_required_but_not_offered(dovecot):  # noqa: F811
    config = {**dovecot.config, "imap_security": "starttls"}
    with pytest.raises(ImapError, match="does not offer STARTTLS") as err:
        ImapPoller(config, OPTIONS).fetch_new(None)
    assert err.value.auth_failed


def test_auto_security_falls_back_to_plain_without_starttls(dovecot):  # noqa: F811
    dovecot.append(mail(1))
    config = {**dovecot.config, "imap_security": ""}
    poller = ImapPoller(config, OPTIONS)
    assert poller.security == "auto"
    assert ids(poller.fetch_new(None)[0]) == ["msg-1@example.com"]
    assert "uidvalidity" in poller.check()


def test_connector_poller_and_parse(dovecot):  # noqa: F811
    dovecot.append(mail(7))
    connector = EmailConnector({**dovecot.config, "smtp_host": "x", "smtp_port": 25}, OPTIONS)
    (fetched,), _ = connector.poller().fetch_new(None)
    event = connector.parse_event(fetched.raw)
    assert event.external_id == "msg-7@example.com"
    assert event.inbox_key == "alice@shop.example"
    assert event.text == "Body 7 – ünïcödé"


def test_unreachable_server_and_missing_host():
    config = {
        "address": "a@shop.example",
        "imap_host": "127.0.0.1",
        "imap_port": free_port(),
        "imap_security": "none",
        "imap_user": "a",
        "imap_password": "b",
    }
    with pytest.raises(ImapError, match="Cannot connect"):
        ImapPoller(config, OPTIONS).fetch_new(None)
    with pytest.raises(ImapError, match="no IMAP server"):
        EmailConnector({"address": "a@shop.example"}).poller()
    assert ImapPoller({"imap_host": "h", "imap_port": 993}).security == "ssl"
