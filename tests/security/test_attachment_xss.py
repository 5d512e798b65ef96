"""Finding 1: a customer's attachment must never run script in the app's origin.

The attack: mail an SVG whose ``<script>`` reads the CSRF token from ``/`` and
creates an admin through ``/api/v1/users``; an admin opens the attachment.
Files are served by their sniffed type: only raster images, audio, video and
PDF inline, everything else as a download, always with ``nosniff`` and a
sandboxing CSP.
"""

from __future__ import annotations

import base64
import time
from email.message import EmailMessage

import pytest
import requests
import sqlalchemy as sa

from app.models import Attachment, User
from tests.security.conftest import browser_login

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
EVIL_SVG = b"""<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>
fetch('/').then(r => r.text()).then(t => {
  const token = t.match(/name="csrf-token" content="([^"]+)"/)[1];
  return fetch('/api/v1/users', {method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json', 'X-CSRFToken': token},
    body: JSON.stringify({email: 'evil@attacker.example', name: 'Evil', role: 'admin',
                          password: 'evil-password-123'})});
});
</script></svg>"""
EVIL_HTML = b"<html><body><script>document.title='owned'</script>hi</body></html>"


def evil_mail(parts: list[tuple[bytes, str, str]]) -> bytes:
    """A customer's mail carrying ``(content, claimed type, filename)`` attachments."""
    msg = EmailMessage()
    msg["From"] = "Mallory <mallory@example.com>"
    msg["To"] = "support@shop.example"
    msg["Subject"] = "Invoice"
    msg["Message-ID"] = f"<evil-{time.monotonic_ns()}@example.com>"
    msg.set_content("Please see the attached invoice.")
    for content, claimed, name in parts:
        maintype, subtype = claimed.split("/")
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


@pytest.fixture
def mailbox(make):
    admin = make.user("admin", name="Ada Admin")
    inbox = make.inbox("email", members=[admin], address="support@shop.example")
    return admin, inbox


def _attachments(client, headers) -> dict[str, dict]:
    conv = client.get("/api/v1/conversations?status=all", headers=headers).get_json()["items"][0]
    msgs = client.get(f"/api/v1/conversations/{conv['id']}/messages", headers=headers).get_json()
    return {a["filename"]: a for m in msgs["items"] for a in m["attachments"] if a.get("filename")}


CASES = [
    # content, claimed type, filename, served inline as (None: a download)
    (EVIL_SVG, "image/svg+xml", "logo.svg", None),
    (EVIL_SVG, "image/png", "looks-like.png", None),  # the claim is not believed
    (EVIL_HTML, "text/html", "page.html", None),
    (EVIL_HTML, "image/jpeg", "photo.jpg", None),
    (
        b'<?xml version="1.0"?><x:script xmlns:x="http://www.w3.org/1999/xhtml">1</x:script>',
        "application/xml",
        "data.xml",
        None,
    ),
    (PNG, "image/png", "pixel.png", "image/png"),
    (PNG, "application/octet-stream", "pixel.bin", "image/png"),  # the bytes decide
    (
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
        "application/pdf",
        "invoice.pdf",
        "application/pdf",
    ),
]


def test_files_are_served_by_their_bytes_never_as_active_content(client, make, mailbox):
    admin, inbox = mailbox
    headers = make.headers(admin)
    raw = evil_mail([(c, t, n) for c, t, n, _ in CASES])
    resp = client.post(
        f"/webhooks/email/inbound/{inbox.inbound_token}", data=raw, content_type="message/rfc822"
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    atts = _attachments(client, headers)
    for content, _claimed, name, inline_as in CASES:
        att = atts[name]
        got = client.get(att["url"], headers=headers)
        data = got.get_data()
        got.close()
        assert got.status_code == 200
        assert data == content
        assert got.headers["X-Content-Type-Options"] == "nosniff"
        assert got.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
        assert "public" not in got.headers["Cache-Control"]
        assert "private" in got.headers["Cache-Control"]
        disposition = got.headers["Content-Disposition"]
        if inline_as is None:
            assert disposition.startswith("attachment"), (name, disposition)
            assert not any(w in got.mimetype for w in ("svg", "html", "xml")), (name, got.mimetype)
            assert att["inline"] is False, name  # the inbox offers it as a file, too
        else:
            assert disposition.startswith("inline"), (name, disposition)
            assert got.mimetype == inline_as
            assert att["inline"] is True and att["content_type"] == inline_as


def test_outbound_files_fetched_by_providers_are_sandboxed_too(client, make, app, session):
    from app import storage

    inbox = make.inbox("sms")
    msg_id = make.inbound(inbox, contact="+14155550111").id
    key = storage.save(EVIL_SVG)
    att = Attachment(
        message_id=msg_id,
        filename="x.svg",
        content_type="image/svg+xml",
        storage_key=key,
        size=len(EVIL_SVG),
    )
    session.add(att)
    session.execute(
        sa.text("UPDATE messages SET direction = 'outbound' WHERE id = :i"), {"i": msg_id}
    )
    session.commit()
    from app import urls

    got = client.get(urls.public_file_url(app.config, "", att.id, key, "x.svg"))
    got.close()
    assert got.status_code == 200
    assert got.headers["Content-Disposition"].startswith("attachment")
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert "svg" not in got.mimetype


@pytest.mark.parametrize("path", ["/login", "/", "/team", "/admin/users"])
def test_every_page_forbids_framing_sniffing_and_foreign_scripts(client, make, path):
    lead = make.user("admin")
    if path != "/login":
        assert browser_login(client, lead.email).status_code == 302
    resp = client.get(path)
    assert resp.status_code == 200, path
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert "'unsafe-eval'" not in csp and "script-src 'self' 'unsafe-inline'" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.browser
def test_an_admin_opening_a_hostile_svg_does_not_create_an_admin(page, make, live_server, app):
    """The attack pass's reproduction, in a real Chromium."""
    admin = make.user("admin", name="Ada Admin")
    inbox = make.inbox("email", members=[admin], address="support@shop.example")
    raw = evil_mail([(EVIL_SVG, "image/svg+xml", "logo.svg"), (EVIL_SVG, "image/png", "a.png")])
    resp = requests.post(
        f"{live_server.url}/webhooks/email/inbound/{inbox.inbound_token}",
        data=raw,
        headers={"Content-Type": "message/rfc822"},
        timeout=10,
    )
    assert resp.status_code == 200
    page.login(admin.email)
    urls = [a["url"] for a in _attachments_in_browser(page)]
    assert len(urls) == 2
    for url in urls:  # the admin opens each attachment, as a click on it would
        page.get(url)
        time.sleep(1.0)
    page.get("/")
    time.sleep(0.5)
    with app.app_context():
        from app.extensions import db

        db.session.remove()
        evil = db.session.scalar(sa.select(User).where(User.email == "evil@attacker.example"))
        assert evil is None, "the SVG's script ran in the app's origin"
    # the thread offers both as files to download, never as images shown from our origin
    page.wait_ready()
    page.click(".conv-item")
    page.wait_text(".thread", "Please see the attached invoice")
    assert len(page.all("a.att-file")) == 2
    assert not page.all(".att-image img")


def _attachments_in_browser(page) -> list[dict]:
    """The attachments of the first conversation, read with the admin's session."""
    return page.driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
        fetch('/api/v1/conversations?status=all').then(r => r.json())
          .then(l => fetch('/api/v1/conversations/' + l.items[0].id + '/messages'))
          .then(r => r.json())
          .then(m => done(m.items.flatMap(x => x.attachments)));"""
    )


@pytest.mark.parametrize(
    "answered", ["image/svg+xml", "text/html", "application/xhtml+xml", "image/png"]
)
def test_a_messenger_image_whose_download_is_active_content_is_a_download(client, make, answered):
    """Meta's CDN answering an SVG (or HTML) for an "image" attachment: never shown inline."""
    import responses

    from app.runtime.worker import run_once
    from tests.channels.test_messenger_flow import Api, page_inbox
    from tests.security.test_ssrf import customer_sends_attachment, only_attachment

    page_inbox(make)
    api = Api(client, make.headers(make.user("lead")))
    url = "https://scontent.xx.fbcdn.net/v/t1/evil.svg?oh=00_x"
    with responses.RequestsMock() as rsps:
        rsps.get(url, body=EVIL_SVG, content_type=answered)
        customer_sends_attachment(client, url)
        run_once()
    att = only_attachment(api)
    assert att["state"] == "stored" and att["inline"] is False
    got = client.get(att["url"], headers=api.headers)
    got.close()
    assert got.headers["Content-Disposition"].startswith("attachment")
    assert not any(w in got.mimetype for w in ("svg", "html", "xml"))
    assert got.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
