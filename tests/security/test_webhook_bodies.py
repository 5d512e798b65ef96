"""Webhook bodies no provider sends, posted as an attacker would: never a 5xx.

Finding A of the attack pass: 100,000 nested ``[`` made ``/webhooks/messenger``
and ``/webhooks/gbm`` raise ``RecursionError`` (only ``ValueError`` was
caught), and GBM ``agent`` values of the wrong type (``[1]``, ``{}``,
``10**30``) reached SQL unchecked. The rules these tests hold every webhook to:

- a body nobody signed that cannot be read: 400 (Messenger checks its signature
  over the raw bytes first, so there it is 403); a forged one: 403; an unknown
  route: as before (404 for SMS and email, acknowledged for Messenger and GBM);
- a routing value (Messenger ``entry[].id``, GBM ``agent``, Twilio ``To`` and
  ``MessagingServiceSid``, the email token, a status callback's ``MessageSid``,
  ``From`` and ``ref``) reaches SQL only as a short string without NUL;
- a body signed by one of our inboxes that cannot be read is acknowledged (2xx,
  so the provider does not retry it forever) and kept in the intake once, as
  ``failed``, where nothing retries it by itself.

Each case runs on SQLite and, with ``TEST_DATABASE_URL``, on PostgreSQL, which
refuses NUL in text and compares a text column with a number only by error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from app.models import Message, WebhookIntake
from app.runtime import intake
from connectors import gbm

DEEP_ARRAY = b"[" * 100_000
DEEP_OBJECT = b'{"a":' * 100_000
SMS_URL = "http://localhost/webhooks/sms/twilio"
STATUS_URL = SMS_URL + "/status"

#: Bodies no JSON webhook can read.
UNREADABLE = {
    "nested brackets": DEEP_ARRAY,
    "nested objects": DEEP_OBJECT,
    "nested, closed": b"[" * 5_000 + b"]" * 5_000,
    "not JSON": b"hello, world",
    "not UTF-8": b'\xff\xfe{"object": "page"}',
    "NaN": b'{"object": "page", "entry": NaN}',
    "overflowing float": b'{"object": "page", "entry": 1e999}',
    "5,000-digit integer": b'{"object": "page", "entry": [{"id": ' + b"9" * 5_000 + b"}]}",
    "empty": b"",
    "a JSON array": b'[{"object": "page"}]',
    "a JSON string": b'"page"',
}

#: Routing values of the wrong type or shape.
BAD_ROUTES = {
    "list": [1],
    "object": {"a": 1},
    "empty object": {},
    "10**30": 10**30,
    "integer": 5,
    "float": 1.5,
    "boolean": True,
    "null": None,
    "empty string": "",
    "NUL": "brands/b/agents/a\u0000",
    "300 characters": "x" * 300,
}


@pytest.fixture(autouse=True)
def _answers_like_production(app):
    """An exception becomes the 500 a provider would see, not a test-client traceback."""
    app.config["PROPAGATE_EXCEPTIONS"] = False


@pytest.fixture(autouse=True)
def _empty_intake(app):
    """Failed rows stay by design; on SQLite they live in a file the table wipe does not reach."""
    intake.write(sa.delete(WebhookIntake))
    yield
    intake.write(sa.delete(WebhookIntake))


def intake_rows(session) -> list[sa.Row]:
    session.expire_all()
    return intake.rows()


def stored_messages(session) -> int:
    session.rollback()
    return session.scalar(sa.select(sa.func.count()).select_from(Message))


def assert_kept_once_as_failed(session, inbox_ids: list[int]) -> None:
    """One failed intake row for the body, and a drain leaves it alone."""
    [row] = intake_rows(session)
    assert row.state == "failed" and row.attempts == intake.MAX_ATTEMPTS
    assert row.inbox_ids == inbox_ids
    assert "malformed" in row.error
    assert intake.drain_all().rows == 0  # not retried by itself
    [again] = intake_rows(session)
    assert again.state == "failed" and again.attempts == intake.MAX_ATTEMPTS
    assert stored_messages(session) == 0


def assert_nothing_kept(session) -> None:
    assert intake_rows(session) == []
    assert stored_messages(session) == 0


# --------------------------------------------------------------------------- Messenger


def messenger_post(client, raw: bytes, secret: str | None = None):
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = "sha256=" + digest
    return client.post("/webhooks/messenger", data=raw, headers=headers)


def messenger_body(page_id, text: str = "Hello") -> bytes:
    item = {
        "sender": {"id": "7001"},
        "recipient": {"id": page_id},
        "timestamp": 1_760_000_000_000,
        "message": {"mid": "m_sec_1", "text": text},
    }
    return json.dumps({"object": "page", "entry": [{"id": page_id, "messaging": [item]}]}).encode()


@pytest.fixture
def page(make):
    return make.inbox("messenger", page_id="104800000000777", app_secret="page-secret")


@pytest.mark.parametrize("raw", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_messenger_unsigned_unreadable_body_is_refused(client, session, page, raw):
    assert messenger_post(client, raw).status_code == 403
    assert_nothing_kept(session)


@pytest.mark.parametrize("raw", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_messenger_signed_unreadable_body_is_acknowledged_and_kept_once_as_failed(
    client, session, page, raw
):
    resp = messenger_post(client, raw, "page-secret")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ignored", "reason": "malformed"}
    assert_kept_once_as_failed(session, [page.id])


@pytest.mark.parametrize("value", BAD_ROUTES.values(), ids=BAD_ROUTES.keys())
def test_messenger_page_id_of_the_wrong_type_routes_nowhere(client, session, page, value):
    raw = messenger_body(value)
    assert messenger_post(client, raw).status_code == 403
    resp = messenger_post(client, raw, "page-secret")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "stored": 0, "duplicates": 0}
    assert_nothing_kept(session)


def test_messenger_body_naming_more_pages_than_one_query_takes_still_routes(client, session, page):
    """70,000 Page ids: past PostgreSQL's 65,535 parameters, so they are looked up in parts."""
    entries = [{"id": str(10**14 + n), "messaging": []} for n in range(70_000)]
    body = json.loads(messenger_body(page.route_key))
    raw = json.dumps({"object": "page", "entry": entries + body["entry"]}).encode()
    assert messenger_post(client, raw).status_code == 403
    resp = messenger_post(client, raw, "page-secret")
    assert resp.status_code == 200 and resp.get_json()["stored"] == 1


def test_messenger_page_id_as_a_number_still_routes(client, session, page):
    """Older payloads carry the Page id as a JSON number: that stays readable."""
    raw = messenger_body(int(page.route_key))
    resp = messenger_post(client, raw, "page-secret")
    assert resp.status_code == 200 and resp.get_json()["stored"] == 1


@pytest.mark.parametrize(
    ("escaped", "stored"),
    [("a\\u0000b", "a\ufffdb"), ("half \\ud83d emoji", "half \ufffd emoji")],
    ids=["NUL", "lone surrogate"],
)
def test_messenger_text_no_database_can_hold_is_stored_replaced(
    client, session, page, escaped, stored
):
    """PostgreSQL refuses NUL, neither database takes a lone surrogate: U+FFFD instead."""
    raw = messenger_body(page.route_key, "TEXT").replace(b"TEXT", escaped.encode())
    resp = messenger_post(client, raw, "page-secret")
    assert resp.status_code == 200 and resp.get_json()["stored"] == 1
    assert session.scalars(sa.select(Message.body)).all() == [stored]


def test_messenger_value_the_database_refuses_is_kept_as_failed_at_once(client, session, page):
    """A 400-character sender id: PostgreSQL refuses it (varchar 320), and would every time."""
    raw = messenger_body(page.route_key).replace(b'"7001"', b'"' + b"7" * 400 + b'"')
    resp = messenger_post(client, raw, "page-secret")
    assert resp.status_code == 200
    rows = intake_rows(session)
    if session.get_bind().dialect.name == "postgresql":
        [row] = rows
        assert row.state == "failed" and row.attempts == intake.MAX_ATTEMPTS
        assert "DataError" in row.error
        assert intake.drain_all().rows == 0
    else:  # SQLite does not enforce the length
        assert rows == [] and stored_messages(session) == 1


# --------------------------------------------------------------------------- GBM


def gbm_post(client, raw: bytes, key: str | None = None):
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["X-Goog-Signature"] = gbm.sign(raw, key)
    return client.post("/webhooks/gbm", data=raw, headers=headers)


def gbm_body(agent) -> bytes:
    return json.dumps(
        {
            "agent": agent,
            "conversationId": "c0ffee00-1111-4222-8333-444455556666",
            "requestId": "req-sec-1",
            "sendTime": "2026-05-01T15:01:23.045123456Z",
            "message": {"messageId": "msg-sec-1", "text": "Hello"},
        }
    ).encode()


def pubsub(inner: bytes) -> bytes:
    data = base64.b64encode(inner).decode()
    return json.dumps({"message": {"data": data, "messageId": "1"}, "subscription": "s"}).encode()


GBM_UNREADABLE = {
    **UNREADABLE,
    "Pub/Sub envelope around nested brackets": pubsub(DEEP_ARRAY),
    "Pub/Sub envelope around bytes": pubsub(b"\xff\x00garbage"),
    "no agent": b'{"conversationId": "c1", "message": {"text": "hi"}}',
    "an empty object": b"{}",
    "handshake with a list for a token": b'{"clientToken": [1], "secret": "s"}',
    **{f"agent: {name}": gbm_body(value) for name, value in BAD_ROUTES.items() if name != "NUL"},
}


@pytest.fixture
def agent(make):
    return make.inbox("gbm", agent="brands/acme/agents/support", client_token="gbm-token")


@pytest.mark.parametrize("raw", GBM_UNREADABLE.values(), ids=GBM_UNREADABLE.keys())
def test_gbm_unsigned_unreadable_body_is_refused_with_400(client, session, agent, raw):
    assert gbm_post(client, raw).status_code == 400
    assert_nothing_kept(session)


@pytest.mark.parametrize("raw", GBM_UNREADABLE.values(), ids=GBM_UNREADABLE.keys())
def test_gbm_signed_unreadable_body_is_acknowledged_and_kept_once_as_failed(
    client, session, agent, raw
):
    resp = gbm_post(client, raw, "gbm-token")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ignored", "reason": "malformed"}
    assert_kept_once_as_failed(session, [agent.id])


def test_gbm_unreadable_body_signed_with_another_key_is_refused(client, session, agent):
    assert gbm_post(client, DEEP_ARRAY, "not-our-token").status_code == 400
    assert gbm_post(client, gbm_body([1]), "not-our-token").status_code == 400
    assert_nothing_kept(session)


def test_gbm_unknown_agent_is_still_acknowledged(client, session, agent):
    resp = gbm_post(client, gbm_body("brands/other/agents/unknown"))
    assert resp.status_code == 200 and resp.get_json()["status"] == "ignored"
    assert_nothing_kept(session)


def test_gbm_agent_with_a_nul_names_no_inbox(client, session, agent):
    """Read as U+FFFD (PostgreSQL refuses NUL), the agent is a string no inbox has."""
    resp = gbm_post(client, gbm_body(agent.route_key + "\u0000"), "gbm-token")
    assert resp.status_code == 200 and resp.get_json()["reason"] == "unknown agent"
    assert_nothing_kept(session)


def test_gbm_handshake_with_a_nul_token_is_refused(client, session, agent):
    raw = json.dumps({"clientToken": "gbm-token\u0000", "secret": "s"}).encode()
    assert gbm_post(client, raw).status_code == 403


def test_gbm_readable_body_still_threads(client, session, agent):
    resp = gbm_post(client, gbm_body(agent.route_key), "gbm-token")
    assert resp.status_code == 200 and resp.get_json()["stored"] == 1


# --------------------------------------------------------------------------- SMS (Twilio)


@pytest.fixture
def number(make):
    return make.inbox("sms", number="+14155550999", auth_token="twilio-token")


def twilio_post(client, url: str, form: dict, token: str | None = None, query: str = ""):
    headers = {}
    if token is not None:
        headers["X-Twilio-Signature"] = RequestValidator(token).compute_signature(url + query, form)
    return client.post(url.split("localhost", 1)[1] + query, data=form, headers=headers)


def sms_form(number, **extra) -> dict:
    return {
        "MessageSid": "SM" + "a" * 32,
        "AccountSid": "AC" + "1" * 32,
        "From": "+14155550123",
        "To": number,
        "Body": "Hello",
        "NumMedia": "0",
        **extra,
    }


@pytest.mark.parametrize(
    ("form", "status"),
    [
        (sms_form("+1415555\u00000999"), 404),
        (sms_form("+14155550999\u0000"), 403),  # phonenumbers reads our number: forged
        (sms_form("x" * 300), 404),
        (sms_form("", MessagingServiceSid="MG\u0000"), 404),
        (sms_form("", MessagingServiceSid="MG" + "x" * 300), 404),
        ({}, 404),
    ],
    ids=["NUL in To", "NUL after To", "long To", "NUL service", "long service", "empty"],
)
def test_sms_routing_values_that_are_not_numbers_route_nowhere(
    client, session, number, form, status
):
    assert twilio_post(client, SMS_URL, form).status_code == status
    assert_nothing_kept(session)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"To=%ff%fe&MessageSid=%00", "application/x-www-form-urlencoded"),
        (b"--x\r\nContent-Disposition: form-data\r\n\r\nzz", "multipart/form-data; boundary=x"),
        (DEEP_ARRAY, "application/json"),
        (b"\xff" * 1000, "application/x-www-form-urlencoded"),
    ],
    ids=["non-UTF-8 form", "broken multipart", "JSON", "binary"],
)
def test_sms_unreadable_request_is_refused(client, session, number, data, content_type):
    resp = client.post("/webhooks/sms/twilio", data=data, content_type=content_type)
    assert 400 <= resp.status_code < 500
    assert_nothing_kept(session)


def test_sms_signed_request_without_a_message_id_is_acknowledged_and_kept_once_as_failed(
    client, session, number
):
    form = sms_form(number.route_key)
    del form["MessageSid"]
    resp = twilio_post(client, SMS_URL, form, "twilio-token")
    assert resp.status_code == 200 and b"<Response>" in resp.data
    assert_kept_once_as_failed(session, [number.id])


@pytest.mark.parametrize(
    ("form", "query"),
    [
        ({"MessageSid": "SMx", "MessageStatus": "delivered"}, "?ref=%C2%B2"),
        ({"MessageSid": "SMx", "MessageStatus": "delivered"}, "?ref=" + "9" * 40),
        ({"MessageSid": "SMx", "MessageStatus": "delivered"}, "?ref=%EF%BC%91"),
        ({"MessageSid": "SM\u0000", "MessageStatus": "delivered"}, ""),
        ({"MessageSid": "SMx", "From": "+1415\u0000", "MessageStatus": "sent"}, ""),
        ({"MessageSid": "SMx", "MessagingServiceSid": "MG\u0000"}, ""),
        ({"SmsSid": "S" * 5000}, ""),
    ],
    ids=[
        "superscript ref",
        "40-digit ref",
        "full-width ref",
        "NUL sid",
        "NUL From",
        "NUL svc",
        "long",
    ],
)
def test_status_callback_routing_values_reach_sql_only_as_strings(
    client, session, number, form, query
):
    assert twilio_post(client, STATUS_URL, form, query=query).status_code == 404


def test_status_callback_ref_of_an_unknown_message_is_ignored_when_signed(client, session, number):
    form = {"MessageSid": "SMx", "MessageStatus": "delivered", "From": number.route_key}
    resp = twilio_post(client, STATUS_URL, form, "twilio-token", query="?ref=" + "9" * 40)
    assert resp.status_code == 204


# --------------------------------------------------------------------------- email


@pytest.fixture
def mailbox(make):
    return make.inbox("email", address="support@shop.example")


@pytest.mark.parametrize(
    "token",
    ["a%00b", "a" * 3000, "%C3%A9t%C3%A9", "%FF", "..%2F..%2Fetc"],
    ids=["NUL", "3000 characters", "non-ASCII", "invalid UTF-8", "dots"],
)
def test_email_token_that_cannot_be_ours_is_404(client, session, mailbox, token):
    resp = client.post(f"/webhooks/email/inbound/{token}", data=b"Subject: hi\r\n\r\nhi")
    assert resp.status_code == 404
    assert stored_messages(session) == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00" * 64,
        b"\xff\xfe" * 500,
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--b\r\n" * 2_000,
        b"Content-Type: text/plain; charset=\x00\r\nSubject: \xe9\r\n\r\nbody\x00",
        b"Content-Type: text/plain; charset=punycode\r\n\r\n\xff\xfe-abc",
        b"From: \xe9\x00 <a\x00@b.example>\r\nMessage-ID: <\x00@x>\r\n\r\n\x00",
        DEEP_ARRAY,
    ],
    ids=["NULs", "binary", "endless parts", "NUL charset", "punycode", "NUL headers", "brackets"],
)
def test_email_unreadable_mail_is_kept_once_never_5xx(client, session, mailbox, raw):
    url = f"/webhooks/email/inbound/{mailbox.inbound_token}"
    first = client.post(url, data=raw, content_type="message/rfc822")
    assert first.status_code == 200
    again = client.post(url, data=raw, content_type="message/rfc822")  # the sender retries
    assert again.status_code == 200
    assert stored_messages(session) == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"From: a\x00b@x.example\r\nTo: <c\x00d@y.example>\r\nSubject: hi\r\n\r\nbody",
        b"From: =?utf-8?q?Jo=00e?= <jo@x.example>\r\n\r\nbody",
        b"From: j@x.example\r\nContent-Type: text/pl\x00ain\r\n\r\nbody",
        b"From: " + b"a" * 400 + b"@x.example\r\n\r\nbody",
        b"From: j@x.example\r\nMessage-ID: <" + b"m" * 300 + b"@x.example>\r\n\r\nbody",
    ],
    ids=["NUL in addresses", "NUL in a name", "NUL in the type", "400-char sender", "300-char id"],
)
def test_email_whose_values_postgresql_refuses_is_kept_once_never_5xx(
    client, session, mailbox, raw
):
    """Such mail answered 500 on PostgreSQL, and the sender retried it forever."""
    url = f"/webhooks/email/inbound/{mailbox.inbound_token}"
    assert client.post(url, data=raw, content_type="message/rfc822").status_code == 200
    assert client.post(url, data=raw, content_type="message/rfc822").status_code == 200
    assert stored_messages(session) == 1
