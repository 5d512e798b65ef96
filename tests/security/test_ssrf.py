"""Attachment downloads cannot be turned against our own network (SSRF).

The attacker's lever is an attachment URL in a webhook the provider signed (a
Messenger ``attachments[].payload.url``, a Twilio ``MediaUrlN``) or a redirect
answered by a host we fetch from. The worker must download only from the
channel's own media hosts, over HTTPS, and never from a private, loopback or
link-local address, whatever a name resolves to.

DNS is replaced by a table (``socket.getaddrinfo``, the resolver every HTTP
client here calls), so a test decides what a name resolves to; every
``connect`` is recorded, so a refused download provably opened no connection.
A local HTTP server stands in for an internal service (``/healthz``,
``/latest/meta-data``); it records what reached it.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import responses
import sqlalchemy as sa

from app.models import Attachment, OutboxItem
from app.runtime.worker import run_once
from connectors import base as cb
from tests.channels.test_messenger_flow import (
    PAGE_A,
    U1,
    Api,
    entry,
    envelope,
    page_inbox,
    post_webhook,
    text,
)
from tests.channels.test_sms_flow import ACCOUNT, inbound, snap

META_IP = "157.240.1.35"  # a public address, as Meta's CDN names resolve to
TWILIO_IP = "54.172.60.1"


# --------------------------------------------------------------------------- DNS and sockets


class FakeDns:
    """``socket.getaddrinfo`` answering from a table; unknown names do not resolve."""

    def __init__(self) -> None:
        self.table: dict[str, list[list[str]]] = {}  # name -> answers, one per lookup
        self.lookups: list[str] = []

    def set(self, name: str, *answers: list[str]) -> None:
        """``name`` resolves to ``answers[0]``, then ``answers[1]`` ... (the last one stays)."""
        self.table[name.lower()] = [list(a) for a in answers]

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.lookups.append(name)
        try:
            addresses = [str(ipaddress.ip_address(name.strip("[]")))]
        except ValueError:
            answers = self.table.get(name.lower().rstrip("."))
            if not answers:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        port = int(port or 0)
        result = []
        for address in addresses:
            ip = ipaddress.ip_address(address)
            if ip.version == 6:
                result.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                result.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return result


@pytest.fixture(autouse=True)
def dns(monkeypatch) -> FakeDns:
    """What names resolve to, per test."""
    fake = FakeDns()
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@pytest.fixture
def connects(monkeypatch) -> list:
    """Every address a socket tried to connect to; only local ones connect, others are refused."""
    seen: list = []
    guarded = socket.socket.connect  # the conftest guard: local addresses only

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        seen.append(host)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not (
            host in ("::1", "0.0.0.0") or str(host).startswith("127.")
        ):
            raise ConnectionRefusedError(f"the test network refuses {host}")
        return guarded(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


class Internal:
    """A service on our own network that must never be reached through a download."""

    def __init__(self) -> None:
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                hits.append(self.path)
                body = b'{"status": "ok", "secret": "internal"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def internal():
    service = Internal()
    yield service
    service.stop()


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def api(client, make):
    return Api(client, make.headers(make.user("lead", name="Lea Lead")))


def customer_sends_attachment(client, url: str, kind: str = "image") -> None:
    """A signed Messenger webhook whose attachment points at ``url``."""
    payload = envelope(
        entry(
            PAGE_A,
            text(
                PAGE_A,
                U1,
                f"m_att_{abs(hash(url))}",
                attachments=[{"type": kind, "payload": {"url": url}}],
            ),
        )
    )
    assert post_webhook(client, payload).status_code == 200


def only_attachment(api) -> dict:
    (conv,) = api.conversations()
    (msg,) = api.messages(conv["id"])
    (att,) = msg["attachments"]
    return att


def download_rows(session) -> list[OutboxItem]:
    return list(session.scalars(sa.select(OutboxItem).where(OutboxItem.kind == "download")))


def assert_refused(api, session, words: str) -> dict:
    """The attachment failed for good, with a reason the agent can read; nothing retries."""
    att = only_attachment(api)
    assert att["state"] == "failed", att
    assert att["url"] is None
    assert "refused" in att["error"].lower(), att["error"]
    assert words in att["error"], att["error"]
    (row,) = download_rows(session)
    assert row.state == "failed" and row.attempts == 1
    return att


# --------------------------------------------------------------------------- Messenger


def test_loopback_healthz_is_not_fetched_nor_stored(
    client, make, api, session, internal, connects, captured_events, caplog
):
    """The original finding: a Messenger attachment URL at our own /healthz."""
    page_inbox(make)
    customer_sends_attachment(client, f"{internal.url}/healthz", kind="file")
    assert only_attachment(api)["state"] == "pending"
    captured_events.clear()

    with caplog.at_level(logging.WARNING):
        run_once()
        run_once()  # nothing is retried

    assert internal.hits == []
    assert "127.0.0.1" not in connects
    att = assert_refused(api, session, "127.0.0.1")
    assert (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Attachment)
            .where(Attachment.storage_key.is_not(None))
        )
        == 0
    )
    assert "127.0.0.1" in caplog.text and "refused" in caplog.text.lower()
    # the agent's open thread learns it at once
    updated = [e.payload for e in captured_events if e.name == "message.updated"]
    assert updated and updated[-1]["attachments"][0]["error"] == att["error"]


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://10.0.0.8/admin",
        "https://192.168.1.1/",
        "https://[::1]/",
        "https://[fd00::5]/",
        "https://0.0.0.0/",
    ],
)
def test_private_and_link_local_addresses_are_refused(client, make, api, session, connects, url):
    page_inbox(make)
    customer_sends_attachment(client, url)
    run_once()
    assert_refused(api, session, "")
    assert connects == []


def test_plain_http_is_refused_even_on_a_meta_host(client, make, api, session, dns, connects):
    page_inbox(make)
    dns.set("scontent.xx.fbcdn.net", [META_IP])
    customer_sends_attachment(client, "http://scontent.xx.fbcdn.net/v/t1/photo.jpg")
    run_once()
    assert_refused(api, session, "HTTPS")
    assert META_IP not in connects


def test_a_host_that_is_not_meta_is_refused(client, make, api, session, dns, connects):
    page_inbox(make)
    dns.set("attacker.example", [META_IP])
    customer_sends_attachment(client, "https://attacker.example/photo.jpg")
    run_once()
    assert_refused(api, session, "attacker.example")
    assert connects == []


def test_a_meta_looking_name_that_resolves_to_loopback_is_refused(
    client, make, api, session, dns, connects
):
    page_inbox(make)
    dns.set("scontent-evil.xx.fbcdn.net", ["127.0.0.1"])
    customer_sends_attachment(client, "https://scontent-evil.xx.fbcdn.net/v/photo.jpg")
    run_once()
    assert_refused(api, session, "127.0.0.1")
    assert connects == []


def test_any_private_address_among_the_answers_refuses_the_name(
    client, make, api, session, dns, connects
):
    page_inbox(make)
    dns.set("video.xx.fbcdn.net", [META_IP, "10.1.2.3"])
    customer_sends_attachment(client, "https://video.xx.fbcdn.net/v/clip.mp4", kind="video")
    run_once()
    assert_refused(api, session, "10.1.2.3")
    assert connects == []


def test_the_connection_goes_to_the_address_that_was_checked(
    client, make, api, session, dns, connects
):
    """DNS rebinding: a second lookup answering loopback is never made nor used."""
    page_inbox(make)
    dns.set("scontent.xx.fbcdn.net", [META_IP], ["127.0.0.1"])
    customer_sends_attachment(client, "https://scontent.xx.fbcdn.net/v/photo.jpg")
    run_once()  # the public address is checked and connected to (the test network refuses it)
    assert connects == [META_IP]
    assert dns.lookups.count("scontent.xx.fbcdn.net") == 1
    assert only_attachment(api)["state"] == "pending"  # a network failure: retried later


def test_a_meta_cdn_download_is_stored(client, make, api, session):
    page_inbox(make)
    url = "https://scontent.xx.fbcdn.net/v/t1.15752-9/photo.jpg?stp=dst-jpg&oh=00_x&oe=6700"
    with responses.RequestsMock() as rsps:
        rsps.get(url, body=b"\xff\xd8jpeg", content_type="image/jpeg")
        customer_sends_attachment(client, url)
        run_once()
    att = only_attachment(api)
    assert att["state"] == "stored" and att["size"] == 6


# --------------------------------------------------------------------------- Twilio


@pytest.fixture
def sms_inbox(make):
    return snap(make.inbox("sms"))


def test_a_twilio_redirect_to_an_internal_address_is_not_followed(
    client, make, api, session, sms_inbox, internal
):
    media = f"http://twilio.fake/2010-04-01/Accounts/{ACCOUNT}/Messages/MM1/Media/ME1"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru(internal.url)
        rsps.get(media, status=307, headers={"Location": f"{internal.url}/latest/meta-data/"})
        assert inbound(client, sms_inbox, "photo", media=[(media, "image/jpeg")]).status_code == 200
        run_once()
    assert internal.hits == []
    assert_refused(api, session, "127.0.0.1")


def test_twilio_media_follows_its_cdn_redirect_without_our_credentials(
    client, make, api, session, sms_inbox
):
    media = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/MM2/Media/ME2"
    cdn = f"https://mms.twiliocdn.com/{ACCOUNT}/0123abcd?Expires=1&Signature=x"
    with responses.RequestsMock() as rsps:
        rsps.get(media, status=307, headers={"Location": cdn})
        rsps.get(cdn, body=b"\xff\xd8jpeg", content_type="image/jpeg")
        assert inbound(client, sms_inbox, "photo", media=[(media, "image/jpeg")]).status_code == 200
        run_once()
        auth = [c.request.headers.get("Authorization") for c in rsps.calls]
    assert auth[0] and auth[0].startswith("Basic ") and auth[1] is None
    assert only_attachment(api)["state"] == "stored"


def test_a_twilio_media_url_on_another_host_is_refused(client, api, session, sms_inbox, connects):
    assert (
        inbound(
            client, sms_inbox, "photo", media=[("https://169.254.169.254/latest/", "image/jpeg")]
        ).status_code
        == 200
    )
    run_once()
    assert_refused(api, session, "169.254.169.254")
    assert connects == []


# --------------------------------------------------------------------------- the connectors alone


def test_google_business_messages_downloads_only_from_google_storage():
    gbm = cb.get("gbm")({"agent": "brands/b/agents/a", "client_token": "t"})
    with pytest.raises(cb.DownloadRefused):
        gbm.download(cb.AttachmentRef(kind="image", url="https://169.254.169.254/computeMetadata/"))
    with pytest.raises(cb.DownloadRefused):
        gbm.download(cb.AttachmentRef(kind="image", url="https://evil.example/photo.png"))


@pytest.mark.parametrize(
    "url",
    [
        "https://scontent.xx.fbcdn.net@127.0.0.1/",  # credentials trick: the host is 127.0.0.1
        "https://scontent.xx.fbcdn.net:8080/v/photo.jpg",  # not the HTTPS port
        "https://scontent.xx.fbcdn.net\\@evil.example/",
        "file:///etc/passwd",
        "gopher://scontent.xx.fbcdn.net/",
        "https://fbcdn.net.evil.example/photo.jpg",
    ],
)
def test_url_tricks_are_refused_before_any_connection(url, connects):
    messenger = cb.get("messenger")({"page_id": "1", "page_token": "t", "app_secret": "s"})
    with pytest.raises(cb.DownloadRefused):
        messenger.download(cb.AttachmentRef(kind="image", url=url))
    assert connects == []


def test_extra_hosts_come_from_the_setting(app):
    """``ATTACHMENT_HOSTS`` names hosts to trust too; ``http://`` allows plain HTTP for one."""
    from app.connections import connector_options

    options = connector_options()
    assert "http://graph.fake" in options.attachment_hosts
    messenger = cb.get("messenger")({"page_id": "1"}, options)
    with responses.RequestsMock() as rsps:
        rsps.get("http://graph.fake/file.pdf", body=b"%PDF")
        assert (
            messenger.download(cb.AttachmentRef(url="http://graph.fake/file.pdf")).content
            == b"%PDF"
        )
    strict = cb.get("messenger")(
        {"page_id": "1"}, cb.ConnectorOptions(attachment_hosts=("graph.fake",))
    )
    with pytest.raises(cb.DownloadRefused):
        strict.download(cb.AttachmentRef(url="http://graph.fake/file.pdf"))
