"""Email parsing: our own fixtures (exact fields) and the shared real-mail corpus."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.base import (
    AttachmentRef,
    DeliveryState,
    ErrorKind,
    InboundMessage,
    StatusUpdate,
)
from connectors.email.parse import UNKNOWN_SENDER, decode_bytes, parse_email

FIXTURES = Path(__file__).parent.parent / "fixtures" / "email"
CORPUS = Path(__file__).parents[2].parent / "shared/corpus" / "email"
RECEIVED = datetime(2024, 4, 1, 12, 0, tzinfo=UTC)
OURS = "support@shop.example"


def parse(name: str, **kwargs):
    raw = (FIXTURES / name).read_bytes()
    return parse_email(raw, OURS, RECEIVED, our_address=OURS, **kwargs)


def no_surrogates(parsed) -> None:
    """No lone surrogate (undecoded byte) may leak into any text field."""
    for f in fields(parsed):
        value = getattr(parsed, f.name)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, str):
                assert not any(0xD800 <= ord(c) <= 0xDFFF for c in v), (f.name, v)
    for a in parsed.attachments:
        assert a.filename and not any(0xD800 <= ord(c) <= 0xDFFF for c in a.filename)


# name: (from, from_name, subject, reply_text, attachment names, automated reason)
EXPECTED = {
    "gmail_reply_en.eml": (
        "anna.schmidt@gmail.example",
        "Anna Schmidt",
        "Re: [#1042] Your order has shipped",
        "Thanks, the parcel arrived today.\n"
        "One box was damaged though, photos attached later.\n\nBest,\nAnna",
        [],
        None,
    ),
    "outlook_reply_fr.eml": (
        "francois.dupont@exemple.fr",
        "François Dupont",
        "RE: [#77] Commande en retard",
        "Bonjour,\n\nMerci pour votre réponse. Le colis n’est toujours pas arrivé à l’adresse "
        "indiquée.\n\nCordialement,\nFrançois Dupont",
        [],
        None,
    ),
    "apple_mail_de.eml": (
        "juergen.mueller@beispiel.de",
        "Jürgen Müller",
        "Re: Rechnung zu Bestellung 5531",
        "Hallo,\n\nvielen Dank für die schnelle Antwort. Die Rechnung fehlt leider immer noch "
        "in meinem Kundenkonto.\n\nViele Grüße\nJürgen",
        [],
        None,
    ),
    "thunderbird_pt.eml": (
        "joao.silva@exemplo.pt",
        "João Silva",
        "Re: Reembolso do pedido 9001",
        "Olá,\n\nAinda não recebi o reembolso. Podem verificar, por favor?\n\nObrigado",
        [],
        None,
    ),
    "gmail_reply_ar.eml": (
        "ahmad.ali@example.sa",
        "أحمد علي",
        "رد: طلبي رقم 123",
        "مرحبا،\nلم يصل طلبي بعد. هل يمكنكم المساعدة؟",
        [],
        None,
    ),
    "gmail_reply_fa.eml": (
        "maryam@example.ir",
        "مریم رضایی",
        "پاسخ: پیگیری سفارش",
        "سلام\nسفارش من هنوز نرسیده است. لطفا پیگیری کنید.",
        [],
        None,
    ),
    "reply_zh_gb2312.eml": (
        "wangzhe@example.cn",
        "王喆",
        "回复：订单问题",
        "您好，我的订单还没有发货，请帮忙查一下。\n王喆",
        [],
        None,
    ),
    "html_only_outlook.eml": (
        "lee.wong@example.com",
        "Lee Wong",
        "RE: Invoice",
        "Hello,\nI still have not received the invoice for order 3310.\n"
        "click my order (https://shop.example/orders/3310)",
        [],
        None,
    ),
    "plain_only.eml": (
        "bob@example.com",
        None,
        "Question about sizes",
        "Hi,\n\nDo you have the blue jacket in size M?\n\nThanks\nBob",
        [],
        None,
    ),
    "attachments_only.eml": (
        "carla@example.es",
        "Carla Gomez",
        "Documents",
        "",
        ["factura-été.pdf", "pedidos mañana.csv"],
        None,
    ),
    "inline_cid.eml": (
        "dana@example.com",
        "Dana Lee",
        "Screenshot of the error",
        "The checkout fails with this error:\n\n[image: screenshot.png]\n\nDana",
        ["screenshot.png"],
        None,
    ),
    "forwarded_inline.eml": (
        "eva@example.cz",
        "Eva Novak",
        "Fwd: Your payment failed",
        "Is this email really from you? It looks like phishing.",
        [],
        None,
    ),
    "forwarded_attachment.eml": (
        "frank@example.de",
        "Frank Weber",
        "WG: Zustellung fehlgeschlagen",
        "Siehe Anhang, was soll ich tun?",
        ["message.eml"],
        None,
    ),
    "legacy_iso8859_1.eml": (
        "mjose@example.es",
        "María José Peña",
        "¿Dónde está mi pedido?",
        "Hola,\n\n¿Cuándo llegará mi pedido? Gracias.\n\nMaría José",
        [],
        None,
    ),
    "legacy_windows1252.eml": (
        "tom@example.co.uk",
        "Tom Baker",
        "Double charge",
        "Hello,\n\nI was charged €49.90 twice – that’s not “fair”.\n\nRegards,\nTom",
        [],
        None,
    ),
    "legacy_koi8r.eml": (
        "ivan@example.ru",
        "Иван Петров",
        "Повреждённая посылка",
        "Здравствуйте!\n\nПосылка пришла повреждённой.\n\nС уважением,\nИван",
        [],
        None,
    ),
    "legacy_shift_jis.eml": (
        "yamada@example.jp",
        "山田太郎",
        "Re: 注文について",
        "お世話になっております。\n①の商品がまだ届いていません。",
        [],
        None,
    ),
    "broken_wrong_charset.eml": (
        "ana@example.pt",
        "Ana",
        "Acao necessaria",
        "Preciso de uma ação urgente. Grüße, Ana",
        [],
        None,
    ),
    "broken_invalid_bytes.eml": (
        "zoe@example.com",
        "Zoe",
        "Café order",
        "Hello, my order café arrived but the receipt shows \ufffd\ufffd garbage.",
        [],
        None,
    ),
    "broken_bad_base64.eml": (
        "max@example.com",
        "Max",
        "Resend please",
        "The attachment would not open, can you resend it?",
        ["broken.bin"],
        None,
    ),
    "broken_unknown_charset.eml": (
        "kim@example.com",
        "Kim Lée",
        "Café question",
        "Is the café open on Sunday?",
        [],
        None,
    ),
    "autoreply_outlook_ooo.eml": (
        "paul.martin@example.com",
        "Paul Martin",
        "Automatic reply: [#501] Your ticket",
        "I am out of the office until March 25 with limited access to email.",
        [],
        "auto-submitted:auto-replied",
    ),
    "autoreply_xautoreply_de.eml": (
        "sabine@example.de",
        "Sabine Koch",
        "Abwesenheitsnotiz: Ihre Bestellung",
        "Ich bin bis zum 25. März nicht im Büro.",
        [],
        "x-autoreply",
    ),
    "newsletter_precedence_bulk.eml": (
        "news@deals.example",
        "Deals",
        "50% off this week only",
        "50% off\n\nOnly this week.",
        [],
        "precedence:bulk",
    ),
    "mailing_list.eml": (
        "someone@example.org",
        "Someone",
        "[users] Release 2.0 is out",
        "Release 2.0 is out.",
        [],
        "list-id",
    ),
    "no_subject.eml": (
        "nina@example.com",
        "Nina",
        "",
        "Can I change my delivery address?",
        [],
        None,
    ),
    "no_date.eml": ("omar@example.com", "Omar", "Hello", "Is anyone there?", [], None),
    "odd_recipients.eml": (
        "j.mueller@example.de",
        "Müller, Jürgen",
        "Group mail",
        "Sent to a group.",
        [],
        None,
    ),
    "x_loop.eml": (
        "forwarder@example.com",
        None,
        "Re: Your order",
        "Hello, your order has shipped.",
        [],
        "x-loop",
    ),
    "noreply_sender.eml": (
        "no-reply@carrier.example",
        "Carrier Notifications",
        "Parcel 123 delivered",
        "Parcel 123 was delivered.",
        [],
        "sender:noreply",
    ),
    "read_receipt_mdn.eml": (
        "paul@example.com",
        "Paul",
        "Read: Your order",
        "Your message was read on Monday.",
        ["disposition-notification.txt"],
        "multipart/report",
    ),
}
BOUNCES = {"bounce_dsn.eml", "bounce_delayed.eml", "bounce_qmail.eml"}


def test_every_fixture_is_covered():
    names = {p.name for p in FIXTURES.glob("*.eml")}
    assert names == set(EXPECTED) | BOUNCES


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_fields(name):
    sender, sender_name, subject, reply, files, reason = EXPECTED[name]
    p = parse(name)
    no_surrogates(p)
    assert p.from_address == sender
    assert p.from_name == sender_name
    assert p.subject == subject
    assert p.reply_text == reply
    assert sorted(a.filename for a in p.attachments) == sorted(files)
    assert p.automated_reason == reason
    assert p.automated is (reason is not None)
    assert not p.is_bounce
    assert p.date.tzinfo is not None and p.date.utcoffset().total_seconds() == 0
    event = p.to_event()
    assert isinstance(event, InboundMessage)
    assert event.external_id == p.message_id
    assert event.contact_id == sender
    assert event.text == (reply or p.text)
    assert event.automated is p.automated
    assert event.context["full_text"] == p.text
    assert event.context["message_id"] == p.message_id


def test_gmail_reply_threading_and_html():
    p = parse("gmail_reply_en.eml")
    assert p.message_id == "CAJx9kGmail0001+Anna@mail.gmail.com"
    assert p.in_reply_to == "sb.c0nv42.m2@shop.example"
    assert p.references == ["sb.c0nv42.m1@shop.example", "sb.c0nv42.m2@shop.example"]
    assert p.to == ["support+c0nv42@shop.example"]
    assert p.date == datetime(2024, 3, 4, 9, 31, 7, tzinfo=UTC)
    assert "On Mon, Mar 4, 2024" in p.text  # the full text keeps the quote
    event = p.to_event()
    assert event.thread_refs == ("sb.c0nv42.m2@shop.example", "sb.c0nv42.m1@shop.example")
    assert event.subject == "Re: [#1042] Your order has shipped"
    assert event.contact_name == "Anna Schmidt"
    assert event.context["to"] == ["support+c0nv42@shop.example"]
    assert 'target="_blank"' in p.html and "gmail_quote" not in p.html  # classes dropped


def test_outlook_crlf_windows1252_quoted_printable():
    raw = (FIXTURES / "outlook_reply_fr.eml").read_bytes()
    assert b"\r\n" in raw
    p = parse("outlook_reply_fr.eml")
    assert "n’est toujours pas arrivé" in p.text and "Objet : [#77]" in p.text
    assert p.html is None  # plain-only mail has no HTML


def test_format_flowed_is_unwrapped():
    p = parse("apple_mail_de.eml")
    assert "fehlt leider immer noch in meinem Kundenkonto." in p.text


def test_html_only_is_sanitised_and_converted():
    p = parse("html_only_outlook.eml")
    assert p.text.startswith("Hello,\nI still have not received the invoice")
    for bad in ("<script", "onload", "onclick", "javascript:", "<form", "<iframe", "<style"):
        assert bad not in p.html
    assert 'data-src="https://tracker.example/pixel.gif"' in p.html
    assert p.remote_images is True
    assert p.to_event().context["remote_images"] is True


def test_attachments_only_has_empty_text():
    p = parse("attachments_only.eml")
    assert p.text == "" and p.reply_text == "" and p.html is None
    pdf, csv = p.attachments
    assert pdf.content.startswith(b"%PDF-1.4") and pdf.content_type == "application/pdf"
    assert pdf.kind == "file" and pdf.extra["inline"] is False
    assert csv.content == b"order,amount\n1042,19.90\n"
    assert p.to_event().text == ""


def test_attachments_over_the_cap_are_dropped_with_a_note():
    p = parse("attachments_only.eml", max_attachment_bytes=30)
    assert [a.filename for a in p.attachments] == ["pedidos mañana.csv"]
    assert p.dropped_attachments == [
        {
            "filename": "factura-été.pdf",
            "content_type": "application/pdf",
            "size": 45,
            "reason": "larger than 30 bytes",
        }
    ]
    assert p.to_event().context["dropped_attachments"] == p.dropped_attachments


def test_text_is_capped():
    p = parse("plain_only.eml", max_text_chars=10)
    assert p.text == "Hi,\n\nDo yo" and p.text_truncated
    assert p.to_event().context["text_truncated"] is True


def test_inline_cid_image():
    p = parse("inline_cid.eml")
    (img,) = p.attachments
    assert isinstance(img, AttachmentRef)
    assert img.kind == "image" and img.content_type == "image/png"
    assert img.content_id == "ii_screenshot01@example.com"
    assert img.extra["inline"] is True
    assert img.content.startswith(b"\x89PNG")
    assert 'src="cid:ii_screenshot01@example.com"' in p.html  # mapped later by the domain


def test_forward_as_attachment_keeps_the_message():
    p = parse("forwarded_attachment.eml")
    (eml,) = p.attachments
    assert eml.content_type == "message/rfc822"
    assert b"Subject: Zustellung fehlgeschlagen" in eml.content
    assert b"Ihr Paket konnte nicht zugestellt werden." in eml.content


def test_forwarded_inline_full_text_keeps_the_forward():
    p = parse("forwarded_inline.eml")
    assert "Please re-enter your card number" in p.text
    assert "Please re-enter" not in p.reply_text


def test_legacy_charset_bodies():
    assert "Посылка пришла повреждённой." in parse("legacy_koi8r.eml").text
    assert "①の商品" in parse("legacy_shift_jis.eml").text  # cp932-only character
    assert "王喆" in parse("reply_zh_gb2312.eml").text  # GBK-only character under gb2312


def test_no_date_and_no_message_id():
    p = parse("no_date.eml")
    assert p.date == RECEIVED and p.date_from_header is False
    assert p.message_id_synthetic
    assert p.message_id.startswith("synthetic.") and p.message_id.endswith("@switchboard.invalid")
    assert parse("no_date.eml").message_id == p.message_id  # stable on replay
    event = p.to_event()
    assert event.sent_at == RECEIVED
    assert event.context["message_id_synthetic"] is True
    assert event.context["date_from_header"] is False


def test_missing_date_without_received_at_uses_now():
    raw = (FIXTURES / "no_date.eml").read_bytes()
    before = datetime.now(UTC)
    p = parse_email(raw, OURS)
    assert before <= p.date <= datetime.now(UTC)


def test_future_or_garbage_dates_fall_back():
    base = b"From: a@example.com\nSubject: x\nContent-Type: text/plain\n\nhi\n"
    future = parse_email(b"Date: Mon, 1 Jan 2099 00:00:00 +0000\n" + base, OURS, RECEIVED)
    garbage = parse_email(b"Date: yesterday-ish\n" + base, OURS, RECEIVED)
    naive = parse_email(b"Date: Mon, 4 Mar 2024 10:00:00\n" + base, OURS, RECEIVED)
    assert future.date == RECEIVED and garbage.date == RECEIVED
    assert naive.date == datetime(2024, 3, 4, 10, 0, tzinfo=UTC)


def test_odd_recipients():
    p = parse("odd_recipients.eml")
    assert p.to == []  # undisclosed-recipients:;
    assert p.cc == ["zoe@example.se", "john.doe@example.com", "plain@example.net"]


def test_loop_needs_our_address():
    raw = (FIXTURES / "x_loop.eml").read_bytes()
    assert parse_email(raw, OURS, RECEIVED).is_loop is False
    p = parse_email(raw, OURS, RECEIVED, our_address="Support@Shop.example")
    assert p.is_loop and p.automated and p.x_loop == ["support@shop.example"]
    assert p.to_event().context["loop"] is True


def test_dsn_bounce_becomes_failed_status_update():
    p = parse("bounce_dsn.eml")
    assert p.is_bounce and p.automated
    assert p.bounce.standard and p.bounce.reporting_mta == "mx.shop.example"
    event = p.to_event()
    assert event == StatusUpdate(
        inbox_key=OURS,
        status=DeliveryState.FAILED,
        external_id="sb.conv42.msg7@shop.example",
        contact_id="nobody@example.org",
        error=event.error,
    )
    assert event.error.kind is ErrorKind.UNDELIVERABLE
    assert event.error.code == "5.1.1"
    assert "Recipient address rejected: User unknown" in event.error.message


def test_delayed_dsn_is_transient():
    event = parse("bounce_delayed.eml").to_event()
    assert isinstance(event, StatusUpdate)
    assert event.status is DeliveryState.FAILED
    assert event.external_id == "sb.conv88.msg2@shop.example"
    assert event.contact_id == "slow@example.net"
    assert event.error.kind is ErrorKind.TRANSIENT and event.error.code == "4.4.7"


def test_qmail_bounce_heuristic():
    p = parse("bounce_qmail.eml")
    assert p.is_bounce and not p.bounce.standard
    event = p.to_event()
    assert event.external_id == "sb.conv9.msg3@shop.example"
    assert event.contact_id == "gone@example.com"
    assert event.error.kind is ErrorKind.UNDELIVERABLE and event.error.code == "5.1.1"


def test_bounce_without_original_id_stays_a_message():
    raw = (
        b"From: MAILER-DAEMON@mx.example.com\nReturn-Path: <>\nSubject: Undeliverable: hi\n"
        b"Message-ID: <b1@mx.example.com>\nContent-Type: text/plain\n\n"
        b"Delivery to the following recipient failed permanently:\n\n    lost@example.com\n"
    )
    p = parse_email(raw, OURS, RECEIVED)
    assert p.is_bounce and p.bounce.original_message_id is None
    event = p.to_event()
    assert isinstance(event, InboundMessage) and event.automated
    assert event.context["bounce"]["recipient"] == "lost@example.com"


def test_unknown_sender():
    p = parse_email(b"Subject: nobody\n\ntext\n", OURS, RECEIVED)
    assert p.from_address == UNKNOWN_SENDER
    assert p.to_event().context["sender_unknown"] is True


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe",
        b"Subject: =?utf-8?B?!!!?=\nFrom: <<<>>>\nTo: ,,,\n\n",
        b"Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nhi",
        b"Content-Type: multipart/mixed\n\nno boundary at all",
        b"Content-Type: text/plain; charset=utf-7\nContent-Transfer-Encoding: base64\n\n@@@",
        b"From: a@b.c\nContent-Type: message/rfc822\n\nnot a message",
        b"From: " + b"a" * 100_000 + b"@x.com\n\nlong header",
        b"Content-Type: multipart/alternative; boundary=a\n\n" + b"--a\n" * 2000,
    ],
)
def test_garbage_never_raises(raw):
    p = parse_email(raw, OURS, RECEIVED)
    no_surrogates(p)
    p.to_event()


def test_decode_bytes_repairs():
    assert decode_bytes("Grüße".encode(), "iso-8859-1") == "Grüße"
    assert decode_bytes("Grüße".encode("cp1252"), "utf-8") == "Grüße"
    assert decode_bytes("€".encode("cp1252"), "iso-8859-1") == "€"
    assert decode_bytes("王喆".encode("gbk"), "gb2312") == "王喆"
    assert decode_bytes("①".encode("cp932"), "shift_jis") == "①"
    assert decode_bytes(b"caf\xc3\xa9 \xff", "utf-8") == "café \ufffd"
    assert decode_bytes("Grüße".encode(), "no-such-charset") == "Grüße"
    assert decode_bytes(b"<meta charset='koi8-r'>" + "Иван".encode("koi8-r"), None, True).endswith(
        "Иван"
    )


# ----------------------------------------------------------------------- shared corpus


def corpus_entries():
    manifest = CORPUS / "MANIFEST.jsonl"
    if not manifest.exists():
        return []
    return [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]


needs_corpus = pytest.mark.skipif(not CORPUS.exists(), reason="shared corpus not present")


@needs_corpus
@pytest.mark.parametrize("entry", corpus_entries(), ids=lambda e: e["file"])
def test_corpus_message_parses(entry):
    raw = (CORPUS / entry["file"]).read_bytes()
    p = parse_email(raw, OURS, RECEIVED)
    no_surrogates(p)
    event = p.to_event()
    expect = entry["expect"]
    asserts = entry.get("source_asserts") or {}
    if expect.get("subject") is not None:
        assert p.subject == expect["subject"]
    if expect.get("message_id"):
        assert p.message_id == expect["message_id"]
    if expect.get("from_addr"):
        assert p.from_address == expect["from_addr"].lower()
    if "from_name" in asserts:
        assert (p.from_name or "") == asserts["from_name"]
    if isinstance(asserts.get("cc"), list):
        assert p.cc == [addr.lower() for _, addr in asserts["cc"]]
    if expect.get("filenames"):
        assert sorted(a.filename for a in p.attachments) == sorted(expect["filenames"])
    if expect.get("auto_or_bounce"):
        assert p.automated
    if "stripped_reply" in asserts:
        # talon keeps "Sent from my iPhone"/"-- " signatures; we strip them
        assert p.reply_text == "Hello"
    if asserts.get("stripped_reply_excludes"):
        assert p.reply_text and asserts["stripped_reply_excludes"] not in p.reply_text
    if isinstance(event, InboundMessage):
        assert event.text


@needs_corpus
def test_corpus_dsn_with_nonstandard_headers_part():
    raw = (CORPUS / "mail-parser/mail_malformed_2.eml").read_bytes()
    event = parse_email(raw, OURS, RECEIVED).to_event()
    assert isinstance(event, StatusUpdate)
    assert event.external_id == "004801d1fc84$01c934ac$b247f0b7$@infospacemail.com"
    assert event.contact_id == "abh@netpar.com.br"
    assert event.error.kind is ErrorKind.TRANSIENT and event.error.code == "4.2.2"
    assert "mailbox full" in event.error.message


@needs_corpus
def test_corpus_broken_boundary_is_salvaged():
    p = parse_email((CORPUS / "mail-parser/mail_malformed_3.eml").read_bytes(), OURS, RECEIVED)
    assert "Problemas para visualizar" in p.text and p.html
