"""Every parser under ``connectors/`` keeps its documented error contract on fuzzed input.

Finding B of the attack pass: ``parse_email``, documented as never raising,
raised on 44 of 3,000 mutated mails (``UnicodeEncodeError`` re-encoding a
salvaged multipart, ``ValueError`` for a charset label with a NUL). Here each
parser gets what an attacker or a broken provider could send, and may raise
only what its docstring names:

- never raises: ``parse_email``, ``decode_bytes``, ``extract_reply``,
  ``sanitize_html``, ``html_to_text``, ``parse_html``, automated-mail and bounce
  detection, the thread helpers, Messenger's ``parse``/``page_ids``, GBM's
  ``parse``/``unwrap``/``handshake``, Twilio's ``routing_keys``, the signature
  checks, the phone-number, segment and consent helpers;
- ``UnreadableBody`` (a ``ValueError``) only: ``read_json``, GBM ``agent_of``;
- ``ValueError`` only: Twilio ``parse_inbound``/``parse_status``, quiet-hours
  ``parse_time``, GBM ``load_service_account``, ``plus_address``,
  ``make_message_id``.

Seeds are written here; the shared corpus's mails are added when it is present
(read, never copied). Examples are bounded so the file runs in seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email
import json
from datetime import UTC, datetime
from email import policy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from connectors import base, gbm, messenger
from connectors.base import InboundMessage, SendError, UnreadableBody
from connectors.email import automated, bounces, quotes, sanitize, threads
from connectors.email.parse import ParsedEmail, decode_bytes, parse_email
from connectors.sms import consent, phone, quiet, segments, twilio

CORPUS_MAIL = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "email"
RECEIVED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,  # nothing written into the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --------------------------------------------------------------------------- strategies

ODD_TEXT = ["", " ", "\x00", "\ud83d", "\udcff", "a\ud800b", "\u202e", "\ufeff", "Ω" * 3]


def texts(max_size: int) -> st.SearchStrategy[str]:
    """Any text, lone surrogates and NULs (which the usual strategy leaves out) included."""
    return (
        st.text(max_size=max_size)
        | st.text(st.characters(exclude_categories=()), max_size=max_size)
        | st.sampled_from(ODD_TEXT)
    )


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**18, max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts(30)
    | st.sampled_from(["", " ", "\x00", "\ud83d", "1458692752478", "2026-05-01T15:01:23Z"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts(12), inner, max_size=4),
    max_leaves=20,
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indexes) into a JSON value, the root included."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


def replaced(value: Any, path: tuple, new: Any, delete: bool) -> Any:
    """A copy of ``value`` with the item at ``path`` replaced by ``new`` (or deleted)."""
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return copy


@st.composite
def mutated(draw, seeds: list[Any]) -> Any:
    """A seed payload with a few of its values (or keys) swapped for fuzz."""
    value = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        path = draw(st.sampled_from(paths(value)))
        value = replaced(value, path, draw(json_values), draw(st.booleans()))
    return value


def payloads(seeds: list[Any]) -> st.SearchStrategy:
    return mutated(seeds) | json_values


# --------------------------------------------------------------------------- JSON bodies

DEEP = [b"[" * 100_000, b'{"a":' * 100_000, b"[" * 70 + b"]" * 70, b'{"a":1e999}', b"NaN"]


def assert_storable(value: Any) -> None:
    """No string the databases refuse (a NUL, a lone surrogate), nor a NaN or an infinity."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            assert "\x00" not in item
            item.encode("utf-8")
        elif isinstance(item, dict):
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, list | tuple):
            stack += item
        elif dataclasses.is_dataclass(item):
            stack += [getattr(item, f.name) for f in dataclasses.fields(item)]
        elif isinstance(item, float):
            assert item == item and item not in (float("inf"), float("-inf"))


@FUZZ
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
@example(b'{"text": "a\\u0000b", "half": "\\ud83d", "\\udc00key": 1}')
def test_read_json_returns_storable_json_or_raises_unreadable_body(raw):
    for body in (raw, *DEEP):
        try:
            value = base.read_json(body)
        except UnreadableBody:
            continue
        assert_storable(value)
        json.dumps(value, allow_nan=False).encode("utf-8")


@FUZZ
@given(json_values | texts(100) | st.binary())
@example("page\x00")
@example("9" * 300)
def test_routing_key_is_a_short_printable_string_or_none(value):
    key = base.routing_key(value)
    assert key is None or (isinstance(key, str) and 0 < len(key) <= 255 and key.isprintable())


# --------------------------------------------------------------------------- Messenger

PAGE = "104800000000555"
MESSENGER_SEEDS = [
    {
        "object": "page",
        "entry": [
            {
                "id": PAGE,
                "time": 1458692752478,
                "messaging": [
                    {
                        "sender": {"id": "7001"},
                        "recipient": {"id": PAGE},
                        "timestamp": 1458692752478,
                        "message": {
                            "mid": "mid.1",
                            "text": "hello",
                            "quick_reply": {"payload": "P"},
                            "reply_to": {"mid": "m_0"},
                            "attachments": [
                                {"type": "image", "payload": {"url": "https://x/i.png"}},
                                {
                                    "type": "location",
                                    "payload": {"coordinates": {"lat": 1, "long": 2}},
                                },
                            ],
                        },
                    },
                    {
                        "sender": {"id": PAGE},
                        "recipient": {"id": "7001"},
                        "timestamp": "1457764197627",
                        "message": {"is_echo": True, "app_id": 1517776481860111, "mid": "m_e"},
                    },
                    {
                        "sender": {"id": "7001"},
                        "recipient": {"id": PAGE},
                        "delivery": {"mids": ["m_1"], "watermark": 1458668856253},
                    },
                    {"sender": {"user_ref": "u1"}, "read": {"watermark": 1458668856253}},
                    {
                        "sender": {"id": "7001"},
                        "postback": {"title": "Go", "payload": "GO", "referral": {"ref": "r"}},
                    },
                    {"sender": {"id": "7001"}, "timestamp": 1, "reaction": {"emoji": "x"}},
                ],
                "standby": [{"sender": {"id": "7002"}, "message": {"mid": "m_s", "text": "s"}}],
                "changes": [{"value": {"sender": {"id": "7003"}, "message": {"mid": "m_c"}}}],
            }
        ],
    },
    {
        "field": "messaging_postbacks",
        "value": {
            "sender": {"id": "7001"},
            "recipient": {"id": PAGE},
            "timestamp": "1527459824",
            "postback": {"mid": "m_p", "title": "T", "payload": "P"},
        },
    },
]


@FUZZ
@given(payloads(MESSENGER_SEEDS))
def test_messenger_parse_and_page_ids_never_raise(payload):
    events = messenger.parse(payload)
    assert all(isinstance(ev.inbox_key, str) for ev in events)
    ids = messenger.page_ids(payload)
    assert all(base.routing_key(page_id) == page_id for page_id in ids)


@FUZZ
@given(st.binary(max_size=200), texts(80) | st.none(), texts(20))
@example(b"{}", "sha256=" + "0" * 64, "secret")
def test_messenger_signature_checks_never_raise(raw, header, secret):
    assert messenger.check_signature(raw, header, secret) in (True, False)
    assert messenger.verify_token_matches(header, secret) in (True, False)


@FUZZ
@given(st.integers(min_value=100, max_value=599), json_values, json_values)
def test_messenger_graph_error_classification_never_raises(status, body, header_values):
    headers = header_values if isinstance(header_values, dict) else {}
    headers = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in headers.items()}
    for name in ("Retry-After", "X-Business-Use-Case-Usage"):
        headers.setdefault(name, json.dumps(header_values))
    assert isinstance(messenger.classify_graph_error(status, body, headers), SendError)


# --------------------------------------------------------------------------- GBM

AGENT = "brands/b/agents/a"
_GBM_BASE = {
    "agent": AGENT,
    "conversationId": "c1",
    "requestId": "r1",
    "sendTime": "2024-05-01T15:01:23.045123456Z",
    "context": {"userInfo": {"displayName": "Jane"}, "widget": {"url": "u"}},
}
GBM_SEEDS = [
    {
        **_GBM_BASE,
        "message": {"messageId": "m1", "text": "hi", "createTime": "2024-05-01T15:01:23Z"},
    },
    {
        **_GBM_BASE,
        "receipts": {
            "receipts": [{"receiptType": "READ", "message": "conversations/c1/messages/m0"}]
        },
    },
    {**_GBM_BASE, "userStatus": {"isTyping": "true", "requestedLiveAgent": True}},
    {
        **_GBM_BASE,
        "surveyResponse": {"survey": "conversations/c1/surveys/s1", "questionIndex": "2"},
    },
    {
        **_GBM_BASE,
        "suggestionResponse": {"message": "conversations/c1/messages/m0", "postbackData": "p"},
    },
    {**_GBM_BASE, "authenticationResponse": {"code": "x", "errorDetails": {"error": "e"}}},
    {"clientToken": "token", "secret": "s"},
    {
        "message": {
            "data": "eyJhZ2VudCI6ICJicmFuZHMvYi9hZ2VudHMvYSJ9",  # {"agent": "brands/b/agents/a"}
            "messageId": "1",
        },
        "subscription": "projects/p/subscriptions/s",
    },
]


@FUZZ
@given(payloads(GBM_SEEDS))
def test_gbm_parsers_keep_their_contracts(payload):
    assert isinstance(gbm.parse(payload), list)
    unwrapped = gbm.unwrap(payload)
    assert unwrapped is None or isinstance(unwrapped, dict)
    shake = gbm.handshake(payload)
    assert shake is None or all(isinstance(v, str) for v in shake)
    try:
        agent = gbm.agent_of(payload)
    except UnreadableBody:
        return
    assert base.routing_key(agent) == agent


@FUZZ
@given(texts(40) | json_scalars)
@example("2024-13-45T99:99:99.9999999999Z")
@example("2024-05-01T15:01:23+99:99")
def test_gbm_timestamp_parser_never_raises(value):
    parsed = gbm.parse_timestamp(value)
    assert parsed is None or parsed.tzinfo is not None


@FUZZ
@given(st.binary(max_size=200), texts(120) | st.none(), st.lists(json_scalars, max_size=3))
def test_gbm_signature_check_never_raises(raw, header, keys):
    assert gbm.check_signature(raw, header, keys) in (True, False)


@FUZZ
@given(json_values | texts(60))
def test_gbm_service_account_loader_raises_only_value_error(value):
    with contextlib.suppress(ValueError):
        gbm.load_service_account(value)


# --------------------------------------------------------------------------- Twilio

TWILIO_FIELDS = [
    "MessageSid",
    "SmsMessageSid",
    "SmsSid",
    "AccountSid",
    "MessagingServiceSid",
    "From",
    "To",
    "Body",
    "NumMedia",
    "NumSegments",
    "MediaUrl0",
    "MediaContentType0",
    "FromCountry",
    "OptOutType",
    "MessageStatus",
    "SmsStatus",
    "ErrorCode",
    "ErrorMessage",
]
form_values = texts(30) | st.sampled_from(
    [
        "+14155550123",
        "STOP",
        "stop.",
        "3",
        "99999999999999999999",
        "delivered",
        "failed",
        "30007",
        "\x00",
    ]
)
forms = st.dictionaries(st.sampled_from(TWILIO_FIELDS) | texts(10), form_values, max_size=10)


@FUZZ
@given(forms)
@example({"MessageSid": "SM1", "To": "+14155550123\x00", "NumMedia": "9" * 5000})
def test_twilio_parsers_raise_only_value_error(form):
    service, number = twilio.routing_keys(form)
    assert service is None or base.routing_key(service) == service
    assert number == "" or base.routing_key(number) == number
    try:
        events = twilio.parse_inbound(form, RECEIVED)
    except ValueError:
        pass
    else:
        assert isinstance(events[0], InboundMessage)
        assert base.routing_key(events[0].external_id) == events[0].external_id
    with contextlib.suppress(ValueError):
        twilio.parse_status(form)


@FUZZ
@given(
    texts(60),
    forms,
    texts(40) | st.none(),
    texts(20) | st.none(),
    texts(60) | st.none(),
)
@example("https://x.example/sms", {"a": "b"}, "sig", "token", "key=K,algorithm=HMAC_SHA256")
def test_twilio_signature_check_never_raises(url, form, signature, token, settings_header):
    ok = twilio.validate_signature(
        url, form, signature, token, signature_settings=settings_header, shared_key="k"
    )
    assert ok in (True, False)


@FUZZ
@given(json_scalars | texts(10), texts(30), st.integers(100, 599) | st.none())
def test_twilio_error_classification_never_raises(code, message, status):
    assert isinstance(twilio.classify(code, message, http_status=status), SendError)


# --------------------------------------------------------------------------- phone numbers, segments

numbers = (
    texts(30)
    | st.from_regex(r"(?:whatsapp:|tel:)?\+?[0-9 ().-]{0,20}", fullmatch=True)
    | st.sampled_from(
        ["+14155550123", "+447700900123", "07700 900123", "+1\x00415", "+" + "9" * 300]
    )
)


@FUZZ
@given(numbers | st.none(), texts(4) | st.none() | st.sampled_from(["US", "GB", "ß", "zz"]))
def test_phone_helpers_never_raise(raw, region):
    assert phone.parse(raw, region) is None or phone.normalise(raw, region) is not None
    normalised = phone.normalise(raw, region)
    assert normalised is None or isinstance(normalised, str)
    assert isinstance(phone.address(raw, region), str)
    text = raw or ""
    assert phone.region(text) is None or isinstance(phone.region(text), str)
    assert isinstance(phone.kind(text), str)
    assert isinstance(phone.timezones(text), list)
    assert isinstance(phone.customer_timezone(text, "Europe/Paris", RECEIVED), str)


@FUZZ
@given(texts(400))
@example("\ud83d" * 3 + "€" * 200)
def test_segment_and_consent_helpers_never_raise(text):
    info = segments.count(text)
    assert info.segments >= 0 and info.units >= 0 and info.remaining >= 0
    assert segments.is_gsm7(text) == (info.encoding == segments.GSM7)
    assert consent.classify(text) in (None, *consent.Consent)
    assert consent.keyword(text) is None or isinstance(consent.keyword(text), str)


@FUZZ
@given(texts(20) | st.from_regex(r"[0-9]{1,3}:[0-9]{1,3}(:[0-9]{1,3})?", fullmatch=True))
def test_quiet_hours_time_parser_raises_only_value_error(value):
    with contextlib.suppress(ValueError):
        quiet.parse_time(value)


# --------------------------------------------------------------------------- email

SEED_MAILS = [
    b"From: Jane Doe <jane@customer.example>\r\nTo: support@shop.example\r\n"
    b"Subject: =?utf-8?q?Caf=C3=A9_order?=\r\nMessage-ID: <a1@customer.example>\r\n"
    b"Date: Fri, 01 May 2026 10:00:00 +0200\r\nContent-Type: text/plain; charset=utf-8; format=flowed\r\n"
    b"\r\nHello, where is my order? \r\nIt is late.\r\n\r\nOn Thu, 30 Apr 2026, Shop wrote:\r\n> Thanks\r\n",
    b'From: =?iso-8859-1?q?J=F6rg?= <jorg@x.example>\r\nTo: a@b.example, "Team, Support" <s@shop.example>\r\n'
    b"Subject: Re: [#42] Hi\r\nIn-Reply-To: <sb.tok.1@shop.example>\r\nReferences: <r0@x> <sb.tok.1@shop.example>\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="alt"\r\n\r\n'
    b"--alt\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Gr=FC=DFe\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b'<html><body><p>Gr\xc3\xbc\xc3\x9fe <img src="cid:logo"> <img src="http://t.example/p.gif">'
    b"<script>x()</script><blockquote>old</blockquote></p></body></html>\r\n--alt--\r\n",
    b"From: Bob <bob@x.example>\r\nSubject: files\r\nContent-Type: multipart/mixed; boundary=mix\r\n\r\n"
    b"--mix\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
    b'--mix\r\nContent-Type: application/pdf; name="=?utf-8?b?w6kucGRm?="\r\n'
    b"Content-Disposition: attachment; filename*=utf-8''%C3%A9t%C3%A9.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"JVBERi0xLjQK\r\n--mix\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--mix--\r\n",
    b"From: MAILER-DAEMON@mx.example\r\nReturn-Path: <>\r\nSubject: Undelivered Mail Returned to Sender\r\n"
    b"Auto-Submitted: auto-replied\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n"
    b"--r\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n--r\r\nContent-Type: message/delivery-status\r\n\r\n"
    b"Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; gone@x.example\r\nAction: failed\r\n"
    b"Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n"
    b"--r\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <sb.tok.2@shop.example>\r\n--r--\r\n",
    b"From: list@lists.example\r\nList-Id: <news.lists.example>\r\nPrecedence: bulk\r\nX-Loop: support@shop.example\r\n"
    b'Content-Type: text/html; charset="windows-1252"\r\n\r\n<meta charset=gbk><p>\x93quoted\x94 \xe9</p>',
]
ODD_CHARSETS = [
    b"\x00",
    b"utf-8\x00",
    b"punycode",
    b"idna",
    b"base64",
    b"rot13",
    b"unicode_escape",
    b"utf-7",
    b"utf-16",
    b"x" * 300,
    b"\xc3\xa9",
    b"\xff",
    b"'utf-8'",
    b"unknown-8bit",
]
ODD_HEADERS = [
    "Subject: Caf\u00e9 \u4f60\u597d",
    "From: Jos\u00e9 <j\u00f6@ex.example>",
    "To: =?utf-8?b?\u00e9?= <a@b>",
    "Content-Type: multipart/mixed; boundary=\u00e9\u00e9",
    "Content-Type: text/plain; charset=\u00e9",
    "Message-ID: <\u00e9@x>",
    "References: <a@b> \u00e9 <\x00@c>",
    "Date: Fri, 31 Feb 99999 25:61:61 +9999",
    "Content-Type: multipart/alternative",
    "Content-Type: message/rfc822",
    "Content-Transfer-Encoding: base64",
]


def _seed_mails() -> list[bytes]:
    found = list(SEED_MAILS)
    if CORPUS_MAIL.is_dir():
        found += [p.read_bytes() for p in sorted(CORPUS_MAIL.rglob("*.eml"))[:40]]
    return found


@st.composite
def mutated_mails(draw) -> bytes:
    """A real-looking mail with byte flips, cuts, NULs, odd charsets and non-ASCII headers."""
    mail = bytearray(draw(st.sampled_from(_seed_mails())))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        op = draw(st.sampled_from(["flip", "cut", "nul", "charset", "header", "insert"]))
        at = draw(st.integers(min_value=0, max_value=max(len(mail) - 1, 0)))
        if op == "flip" and mail:
            mail[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del mail[at:]
        elif op == "nul":
            mail[at:at] = b"\x00" * draw(st.integers(1, 3))
        elif op == "charset":
            charset = draw(st.sampled_from(ODD_CHARSETS))
            where = bytes(mail).lower().find(b"charset=")
            if where >= 0:
                end = where + 8
                while end < len(mail) and mail[end] not in b";\r\n ":
                    end += 1
                mail[where + 8 : end] = charset
            else:
                mail[0:0] = b"Content-Type: text/plain; charset=" + charset + b"\r\n"
        elif op == "header":
            header = draw(st.sampled_from(ODD_HEADERS))
            mail[0:0] = header.encode("utf-8", "surrogateescape") + b"\r\n"
        else:
            mail[at:at] = draw(st.binary(min_size=1, max_size=40))
    return bytes(mail)


@settings(FUZZ, max_examples=250)
@given(mutated_mails())
def test_parse_email_never_raises_on_mutated_mail(raw):
    parsed = parse_email(raw, "support@shop.example", RECEIVED, our_address="support@shop.example")
    assert isinstance(parsed, ParsedEmail)
    assert_storable(parsed)  # documented: what the inbox stores, the database takes
    assert all(len(a) <= 254 for a in (parsed.from_address, *parsed.to, *parsed.cc))
    assert parsed.to_event() is not None


@pytest.mark.parametrize(
    "raw",
    [
        # a multipart without a boundary, salvaged: UnicodeEncodeError at parse.py:609 before
        b"Content-Type: multipart/alternative\n\n--x\n\n\xc3\xa9\n--x--\n",
        "Content-Type: multipart/mixed\r\n\r\n--b\r\nSubject: caf\u00e9\r\n\r\nx\r\n--b--\r\n",
        # a charset label with a NUL: ValueError from codecs.lookup at parse.py:248 before
        b"Content-Type: text/plain; charset=utf-8\x00\r\n\r\n\xc3\xa9",
        # codecs Python has but no mail charset names
        b"Content-Type: text/plain; charset=punycode\r\n\r\nabc,\xe9",
        b"Content-Type: text/plain; charset=idna\r\n\r\n" + b"a" * 80 + b"\xe9",
        b"Content-Type: text/html; charset=rot13\r\n\r\n<p>\xe9</p>",
    ],
    ids=["salvaged multipart", "str", "NUL charset", "punycode", "idna", "rot13"],
)
def test_parse_email_never_raises_on_the_attack_pass_cases(raw):
    assert isinstance(parse_email(raw, "support@shop.example", RECEIVED), ParsedEmail)


@FUZZ
@given(
    st.binary(max_size=400),
    st.sampled_from([None, *(c.decode("latin-1") for c in ODD_CHARSETS)]) | texts(20),
    st.booleans(),
)
def test_decode_bytes_never_raises(data, charset, is_html):
    assert isinstance(decode_bytes(data, charset, is_html), str)


REPLY_LINES = [
    "Thanks, that works.",
    "On Tue, 5 May 2026 at 10:00, Shop <support@shop.example> wrote:",
    "Le mar. 5 mai 2026 à 10:00, Shop a écrit :",
    "Am 05.05.2026 um 10:00 schrieb Shop:",
    "> old text",
    ">> older",
    "-----Original Message-----",
    "From: Shop",
    "Sent: Tuesday",
    "-- ",
    "Sent from my iPhone",
    "[link](http://x.example)",
    "_____",
]
reply_texts = st.lists(st.sampled_from(REPLY_LINES) | texts(60), max_size=12).map("\n".join)
HTML_BITS = [
    "<p>",
    "</p>",
    "<div>",
    "</div>",
    "<blockquote type=cite>",
    "</blockquote>",
    '<div class="gmail_quote">',
    "<br>",
    '<a href="javascript:alert(1)">x</a>',
    '<img src="cid:logo@x">',
    '<img src="https://t.example/p.gif" onerror=alert(1)>',
    "<script>alert(1)</script>",
    "<style>p{background:url(x)}</style>",
    '<p style="color:red;background:url(//x)">',
    "<table><tr><td>",
    "<svg><script>1</script></svg>",
    "<!--",
    "<![CDATA[",
    "<?xml version='1.0'?>",
    "&#0;",
    "&amp;",
    "\x00",
    "<li>",
    "<pre>",
]
html_texts = st.lists(st.sampled_from(HTML_BITS) | texts(30), max_size=20).map("".join)


@FUZZ
@given(reply_texts | texts(300) | st.none(), html_texts | st.none(), st.booleans())
def test_quote_stripping_never_raises(text, html, narrow):
    languages = ["en", "de"] if narrow else None
    assert isinstance(quotes.extract_reply(text, html, languages), str)


@FUZZ
@given(html_texts | texts(300))
def test_html_sanitizer_never_raises(html):
    clean = sanitize.sanitize_html(html, {"logo@x": "/attachments/1"})
    assert isinstance(clean, str)
    assert "<script" not in clean.lower()
    assert isinstance(sanitize.sanitize_html(html), str)
    assert isinstance(sanitize.html_to_text(html), str)
    assert sanitize.has_remote_images(html) in (True, False)
    sanitize.parse_html(html)  # a tree or None


header_maps = st.dictionaries(
    st.sampled_from(
        ["Auto-Submitted", "X-Autoreply", "Precedence", "List-Id", "Return-Path", "X-Loop", "From"]
    )
    | texts(10),
    texts(40) | st.lists(texts(20) | st.none(), max_size=3) | json_scalars,
    max_size=6,
)


@FUZZ
@given(header_maps, texts(40) | st.none(), texts(40) | st.none())
def test_automated_mail_detection_never_raises(headers, address, content_type):
    reason = automated.detect(headers, address, content_type, address)
    assert reason is None or isinstance(reason, str)
    assert automated.is_loop(headers, address) in (True, False)
    assert isinstance(automated.header_values(headers, "X-Loop"), list)
    assert bounces.looks_like_bounce(address, content_type, bool(headers)) in (True, False)


@FUZZ
@given(mutated_mails())
def test_bounce_and_automated_detection_on_parsed_mail_never_raise(raw):
    msg = email.message_from_bytes(raw, policy=policy.default)
    info = bounces.parse_bounce(msg, "mailer-daemon@x.example", "Undelivered", "5.1.1", True)
    assert info is None or isinstance(info, bounces.BounceInfo)
    assert automated.detect(msg) is None or isinstance(automated.detect(msg), str)


@FUZZ
@given(texts(120) | st.none(), texts(40) | st.none())
@example("<a@b> <\x00@c> \ud800", "support+x@shop.example")
@example("[#99999999999999999999] Re: AW: [fwd: Hi]", "x")
def test_thread_helpers_never_raise(value, other):
    assert isinstance(threads.normalize_message_id(value), str)
    assert isinstance(threads.parse_id_list(value), list)
    assert isinstance(threads.display_subject(value), str)
    assert isinstance(threads.match_subject(value), str)
    assert isinstance(threads.reply_subject(value), str)
    token = threads.subject_ticket_token(value)
    assert token is None or isinstance(token, int)
    assert threads.plus_token(value, other) is None or isinstance(
        threads.plus_token(value, other), str
    )
    assert threads.parse_message_id(value) is None or len(threads.parse_message_id(value)) == 2
    threads.token_from_message_id(value)
    assert isinstance(threads.build_references([value or "", other or ""], value or "x"), list)
    for build in (
        lambda: threads.plus_address(other or "", value or ""),
        lambda: threads.make_message_id(value or "", other or "", "shop.example"),
    ):
        with contextlib.suppress(ValueError):
            assert isinstance(build(), str)
