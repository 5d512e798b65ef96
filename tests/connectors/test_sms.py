"""Tests for the SMS connector: signatures, parsing, errors, segments, quiet hours, sending.

Pure tests: no app, no database. Providers' HTTP is faked with ``responses``.
Real Twilio signature vectors are read from the shared corpus when present.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import pytest
import requests
import responses
import urllib3
from werkzeug.datastructures import MultiDict

import connectors
from connectors.base import (
    ConnectorOptions,
    DeliveryState,
    ErrorKind,
    InboundMessage,
    OptIn,
    OptOut,
    OutboundAttachment,
    OutboundMessage,
)
from connectors.sms import SmsConnector, consent, phone, quiet, segments
from connectors.sms import twilio as tw
from connectors.sms.provider import get_provider

CORPUS = Path(__file__).parents[2].parent / "shared/corpus"
SIGNATURE_VECTORS = CORPUS / "sms/twilio_signature_vectors.json"
REAL_INBOUND = CORPUS / "sms/twilio-ruby__real_inbound_sms_2016.json"

DOCS_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOCS_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
DOCS_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="  # Twilio's webhook-security docs example

NOW = datetime(2026, 1, 15, 18, 30, tzinfo=UTC)
OUR_NUMBER = "+14155550100"
CUSTOMER = "+14155550199"
ACCOUNT = "AC" + "a" * 32
TOKEN = "tok3n"


def sign(url: str, params: dict[str, str], key: str, digest=hashlib.sha1) -> str:
    """Reference signature: base64 HMAC over URL + sorted name+value."""
    data = url + "".join(k + v for k, v in sorted(params.items()))
    return base64.b64encode(hmac.new(key.encode(), data.encode(), digest).digest()).decode()


def load_vectors() -> list[dict]:
    """The corpus signature vectors, or an empty list when the corpus is absent."""
    if not SIGNATURE_VECTORS.exists():
        return []
    return json.loads(SIGNATURE_VECTORS.read_text())["vectors"]


# --------------------------------------------------------------------------- signatures


def test_docs_vector_is_valid():
    assert tw.validate_signature(DOCS_URL, DOCS_PARAMS, DOCS_SIGNATURE, "12345")


def test_value_not_matching_the_docs_vector_is_rejected():
    # "GvWf1cFY/Q7PnoempGyD5oXAezc=" was once quoted for this example; it does not verify.
    assert not tw.validate_signature(DOCS_URL, DOCS_PARAMS, "GvWf1cFY/Q7PnoempGyD5oXAezc=", "12345")


@pytest.mark.parametrize(
    "vector", load_vectors() or [None], ids=lambda v: v["id"] if v else "absent"
)
def test_corpus_signature_vectors(vector):
    if vector is None:
        pytest.skip("shared corpus not available")
    params = vector["params"]
    if params is None:  # JSON-body webhook: the raw body is what is checked
        params = vector["raw_body"]
    elif isinstance(params, list):
        params = [tuple(pair) for pair in params]
    ok = tw.validate_signature(
        vector["request_url"], params, vector["expected_signature"], vector["auth_token"]
    )
    assert ok is vector["expect_valid"]


def test_real_inbound_sms_validates_and_parses():
    if not REAL_INBOUND.exists():
        pytest.skip("shared corpus not available")
    sample = json.loads(REAL_INBOUND.read_text())
    headers = {"x-twilio-signature": sample["headers"]["X-Twilio-Signature"]}
    assert tw.validate_request(sample["url"], sample["params"], headers, sample["auth_token"])
    (message,) = tw.parse_inbound(sample["params"], NOW)
    assert message.external_id == sample["expect"]["message_sid"]
    assert message.contact_id == sample["expect"]["from"]
    assert message.inbox_key == sample["expect"]["to"]
    assert message.text == sample["expect"]["body"]
    assert message.attachments == ()


@pytest.mark.parametrize(
    "change",
    [
        {"Digits": "9999"},  # tampered field
        {"Extra": "1"},  # added field
    ],
)
def test_forged_params_are_rejected(change):
    assert not tw.validate_signature(DOCS_URL, {**DOCS_PARAMS, **change}, DOCS_SIGNATURE, "12345")


@pytest.mark.parametrize("signature", [None, "", "   ", "fake_signature"])
def test_missing_or_bogus_signature_fails_closed(signature):
    assert not tw.validate_signature(DOCS_URL, DOCS_PARAMS, signature, "12345")


@pytest.mark.parametrize("token", [None, "", "54321"])
def test_missing_or_wrong_token_fails_closed(token):
    assert not tw.validate_signature(DOCS_URL, DOCS_PARAMS, DOCS_SIGNATURE, token)


@pytest.mark.parametrize("params", [b"raw bytes", 42, [("only-one-item",)]])
def test_malformed_params_fail_closed(params):
    assert not tw.validate_signature(DOCS_URL, params, DOCS_SIGNATURE, "12345")


def test_other_url_is_rejected():
    url = "https://mycompany.com/myapp.php?foo=1&bar=3"
    assert not tw.validate_signature(url, DOCS_PARAMS, DOCS_SIGNATURE, "12345")
    http_url = DOCS_URL.replace("https://", "http://")  # TLS-terminating proxy: scheme matters
    assert not tw.validate_signature(http_url, DOCS_PARAMS, DOCS_SIGNATURE, "12345")


@pytest.mark.parametrize(
    ("signed_url", "request_url"),
    [
        (
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
        ),
        (
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
        ),
        (
            "http://mycompany.com:80/myapp.php?foo=1&bar=2",
            "http://mycompany.com/myapp.php?foo=1&bar=2",
        ),
        (
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
        ),
        ("http://mycompany.com:1234/myapp.php", "http://mycompany.com:1234/myapp.php"),
    ],
)
def test_explicit_port_variants(signed_url, request_url):
    signature = sign(signed_url, DOCS_PARAMS, "12345")
    assert tw.validate_signature(request_url, DOCS_PARAMS, signature, "12345")


DUPLICATE_PAIRS = [
    ("Sid", "CA123"),
    ("SidAccount", "AC123"),
    ("Digits", "5678"),
    ("Digits", "1234"),
    ("Digits", "1234"),
]
DUPLICATE_SIGNATURE = "IK+Dwps556ElfBT0I3Rgjkr1wJU="  # twilio-python's repeated-keys test


@pytest.mark.parametrize(
    "params",
    [
        MultiDict(DUPLICATE_PAIRS),
        DUPLICATE_PAIRS,
        {"Sid": "CA123", "SidAccount": "AC123", "Digits": ["5678", "1234", "1234"]},
    ],
    ids=["werkzeug-multidict", "pairs", "dict-of-lists"],
)
def test_repeated_keys(params):
    assert tw.validate_signature(DOCS_URL, params, DUPLICATE_SIGNATURE, "12345")


def test_repeated_keys_are_not_collapsed_to_the_first_value():
    first_only = {"Sid": "CA123", "SidAccount": "AC123", "Digits": "5678"}
    assert not tw.validate_signature(DOCS_URL, first_only, DUPLICATE_SIGNATURE, "12345")


SETTINGS = "key=webhooks_sharedkey_123,algorithm=HMAC_SHA256"


def test_shared_key_hmac_sha256():
    signature = sign(DOCS_URL, DOCS_PARAMS, "shared-secret", hashlib.sha256)
    kwargs = {"signature_settings": SETTINGS, "shared_key": "shared-secret"}
    assert tw.validate_signature(DOCS_URL, DOCS_PARAMS, signature, "12345", **kwargs)
    # without the settings header it is checked as legacy SHA-1 with the Auth Token
    assert not tw.validate_signature(
        DOCS_URL, DOCS_PARAMS, signature, "12345", shared_key="shared-secret"
    )
    # another shared secret does not verify
    kwargs = {"signature_settings": SETTINGS, "shared_key": "other"}
    assert not tw.validate_signature(DOCS_URL, DOCS_PARAMS, signature, "12345", **kwargs)


def test_shared_key_header_without_configured_key_uses_auth_token():
    signature = sign(DOCS_URL, DOCS_PARAMS, "12345", hashlib.sha256)
    assert tw.validate_signature(
        DOCS_URL, DOCS_PARAMS, signature, "12345", signature_settings=SETTINGS
    )


def test_unsupported_algorithm_fails_closed():
    signature = sign(DOCS_URL, DOCS_PARAMS, "12345", hashlib.sha256)
    settings = "key=k,algorithm=HMAC_SHA512"
    assert not tw.validate_signature(
        DOCS_URL, DOCS_PARAMS, signature, "12345", signature_settings=settings
    )


def test_validate_request_reads_headers_case_insensitively():
    signature = sign(DOCS_URL, DOCS_PARAMS, "shared", hashlib.sha256)
    headers = {"x-twilio-signature": signature, "x-twilio-webhooks-signature-settings": SETTINGS}
    assert tw.validate_request(DOCS_URL, DOCS_PARAMS, headers, "12345", shared_key="shared")
    assert not tw.validate_request(DOCS_URL, DOCS_PARAMS, {}, "12345")


def test_connector_verify_uses_inbox_secrets():
    config = {"number": OUR_NUMBER, "account_sid": ACCOUNT, "auth_token": "12345"}
    connector = SmsConnector(config)
    assert connector.verify(DOCS_URL, DOCS_PARAMS, {"X-Twilio-Signature": DOCS_SIGNATURE})
    assert not connector.verify(DOCS_URL, DOCS_PARAMS, {})
    shared = {**config, "webhook_shared_key": "shared"}
    signature = sign(DOCS_URL, DOCS_PARAMS, "shared", hashlib.sha256)
    headers = {"X-Twilio-Signature": signature, "X-Twilio-Webhooks-Signature-Settings": SETTINGS}
    assert SmsConnector(shared).verify(DOCS_URL, DOCS_PARAMS, headers)


# --------------------------------------------------------------------------- phone numbers


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1 (415) 555-0100", None, "+14155550100"),
        ("14155550100", None, "+14155550100"),
        ("+14155550100", None, "+14155550100"),
        ("(415) 555-0100", "US", "+14155550100"),
        ("415.555.0100", "us", "+14155550100"),
        ("tel:+14155550100", None, "+14155550100"),
        ("020 7946 0000", "GB", "+442079460000"),
        ("00442079460000", "GB", "+442079460000"),
        ("442079460000", None, "+442079460000"),
        ("whatsapp:+1 415 555 0100", None, "whatsapp:+14155550100"),
        ("4155550100", None, None),  # no region, and +4155550100 is not a number
        ("12345", None, None),
        ("not a number", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_normalise(raw, region, expected):
    assert phone.normalise(raw, region) == expected


def test_address_keeps_non_numbers():
    assert phone.address(" 12345 ") == "12345"  # a short code
    assert phone.address("+1 415 555 0100") == "+14155550100"


def test_timezones_and_kind():
    assert phone.timezones("+14155550100") == ["America/Los_Angeles"]
    assert phone.timezones("+442079460000") == ["Europe/London"]
    assert phone.timezones("+447700900123") == []  # reserved drama number: not valid
    assert phone.kind("+447911123456") == "mobile"
    assert phone.kind("+442079460000") == "landline"
    assert phone.kind("+18005551212") == "toll_free"
    assert phone.kind("nonsense") == "unknown"
    assert phone.region("+442079460000") == "GB"


def test_customer_timezone():
    assert phone.customer_timezone("+14155550100", "Europe/Paris") == "America/Los_Angeles"
    assert phone.customer_timezone("+442079460000", "America/New_York") == "Europe/London"
    # several zones with different clocks: the fallback
    assert phone.customer_timezone("+18005551212", "America/Chicago") == "America/Chicago"
    assert phone.customer_timezone("+61412345678", "Australia/Sydney") == "Australia/Sydney"
    assert phone.customer_timezone("garbage", "UTC") == "UTC"
    # a UK mobile: London, Guernsey, Jersey, Isle of Man keep the same clock all year
    zone = phone.customer_timezone("+447911123456", "America/New_York", at=NOW)
    assert zone in phone.timezones("+447911123456")


# --------------------------------------------------------------------------- inbound

SMS_FORM = {
    "ToCountry": "US",
    "ToState": "CA",
    "SmsMessageSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
    "NumMedia": "0",
    "ToCity": "SAN FRANCISCO",
    "FromZip": "03049",
    "SmsSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
    "FromState": "NH",
    "SmsStatus": "received",
    "FromCity": "NASHUA",
    "Body": "My order #123 is late",
    "FromCountry": "US",
    "To": OUR_NUMBER,
    "MessagingServiceSid": "MG" + "b" * 32,
    "ToZip": "94105",
    "NumSegments": "1",
    "MessageSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
    "AccountSid": ACCOUNT,
    "From": CUSTOMER,
    "ApiVersion": "2010-04-01",
}


def test_parse_inbound_sms():
    (message,) = tw.parse_inbound(SMS_FORM, NOW)
    assert isinstance(message, InboundMessage)
    assert message.external_id == "SM1f0e8ae6ade43cb3c0ce4525424e404f"
    assert message.inbox_key == OUR_NUMBER
    assert message.contact_id == CUSTOMER
    assert message.text == "My order #123 is late"
    assert message.sent_at == NOW
    assert message.attachments == ()
    assert message.context["messaging_service_sid"] == "MG" + "b" * 32
    assert message.context["from_country"] == "US"
    assert message.context["from_city"] == "NASHUA"
    assert message.context["num_segments"] == 1
    assert message.raw["Body"] == "My order #123 is late"


def test_parse_inbound_mms_with_two_media():
    base = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/MM1/Media"
    form = {
        **SMS_FORM,
        "MessageSid": "MM" + "c" * 32,
        "Body": "",
        "NumMedia": "2",
        "MediaUrl0": f"{base}/ME0",
        "MediaContentType0": "image/jpeg",
        "MediaUrl1": f"{base}/ME1",
        "MediaContentType1": "application/pdf",
    }
    (message,) = tw.parse_inbound(form, NOW)
    assert message.text == ""
    assert [a.url for a in message.attachments] == [f"{base}/ME0", f"{base}/ME1"]
    assert [a.content_type for a in message.attachments] == ["image/jpeg", "application/pdf"]
    assert [a.kind for a in message.attachments] == ["image", "file"]
    assert message.attachments[0].extra["media_sid"] == "ME0"


def test_parse_inbound_normalises_numbers_and_time():
    form = {**SMS_FORM, "From": "14155550199", "To": "+1 (415) 555-0100"}
    naive = datetime(2026, 1, 15, 18, 30)
    (message,) = tw.parse_inbound(form, naive)
    assert (message.contact_id, message.inbox_key) == (CUSTOMER, OUR_NUMBER)
    assert message.sent_at == NOW


def test_parse_inbound_without_message_sid():
    form = {k: v for k, v in SMS_FORM.items() if "Sid" not in k or k == "AccountSid"}
    with pytest.raises(ValueError):
        tw.parse_inbound(form, NOW)


def test_routing_keys():
    assert tw.routing_keys(SMS_FORM) == ("MG" + "b" * 32, OUR_NUMBER)
    no_service = {k: v for k, v in SMS_FORM.items() if k != "MessagingServiceSid"}
    assert tw.routing_keys(no_service) == (None, OUR_NUMBER)
    assert get_provider("twilio").routing_keys(no_service) == (None, OUR_NUMBER)


STOP_WORDS = ["stop", "Stop", "STOP", "sToP", "stopall", "StopAll", "unsubscribe", "UnSubscribe",
              "end", "End", "quit", "QuIt", "cancel", "Cancel", "revoke", "REVOKE", "optout", "OptOut"]  # fmt: skip


@pytest.mark.parametrize("body", STOP_WORDS + ["  stop  ", "Stop.", "STOP!", "stop\n"])
def test_stop_words_opt_out(body):
    message, opt_out = tw.parse_inbound({**SMS_FORM, "Body": body}, NOW)
    assert message.text == body  # the keyword message stays in the thread
    assert isinstance(opt_out, OptOut)
    assert opt_out.keyword == body.strip().rstrip(".!").upper()
    assert (opt_out.inbox_key, opt_out.contact_id, opt_out.at) == (OUR_NUMBER, CUSTOMER, NOW)


@pytest.mark.parametrize("body", ["start", "Start", "YES", "yes", "unstop", "UnStop"])
def test_start_words_opt_in(body):
    _, opt_in = tw.parse_inbound({**SMS_FORM, "Body": body}, NOW)
    assert isinstance(opt_in, OptIn)
    assert opt_in.keyword == body.upper()
    assert opt_in.contact_id == CUSTOMER


@pytest.mark.parametrize(
    "body",
    [
        "HELP",
        "help",
        "Info",
        "stop please",
        "please stop",
        "STOP STOP",
        "stopped",
        "",
        "yes please",
    ],
)
def test_no_consent_event(body):
    events = tw.parse_inbound({**SMS_FORM, "Body": body}, NOW)
    assert len(events) == 1 and isinstance(events[0], InboundMessage)


def test_opt_out_type_is_honoured():
    # Advanced Opt-Out with a custom/localised keyword
    _, opt_out = tw.parse_inbound({**SMS_FORM, "Body": "Arret", "OptOutType": "STOP"}, NOW)
    assert isinstance(opt_out, OptOut) and opt_out.keyword == "ARRET"
    _, opt_in = tw.parse_inbound({**SMS_FORM, "Body": "go on then", "OptOutType": "START"}, NOW)
    assert isinstance(opt_in, OptIn) and opt_in.keyword == "START"
    events = tw.parse_inbound({**SMS_FORM, "Body": "Help", "OptOutType": "HELP"}, NOW)
    assert len(events) == 1


def test_consent_lists():
    assert consent.classify("Stop") is consent.Consent.OPT_OUT
    assert consent.classify("unstop") is consent.Consent.OPT_IN
    assert consent.classify("info") is consent.Consent.HELP
    assert consent.classify("stop please") is None
    assert consent.OPT_OUT_KEYWORDS.isdisjoint(consent.OPT_IN_KEYWORDS)


# --------------------------------------------------------------------------- status


def status_form(status: str, **extra: str) -> dict[str, str]:
    """A status callback as Twilio posts it."""
    return {
        "MessageSid": "SM" + "d" * 32,
        "SmsSid": "SM" + "d" * 32,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": ACCOUNT,
        "From": OUR_NUMBER,
        "To": CUSTOMER,
        "ApiVersion": "2010-04-01",
        **extra,
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("accepted", DeliveryState.QUEUED),
        ("queued", DeliveryState.QUEUED),
        ("sending", DeliveryState.QUEUED),
        ("sent", DeliveryState.SENT),
        ("delivered", DeliveryState.DELIVERED),
        ("read", DeliveryState.READ),
        ("undelivered", DeliveryState.FAILED),
        ("failed", DeliveryState.FAILED),
    ],
)
def test_status_mapping(status, expected):
    update = tw.parse_status(status_form(status))
    assert update.status is expected
    assert update.external_id == "SM" + "d" * 32
    assert (update.inbox_key, update.contact_id) == (OUR_NUMBER, CUSTOMER)
    if expected is not DeliveryState.FAILED:
        assert update.error is None


def test_status_failure_carries_classified_error():
    update = tw.parse_status(status_form("undelivered", ErrorCode="30006"))
    assert update.error.kind is ErrorKind.UNDELIVERABLE
    assert update.error.code == "30006"
    assert "landline" in update.error.message
    update = tw.parse_status(status_form("failed", ErrorCode="21610"))
    assert update.error.kind is ErrorKind.OPTED_OUT
    update = tw.parse_status(status_form("failed"))
    assert update.error.kind is ErrorKind.PERMANENT and update.error.code is None


@pytest.mark.parametrize(
    "form", [status_form("received"), status_form("bogus"), {"MessageStatus": "sent"}]
)
def test_status_rejects_non_outbound(form):
    with pytest.raises(ValueError):
        tw.parse_status(form)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (30003, ErrorKind.PERMANENT),
        (30005, ErrorKind.UNDELIVERABLE),
        (30006, ErrorKind.UNDELIVERABLE),
        (30007, ErrorKind.PERMANENT),
        (21211, ErrorKind.UNDELIVERABLE),
        (21610, ErrorKind.OPTED_OUT),
        ("21610", ErrorKind.OPTED_OUT),
        (21614, ErrorKind.UNDELIVERABLE),
        (21611, ErrorKind.TRANSIENT),
        (30001, ErrorKind.TRANSIENT),
        (63017, ErrorKind.TRANSIENT),
        (20429, ErrorKind.TRANSIENT),
        (20003, ErrorKind.AUTH_FAILED),
        (12345, ErrorKind.PERMANENT),
        (None, ErrorKind.PERMANENT),
    ],
)
def test_error_table(code, kind):
    error = tw.classify(code, "Twilio says no")
    assert error.kind is kind
    assert error.code == (str(code) if code is not None else None)
    assert error.message


def test_error_messages():
    assert "switched off" in tw.classify(30003, "").message
    assert "START" in tw.classify(21610, "Attempt to send to unsubscribed recipient").message
    assert tw.classify(12345, "Something odd").message == "Something odd"
    assert tw.classify("", "").message == "Twilio error"


def test_http_status_overrides():
    assert tw.classify(None, "Bad gateway", http_status=502).kind is ErrorKind.TRANSIENT
    assert tw.classify(20500, "Internal", http_status=500).kind is ErrorKind.TRANSIENT
    assert tw.classify(None, "", http_status=401).kind is ErrorKind.AUTH_FAILED
    assert tw.classify(21211, "", http_status=400).kind is ErrorKind.UNDELIVERABLE


# --------------------------------------------------------------------------- segments


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segs", "remaining", "per_segment"),
    [
        ("", "GSM-7", 0, 0, 160, 160),
        ("Hello, your order has shipped!", "GSM-7", 30, 1, 130, 160),
        ("Price: 5€", "GSM-7", 10, 1, 150, 160),  # € is an extension character: 2 septets
        ("{x}", "GSM-7", 5, 1, 155, 160),
        ("£¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉÄÖÑÜ§¿äöñüà\r\n¤¡", "GSM-7", 42, 1, 118, 160),
        ("a" * 160, "GSM-7", 160, 1, 0, 160),
        ("a" * 161, "GSM-7", 161, 2, 145, 153),
        ("a" * 306, "GSM-7", 306, 2, 0, 153),
        ("a" * 307, "GSM-7", 307, 3, 152, 153),
        ("It’s here", "UCS-2", 9, 1, 61, 70),  # curly apostrophe
        ("ça va", "UCS-2", 5, 1, 65, 70),  # lower-case c cedilla is not GSM-7
        ("Thanks 😀", "UCS-2", 9, 1, 61, 70),  # emoji: a surrogate pair
        ("é" * 69 + "’", "UCS-2", 70, 1, 0, 70),
        ("’" * 70, "UCS-2", 70, 1, 0, 70),
        ("’" * 71, "UCS-2", 71, 2, 63, 67),
        ("’" * 134, "UCS-2", 134, 2, 0, 67),
        ("’" * 135, "UCS-2", 135, 3, 66, 67),
    ],
)
def test_segment_counts(text, encoding, units, segs, remaining, per_segment):
    info = segments.count(text)
    assert (info.encoding, info.units, info.segments, info.remaining, info.per_segment) == (
        encoding,
        units,
        segs,
        remaining,
        per_segment,
    )


def test_extension_characters_cost_two():
    assert segments.count("^{}\\[~]|€").units == 18
    assert segments.count("a" * 159 + "€").segments == 2  # 161 septets
    assert segments.count("a" * 158 + "€").segments == 1  # exactly 160


def test_escape_sequence_is_not_split_across_parts():
    # 152 septets + "€" (2) would straddle the 153 boundary: the euro moves to part 2
    info = segments.count("a" * 152 + "€" + "a" * 152)
    assert info.units == 306
    assert info.segments == 3


def test_surrogate_pair_is_not_split_across_parts():
    info = segments.count("a" * 66 + "😀" + "’" * 66)  # 134 units = 2 x 67
    assert (info.units, info.segments) == (134, 3)
    info = segments.count("’" * 65 + "😀" + "’" * 67)  # pair fits part 1 exactly
    assert (info.units, info.segments, info.remaining) == (134, 2, 0)


def test_segment_info_to_dict():
    data = segments.count("Hi 😀").to_dict()
    assert data == {
        "encoding": "UCS-2",
        "units": 5,
        "segments": 1,
        "remaining": 65,
        "per_segment": 70,
        "ucs2_chars": ["😀"],
    }
    json.dumps(data)


# --------------------------------------------------------------------------- quiet hours

LA = "America/Los_Angeles"


def la(hour: int, minute: int) -> datetime:
    """2026-01-15 at ``hour:minute`` Los Angeles wall-clock time (PST, UTC-8), as UTC."""
    return datetime(2026, 1, 15, hour, minute, tzinfo=ZoneInfo(LA)).astimezone(UTC)


@pytest.mark.parametrize(
    ("hour", "minute", "quiet_now"),
    [
        (20, 59, False),
        (21, 0, True),
        (23, 30, True),
        (0, 0, True),
        (7, 59, True),
        (8, 0, False),
        (12, 0, False),
    ],
)
def test_quiet_hours_boundaries(hour, minute, quiet_now):
    assert quiet.in_quiet_hours(la(hour, minute), LA, "21:00", "08:00") is quiet_now


def test_same_day_window():
    assert not quiet.in_quiet_hours(la(11, 59), LA, "12:00", "14:00")
    assert quiet.in_quiet_hours(la(12, 0), LA, "12:00", "14:00")
    assert not quiet.in_quiet_hours(la(14, 0), LA, "12:00", "14:00")
    assert not quiet.in_quiet_hours(la(3, 0), LA, "08:00", "08:00")  # empty window


def test_quiet_hours_across_time_zones():
    instant = datetime(2026, 1, 15, 22, 0, tzinfo=UTC)  # 14:00 in LA, 22:00 in London
    la_zone = phone.customer_timezone("+14155550100", "UTC")
    london_zone = phone.customer_timezone("+442079460000", "UTC")
    assert (la_zone, london_zone) == (LA, "Europe/London")
    assert not quiet.in_quiet_hours(instant, la_zone)
    assert quiet.in_quiet_hours(instant, london_zone)
    assert quiet.quiet_ends_at(instant, london_zone) == datetime(2026, 1, 16, 8, 0, tzinfo=UTC)


def test_quiet_ends_at():
    # 23:30 PST -> 08:00 PST next day = 16:00 UTC
    assert quiet.quiet_ends_at(la(23, 30), LA) == datetime(2026, 1, 16, 16, 0, tzinfo=UTC)
    # 07:59 -> same morning 08:00
    assert quiet.quiet_ends_at(la(7, 59), LA) == datetime(2026, 1, 15, 16, 0, tzinfo=UTC)
    # not quiet: the end of the next window
    assert quiet.quiet_ends_at(la(12, 0), LA) == datetime(2026, 1, 16, 16, 0, tzinfo=UTC)
    assert quiet.earliest_send_at(la(12, 0), LA) == la(12, 0)
    assert quiet.earliest_send_at(la(21, 0), LA) == datetime(2026, 1, 16, 16, 0, tzinfo=UTC)


def test_quiet_ends_at_across_dst_change():
    # 2026-03-07 22:00 PST; clocks spring forward overnight, so 08:00 is PDT (UTC-7)
    now = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)
    assert quiet.in_quiet_hours(now, LA)
    assert quiet.quiet_ends_at(now, LA) == datetime(2026, 3, 8, 15, 0, tzinfo=UTC)


def test_bad_time_of_day():
    with pytest.raises(ValueError):
        quiet.in_quiet_hours(NOW, LA, "9pm", "08:00")


# --------------------------------------------------------------------------- sending

FAKE_BASE = "https://twilio.test"
MESSAGES_URL = f"{FAKE_BASE}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
CALLBACK = "https://helpdesk.example/webhooks/sms/twilio/status"


def make_connector(**config: str) -> SmsConnector:
    """An SMS inbox pointed at the fake Twilio."""
    base = {"number": OUR_NUMBER, "account_sid": ACCOUNT, "auth_token": TOKEN}
    options = ConnectorOptions(base_urls={"twilio": FAKE_BASE}, timeout=(1.5, 4.0))
    return SmsConnector({**base, **config}, options)


def outbound(**kwargs) -> OutboundMessage:
    """An outbound message to the customer."""
    return OutboundMessage(
        contact_id=CUSTOMER,
        text=kwargs.pop("text", "Hi there"),
        reference="msg-1",
        **kwargs,
    )


def sent_fields(call) -> list[tuple[str, str]]:
    """The form fields of a recorded request, in order."""
    return parse_qsl(call.request.body, keep_blank_values=True)


@responses.activate
def test_send_from_number():
    responses.post(
        MESSAGES_URL,
        json={"sid": "SM" + "e" * 32, "status": "queued", "num_segments": "1"},
        status=201,
    )
    result = make_connector().send(outbound(options={"status_callback": CALLBACK}))
    assert result.ok
    assert result.external_id == "SM" + "e" * 32
    assert result.extra["status"] == "queued"
    (call,) = responses.calls
    assert sent_fields(call) == [
        ("To", CUSTOMER),
        ("Body", "Hi there"),
        ("From", OUR_NUMBER),
        ("StatusCallback", CALLBACK),
    ]
    expected_auth = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert call.request.headers["Authorization"] == expected_auth
    assert call.request.req_kwargs["timeout"] == (1.5, 4.0)


@responses.activate
def test_send_through_messaging_service_with_media():
    responses.post(MESSAGES_URL, json={"sid": "MM" + "f" * 32, "status": "accepted"}, status=201)
    connector = make_connector(messaging_service_sid="MG" + "b" * 32)
    attachments = (
        OutboundAttachment("a.jpg", "image/jpeg", url="https://files.example/a.jpg"),
        OutboundAttachment("b.pdf", "application/pdf", url="https://files.example/b.pdf"),
    )
    result = connector.send(outbound(attachments=attachments))
    assert result.ok and result.external_id == "MM" + "f" * 32
    fields = sent_fields(responses.calls[0])
    assert fields == [
        ("To", CUSTOMER),
        ("Body", "Hi there"),
        ("MessagingServiceSid", "MG" + "b" * 32),
        ("MediaUrl", "https://files.example/a.jpg"),
        ("MediaUrl", "https://files.example/b.pdf"),
    ]
    assert "From" not in dict(fields) and "StatusCallback" not in dict(fields)


@responses.activate
def test_send_media_only_omits_empty_body():
    responses.post(MESSAGES_URL, json={"sid": "MM1"}, status=201)
    attachment = OutboundAttachment("a.jpg", "image/jpeg", url="https://files.example/a.jpg")
    make_connector().send(outbound(text="", attachments=(attachment,)))
    assert "Body" not in dict(sent_fields(responses.calls[0]))


def test_send_refuses_attachment_without_url():
    attachment = OutboundAttachment("a.jpg", "image/jpeg", content=b"...")
    with responses.RequestsMock():  # any HTTP call would fail the test
        result = make_connector().send(outbound(attachments=(attachment,)))
    assert result.error.kind is ErrorKind.PERMANENT


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}, ErrorKind.OPTED_OUT),
        (400, {"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400}, ErrorKind.UNDELIVERABLE),
        (401, {"code": 20003, "message": "Authenticate", "status": 401}, ErrorKind.AUTH_FAILED),
        (400, {"code": 21606, "message": "The From phone number is not a valid...", "status": 400}, ErrorKind.PERMANENT),
        (503, {"code": 20503, "message": "Service unavailable", "status": 503}, ErrorKind.TRANSIENT),
        (500, None, ErrorKind.TRANSIENT),
    ],
)  # fmt: skip
@responses.activate
def test_send_error_classification(status, body, kind):
    if body is None:
        responses.post(MESSAGES_URL, body="<html>oops</html>", status=status)
    else:
        responses.post(MESSAGES_URL, json=body, status=status)
    result = make_connector().send(outbound())
    assert not result.ok
    assert result.error.kind is kind
    if body is not None:
        assert result.error.code == str(body["code"])


@responses.activate
def test_send_rate_limited_has_retry_after():
    responses.post(
        MESSAGES_URL,
        json={"code": 20429, "message": "Too Many Requests", "status": 429},
        status=429,
        headers={"Retry-After": "7"},
    )
    result = make_connector().send(outbound())
    assert result.error.kind is ErrorKind.TRANSIENT
    assert result.error.retry_after == 7.0


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        # never reached Twilio: safe to send again
        (requests.ConnectTimeout("slow"), ErrorKind.TRANSIENT),
        (
            requests.ConnectionError(
                urllib3.exceptions.MaxRetryError(
                    None, MESSAGES_URL, urllib3.exceptions.NewConnectionError(None, "refused")
                )
            ),
            ErrorKind.TRANSIENT,
        ),
        # sent, no answer: Twilio may have accepted it
        (requests.ReadTimeout("slow"), ErrorKind.UNKNOWN),
        (
            requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.")),
            ErrorKind.UNKNOWN,
        ),
    ],
)
@responses.activate
def test_send_network_failures(exc, kind):
    responses.post(MESSAGES_URL, body=exc)
    result = make_connector().send(outbound())
    assert result.error.kind is kind


@responses.activate
def test_send_default_base_url():
    url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    responses.post(url, json={"sid": "SM1"}, status=201)
    connector = SmsConnector({"number": OUR_NUMBER, "account_sid": ACCOUNT, "auth_token": TOKEN})
    assert connector.send(outbound()).external_id == "SM1"


@responses.activate
def test_media_download_uses_account_credentials():
    media = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/MM1/Media/ME1"
    responses.get(media, body=b"\xff\xd8jpeg", content_type="image/jpeg")
    connector = make_connector()
    assert connector.download_auth() == (ACCOUNT, TOKEN)
    form = {**SMS_FORM, "NumMedia": "1", "MediaUrl0": media, "MediaContentType0": "image/jpeg"}
    (message,) = connector.parse_inbound(form, NOW)
    downloaded = connector.download(message.attachments[0])
    assert downloaded.content == b"\xff\xd8jpeg" and downloaded.content_type == "image/jpeg"
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")


# --------------------------------------------------------------------------- connector


def test_registered_with_fields():
    assert connectors.get("sms") is SmsConnector
    fields = {f.name: f for f in SmsConnector.fields}
    assert not fields["provider"].required
    assert fields["number"].required and fields["account_sid"].required
    assert fields["auth_token"].secret
    assert not fields["messaging_service_sid"].required
    assert SmsConnector.secret_fields() == {"auth_token", "webhook_shared_key"}


def test_validate_config():
    good = {"number": "+1 415 555 0100", "account_sid": ACCOUNT, "auth_token": TOKEN}
    assert SmsConnector.validate_config(good) == []
    assert SmsConnector.validate_config({**good, "number": "123"}) == [
        "number must be a valid phone number in E.164 (+14155550100)"
    ]
    assert "auth_token is required" in SmsConnector.validate_config({**good, "auth_token": ""})
    assert SmsConnector.validate_config({**good, "provider": "carrier-pigeon"}) == [
        "provider must be one of: twilio"
    ]
    assert SmsConnector.identifiers(good) == {
        "number": "+14155550100",
        "account_sid": ACCOUNT,
        "provider": "twilio",
    }


def test_unknown_provider_is_refused():
    with pytest.raises(ValueError):
        SmsConnector({"provider": "carrier-pigeon", "number": OUR_NUMBER})


def test_connector_parses_through_provider():
    connector = make_connector()
    events = connector.parse_inbound({**SMS_FORM, "Body": "STOP"}, NOW)
    assert [type(e) for e in events] == [InboundMessage, OptOut]
    assert connector.parse_status(status_form("delivered")).status is DeliveryState.DELIVERED
