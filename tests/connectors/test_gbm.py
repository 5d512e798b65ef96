"""Google Business Messages connector: signatures, handshake, parsing, sending.

Payload fixtures below follow Google's documented ``UserMessage`` shapes; the
recorded corpus under ``shared/corpus/gbm`` is used when present. Sending runs
against a fake Business Messages API and a fake OAuth token endpoint
(``responses``) with a throwaway service-account key.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import google.auth.jwt
import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import connectors
from connectors import gbm
from connectors.base import (
    ConnectorOptions,
    ConversationContext,
    DeliveryState,
    ErrorKind,
    InboundMessage,
    OutboundAttachment,
    OutboundMessage,
    StatusUpdate,
    Typing,
)
from connectors.gbm import GbmConnector, check_signature, handshake, parse, parse_timestamp

CORPUS = Path(__file__).parents[2].parent / "shared/corpus" / "gbm"
AGENT = "brands/b-123/agents/a-456"
CONV = "7a1c2b3d-conv"
CLIENT_TOKEN = "SJENCPGJESMGUFPY"
PARTNER_KEY = "partner-key-0001"
API = "http://fake-gbm.test"
TOKEN_URI = "http://fake-token.test/token"
SCOPE = "https://www.googleapis.com/auth/businessmessages"


# --------------------------------------------------------------------------- fixtures


def user_message(**payload: object) -> dict:
    """A ``UserMessage`` envelope around ``payload`` (Google's documented shape)."""
    body = {
        "agent": AGENT,
        "conversationId": CONV,
        "customAgentId": "acme-support",
        "requestId": "req-0001",
        "sendTime": "2024-05-01T15:01:23.045123456Z",
        "context": {
            "entryPoint": "PLACESHEET",
            "placeId": "ChIJplace",
            "userInfo": {"displayName": "Jane Doe", "userDeviceLocale": "en-US"},
            "resolvedLocale": "en",
            "customContext": "",
        },
    }
    body.update(payload)
    return body


TEXT = user_message(
    message={
        "messageId": "msg-001",
        "name": f"conversations/{CONV}/messages/msg-001",
        "text": "Hello, is my order ready?",
        "createTime": "2024-05-01T15:01:22.999999999Z",
    }
)

SIGNED_IMAGE_URL = (
    "https://storage.googleapis.com/business-messages-us/123/abcDEF?"
    "x-goog-algorithm=GOOG4-RSA-SHA256&x-goog-date=20240501T150123Z"
    "&x-goog-expires=604800&x-goog-signedheaders=host&x-goog-signature=deadbeef"
)

IMAGE = user_message(
    requestId="req-0002",
    message={
        "messageId": "msg-002",
        "name": f"conversations/{CONV}/messages/msg-002",
        "text": SIGNED_IMAGE_URL,
        "createTime": "2024-05-01T15:02:00Z",
    },
)

RECEIPTS = {
    "agent": AGENT,
    "conversationId": CONV,
    "customAgentId": "acme-support",
    "sendTime": "2024-05-01T15:05:00.5Z",
    "receipts": {
        "receipts": [
            {"message": f"conversations/{CONV}/messages/out-1", "receiptType": "DELIVERED"},
            {"message": f"conversations/{CONV}/messages/out-2", "receiptType": "READ"},
            {
                "message": f"conversations/{CONV}/messages/out-3",
                "receiptType": "RECEIPT_TYPE_UNSPECIFIED",
            },
            {"message": "not-a-message-name", "receiptType": "READ"},
        ],
        "createTime": "2024-05-01T15:05:00Z",
    },
}

SUGGESTION = user_message(
    requestId="req-0003",
    suggestionResponse={
        "message": f"conversations/{CONV}/messages/out-9",
        "postbackData": "order_status",
        "createTime": "2024-05-01T15:03:00.123Z",
        "text": "Where is my order?",
        "type": "REPLY",
    },
)

SURVEY = user_message(
    requestId="req-0004",
    surveyResponse={
        "survey": f"conversations/{CONV}/surveys/survey-1",
        "rating": "VERY_SATISFIED",
        "createTime": "2024-05-02T09:00:00Z",
        "surveyQuestionId": "GOOGLE_DEFINED_ASSOCIATE_SATISFACTION",
        "questionResponseText": "Very satisfied",
        "questionResponsePostbackData": "very-satisfied",
        "questionType": "GOOGLE_STANDARD_QUESTION",
        "questionIndex": 1,
        "totalQuestionCount": 2,
        "surveyTriggerSource": "GOOGLE",
    },
)

AUTH_OK = user_message(
    requestId="req-0005",
    authenticationResponse={
        "code": "SECRET-AUTH-CODE",
        "codeVerifier": "SECRET-VERIFIER",
        "redirectUri": "https://business.google.com/callback",
    },
)

AUTH_ERROR = user_message(
    requestId="req-0006",
    authenticationResponse={
        "errorDetails": {"error": "ACCESS_DENIED", "errorDescription": "User cancelled"},
        "redirectUri": "https://business.google.com/callback",
    },
)


def with_user_status(request_id: str, **status: object) -> dict:
    """A ``userStatus`` payload."""
    return user_message(
        requestId=request_id, userStatus={**status, "createTime": "2024-05-01T15:04:00Z"}
    )


def corpus_files() -> list[Path]:
    """The recorded GBM payloads, or [] when the shared corpus is absent."""
    return sorted(CORPUS.glob("bm-test-framework__*.json")) if CORPUS.is_dir() else []


needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared GBM corpus not present")


# --------------------------------------------------------------------------- registry/config


def test_registered_with_fields() -> None:
    assert connectors.get("gbm") is GbmConnector
    assert GbmConnector.display_name == "Google Business Messages"
    assert [f.name for f in GbmConnector.fields] == [
        "agent",
        "client_token",
        "service_account",
        "partner_key",
    ]
    assert GbmConnector.secret_fields() == {"client_token", "service_account", "partner_key"}
    required = {f.name for f in GbmConnector.fields if f.required}
    assert required == {"agent", "client_token", "service_account"}


def test_validate_config(service_account_info: dict) -> None:
    good = {"agent": AGENT, "client_token": CLIENT_TOKEN, "service_account": service_account_info}
    assert GbmConnector.validate_config(good) == []
    as_string = {**good, "service_account": json.dumps(service_account_info)}
    assert GbmConnector.validate_config(as_string) == []
    assert GbmConnector.identifiers(good) == {"agent": AGENT}
    problems = GbmConnector.validate_config(
        {"agent": "agents/x", "client_token": "", "service_account": "{not json"}
    )
    assert "client_token is required" in problems
    assert any("brands/BRAND_ID/agents/AGENT_ID" in p for p in problems)
    assert "service_account is not valid JSON" in problems
    lacking = GbmConnector.validate_config({**good, "service_account": {"client_email": "x"}})
    assert any("private_key" in p and "token_uri" in p for p in lacking)


# --------------------------------------------------------------------------- signatures


def _sig(body: bytes, key: str) -> str:
    import hmac

    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha512).digest()).decode()


def test_signature_good_with_client_token() -> None:
    body = json.dumps(TEXT).encode()
    assert check_signature(body, _sig(body, CLIENT_TOKEN), [CLIENT_TOKEN])
    assert gbm.sign(body, CLIENT_TOKEN) == _sig(body, CLIENT_TOKEN)


def test_signature_other_key_in_list_matches() -> None:
    body = json.dumps(TEXT).encode()
    assert check_signature(body, _sig(body, PARTNER_KEY), [CLIENT_TOKEN, PARTNER_KEY])
    assert not check_signature(body, _sig(body, PARTNER_KEY), [CLIENT_TOKEN])


@pytest.mark.parametrize("header", [None, "", "   ", "not base64!!", "c2hvcnQ=", "=" * 88])
def test_signature_missing_or_malformed_header_fails(header: str | None) -> None:
    assert not check_signature(b"{}", header, [CLIENT_TOKEN])


def test_signature_bad_or_tampered_fails() -> None:
    body = json.dumps(TEXT).encode()
    good = _sig(body, CLIENT_TOKEN)
    assert not check_signature(body + b" ", good, [CLIENT_TOKEN])
    assert not check_signature(body, _sig(body, "wrong"), [CLIENT_TOKEN])
    # hex of the same digest is not the documented encoding
    assert not check_signature(body, base64.b64decode(good).hex(), [CLIENT_TOKEN])


def test_signature_no_keys_fails_closed() -> None:
    body = b"{}"
    assert not check_signature(body, _sig(body, ""), [])
    assert not check_signature(body, _sig(body, ""), [""])


def test_signature_header_whitespace_tolerated() -> None:
    body = b'{"a": 1}'
    assert check_signature(body, f"  {_sig(body, CLIENT_TOKEN)}\n", [CLIENT_TOKEN])


def test_connector_verify_signature_uses_token_and_partner_key() -> None:
    conn = GbmConnector({"client_token": CLIENT_TOKEN, "partner_key": PARTNER_KEY})
    body = b'{"x": true}'
    assert conn.verify_signature(body, _sig(body, CLIENT_TOKEN))
    assert conn.verify_signature(body, _sig(body, PARTNER_KEY))
    assert not conn.verify_signature(body, _sig(body, "other"))
    assert GbmConnector({"client_token": ""}).verify_signature(body, _sig(body, "")) is False


@needs_corpus
def test_corpus_signature_vectors() -> None:
    vectors = json.loads((CORPUS / "signature_vectors.json").read_text())
    key = vectors["partner_key"]
    assert vectors["vectors"]
    for vector in vectors["vectors"]:
        raw = (CORPUS / vector["body_file"]).read_bytes()
        assert hashlib.sha256(raw).hexdigest() == vector["body_sha256"]
        assert check_signature(raw, vector["x_goog_signature"], [key]), vector["body_file"]
        assert check_signature(raw, vector["x_goog_signature"], [CLIENT_TOKEN, key])
        assert not check_signature(raw, vector["x_goog_signature"], [CLIENT_TOKEN])
        assert not check_signature(raw + b"\n", vector["x_goog_signature"], [key])


# --------------------------------------------------------------------------- handshake


def test_handshake_detected() -> None:
    body = {"clientToken": CLIENT_TOKEN, "secret": "1234567890"}
    assert handshake(body) == (CLIENT_TOKEN, "1234567890")
    assert GbmConnector.handshake(body) == (CLIENT_TOKEN, "1234567890")
    assert parse(body) == []


@pytest.mark.parametrize(
    "body",
    [
        {"secret": "1234567890"},
        {"clientToken": CLIENT_TOKEN},
        {"clientToken": 12345, "secret": "1234567890"},
        {"clientToken": CLIENT_TOKEN, "secret": 1234567890},
        {"clientToken": "", "secret": "x"},
        TEXT,
        [],
        None,
        "clientToken",
    ],
)
def test_handshake_wrong_shape(body: object) -> None:
    assert handshake(body) is None


def test_verify_handshake_checks_this_inbox_token() -> None:
    conn = GbmConnector({"client_token": CLIENT_TOKEN})
    assert conn.verify_handshake({"clientToken": CLIENT_TOKEN, "secret": "s3"}) == "s3"
    assert conn.verify_handshake({"clientToken": "OTHER", "secret": "s3"}) is None
    assert GbmConnector({}).verify_handshake({"clientToken": CLIENT_TOKEN, "secret": "s"}) is None


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T15:01:23.045123456Z", datetime(2024, 5, 1, 15, 1, 23, 45123, UTC)),
        ("2024-05-01T15:01:23.999999999Z", datetime(2024, 5, 1, 15, 1, 23, 999999, UTC)),
        ("2024-05-01T15:01:23Z", datetime(2024, 5, 1, 15, 1, 23, tzinfo=UTC)),
        ("2024-05-01T15:01:23.5z", datetime(2024, 5, 1, 15, 1, 23, 500000, UTC)),
        ("2024-05-01T17:01:23.000000001+02:00", datetime(2024, 5, 1, 15, 1, 23, tzinfo=UTC)),
        ("2024-05-01t10:01:23-05:00", datetime(2024, 5, 1, 15, 1, 23, tzinfo=UTC)),
    ],
)
def test_parse_timestamp_nanoseconds_and_offsets(value: str, expected: datetime) -> None:
    parsed = parse_timestamp(value)
    assert parsed == expected
    assert parsed is not None and parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    [
        "SEND_TIME",
        "",
        None,
        1714575683,
        "2024-13-01T00:00:00Z",
        "2024-05-01 15:01:23",
        "2024-05-01",
    ],
)
def test_parse_timestamp_rejects_garbage(value: object) -> None:
    assert parse_timestamp(value) is None


# --------------------------------------------------------------------------- parsing


def test_text_message() -> None:
    [event] = parse(TEXT)
    assert isinstance(event, InboundMessage)
    assert event.inbox_key == AGENT
    assert event.contact_id == CONV
    assert event.external_id == "msg-001"
    assert event.text == "Hello, is my order ready?"
    assert event.kind == "message"
    assert event.contact_name == "Jane Doe"
    assert event.attachments == ()
    # createTime wins over sendTime; nanoseconds truncated to microseconds
    assert event.sent_at == datetime(2024, 5, 1, 15, 1, 22, 999999, UTC)
    assert event.context == {
        "entry_point": "PLACESHEET",
        "place_id": "ChIJplace",
        "locale": "en",
        "device_locale": "en-US",
        "request_id": "req-0001",
        "custom_agent_id": "acme-support",
    }
    assert event.raw == TEXT


def test_message_falls_back_to_send_time_and_request_id() -> None:
    body = user_message(message={"text": "hi"})
    [event] = parse(body)
    assert event.external_id == "req-0001"
    assert event.sent_at == datetime(2024, 5, 1, 15, 1, 23, 45123, UTC)


def test_message_without_any_time_uses_receive_time() -> None:
    body = user_message(sendTime="SEND_TIME", message={"messageId": "m", "text": "hi"})
    before = datetime.now(UTC)
    [event] = parse(body)
    assert before <= event.sent_at <= datetime.now(UTC)


def test_message_context_near_place_widget_and_device_locale() -> None:
    body = user_message(
        context={
            "entryPoint": "WEB_WIDGET",
            "nearPlaceId": "ChIJnear",
            "userInfo": {"userDeviceLocale": "de-DE"},
            "customContext": "order=42",
            "widget": {"url": "https://example.com/help", "widgetContext": "cart"},
        },
        message={"messageId": "m-ctx", "text": "Hallo"},
    )
    [event] = parse(body)
    assert event.contact_name is None
    assert event.context["near_place_id"] == "ChIJnear"
    assert "place_id" not in event.context
    assert event.context["locale"] == "de-DE"
    assert event.context["custom_context"] == "order=42"
    assert event.context["widget"] == {"url": "https://example.com/help", "context": "cart"}
    assert event.context["entry_point"] == "WEB_WIDGET"


def test_image_sent_as_signed_url_text() -> None:
    [event] = parse(IMAGE)
    assert event.external_id == "msg-002"
    assert event.text == ""
    [att] = event.attachments
    assert att.kind == "image"
    assert att.url == SIGNED_IMAGE_URL


def test_image_object_shape() -> None:
    body = user_message(
        message={
            "messageId": "msg-img",
            "image": {
                "contentInfo": {
                    "fileUrl": "https://example.test/i.png",
                    "thumbnailUrl": "https://example.test/t.png",
                }
            },
            "createTime": "2024-05-01T15:02:00Z",
        }
    )
    [event] = parse(body)
    [att] = event.attachments
    assert (att.kind, att.url) == ("image", "https://example.test/i.png")
    assert att.extra == {"thumbnail_url": "https://example.test/t.png"}


def test_ordinary_links_stay_text() -> None:
    for text in (
        "https://storage.googleapis.com/my-bucket/file.png",
        "see https://storage.googleapis.com/business-messages-us/x",
        "https://example.com/business-messages/x",
    ):
        [event] = parse(user_message(message={"messageId": "m", "text": text}))
        assert event.text == text
        assert event.attachments == ()


def test_dialogflow_auto_response_flagged() -> None:
    body = {**TEXT, "dialogflowResponse": {"autoResponded": True, "faqResponse": {}}}
    [event] = parse(body)
    assert event.context["dialogflow_auto_responded"] is True


def test_receipts_batch() -> None:
    events = parse(RECEIPTS)
    assert events == [
        StatusUpdate(AGENT, DeliveryState.DELIVERED, external_id="out-1", contact_id=CONV),
        StatusUpdate(AGENT, DeliveryState.READ, external_id="out-2", contact_id=CONV),
    ]


@pytest.mark.parametrize("typing", [True, False])
def test_user_status_typing(typing: bool) -> None:
    assert parse(with_user_status("req-t", isTyping=typing)) == [Typing(AGENT, CONV, typing)]


def test_user_status_requested_live_agent() -> None:
    [event] = parse(with_user_status("req-live", requestedLiveAgent=True))
    assert isinstance(event, ConversationContext)
    assert event.data == {"requested_live_agent": True}
    assert event.external_id == "req-live"
    assert event.contact_name == "Jane Doe"
    assert event.at == datetime(2024, 5, 1, 15, 4, tzinfo=UTC)


def test_user_status_requested_live_agent_false_is_nothing() -> None:
    assert parse(with_user_status("req-x", requestedLiveAgent=False)) == []


def test_suggestion_response() -> None:
    [event] = parse(SUGGESTION)
    assert isinstance(event, InboundMessage)
    assert event.kind == "suggestion"
    assert event.text == "Where is my order?"
    # requestId is the dedupe key; the named message is ours (what was tapped on)
    assert event.external_id == "req-0003"
    assert event.reply_to_external_id == "out-9"
    assert event.context["postback_data"] == "order_status"
    assert event.context["suggestion_type"] == "REPLY"
    assert event.sent_at == datetime(2024, 5, 1, 15, 3, 0, 123000, UTC)


def test_suggestion_without_request_id_gets_stable_id() -> None:
    body = copy.deepcopy(SUGGESTION)
    del body["requestId"]
    [first], [second] = parse(body), parse(copy.deepcopy(body))
    assert first.external_id == second.external_id
    assert first.external_id.startswith("gbm-")
    other = copy.deepcopy(body)
    other["suggestionResponse"]["postbackData"] = "other"
    assert parse(other)[0].external_id != first.external_id


def test_survey_response() -> None:
    [event] = parse(SURVEY)
    assert isinstance(event, ConversationContext)
    assert event.external_id == "req-0004"
    assert event.data["rating"] == "VERY_SATISFIED"
    assert event.data["survey"] == {
        "name": f"conversations/{CONV}/surveys/survey-1",
        "id": "survey-1",
        "question_id": "GOOGLE_DEFINED_ASSOCIATE_SATISFACTION",
        "question_type": "GOOGLE_STANDARD_QUESTION",
        "question_index": 1,
        "total_questions": 2,
        "response": "Very satisfied",
        "postback_data": "very-satisfied",
        "rating": "VERY_SATISFIED",
        "trigger_source": "GOOGLE",
    }
    assert event.at == datetime(2024, 5, 2, 9, tzinfo=UTC)


def test_authentication_response_success_drops_secrets() -> None:
    [event] = parse(AUTH_OK)
    assert isinstance(event, ConversationContext)
    assert event.external_id == "req-0005"
    assert event.data == {
        "authentication": {
            "outcome": "success",
            "redirect_uri": "https://business.google.com/callback",
        }
    }
    assert "SECRET" not in repr(event)


def test_authentication_response_error() -> None:
    [event] = parse(AUTH_ERROR)
    assert event.data["authentication"] == {
        "outcome": "error",
        "error": "ACCESS_DENIED",
        "error_description": "User cancelled",
        "redirect_uri": "https://business.google.com/callback",
    }


@pytest.mark.parametrize(
    "body",
    [TEXT, IMAGE, RECEIPTS, SUGGESTION, SURVEY, AUTH_OK, with_user_status("r", isTyping=True)],
)
def test_replayed_delivery_gives_same_events(body: dict) -> None:
    first, again = parse(copy.deepcopy(body)), parse(copy.deepcopy(body))
    assert first
    assert [getattr(e, "external_id", None) for e in first] == [
        getattr(e, "external_id", None) for e in again
    ]
    assert first == again


def _envelope(body: dict, *, urlsafe: bool = False) -> dict:
    raw = json.dumps(body).encode()
    data = base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)
    return {
        "message": {"data": data.decode(), "messageId": "pubsub-1", "publishTime": "x"},
        "subscription": "projects/p/subscriptions/s",
    }


@pytest.mark.parametrize("urlsafe", [False, True])
def test_pubsub_envelope(urlsafe: bool) -> None:
    assert parse(_envelope(TEXT, urlsafe=urlsafe)) == parse(TEXT)
    assert parse(_envelope(RECEIPTS, urlsafe=urlsafe)) == parse(RECEIPTS)


def test_pubsub_envelope_undecodable() -> None:
    assert parse({"message": {"data": "%%%not base64%%%"}}) == []
    assert parse({"message": {"data": base64.b64encode(b"not json").decode()}}) == []
    assert parse({"message": {"data": base64.b64encode(b"[1, 2]").decode()}}) == []


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "text",
        42,
        {},
        {"agent": AGENT},
        {"conversationId": CONV, "message": {"text": "no agent"}},
        {"agent": 7, "conversationId": CONV, "message": {"text": "x"}},
        user_message(),
        user_message(message="just a string"),
        user_message(message={}, requestId=None),
        user_message(message={"messageId": "m", "text": 42}),
        user_message(receipts={"receipts": "nope"}),
        user_message(receipts={"receipts": [None, 3, {"message": 5, "receiptType": "READ"}]}),
        user_message(userStatus={"isTyping": "BOOLEAN"}),
        user_message(suggestionResponse={"text": None, "message": ["x"]}),
        user_message(surveyResponse={"survey": 5, "questionIndex": "x"}),
        user_message(authenticationResponse={"errorDetails": "oops"}),
        user_message(context="not a dict", message={"messageId": "m", "text": "x"}),
        user_message(context={"userInfo": "x", "widget": 3}, message={"messageId": "m"}),
        user_message(somethingNew={"a": 1}),
    ],
)
def test_malformed_or_unknown_never_raises(body: object) -> None:
    events = parse(body)
    assert isinstance(events, list)


def test_malformed_values_are_dropped_not_crashing() -> None:
    [event] = parse(user_message(message={"messageId": "m", "text": 42}))
    assert event.text == ""
    [event] = parse(
        user_message(context={"userInfo": "x", "widget": 3}, message={"messageId": "m"})
    )
    assert event.contact_name is None
    assert "widget" not in event.context


def test_several_payload_fields_uses_first() -> None:
    body = {**TEXT, "userStatus": {"isTyping": True}}
    [event] = parse(body)
    assert isinstance(event, InboundMessage)


# --------------------------------------------------------------------------- corpus


@pytest.mark.skipif(not corpus_files(), reason="shared GBM corpus not present")
@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_payload_parses_without_exception(path: Path) -> None:
    events = parse(json.loads(path.read_text()))
    assert isinstance(events, list)
    for event in events:
        assert event.inbox_key == "brands/BRAND_ID/agents/AGENT_ID"
        assert getattr(event, "contact_id", None) == "CONVERSATION_ID"


def _corpus(name: str, **substitutions: str) -> dict:
    """A corpus payload with Google's placeholders replaced by real values."""
    text = (CORPUS / f"bm-test-framework__{name}.json").read_text()
    for placeholder, value in substitutions.items():
        text = text.replace(placeholder, value)
    return json.loads(text)


TIMES = {
    "MESSAGE_CREATE_TIME": "2024-05-01T15:01:23.045123456Z",
    "RESPONSE_CREATE_TIME": "2024-05-01T15:01:24Z",
    "SEND_TIME": "2024-05-01T15:01:25Z",
}


@needs_corpus
def test_corpus_text_message_values() -> None:
    [event] = parse(_corpus("text-message", **TIMES))
    assert (event.external_id, event.text, event.contact_name) == (
        "MESSAGE_ID",
        "MESSAGE_TEXT",
        "USER_NAME",
    )
    assert event.sent_at == datetime(2024, 5, 1, 15, 1, 23, 45123, UTC)
    assert event.context["place_id"] == "LOCATION_PLACE_ID"
    assert event.context["request_id"] == "REQUEST_ID"
    # the unsubstituted file still yields the message (receive time stands in)
    [raw_event] = parse(_corpus("text-message"))
    assert raw_event.external_id == "MESSAGE_ID"


@needs_corpus
def test_corpus_image_message_is_an_image_attachment() -> None:
    [event] = parse(_corpus("image-message", **TIMES))
    assert event.text == ""
    [att] = event.attachments
    assert att.kind == "image"
    assert att.url is not None
    assert att.url.startswith("https://storage.googleapis.com/business-messages-us/")
    assert "&x-goog-signature=" in att.url  # \u0026 escapes decoded by json


@needs_corpus
def test_corpus_receipts() -> None:
    [read] = parse(_corpus("read-receipt"))
    [delivered] = parse(_corpus("user-receipt"))
    assert (read.status, read.external_id) == (DeliveryState.READ, "MESSAGE_ID")
    assert (delivered.status, delivered.external_id) == (DeliveryState.DELIVERED, "MESSAGE_ID")


@needs_corpus
def test_corpus_suggestion_uses_suggestion_type_field() -> None:
    [event] = parse(_corpus("suggestion-message", **TIMES))
    assert event.kind == "suggestion"
    assert event.external_id == "REQUEST_ID"
    assert event.reply_to_external_id == "MESSAGE_ID"
    assert event.text == "SUGGESTION_TEXT"
    assert event.context["postback_data"] == "POSTBACK_DATA"
    assert event.context["suggestion_type"] == "SUGGESTION_TYPE"
    assert event.sent_at == datetime(2024, 5, 1, 15, 1, 24, tzinfo=UTC)


@needs_corpus
def test_corpus_user_status_placeholder_booleans_ignored_then_real() -> None:
    assert parse(_corpus("event-receive")) == []
    body = _corpus("event-receive")
    body["userStatus"].update({"isTyping": True, "requestedLiveAgent": True})
    typing, live = parse(body)
    assert typing == Typing("brands/BRAND_ID/agents/AGENT_ID", "CONVERSATION_ID", True)
    assert live.data == {"requested_live_agent": True}


@needs_corpus
def test_corpus_authentication_keeps_no_code() -> None:
    [event] = parse(_corpus("authentication-request"))
    assert event.data["authentication"]["outcome"] == "error"
    assert event.data["authentication"]["redirect_uri"] == "REDIRECT_URI"
    assert "AUTHORIZATION_CODE" not in repr(event)


@needs_corpus
def test_corpus_dialogflow_payload() -> None:
    [event] = parse(_corpus("text-with-dialogflow-response", **TIMES))
    assert event.text == "MESSAGE_TEXT"
    assert "dialogflow_auto_responded" not in event.context  # "BOOLEAN" is not True


# --------------------------------------------------------------------------- sending


@pytest.fixture(scope="session")
def rsa_private_pem() -> str:
    """A throwaway RSA key for the fake service account."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="session")
def rsa_public_pem(rsa_private_pem: str) -> bytes:
    key = serialization.load_pem_private_key(rsa_private_pem.encode(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def service_account_info(rsa_private_pem: str) -> dict:
    return {
        "type": "service_account",
        "project_id": "switchboard-test",
        "private_key_id": "key-" + uuid.uuid4().hex,
        "private_key": rsa_private_pem,
        "client_email": "gbm-bot@switchboard-test.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": TOKEN_URI,
    }


@pytest.fixture(autouse=True)
def _fresh_token_cache():
    gbm.clear_token_cache()
    yield
    gbm.clear_token_cache()


@pytest.fixture
def conn(service_account_info: dict) -> GbmConnector:
    config = {
        "agent": AGENT,
        "client_token": CLIENT_TOKEN,
        "service_account": json.dumps(service_account_info),
    }
    return GbmConnector(config, ConnectorOptions(base_urls={"gbm": API + "/"}, timeout=(3, 7)))


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(
            responses.POST,
            TOKEN_URI,
            json={"access_token": "tok-1", "expires_in": 3600, "token_type": "Bearer"},
        )
        yield mock


MESSAGES_URL = f"{API}/v1/conversations/{CONV}/messages"


def _calls(mock: responses.RequestsMock, url_prefix: str) -> list:
    return [c for c in mock.calls if c.request.url.startswith(url_prefix)]


def _body(call) -> dict:
    return json.loads(call.request.body)


def _outbound(**kw: object) -> OutboundMessage:
    fields = {
        "contact_id": CONV,
        "text": "Hi Jane, your order is ready.",
        "reference": "msg-ref-1",
        "agent_name": "Alex (Support)",
        "agent_avatar_url": "https://example.test/alex.png",
    }
    fields.update(kw)
    return OutboundMessage(**fields)


def _ok(mock: responses.RequestsMock, url: str = MESSAGES_URL, method: str = "POST") -> None:
    mock.add(method, url, json={"name": "conversations/x/messages/y"})


def _error(mock, status: int, google_status: str, message: str, **kw) -> None:
    body = {"error": {"code": status, "message": message, "status": google_status}}
    mock.add(responses.POST, MESSAGES_URL, json=body, status=status, **kw)


def test_send_text_exact_body_auth_header_and_token_cached(
    conn: GbmConnector,
    rsps: responses.RequestsMock,
    service_account_info: dict,
    rsa_public_pem: bytes,
) -> None:
    _ok(rsps)
    first = conn.send(_outbound())
    second = conn.send(_outbound(reference="msg-ref-2", text="Second"))
    assert first.ok and second.ok

    token_calls = _calls(rsps, TOKEN_URI)
    assert len(token_calls) == 1  # cached across sends
    form = parse_qs(token_calls[0].request.body.decode())
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    # google-auth signs for Google's token audience, but posts to the JSON's token_uri
    claims = google.auth.jwt.decode(
        form["assertion"][0], certs=rsa_public_pem, audience="https://oauth2.googleapis.com/token"
    )
    assert claims["iss"] == service_account_info["client_email"]
    assert claims["scope"] == SCOPE
    assert token_calls[0].request.req_kwargs["timeout"] == (3, 7)

    api_calls = _calls(rsps, MESSAGES_URL)
    assert len(api_calls) == 2
    expected_id = str(uuid.uuid5(gbm.MESSAGE_ID_NAMESPACE, "msg-ref-1"))
    assert _body(api_calls[0]) == {
        "messageId": expected_id,
        "representative": {
            "representativeType": "HUMAN",
            "displayName": "Alex (Support)",
            "avatarImage": "https://example.test/alex.png",
        },
        "text": "Hi Jane, your order is ready.",
        "fallback": "Hi Jane, your order is ready.",
    }
    for call in api_calls:
        assert call.request.headers["Authorization"] == "Bearer tok-1"
        assert call.request.headers["Content-Type"] == "application/json"
        assert call.request.req_kwargs["timeout"] == (3, 7)
    assert first.external_id == expected_id
    assert first.external_ids == (expected_id,)
    assert uuid.UUID(first.external_id).version == 5
    assert second.external_id != first.external_id


def test_retry_of_same_reference_reuses_message_id(
    conn: GbmConnector, rsps: responses.RequestsMock
) -> None:
    _error(rsps, 503, "UNAVAILABLE", "Backend unavailable")
    _ok(rsps)
    failed = conn.send(_outbound())
    retried = conn.send(_outbound())
    assert failed.error is not None and failed.error.kind is ErrorKind.TRANSIENT
    assert retried.ok
    ids = [_body(c)["messageId"] for c in _calls(rsps, MESSAGES_URL)]
    assert ids[0] == ids[1] == retried.external_id
    assert GbmConnector.message_id("msg-ref-1") == retried.external_id


def test_send_without_optional_representative_fields_and_automated_is_bot(
    conn: GbmConnector, rsps: responses.RequestsMock
) -> None:
    _ok(rsps)
    conn.send(_outbound(agent_name=None, agent_avatar_url=None))
    conn.send(_outbound(reference="greeting", automated=True))
    first, second = (_body(c) for c in _calls(rsps, MESSAGES_URL))
    assert first["representative"] == {"representativeType": "HUMAN"}
    assert second["representative"]["representativeType"] == "BOT"


def test_send_with_attachments_as_separate_messages(
    conn: GbmConnector, rsps: responses.RequestsMock
) -> None:
    _ok(rsps)
    result = conn.send(
        _outbound(
            attachments=(
                OutboundAttachment("photo.png", "image/png", url="https://files.test/photo.png"),
                OutboundAttachment(
                    "invoice.pdf", "application/pdf", url="https://files.test/i.pdf"
                ),
            )
        )
    )
    assert result.ok
    text, image, document = (_body(c) for c in _calls(rsps, MESSAGES_URL))
    assert text["text"] == "Hi Jane, your order is ready."
    assert image == {
        "messageId": GbmConnector.message_id("msg-ref-1", 1),
        "representative": text["representative"],
        "image": {
            "contentInfo": {"fileUrl": "https://files.test/photo.png", "forceRefresh": False}
        },
        "fallback": "photo.png: https://files.test/photo.png",
    }
    assert document["text"] == "invoice.pdf: https://files.test/i.pdf"
    assert result.external_ids == (
        text["messageId"],
        image["messageId"],
        document["messageId"],
    )
    assert len(set(result.external_ids)) == 3
    assert result.external_id == text["messageId"]


def test_attachment_only_message(conn: GbmConnector, rsps: responses.RequestsMock) -> None:
    _ok(rsps)
    result = conn.send(
        _outbound(
            text="", attachments=(OutboundAttachment("a.jpg", "image/jpeg", url="https://f/a"),)
        )
    )
    [call] = _calls(rsps, MESSAGES_URL)
    assert "image" in _body(call) and "text" not in _body(call)
    assert result.external_id == GbmConnector.message_id("msg-ref-1", 1)


def test_nothing_to_send_or_bytes_attachment_is_permanent_without_calls(
    conn: GbmConnector, rsps: responses.RequestsMock
) -> None:
    empty = conn.send(_outbound(text=""))
    as_bytes = conn.send(
        _outbound(attachments=(OutboundAttachment("a.png", "image/png", content=b"\x89PNG"),))
    )
    assert empty.error is not None and empty.error.kind is ErrorKind.PERMANENT
    assert as_bytes.error is not None and as_bytes.error.kind is ErrorKind.PERMANENT
    assert len(rsps.calls) == 0


def test_401_is_auth_failed_and_forgets_the_token(
    conn: GbmConnector, rsps: responses.RequestsMock
) -> None:
    _error(rsps, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
    result = conn.send(_outbound())
    assert result.error is not None
    assert result.error.kind is ErrorKind.AUTH_FAILED
    assert "Request had invalid authentication credentials." in result.error.message
    assert "reconnect" in result.error.message
    conn.send(_outbound())
    assert len(_calls(rsps, TOKEN_URI)) == 2  # a fresh token is fetched next time


@pytest.mark.parametrize(
    ("status", "google_status"),
    [(403, "PERMISSION_DENIED"), (404, "NOT_FOUND"), (400, "PERMISSION_DENIED")],
)
def test_conversation_gone_is_undeliverable(
    conn: GbmConnector, rsps: responses.RequestsMock, status: int, google_status: str
) -> None:
    _error(rsps, status, google_status, "Conversation not found or not accessible.")
    result = conn.send(_outbound())
    assert result.error is not None
    assert result.error.kind is ErrorKind.UNDELIVERABLE
    assert result.error.message == "Conversation not found or not accessible."
    assert result.error.code == google_status
    assert len(_calls(rsps, MESSAGES_URL)) == 1


def test_failed_precondition_resends_the_fallback_as_text(
    conn: GbmConnector, rsps: responses.RequestsMock
) -> None:
    image = OutboundAttachment("photo.png", "image/png", url="https://files.test/photo.png")
    _error(rsps, 400, "FAILED_PRECONDITION", "Device cannot render this message.")
    _ok(rsps)
    result = conn.send(_outbound(text="", attachments=(image,)))
    assert result.ok
    rich, plain = (_body(c) for c in _calls(rsps, MESSAGES_URL))
    assert "image" in rich
    fallback_id = GbmConnector.message_id("msg-ref-1", 1, fallback=True)
    assert plain == {
        "messageId": fallback_id,
        "representative": rich["representative"],
        "text": "photo.png: https://files.test/photo.png",
        "fallback": "photo.png: https://files.test/photo.png",
    }
    assert fallback_id != rich["messageId"]
    assert result.external_id == fallback_id


def test_failed_precondition_twice_is_permanent(
    conn: GbmConnector, rsps: responses.RequestsMock
) -> None:
    _error(rsps, 400, "FAILED_PRECONDITION", "Device cannot render this message.")
    result = conn.send(_outbound())
    assert result.error is not None
    assert result.error.kind is ErrorKind.PERMANENT
    assert result.error.message == "Device cannot render this message."
    assert len(_calls(rsps, MESSAGES_URL)) == 2  # one retry, no more


def test_other_400_is_permanent_without_retry(
    conn: GbmConnector, rsps: responses.RequestsMock
) -> None:
    _error(rsps, 400, "INVALID_ARGUMENT", "Invalid value at 'message.text'.")
    result = conn.send(_outbound())
    assert result.error is not None
    assert (result.error.kind, result.error.code) == (ErrorKind.PERMANENT, "INVALID_ARGUMENT")
    assert result.error.message == "Invalid value at 'message.text'."
    assert len(_calls(rsps, MESSAGES_URL)) == 1


@pytest.mark.parametrize(("status", "google_status"), [(500, "INTERNAL"), (503, "UNAVAILABLE")])
def test_server_errors_are_transient(
    conn: GbmConnector, rsps: responses.RequestsMock, status: int, google_status: str
) -> None:
    _error(rsps, status, google_status, "Internal error encountered.")
    result = conn.send(_outbound())
    assert result.error is not None
    assert result.error.kind is ErrorKind.TRANSIENT
    assert result.error.message == "Internal error encountered."


def test_429_is_transient_with_retry_after(
    conn: GbmConnector, rsps: responses.RequestsMock
) -> None:
    _error(rsps, 429, "RESOURCE_EXHAUSTED", "Quota exceeded.", headers={"Retry-After": "7"})
    result = conn.send(_outbound())
    assert result.error is not None
    assert (result.error.kind, result.error.retry_after) == (ErrorKind.TRANSIENT, 7.0)


def test_non_json_error_body(conn: GbmConnector, rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, MESSAGES_URL, body="<html>bad gateway</html>", status=502)
    result = conn.send(_outbound())
    assert result.error is not None
    assert result.error.kind is ErrorKind.TRANSIENT
    assert result.error.message == "HTTP 502 from Business Messages"


@pytest.mark.parametrize(
    "exc", [requests.exceptions.ReadTimeout("read timed out"), requests.ConnectionError("refused")]
)
def test_timeouts_and_connection_errors_are_transient(
    conn: GbmConnector, rsps: responses.RequestsMock, exc: Exception
) -> None:
    rsps.add(responses.POST, MESSAGES_URL, body=exc)
    result = conn.send(_outbound())
    assert result.error is not None
    assert result.error.kind is ErrorKind.TRANSIENT


def test_duplicate_message_id_conflict_counts_as_sent(
    conn: GbmConnector, rsps: responses.RequestsMock
) -> None:
    _error(rsps, 409, "ALREADY_EXISTS", "Message with this id already exists.")
    result = conn.send(_outbound())
    assert result.ok
    assert result.external_id == GbmConnector.message_id("msg-ref-1")


def test_partial_failure_reports_the_parts_sent(
    conn: GbmConnector, rsps: responses.RequestsMock
) -> None:
    _ok(rsps)
    _error(rsps, 500, "INTERNAL", "boom")
    image = OutboundAttachment("p.png", "image/png", url="https://f/p.png")
    result = conn.send(_outbound(attachments=(image,)))
    assert result.error is not None and result.error.kind is ErrorKind.TRANSIENT
    assert result.external_ids == (GbmConnector.message_id("msg-ref-1"),)


def test_token_endpoint_rejects_key_is_auth_failed(service_account_info: dict) -> None:
    conn = GbmConnector(
        {"service_account": service_account_info}, ConnectorOptions(base_urls={"gbm": API})
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(
            responses.POST,
            TOKEN_URI,
            json={"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
            status=400,
        )
        result = conn.send(_outbound())
        assert result.error is not None
        assert result.error.kind is ErrorKind.AUTH_FAILED
        assert "Invalid JWT Signature" in result.error.message
        assert _calls(mock, API) == []


def test_token_endpoint_unreachable_is_transient(service_account_info: dict) -> None:
    conn = GbmConnector(
        {"service_account": service_account_info}, ConnectorOptions(base_urls={"gbm": API})
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, TOKEN_URI, body=requests.ConnectionError("refused"))
        result = conn.send(_outbound())
        assert result.error is not None
        assert result.error.kind is ErrorKind.TRANSIENT


@pytest.mark.parametrize(
    "bad", [None, "", "{not json", {"client_email": "x@y"}, json.dumps({"private_key": "k"})]
)
def test_unusable_service_account_is_auth_failed_without_calls(bad: object) -> None:
    conn = GbmConnector({"service_account": bad}, ConnectorOptions(base_urls={"gbm": API}))
    with responses.RequestsMock() as mock:
        result = conn.send(_outbound())
        assert len(mock.calls) == 0
    assert result.error is not None and result.error.kind is ErrorKind.AUTH_FAILED


def test_garbage_private_key_is_auth_failed(service_account_info: dict) -> None:
    info = {**service_account_info, "private_key": "-----BEGIN PRIVATE KEY-----\nxx\n"}
    conn = GbmConnector({"service_account": info}, ConnectorOptions(base_urls={"gbm": API}))
    with responses.RequestsMock() as mock:
        result = conn.send(_outbound())
        assert len(mock.calls) == 0
    assert result.error is not None and result.error.kind is ErrorKind.AUTH_FAILED


def test_token_cache_is_shared_between_instances_and_threads(
    service_account_info: dict, rsps: responses.RequestsMock
) -> None:
    _ok(rsps)
    config = {"service_account": service_account_info}
    results = []

    def worker(i: int) -> None:
        c = GbmConnector(config, ConnectorOptions(base_urls={"gbm": API}))
        results.append(c.send(_outbound(reference=f"ref-{i}")))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(r.ok for r in results)
    assert len(_calls(rsps, TOKEN_URI)) == 1


def test_default_base_url() -> None:
    assert GbmConnector({}).base_url == "https://businessmessages.googleapis.com"


# --------------------------------------------------------------------------- events / receipts


@pytest.mark.parametrize(
    ("action", "event_type"),
    [
        ("REPRESENTATIVE_JOINED", "REPRESENTATIVE_JOINED"),
        ("REPRESENTATIVE_LEFT", "REPRESENTATIVE_LEFT"),
        ("TYPING_STARTED", "TYPING_STARTED"),
        ("TYPING_STOPPED", "TYPING_STOPPED"),
        ("typing_on", "TYPING_STARTED"),
        ("typing_off", "TYPING_STOPPED"),
    ],
)
def test_send_action_events(
    conn: GbmConnector, rsps: responses.RequestsMock, action: str, event_type: str
) -> None:
    events_url = f"{API}/v1/conversations/{CONV}/events"
    rsps.add(responses.POST, events_url, json={})
    result = conn.send_action(CONV, action, agent_name="Alex (Support)")
    assert result.ok
    [call] = _calls(rsps, events_url)
    assert call.request.headers["Authorization"] == "Bearer tok-1"
    event_id = parse_qs(urlsplit(call.request.url).query)["eventId"][0]
    assert uuid.UUID(event_id).version == 4
    assert _body(call) == {
        "eventType": event_type,
        "representative": {"representativeType": "HUMAN", "displayName": "Alex (Support)"},
    }


def test_event_ids_are_unique(conn: GbmConnector, rsps: responses.RequestsMock) -> None:
    events_url = f"{API}/v1/conversations/{CONV}/events"
    rsps.add(responses.POST, events_url, json={})
    conn.send_action(CONV, "TYPING_STARTED")
    conn.send_action(CONV, "TYPING_STARTED")
    ids = {parse_qs(urlsplit(c.request.url).query)["eventId"][0] for c in _calls(rsps, events_url)}
    assert len(ids) == 2


@pytest.mark.parametrize("action", ["mark_read", "mark_seen"])
def test_mark_read_patches_receipt(
    conn: GbmConnector, rsps: responses.RequestsMock, action: str
) -> None:
    url = f"{API}/v1/conversations/{CONV}/messages/msg-001/receipt"
    rsps.add(responses.PATCH, url, json={"name": url, "receiptType": "READ"})
    result = conn.send_action(CONV, action, message_id="msg-001")
    assert result.ok
    [call] = _calls(rsps, url)
    assert call.request.method == "PATCH"
    assert _body(call) == {"receiptType": "READ"}
    assert call.request.headers["Authorization"] == "Bearer tok-1"


def test_mark_read_needs_message_id(conn: GbmConnector, rsps: responses.RequestsMock) -> None:
    result = conn.send_action(CONV, "mark_read")
    assert result.error is not None and result.error.kind is ErrorKind.PERMANENT
    assert len(rsps.calls) == 0


def test_action_errors_are_classified(conn: GbmConnector, rsps: responses.RequestsMock) -> None:
    events_url = f"{API}/v1/conversations/{CONV}/events"
    body = {
        "error": {"code": 403, "message": "Conversation closed.", "status": "PERMISSION_DENIED"}
    }
    rsps.add(responses.POST, events_url, json=body, status=403)
    result = conn.send_action(CONV, "REPRESENTATIVE_JOINED", agent_name="Alex")
    assert result.error is not None
    assert (result.error.kind, result.error.message) == (
        ErrorKind.UNDELIVERABLE,
        "Conversation closed.",
    )


def test_unknown_action_is_a_no_op(conn: GbmConnector, rsps: responses.RequestsMock) -> None:
    assert conn.send_action(CONV, "wave").ok
    assert len(rsps.calls) == 0


def test_aborted_conflict_is_transient(conn: GbmConnector, rsps: responses.RequestsMock) -> None:
    _error(rsps, 409, "ABORTED", "Concurrent update.")
    result = conn.send(_outbound())
    assert result.error is not None and result.error.kind is ErrorKind.TRANSIENT


def test_ids_are_escaped_in_urls(conn: GbmConnector, rsps: responses.RequestsMock) -> None:
    url = f"{API}/v1/conversations/a%2F..%2Fb/messages/m%3Fx/receipt"
    rsps.add(responses.PATCH, url, json={})
    assert conn.send_action("a/../b", "mark_read", message_id="m?x").ok
    assert len(_calls(rsps, url)) == 1
