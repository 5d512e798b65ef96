"""Sending email over SMTP against a local aiosmtpd sink (connectors.email.smtp)."""

from __future__ import annotations

import socket
import threading
from email import policy
from email.parser import BytesParser

import pytest
import responses
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from connectors import get
from connectors.base import ConnectorOptions, ErrorKind, OutboundAttachment, OutboundMessage
from connectors.email import EmailConnector
from connectors.email.parse import parse_email
from connectors.email.threads import make_message_id

from .imap_server import free_port

OURS = "support@shop.example"


class Sink:
    """aiosmtpd handler: records messages, or rejects at a chosen stage."""

    def __init__(self, rcpt_reply: str | None = None, data_reply: str | None = None) -> None:
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.data_reply:
            return self.data_reply
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


@pytest.fixture
def smtp_server():
    """Factory: start an aiosmtpd sink on 127.0.0.1; stopped after the test."""
    started: list[Controller] = []

    def start(handler: Sink | None = None, **kwargs) -> tuple[Sink, int]:
        handler = handler or Sink()
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        started.append(controller)
        return handler, port

    yield start
    for controller in started:
        controller.stop()


def connector(port: int, **extra) -> EmailConnector:
    config = {
        "address": OURS,
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        **extra,
    }
    return EmailConnector(config, ConnectorOptions(timeout=(2, 3)))


def reply(**kwargs) -> OutboundMessage:
    options = {
        "message_id": make_message_id("c0nv42", "m9", "shop.example"),
        "in_reply_to": "<CAJx9k@mail.gmail.com>",
        "references": [f"<ref{i:02d}.long-enough-to-fold@mail.example.com>" for i in range(25)]
        + ["CAJx9k@mail.gmail.com"],
        "original_subject": "Re: RE: Re: Order late",
        "reply_to": "support+c0nv42@shop.example",
    }
    options.update(kwargs.pop("options", {}))
    defaults = {
        "contact_id": "anna@example.com",
        "text": "Hello Anna,\n\nyour parcel <left> today & will arrive soon.\n\nShop",
        "reference": "m9",
        "agent_name": "Zoë from Shop",
        "options": options,
    }
    defaults.update(kwargs)
    return OutboundMessage(**defaults)


def received(sink: Sink):
    (mail_from, rcpts, content), *_ = sink.messages
    return mail_from, rcpts, content, BytesParser(policy=policy.default).parsebytes(content)


def test_registered():
    assert get("email") is EmailConnector
    names = {f.name for f in EmailConnector.fields}
    assert {"address", "smtp_host", "smtp_port", "inbound_token", "imap_folder"} <= names
    assert EmailConnector.secret_fields() == {"smtp_password", "imap_password", "inbound_token"}


def test_validate_config():
    assert EmailConnector.validate_config({}) == [
        "address is required",
        "smtp_host is required",
        "smtp_port is required",
    ]
    problems = EmailConnector.validate_config(
        {
            "address": "nope",
            "smtp_host": "h",
            "smtp_port": "x",
            "smtp_security": "tls",
            "imap_host": "h",
        }
    )
    assert problems == [
        "address must be an email address",
        "smtp_port must be a number",
        "smtp_security must be one of none, starttls, ssl",
        "imap_password is required when imap_host is set",
    ]


def test_reply_headers(smtp_server):
    sink, port = smtp_server()
    result = connector(port).send(reply())
    assert result.ok, result.error
    assert result.external_id == "sb.c0nv42.m9@shop.example"
    mail_from, rcpts, content, msg = received(sink)
    assert mail_from == OURS and rcpts == ["anna@example.com"]
    assert msg["Message-ID"] == "<sb.c0nv42.m9@shop.example>"
    assert msg["In-Reply-To"] == "<CAJx9k@mail.gmail.com>"
    assert msg["Subject"] == "Re: Order late"  # never "Re: Re:"
    assert msg["Reply-To"] == "support+c0nv42@shop.example"
    assert msg["X-Loop"] == OURS
    assert msg["From"].addresses[0].display_name == "Zoë from Shop"
    assert msg["From"].addresses[0].addr_spec == OURS
    assert msg["To"] == "anna@example.com"
    assert "Auto-Submitted" not in msg and "X-Auto-Response-Suppress" not in msg
    # References: first kept, newest last, limited to 20, folded over several lines
    refs = str(msg["References"]).split()
    assert len(refs) == 20
    assert refs[0] == "<ref00.long-enough-to-fold@mail.example.com>"
    assert refs[-1] == "<CAJx9k@mail.gmail.com>"
    raw_refs = content.split(b"References:", 1)[1].split(b"\r\n", 1)[1]
    assert raw_refs.startswith((b" ", b"\t"))  # continuation line: the header is folded
    assert all(len(line) <= 998 for line in content.split(b"\r\n"))
    # bodies: text and an escaped HTML alternative
    plain = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert plain.rstrip("\n") == reply().text
    html = msg.get_body(("html",)).get_content()
    assert "your parcel &lt;left&gt; today &amp; will arrive soon." in html
    assert 'dir="auto"' in html and "<br>" not in html.split("<p", 2)[1]
    # and it reads back through our own parser as a threaded message
    parsed = parse_email(content, OURS)
    assert parsed.message_id == "sb.c0nv42.m9@shop.example"
    assert parsed.in_reply_to == "CAJx9k@mail.gmail.com"
    assert parsed.automated is False


def test_subject_from_the_domain_is_used_as_is(smtp_server):
    sink, port = smtp_server()
    message = reply(subject="Re: [#42] Order late")
    assert connector(port).send(message).ok
    assert received(sink)[3]["Subject"] == "Re: [#42] Order late"


def test_automated_send_is_marked(smtp_server):
    sink, port = smtp_server()
    result = connector(port).send(reply(automated=True, agent_name=None))
    assert result.ok
    msg = received(sink)[3]
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["From"] == OURS
    parsed = parse_email(received(sink)[2], OURS, our_address=OURS)
    assert parsed.automated and parsed.is_loop  # our own auto-reply, if it came back


def test_first_message_without_threading_options(smtp_server):
    sink, port = smtp_server()
    message = OutboundMessage(
        contact_id="new@example.com", text="Hi", reference="ref-1", subject="Welcome"
    )
    result = connector(port).send(message)
    assert result.ok and result.external_id == "sb.ref-1@shop.example"
    msg = received(sink)[3]
    assert "In-Reply-To" not in msg and "References" not in msg and "Reply-To" not in msg
    assert msg["Message-ID"] == "<sb.ref-1@shop.example>"  # stable across retries


def test_attachments_bytes_and_url(smtp_server):
    sink, port = smtp_server()
    message = reply(
        attachments=(
            OutboundAttachment("facture-été.pdf", "application/pdf", content=b"%PDF-1.4 x"),
            OutboundAttachment("photo.png", "image/png", url="https://files.example/p.png"),
        )
    )
    with responses.RequestsMock() as mock:
        mock.get("https://files.example/p.png", body=b"\x89PNG data", content_type="image/png")
        assert connector(port).send(message).ok
    parsed = parse_email(received(sink)[2], OURS)
    assert [(a.filename, a.content_type, a.content) for a in parsed.attachments] == [
        ("facture-été.pdf", "application/pdf", b"%PDF-1.4 x"),
        ("photo.png", "image/png", b"\x89PNG data"),
    ]


def test_attachment_over_the_cap_is_not_sent(smtp_server):
    sink, port = smtp_server()
    c = EmailConnector(
        {"address": OURS, "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none"},
        ConnectorOptions(max_attachment_bytes=4),
    )
    message = reply(
        attachments=(OutboundAttachment("big.bin", "application/x", url="https://f/x"),)
    )
    with responses.RequestsMock() as mock:
        mock.get("https://f/x", body=b"0123456789")
        result = c.send(message)
    assert result.error.kind is ErrorKind.TRANSIENT and "4 byte" in result.error.message
    assert sink.messages == []


@pytest.mark.parametrize(
    ("sink", "kind", "code"),
    [
        (Sink(rcpt_reply="450 4.2.1 Mailbox busy, try later"), ErrorKind.TRANSIENT, "450"),
        (Sink(rcpt_reply="550 5.1.1 User unknown"), ErrorKind.UNDELIVERABLE, "550"),
        (Sink(rcpt_reply="553 5.1.3 Bad recipient address syntax"), ErrorKind.UNDELIVERABLE, "553"),
        (Sink(rcpt_reply="554 5.7.1 Relay access denied"), ErrorKind.PERMANENT, "554"),
        (Sink(data_reply="451 4.3.0 Temporary failure"), ErrorKind.TRANSIENT, "451"),
        (Sink(data_reply="554 5.7.1 Message rejected as spam"), ErrorKind.PERMANENT, "554"),
        (Sink(data_reply="552 5.3.4 Message too big"), ErrorKind.PERMANENT, "552"),
    ],
)
def test_server_rejections_are_classified(smtp_server, sink, kind, code):
    _, port = smtp_server(sink)
    result = connector(port).send(reply())
    assert not result.ok and result.external_id is None
    assert result.error.kind is kind
    assert result.error.code == code
    reply_text = (sink.rcpt_reply or sink.data_reply).split(" ", 1)[1]
    assert result.error.message == reply_text


def test_login_failure_is_auth_failed(smtp_server):
    def authenticator(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=False, handled=False)

    _, port = smtp_server(authenticator=authenticator, auth_require_tls=False)
    result = connector(port, smtp_user="support", smtp_password="wrong").send(reply())
    assert result.error.kind is ErrorKind.AUTH_FAILED and result.error.code == "535"


def test_login_success(smtp_server):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"support" and auth_data.password == b"right"
        return AuthResult(success=ok)

    sink, port = smtp_server(authenticator=authenticator, auth_require_tls=False)
    assert connector(port, smtp_user="support", smtp_password="right").send(reply()).ok
    assert len(sink.messages) == 1


def test_starttls_required_but_not_offered_is_a_config_error(smtp_server):
    _, port = smtp_server()
    result = connector(port, smtp_security="starttls").send(reply())
    assert result.error.kind is ErrorKind.AUTH_FAILED
    assert "STARTTLS" in result.error.message


def test_connection_refused_is_transient():
    result = connector(free_port()).send(reply())
    assert result.error.kind is ErrorKind.TRANSIENT
    assert "SMTP connection failed" in result.error.message


def test_silent_server_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    try:
        c = EmailConnector(
            {
                "address": OURS,
                "smtp_host": "127.0.0.1",
                "smtp_port": listener.getsockname()[1],
                "smtp_security": "none",
            },
            ConnectorOptions(timeout=(0.5, 0.5)),
        )
        result = c.send(reply())
    finally:
        thread.join(2)
        for s in accepted:
            s.close()
        listener.close()
    assert result.error.kind is ErrorKind.TRANSIENT and result.error.code == "timeout"


@pytest.mark.parametrize("bad", ["not-an-address", "a@b", "x@y.com\r\nBcc: evil@z.com", ""])
def test_invalid_recipient_is_undeliverable_without_sending(smtp_server, bad):
    sink, port = smtp_server()
    result = connector(port).send(reply(contact_id=bad))
    assert result.error.kind is ErrorKind.UNDELIVERABLE
    assert sink.messages == []


def test_header_injection_in_subject_is_neutralised(smtp_server):
    sink, port = smtp_server()
    assert connector(port).send(reply(subject="Hi\r\nBcc: evil@example.com")).ok
    _, rcpts, content, msg = received(sink)
    assert rcpts == ["anna@example.com"] and "Bcc" not in msg
    assert msg["Subject"] == "Hi Bcc: evil@example.com"


def test_an_smtp_url_gives_the_clients_settings():
    from connectors.email.smtp import config_from_url

    assert config_from_url("smtp://mail.example:2525", "Switchboard <alerts@shop.example>") == {
        "smtp_host": "mail.example",
        "smtp_port": 2525,
        "smtp_security": "none",
        "smtp_user": None,
        "smtp_password": None,
        "envelope_from": "alerts@shop.example",
    }
    tls = config_from_url("smtp+starttls://bot%40shop.example:p%2Fw@mail.example")
    assert (tls["smtp_security"], tls["smtp_port"]) == ("starttls", 0)  # 587 when connecting
    assert (tls["smtp_user"], tls["smtp_password"]) == ("bot@shop.example", "p/w")
    assert config_from_url("smtps://mail.example")["smtp_security"] == "ssl"
    with pytest.raises(ValueError, match="smtp://"):
        config_from_url("http://mail.example")
