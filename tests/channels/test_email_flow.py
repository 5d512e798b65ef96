"""Email end to end: raw MIME in, threading, the full original, SMTP out, IMAP polling.

Inbound mail is POSTed raw to ``/webhooks/email/inbound/<token>`` (as a Postfix
pipe does) or fetched from a private Dovecot by the ``imap_poll`` job; replies
are sent by the outbox worker to a local ``aiosmtpd`` sink, whose received
bytes are parsed to check the threading headers a mail client relies on.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine

from app.inbox.email_ingest import ingest_raw
from app.runtime import worker
from app.runtime.jobs import mail as mail_job
from app.runtime.jobs import registry
from connectors.email.threads import normalize_message_id, parse_id_list, token_from_message_id
from tests.channels.harness import Api, SmtpSink
from tests.conftest import CORPUS
from tests.connectors.imap_server import dovecot as dovecot  # noqa: F401  (pytest fixture)

OURS = "support@shop.example"
ANNA = "anna@example.com"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "email"
_ids = itertools.count(1)


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class MailInbox:
    """Plain values of an email inbox (the worker detaches ORM objects)."""

    id: int
    token: str
    address: str


@pytest.fixture
def agent(make):
    return make.user("agent", name="Ana Agent")


@pytest.fixture
def auth(make, agent):
    return make.headers(agent)


@pytest.fixture
def inbox(make, agent, smtp_sink) -> MailInbox:
    _, port = smtp_sink
    box = make.inbox("email", members=[agent], address=OURS, smtp_port=port)
    return MailInbox(box.id, box.inbound_token, OURS)


def mail(
    subject: str = "Order late",
    body: str = "Where is my order 1042?",
    *,
    frm: str = f"Anna Schmidt <{ANNA}>",
    to: str = OURS,
    mid: str | None = None,
    date: datetime | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: tuple[str, ...] = (),
) -> bytes:
    """A plain-text RFC 822 message as a customer's client writes it."""
    lines = [
        f"From: {frm}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {format_datetime(date or datetime.now(UTC) - timedelta(minutes=5))}",
        f"Message-ID: <{mid or f'c{next(_ids)}@mail.example.com'}>",
    ]
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references:
        lines.append(f"References: {references}")
    lines += [*headers, "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "", body]
    return ("\r\n".join(lines) + "\r\n").encode()


def post(client, inbox: MailInbox, raw: bytes, token: str | None = None):
    return client.post(
        f"/webhooks/email/inbound/{token or inbox.token}",
        data=raw,
        content_type="message/rfc822",
    )


def conversations(client, auth) -> list[dict]:
    return Api(client, auth).conversations()


def messages(client, auth, conv_id: int) -> list[dict]:
    return Api(client, auth).messages(conv_id)


def only_conversation(client, auth) -> dict:
    return Api(client, auth).only_conversation()


def reply(client, auth, conv_id: int, body: str = "It left our warehouse today."):
    return Api(client, auth).post(f"/conversations/{conv_id}/messages", {"body": body})


def send_reply(
    client, auth, sink: SmtpSink, conv_id: int, body: str = "It left our warehouse today."
):
    """An agent reply through the API, sent by the worker; returns the mail the sink got."""
    before = len(sink.received)
    resp = reply(client, auth, conv_id, body)
    assert resp.status_code == 202, resp.get_json()
    assert worker.run_once() == 1
    assert len(sink.received) == before + 1
    return sink.last()


def fetch(client, url: str, headers: dict | None = None) -> tuple[int, bytes, str]:
    """GET a file (closing the streamed response): status, bytes, mimetype."""
    resp = client.get(url, headers=headers or {})
    try:
        return resp.status_code, resp.get_data(), resp.mimetype
    finally:
        resp.close()


def conv_token(conv_id: int) -> str:
    from app.extensions import db
    from app.models import Conversation

    return db.session.get(Conversation, conv_id).token


# --------------------------------------------------------------------------- the inbound URL


def test_raw_message_keeps_its_subject_and_is_a_person_writing(client, inbox, auth):
    """Stored once, wrong tokens, empty bodies: the contract suite; here what mail adds."""
    assert post(client, inbox, mail(mid="first@mail.example.com")).status_code == 200
    conv = only_conversation(client, auth)
    assert conv["subject"] == "Order late"
    (msg,) = messages(client, auth, conv["id"])
    assert msg["body"] == "Where is my order 1042?"
    assert msg["automated"] is False and msg["meta"]["subject"] == "Order late"


def test_raw_message_for_another_channels_token_is_404(client, make, inbox):
    sms = make.inbox("sms")
    assert post(client, inbox, mail(), token=sms.inbound_token).status_code == 404


# --------------------------------------------------------------------------- replies that thread


def test_agent_reply_threads_and_the_customers_answer_joins(client, inbox, auth, smtp_sink):
    sink, _ = smtp_sink
    first = mail(
        "AW: Re: Order late",
        mid="q1@mail.example.com",
        in_reply_to="<older@shop-elsewhere.example>",
        references="<root@shop-elsewhere.example> <older@shop-elsewhere.example>",
    )
    assert post(client, inbox, first).status_code == 200
    conv = only_conversation(client, auth)
    assert conv["subject"] == "Order late"  # prefixes of any language stripped for display

    sent = send_reply(client, auth, sink, conv["id"])
    token = conv_token(conv["id"])
    our_id = normalize_message_id(sent["Message-ID"])
    assert our_id.endswith("@shop.example") and token_from_message_id(our_id) == token
    assert sent["In-Reply-To"] == "<q1@mail.example.com>"
    assert parse_id_list(str(sent["References"])) == [
        "root@shop-elsewhere.example",
        "older@shop-elsewhere.example",
        "q1@mail.example.com",
    ]
    assert sent["Subject"] == "Re: Order late"  # not "Re: AW: Re: ..."
    assert sent["Reply-To"] == f"support+{token}@shop.example"
    assert sent["To"].addresses[0].addr_spec == ANNA
    assert sent["From"].addresses[0].addr_spec == OURS
    assert sent["From"].addresses[0].display_name == "Ana Agent"
    assert sent["Auto-Submitted"] is None and sent["X-Auto-Response-Suppress"] is None
    assert sent.get_body(("plain",)).get_content().strip() == "It left our warehouse today."
    (out,) = [m for m in messages(client, auth, conv["id"]) if m["direction"] == "outbound"]
    assert out["status"] == "sent"

    # the customer answers from a client that writes proper headers
    answer = mail(
        "Re: Order late",
        "Thanks!",
        mid="q2@mail.example.com",
        in_reply_to=sent["Message-ID"],
        references=f"{sent['References']} {sent['Message-ID']}",
    )
    assert post(client, inbox, answer).status_code == 200
    conv = only_conversation(client, auth)
    assert [m["body"] for m in messages(client, auth, conv["id"])][-1] == "Thanks!"

    second = send_reply(client, auth, sink, conv["id"], "Glad to help.")
    assert second["Subject"] == "Re: Order late"
    assert second["In-Reply-To"] == "<q2@mail.example.com>"
    refs = parse_id_list(str(second["References"]))
    assert refs[0] == "root@shop-elsewhere.example"  # the thread root is kept
    assert refs[-2:] == [our_id, "q2@mail.example.com"]


def test_reply_with_only_the_plus_address_joins(client, inbox, auth, smtp_sink):
    sink, _ = smtp_sink
    post(client, inbox, mail("Order late"))
    conv = only_conversation(client, auth)
    sent = send_reply(client, auth, sink, conv["id"])
    # a client that drops In-Reply-To/References and changes the subject
    raw = mail("Another question", "Can I change the address?", to=str(sent["Reply-To"]))
    assert post(client, inbox, raw).status_code == 200
    assert len(conversations(client, auth)) == 1
    assert messages(client, auth, conv["id"])[-1]["body"] == "Can I change the address?"


def test_subject_ticket_number_joins_only_for_the_same_customer(client, inbox, auth):
    post(client, inbox, mail("Order late"))
    conv = only_conversation(client, auth)
    post(client, inbox, mail(f"Update on [#{conv['id']}]", "Any news?"))
    assert len(conversations(client, auth)) == 1
    assert messages(client, auth, conv["id"])[-1]["body"] == "Any news?"

    post(client, inbox, mail(f"Hijack [#{conv['id']}]", "Hi", frm="Eve <eve@example.net>"))
    assert len(conversations(client, auth)) == 2


def test_new_mail_without_thread_headers_starts_a_new_conversation(client, inbox, auth):
    post(client, inbox, mail("Order late"))
    post(client, inbox, mail("Invoice missing", "Please send the invoice."))
    assert sorted(c["subject"] for c in conversations(client, auth)) == [
        "Invoice missing",
        "Order late",
    ]
    # a client that drops the headers but keeps "Re:" stays in its thread
    post(client, inbox, mail("RE: Invoice missing", "Still nothing."))
    assert len(conversations(client, auth)) == 2


def test_another_customer_replying_to_the_same_mail_gets_their_own_conversation(
    client, inbox, auth, smtp_sink
):
    sink, _ = smtp_sink
    post(client, inbox, mail("Spring sale"))
    conv = only_conversation(client, auth)
    sent = send_reply(client, auth, sink, conv["id"], "Our spring sale starts Monday.")
    # the mail is forwarded around; someone else answers it (newsletter-style)
    raw = mail(
        "Re: Spring sale",
        "Do you ship to Canada?",
        frm="Bob <bob@example.org>",
        to=str(sent["Reply-To"]),
        in_reply_to=sent["Message-ID"],
        references=sent["Message-ID"],
    )
    assert post(client, inbox, raw).status_code == 200
    convs = conversations(client, auth)
    assert len(convs) == 2
    bob = next(c for c in convs if c["id"] != conv["id"])
    assert bob["contact"]["identities"][0]["external_id"] == "bob@example.org"
    anna = [m for m in messages(client, auth, conv["id"]) if m["direction"] != "activity"]
    assert len(anna) == 2  # Anna's thread is untouched


def test_batch_with_skewed_clocks_still_threads(app, client, inbox, auth):
    """The reply claims to be older than its parent (sender clock off): still one thread."""
    from app.extensions import db
    from app.models import Inbox

    now = datetime.now(UTC)
    parent = mail(
        "Broken zipper",
        "The zipper broke.",
        mid="p@mail.example.com",
        date=now - timedelta(minutes=1),
    )
    child = mail(
        "Re: Broken zipper",
        "Photo attached.",
        mid="c@mail.example.com",
        in_reply_to="<p@mail.example.com>",
        references="<p@mail.example.com>",
        date=now - timedelta(minutes=30),
    )
    ingest_raw(db.session, db.session.get(Inbox, inbox.id), [child, parent])
    conv = only_conversation(client, auth)
    assert [m["body"] for m in messages(client, auth, conv["id"])] == [
        "The zipper broke.",
        "Photo attached.",
    ]


# --------------------------------------------------------------------------- what agents see


def test_quoted_history_is_stripped_and_the_full_original_is_available(app, client, inbox, auth):
    raw = (FIXTURES / "gmail_reply_en.eml").read_bytes()
    assert post(client, inbox, raw).status_code == 200
    conv = only_conversation(client, auth)
    (msg,) = messages(client, auth, conv["id"])
    assert msg["body"] == (
        "Thanks, the parcel arrived today.\n"
        "One box was damaged though, photos attached later.\n\nBest,\nAnna"
    )
    assert msg["has_full_body"] is True
    assert msg["attachments"] == []  # the original is not shown as a file
    url = f"/api/v1/conversations/{conv['id']}/messages/{msg['id']}/original"
    full = client.get(url, headers=auth).get_json()
    assert "> Your order #1042 has shipped." in full["full_body"]
    assert full["eml_url"] == msg["original"]["url"]
    assert fetch(client, msg["original"]["url"], auth) == (200, raw, "message/rfc822")
    assert fetch(client, msg["original"]["url"])[0] == 401


def test_html_is_sanitised_and_remote_images_wait_for_the_agent(client, inbox, auth):
    post(client, inbox, (FIXTURES / "html_only_outlook.eml").read_bytes())
    conv = only_conversation(client, auth)
    (msg,) = messages(client, auth, conv["id"])
    for bad in ("<script", "onload", "onerror", "onclick", "javascript:", "<form", "<iframe"):
        assert bad not in msg["html"]
    assert 'data-src="https://tracker.example/pixel.gif"' in msg["html"]
    assert ' src="https://tracker.example' not in msg["html"]
    assert msg["body"].startswith("Hello,\nI still have not received the invoice")


def test_inline_cid_image_is_served_to_logged_in_users_only(client, inbox, auth, make):
    post(client, inbox, (FIXTURES / "inline_cid.eml").read_bytes())
    conv = only_conversation(client, auth)
    (msg,) = messages(client, auth, conv["id"])
    (img,) = msg["attachments"]
    assert img["content_id"] == "ii_screenshot01@example.com"
    assert f'src="{img["url"]}"' in msg["html"] and "cid:" not in msg["html"]
    assert fetch(client, img["url"])[0] == 401
    outsider = make.headers(make.user("agent"))  # not a member of this inbox
    assert fetch(client, img["url"], outsider)[0] == 404
    status, data, mimetype = fetch(client, img["url"], auth)
    assert (status, mimetype) == (200, "image/png") and data.startswith(b"\x89PNG")


# --------------------------------------------------------------------------- machines


def test_auto_reply_is_flagged_and_never_reopens_a_closed_conversation(
    client, inbox, auth, smtp_sink
):
    from app.extensions import db
    from app.models import OutboxItem

    sink, _ = smtp_sink
    post(client, inbox, mail("Order late"))
    conv = only_conversation(client, auth)
    sent = send_reply(client, auth, sink, conv["id"])
    closed = client.post(
        f"/api/v1/conversations/{conv['id']}/status", headers=auth, json={"status": "closed"}
    )
    assert closed.status_code == 200

    ooo = mail(
        "Automatic reply: Re: Order late",
        "I am out of the office until Monday.",
        in_reply_to=sent["Message-ID"],
        references=sent["Message-ID"],
        headers=("Auto-Submitted: auto-replied", "X-Auto-Response-Suppress: All"),
    )
    assert post(client, inbox, ooo).status_code == 200
    conv = only_conversation(client, auth)
    assert conv["status"] == "closed"
    last = messages(client, auth, conv["id"])[-1]
    assert last["automated"] is True and last["body"].startswith("I am out of the office")
    assert last["meta"]["context"]["automated_reason"] == "auto-submitted:auto-replied"
    assert conv["response_due"]["due_at"] is None  # nothing waits for an answer
    sends = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(OutboxItem)
        .where(OutboxItem.kind == "send", OutboxItem.state != "done")
    )
    assert sends == 0  # nothing answered it

    human = mail(
        "Re: Order late",
        "Back now: it has not arrived.",
        in_reply_to=sent["Message-ID"],
        references=sent["Message-ID"],
    )
    post(client, inbox, human)
    assert only_conversation(client, auth)["status"] == "open"


def test_newsletter_and_noreply_mail_is_stored_and_flagged(client, inbox, auth):
    post(client, inbox, (FIXTURES / "newsletter_precedence_bulk.eml").read_bytes())
    post(client, inbox, (FIXTURES / "noreply_sender.eml").read_bytes())
    convs = conversations(client, auth)
    assert len(convs) == 2
    for conv in convs:
        (msg,) = messages(client, auth, conv["id"])
        assert msg["automated"] is True


def _dsn(
    original_id: str,
    *,
    action: str = "failed",
    status: str = "5.1.1",
    diagnostic: str = "smtp; 550 5.1.1 <anna@example.com>: Recipient address rejected: "
    "User unknown",
) -> bytes:
    return (
        "Return-Path: <>\r\n"
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
        f"To: {OURS}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {format_datetime(datetime.now(UTC))}\r\n"
        f"Message-ID: <dsn-{next(_ids)}@mx.example.org>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "Your message could not be delivered.\r\n\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; {ANNA}\r\n"
        f"Action: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: {diagnostic}\r\n\r\n"
        "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {OURS}\r\nTo: {ANNA}\r\nSubject: Re: Order late\r\n"
        f"Message-ID: {original_id}\r\n\r\n"
        "--b1--\r\n"
    ).encode()


def test_bounce_marks_our_reply_failed_and_the_address_undeliverable(
    client, inbox, auth, smtp_sink
):
    sink, _ = smtp_sink
    post(client, inbox, mail("Order late"))
    conv = only_conversation(client, auth)
    sent = send_reply(client, auth, sink, conv["id"])

    resp = post(client, inbox, _dsn(sent["Message-ID"]))
    assert resp.status_code == 200 and resp.get_json()["updated"] == 1
    out = [m for m in messages(client, auth, conv["id"]) if m["direction"] == "outbound"][-1]
    assert out["status"] == "failed"
    assert "User unknown" in out["error"]["message"]
    conv = only_conversation(client, auth)
    assert "User unknown" in conv["undeliverable"]
    refused = reply(client, auth, conv["id"], "Hello again?")
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "undeliverable"
    assert len(conversations(client, auth)) == 1  # the bounce opened no conversation


def test_delayed_delivery_report_notes_the_delay_and_resends_nothing(
    client, inbox, auth, smtp_sink
):
    from app.extensions import db
    from app.models import OutboxItem

    sink, _ = smtp_sink
    post(client, inbox, mail("Order late"))
    conv = only_conversation(client, auth)
    sent = send_reply(client, auth, sink, conv["id"])
    delayed = _dsn(
        sent["Message-ID"],
        action="delayed",
        status="4.4.7",
        diagnostic="smtp; 451 4.4.7 Delivery delayed, will keep trying",
    )
    assert post(client, inbox, delayed).status_code == 200
    msgs = messages(client, auth, conv["id"])
    out = [m for m in msgs if m["direction"] == "outbound"][-1]
    assert (
        out["status"] == "sent" and "Delivery delayed" in out["meta"]["delivery_delayed"]["reason"]
    )
    assert msgs[-1]["direction"] == "activity" and "delayed" in msgs[-1]["body"]
    assert worker.run_once() == 0 and len(sink.received) == 1
    pending = db.session.scalar(
        sa.select(sa.func.count()).select_from(OutboxItem).where(OutboxItem.state == "pending")
    )
    assert pending == 0
    assert only_conversation(client, auth)["undeliverable"] is None


def test_bounce_of_mail_we_did_not_send_is_kept_as_an_automated_message(client, inbox, auth):
    post(client, inbox, _dsn("<sent-elsewhere@shop.example>"))
    conv = only_conversation(client, auth)
    (msg,) = messages(client, auth, conv["id"])
    assert msg["automated"] is True
    assert msg["meta"]["context"]["bounce"]["status"] == "5.1.1"


def test_mail_loop_with_our_x_loop_is_dropped(client, inbox, auth):
    resp = post(client, inbox, (FIXTURES / "x_loop.eml").read_bytes())
    assert resp.status_code == 200 and resp.get_json()["status"] == "dropped"
    assert conversations(client, auth) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("legacy_koi8r.eml", "Посылка пришла повреждённой."),
        ("legacy_shift_jis.eml", "①の商品"),
        ("reply_zh_gb2312.eml", "王喆"),
        ("broken_invalid_bytes.eml", "Hello, my order café arrived"),
        ("broken_bad_base64.eml", None),
        ("broken_unknown_charset.eml", None),
    ],
)
def test_legacy_charsets_and_broken_mail_are_readable(client, inbox, auth, name, expected):
    resp = post(client, inbox, (FIXTURES / name).read_bytes())
    assert resp.status_code == 200
    conv = only_conversation(client, auth)
    (msg,) = messages(client, auth, conv["id"])
    full = client.get(
        f"/api/v1/conversations/{conv['id']}/messages/{msg['id']}/original", headers=auth
    ).get_json()["full_body"]
    if expected:
        assert expected in full


def _every(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.eml")) if folder.exists() else []


def _ingests_cleanly(client, inbox: MailInbox, auth, path: Path) -> None:
    raw = path.read_bytes()
    resp = post(client, inbox, raw)
    assert resp.status_code == 200, resp.data[:500]
    body = resp.get_json()
    if body["status"] == "dropped":
        return
    assert body["stored"] + body["updated"] == 1, body
    for conv in conversations(client, auth):
        for msg in messages(client, auth, conv["id"]):
            if msg["original"]:
                assert fetch(client, msg["original"]["url"], auth)[1] == raw
    assert post(client, inbox, raw).status_code == 200  # a replay stores nothing new
    assert sum(len(messages(client, auth, c["id"])) for c in conversations(client, auth)) <= 1


@pytest.mark.parametrize("path", _every(FIXTURES), ids=lambda p: p.name)
def test_every_fixture_mail_ingests_through_the_inbound_url(client, inbox, auth, path):
    _ingests_cleanly(client, inbox, auth, path)


@pytest.mark.parametrize(
    "path", _every(CORPUS / "email"), ids=lambda p: str(p.relative_to(CORPUS / "email"))
)
def test_corpus_mail_ingests_through_the_inbound_url(client, inbox, auth, path):
    _ingests_cleanly(client, inbox, auth, path)


# --------------------------------------------------------------------------- SMTP failures


def test_smtp_4xx_is_retried_and_5xx_shows_the_server_text(client, inbox, auth, smtp_sink):
    from app.extensions import db
    from app.models import OutboxItem

    sink, _ = smtp_sink
    post(client, inbox, mail("Order late"))
    conv = only_conversation(client, auth)
    sink.reply = "451 4.3.0 Mailbox busy, try again later"
    assert reply(client, auth, conv["id"], "First try").status_code == 202
    assert worker.run_once() == 1
    out = [m for m in messages(client, auth, conv["id"]) if m["direction"] == "outbound"][-1]
    assert out["status"] == "queued" and sink.received == []
    item = db.session.scalars(sa.select(OutboxItem).where(OutboxItem.kind == "send")).one()
    assert item.state == "pending" and "Mailbox busy" in item.last_error

    sink.reply = None
    item.next_attempt_at = datetime.now(UTC)  # the back-off has passed
    db.session.commit()
    assert worker.run_once() == 1
    out = [m for m in messages(client, auth, conv["id"]) if m["direction"] == "outbound"][-1]
    assert out["status"] == "sent" and len(sink.received) == 1

    sink.reply = "554 5.7.1 Message rejected: looks like spam"
    assert reply(client, auth, conv["id"], "Second").status_code == 202
    assert worker.run_once() == 1
    out = [m for m in messages(client, auth, conv["id"]) if m["direction"] == "outbound"][-1]
    assert out["status"] == "failed"
    assert "Message rejected: looks like spam" in out["error"]["message"]
    assert len(sink.received) == 1


# --------------------------------------------------------------------------- IMAP


@pytest.mark.slow
def test_imap_job_fetches_in_thread_order_and_survives_an_outage(  # noqa: F811
    app, client, make, agent, auth, dovecot
):
    from app.extensions import db
    from app.models import Inbox

    box = make.inbox("email", members=[agent], **dovecot.config)
    inbox_id = box.id
    now = datetime.now(UTC)
    parent = mail(
        "Broken zipper",
        "The zipper broke.",
        to="alice@shop.example",
        mid="zip-1@mail.example.com",
        date=now - timedelta(minutes=10),
    )
    child = mail(
        "Re: Broken zipper",
        "Here is a photo.",
        to="alice@shop.example",
        mid="zip-2@mail.example.com",
        date=now - timedelta(minutes=9),
        in_reply_to="<zip-1@mail.example.com>",
        references="<zip-1@mail.example.com>",
    )
    dovecot.append(child)  # the reply has the lower UID: "directory order" puts it first
    dovecot.append(parent)

    assert registry.run_job(app, "imap_poll") is True  # the scheduled job itself
    conv = only_conversation(client, auth)
    assert [m["body"] for m in messages(client, auth, conv["id"])] == [
        "The zipper broke.",
        "Here is a photo.",
    ]
    db.session.expire_all()  # the job ran in its own app context and session
    state = db.session.get(Inbox, inbox_id).state["imap"]
    assert state["cursor"]["last_uid"] == 2 and state["last_ok_at"]

    (again,) = mail_job.poll_all()
    assert again.fetched == 0 and again.error is None  # nothing is re-read

    dovecot.stop()  # outage
    (down,) = mail_job.poll_all()
    assert "Cannot connect to the IMAP server" in down.error
    (shown,) = client.get("/api/v1/inboxes", headers=auth).get_json()["items"]
    assert shown["last_error"].startswith("IMAP: Cannot connect")
    assert shown["imap"]["failures"] == 1 and shown["imap"]["retry_at"]
    last_ok = shown["imap"]["last_ok_at"]
    dovecot.deliver(
        mail(
            "Where is my refund?",
            "Refund please.",
            to="alice@shop.example",
            frm="Carl <carl@example.com>",
        )
    )
    dovecot.deliver(
        mail("Wrong size", "Too small.", to="alice@shop.example", frm="Dina <dina@example.com>")
    )
    dovecot.start()
    (waiting,) = mail_job.poll_all()
    assert waiting.skipped  # backing off after the failure

    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=31), tick=True):
        (back,) = mail_job.poll_all()
    assert back.error is None and back.fetched == 2 and back.stored == 2
    subjects = sorted(c["subject"] for c in conversations(client, auth))
    assert subjects == ["Broken zipper", "Where is my refund?", "Wrong size"]
    (shown,) = client.get("/api/v1/inboxes", headers=auth).get_json()["items"]
    assert shown["last_error"] is None
    assert shown["imap"]["last_ok_at"] > last_ok and shown["imap"]["retry_at"] is None
    db.session.expire_all()
    state = db.session.get(Inbox, inbox_id).state["imap"]
    assert state["failures"] == 0 and state["cursor"]["last_uid"] == 4
    assert all("\\Seen" not in flags for flags in dovecot.flags().values())
    (idle,) = mail_job.poll_all()
    assert idle.fetched == 0
