"""Messenger connector: verification, parsing and the Send API against a fake Graph."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import urllib3

import connectors
from connectors.base import (
    AttachmentRef,
    ConnectorOptions,
    ContactProfile,
    ConversationContext,
    DeliveryState,
    EchoedOutbound,
    ErrorKind,
    InboundMessage,
    OutboundAttachment,
    OutboundMessage,
    StatusUpdate,
)
from connectors.messenger import (
    MessengerConnector,
    check_signature,
    classify_graph_error,
    is_own_echo,
    page_ids,
    parse,
    split_text,
    verify_token_matches,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "messenger"
CORPUS = Path(__file__).parents[2].parent / "shared/corpus" / "messenger"

PAGE_A = "104800000000001"
PAGE_B = "104800000000002"
U1, U2, U3 = "7011000000000001", "7011000000000002", "7011000000000003"
GRAPH = "https://graph.test"
SEND_URL = f"{GRAPH}/v99.0/me/messages"
CONFIG = {
    "page_id": PAGE_A,
    "page_token": "EAAG-page-token",
    "app_secret": "s3cret",
    "verify_token": "verify-me",
    "app_id": "1517776481860111",
}


def fixture(name: str) -> Any:
    """Load one of our own JSON fixtures."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def ms(value: int) -> datetime:
    """Epoch milliseconds as aware UTC, computed independently of the connector."""
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def by_id(events: list[Any], external_id: str) -> Any:
    """The one message, echo or context with ``external_id`` (receipts excluded)."""
    (found,) = [
        e
        for e in events
        if not isinstance(e, StatusUpdate) and getattr(e, "external_id", None) == external_id
    ]
    return found


def connector(**option_changes: Any) -> MessengerConnector:
    """A connector pointed at the fake Graph."""
    options = {
        "base_urls": {"messenger_graph": GRAPH},
        "extra": {"messenger_graph_version": "v99.0"},
        "timeout": (3, 7),
    }
    options.update(option_changes)
    return MessengerConnector(dict(CONFIG), ConnectorOptions(**options), requests.Session())


def outbound(text: str = "Thanks, looking into it.", **kwargs: Any) -> OutboundMessage:
    """An outbound message to U1 with our reference."""
    return OutboundMessage(contact_id="7011000000000001", text=text, reference="sb:42", **kwargs)


def sent_body(call: Any) -> dict[str, Any]:
    """The JSON body of a recorded request."""
    return json.loads(call.request.body)


def query(call: Any) -> dict[str, list[str]]:
    """The query parameters of a recorded request."""
    return parse_qs(urlsplit(call.request.url).query)


def bearer(call: Any) -> str | None:
    """The token of the request's ``Authorization: Bearer`` header."""
    value = call.request.headers.get("Authorization") or ""
    return value.removeprefix("Bearer ") if value.startswith("Bearer ") else None


# --------------------------------------------------------------------------- registry


def test_registered_with_fields() -> None:
    """The channel registers itself with the inbox settings it needs."""
    assert connectors.get("messenger") is MessengerConnector
    assert MessengerConnector.display_name == "Facebook Messenger"
    names = {f.name: f for f in MessengerConnector.fields}
    assert set(names) == {
        "page_id",
        "page_token",
        "app_secret",
        "verify_token",
        "human_agent",
        "app_id",
    }
    assert MessengerConnector.secret_fields() == {"page_token", "app_secret", "verify_token"}
    assert not names["human_agent"].required and not names["app_id"].required
    assert names["page_id"].required
    assert MessengerConnector.identifiers(CONFIG) == {"page_id": PAGE_A, "app_id": CONFIG["app_id"]}
    assert MessengerConnector.validate_config({"page_id": PAGE_A}) == [
        "page_token is required",
        "app_secret is required",
        "verify_token is required",
    ]


# --------------------------------------------------------------------------- verification


def test_verify_token_matches() -> None:
    """The GET handshake token compares exactly; missing values never match."""
    assert verify_token_matches("verify-me", "verify-me")
    assert not verify_token_matches("verify-you", "verify-me")
    assert not verify_token_matches(None, "verify-me")
    assert not verify_token_matches("", "")
    assert not verify_token_matches("verify-me", "")
    assert verify_token_matches("tök€n", "tök€n")


def _sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_signature_good_bad_missing_prefix() -> None:
    """X-Hub-Signature-256 over raw bytes; everything else fails closed."""
    body = (FIXTURES / "batch_two_pages.json").read_bytes()
    good = _sign(body, "s3cret")
    assert check_signature(body, good, "s3cret")
    assert check_signature(body, good.upper().replace("SHA256=", "sha256="), "s3cret")
    assert not check_signature(body, _sign(body, "other"), "s3cret")
    assert not check_signature(body + b" ", good, "s3cret")
    assert not check_signature(body, None, "s3cret")
    assert not check_signature(body, "", "s3cret")
    assert not check_signature(body, good[len("sha256=") :], "s3cret")  # no prefix
    assert not check_signature(body, "sha1=" + good[len("sha256=") :], "s3cret")
    assert not check_signature(body, "sha256=", "s3cret")
    assert not check_signature(body, "sha256=zz" + good[9:], "s3cret")  # not hex
    assert not check_signature(body, good[:-2], "s3cret")  # truncated
    assert not check_signature(body, "sha256=ä" + good[8:], "s3cret")  # non-ASCII
    assert not check_signature(body, good, "")
    # Re-serialised JSON is not what Meta signed (escaped unicode, spacing).
    reserialised = json.dumps(json.loads(body)).encode()
    assert not check_signature(reserialised, good, "s3cret")


@pytest.fixture
def vectors() -> dict[str, Any]:
    """The corpus signature vectors (skip when the corpus is absent)."""
    path = CORPUS / "signature_vectors.json"
    if not path.exists():
        pytest.skip("shared corpus not available")
    return json.loads(path.read_text())


def test_signature_corpus_vectors(vectors: dict[str, Any]) -> None:
    """The recorded body verifies with its sha256 value and nothing else."""
    body = (CORPUS / vectors["body_file"]).read_bytes()
    assert len(body) == vectors["body_length"]
    secret = vectors["app_secret"]
    assert check_signature(body, vectors["x_hub_signature_256"], secret)
    assert not check_signature(body, vectors["x_hub_signature_256"], "wrong secret")
    assert not check_signature(body, vectors["x_hub_signature"], secret)  # sha1: not accepted
    assert not check_signature(body, vectors["negative_from_spec"]["x_hub_signature"], secret)
    assert not check_signature(body[:-1], vectors["x_hub_signature_256"], secret)
    events = parse(json.loads(body))
    assert [type(e) for e in events] == [InboundMessage]


def test_verify_token_corpus_vector(vectors: dict[str, Any]) -> None:
    """The corpus handshake: right token matches, anything else does not."""
    spec = vectors["verification_get_from_spec"]
    expected = spec["configured_verify_token"]
    assert verify_token_matches(spec["query"]["hub.verify_token"], expected)
    assert not verify_token_matches("wrong token", expected)


# --------------------------------------------------------------------------- parsing


@pytest.fixture
def batch_events(caplog: pytest.LogCaptureFixture) -> list[Any]:
    """Our two-Page batch, parsed."""
    with caplog.at_level(logging.INFO, logger="connectors.messenger"):
        return parse(fixture("batch_two_pages.json"))


def test_page_ids() -> None:
    """Routing keys: every entry id once, in order; lone events give their Page."""
    assert page_ids(fixture("batch_two_pages.json")) == [PAGE_A, PAGE_B]
    assert page_ids(fixture("field_value_postback.json")) == ["PAGE-ID"]
    assert page_ids({"entry": [{"id": 1}, {"id": "1"}]}) == ["1"]
    assert page_ids({"object": "page"}) == []
    assert page_ids([]) == []  # type: ignore[arg-type]


def test_text_with_quick_reply(batch_events: list[Any]) -> None:
    """Text, quick reply payload and the customer's send time."""
    msg = by_id(batch_events, "m_a_text_qr")
    assert msg == InboundMessage(
        inbox_key=PAGE_A,
        external_id="m_a_text_qr",
        contact_id="7011000000000001",
        sent_at=ms(1767225600000),
        text="Yes please",
        kind="quick_reply",
        context={"payload": "CONFIRM_ORDER_77"},
        raw=msg.raw,
    )
    assert msg.sent_at.tzinfo is not None and msg.sent_at.utcoffset().total_seconds() == 0
    assert msg.raw["message"]["mid"] == "m_a_text_qr"


def test_reply_to(batch_events: list[Any]) -> None:
    """reply_to.mid becomes reply_to_external_id."""
    msg = by_id(batch_events, "m_a_reply")
    assert msg.kind == "message"
    assert msg.reply_to_external_id == "m_a_earlier"


def test_every_attachment_type(batch_events: list[Any]) -> None:
    """Every attachment type is kept with url, title and extras; the sticker once."""
    msg = by_id(batch_events, "m_a_attachments")
    assert msg.text == ""
    kinds = [a.kind for a in msg.attachments]
    assert kinds == [
        "image",
        "video",
        "audio",
        "file",
        "location",
        "fallback",
        "fallback",
        "sticker",
        "reel",
        "ig_reel",
        "share",
        "template",
    ]
    image, video, audio, file, location, link, bare, sticker, reel, ig_reel, share, tmpl = (
        msg.attachments
    )
    assert image == AttachmentRef(kind="image", url="https://cdn.fbsbx.test/img.jpg")
    assert video.url.endswith("clip.mp4") and audio.url.endswith("voice.mp4")
    assert file.url == "https://cdn.fbsbx.test/invoice.pdf"
    assert location.title == "Pinned Location"
    assert location.extra["latitude"] == pytest.approx(52.520008)
    assert location.extra["longitude"] == pytest.approx(13.404954)
    assert location.url == "https://l.facebook.test/l.php?u=maps"
    assert link.title == "Switchboard docs" and link.url == "https://l.facebook.test/l.php?u=docs"
    assert bare == AttachmentRef(kind="fallback")
    assert sticker.extra["sticker_id"] == 369239263222822
    assert sticker.url == "https://cdn.fbsbx.test/sticker.png"
    assert reel.title == "Unboxing" and reel.extra["reel_video_id"] == "900100200"
    assert ig_reel.url.endswith("igreel.mp4")
    assert share.url.endswith("share.jpg")
    assert tmpl.url is None and tmpl.extra["product"]["elements"][0]["retailer_id"] == "SKU-1"


def test_legacy_sticker_is_an_image_with_sticker_id() -> None:
    """Before the sticker type, a sticker was an image with sticker_id."""
    body = _envelope(
        {
            "sender": {"id": "1"},
            "recipient": {"id": PAGE_A},
            "timestamp": 1767225600000,
            "message": {
                "mid": "m_thumb",
                "attachments": [
                    {"type": "image", "payload": {"url": "https://x.test/t.png", "sticker_id": 1}}
                ],
            },
        }
    )
    (msg,) = parse(body)
    assert [a.kind for a in msg.attachments] == ["sticker"]


def test_postbacks(batch_events: list[Any]) -> None:
    """Postbacks: title as text, payload and referral in context, stable ids."""
    with_mid = by_id(batch_events, "m_a_postback")
    assert with_mid.kind == "postback"
    assert with_mid.text == "Talk to a human"
    assert with_mid.context == {
        "payload": "HUMAN",
        "referral": {
            "ref": "spring-sale",
            "source": "ADS",
            "type": "OPEN_THREAD",
            "ad_id": "6045246247433",
        },
    }
    synthetic = by_id(batch_events, "postback:7011000000000002:1767225604000")
    assert synthetic.text == "Get Started"
    assert synthetic.context == {"payload": "GET_STARTED"}
    assert synthetic.sent_at == ms(1767225604000)
    # replaying the same body gives the same ids (dedupe works)
    again = parse(fixture("batch_two_pages.json"))
    assert by_id(again, "postback:7011000000000002:1767225604000") == synthetic


def test_echoes(batch_events: list[Any]) -> None:
    """Echoes swap sender and recipient; metadata and app_id come as strings."""
    ours = by_id(batch_events, "m_a_echo_ours")
    assert ours == EchoedOutbound(
        inbox_key=PAGE_A,
        external_id="m_a_echo_ours",
        contact_id="7011000000000001",
        sent_at=ms(1767225605000),
        text="We shipped it today.",
        metadata="sb:42",
        app_id="1517776481860111",
    )
    page_inbox = by_id(batch_events, "m_a_echo_page_inbox")
    assert page_inbox.contact_id == "7011000000000001"
    assert page_inbox.app_id == "263902037430900" and page_inbox.metadata is None
    assert page_inbox.attachments == (
        AttachmentRef(kind="image", url="https://cdn.fbsbx.test/reply.jpg"),
    )
    assert is_own_echo(ours, CONFIG)
    assert is_own_echo(ours, {})  # by metadata alone
    assert not is_own_echo(page_inbox, CONFIG)
    assert MessengerConnector.is_own_echo(page_inbox, {"app_id": 263902037430900})


def test_is_own_echo_by_app_id_only() -> None:
    """An echo without our metadata is ours when its app_id is our configured app."""
    echo = EchoedOutbound(PAGE_A, "m1", "u", ms(0), app_id="1517776481860111")
    assert is_own_echo(echo, CONFIG)
    assert not is_own_echo(echo, {"app_id": ""})
    assert not is_own_echo(EchoedOutbound(PAGE_A, "m2", "u", ms(0), metadata="other:1"), CONFIG)


def test_delivery_and_read(batch_events: list[Any]) -> None:
    """One DELIVERED per mid plus a watermark update; reads carry the watermark."""
    statuses = [e for e in batch_events if isinstance(e, StatusUpdate)]
    assert statuses == [
        StatusUpdate(PAGE_A, DeliveryState.DELIVERED, external_id="m_a_echo_ours", contact_id=U1),
        StatusUpdate(
            PAGE_A, DeliveryState.DELIVERED, external_id="m_a_echo_page_inbox", contact_id=U1
        ),
        StatusUpdate(PAGE_A, DeliveryState.DELIVERED, contact_id=U1, watermark=ms(1767225606500)),
        StatusUpdate(PAGE_A, DeliveryState.DELIVERED, contact_id=U2, watermark=ms(1767225603500)),
        StatusUpdate(PAGE_A, DeliveryState.READ, contact_id=U1, watermark=ms(1767225606900)),
    ]


def test_referral_and_reaction_become_context(batch_events: list[Any]) -> None:
    """messaging_referrals and reactions are conversation facts, not messages."""
    contexts = [e for e in batch_events if isinstance(e, ConversationContext)]
    referral = next(c for c in contexts if "referral" in c.data)
    assert referral == ConversationContext(
        inbox_key=PAGE_A,
        contact_id=U3,
        data={"referral": {"ref": "qr-counter", "source": "SHORTLINK", "type": "OPEN_THREAD"}},
        external_id=f"referral:{U3}:1767225608000",
        at=ms(1767225608000),
    )
    reaction = next(c for c in contexts if "reaction" in c.data)
    assert reaction.data["reaction"]["reaction"] == "love"


def test_second_page_and_standby(batch_events: list[Any]) -> None:
    """Each entry routes to its own Page; standby items are parsed and marked."""
    text = by_id(batch_events, "m_b_text")
    assert text.inbox_key == PAGE_B and text.text == "Hallo, äöå"
    assert text.sent_at == ms(1767225700000)  # string timestamp
    assert "standby" not in text.context
    standby = by_id(batch_events, "m_b_standby")
    assert standby.inbox_key == PAGE_B and standby.context == {"standby": True}
    echo = by_id(batch_events, "m_b_standby_echo")
    assert isinstance(echo, EchoedOutbound) and echo.contact_id == U3
    assert echo.app_id == "555000555"
    handover = [
        e
        for e in batch_events
        if isinstance(e, ConversationContext) and "pass_thread_control" in e.data
    ]
    assert handover[0].inbox_key == PAGE_B


def test_malformed_items_are_skipped_and_logged(
    batch_events: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Non-objects, missing sender/mid/entry id: skipped with a log line, the rest kept."""
    ids = {getattr(e, "external_id", None) for e in batch_events}
    assert "m_a_no_sender" not in ids and "m_orphan" not in ids
    assert not any(getattr(e, "text", None) == "no mid here" for e in batch_events)
    messages = " | ".join(r.getMessage() for r in caplog.get_records("setup"))
    assert "not an object" in messages
    assert "without a sender" in messages
    assert "without a mid" in messages
    assert "without a Page id" in messages
    assert all(r.name == "connectors.messenger" for r in caplog.get_records("setup"))
    # Page A: 5 inbound, 2 echoes, 5 receipts, referral, reaction; Page B: 4
    assert len([e for e in batch_events if e.inbox_key == PAGE_A]) == 14
    assert len([e for e in batch_events if e.inbox_key == PAGE_B]) == 4


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        "text",
        {},
        {"object": "page", "entry": "nope"},
        {"object": "page", "entry": [{"id": PAGE_A, "messaging": "nope"}]},
        {"object": "page", "entry": [{"id": PAGE_A, "messaging": [None, 1, []]}]},
        {"field": "messages", "value": {"recipient": {}}},
        {"field": "messages", "value": "x"},
        {"entry": [{"id": PAGE_A, "messaging": [{"sender": {"id": "1"}, "message": "x"}]}]},
        {"entry": [{"id": PAGE_A, "messaging": [{"sender": "1", "message": {"mid": "m"}}]}]},
        {"entry": [{"id": PAGE_A, "messaging": [{"sender": {"id": "1"}, "read": {}}]}]},
        {"entry": [{"id": PAGE_A, "messaging": [{"sender": {"id": "1"}, "delivery": {}}]}]},
        {"entry": [{"id": PAGE_A, "messaging": [{"sender": {"id": "1"}, "game_play": {}}]}]},
        {"entry": [{"id": PAGE_A, "messaging": [{"recipient": {"id": PAGE_A}, "app_roles": {}}]}]},
        {
            "entry": [
                {
                    "id": PAGE_A,
                    "messaging": [
                        {
                            "recipient": {"id": PAGE_A},
                            "timestamp": 1,
                            "policy_enforcement": {"action": "block", "reason": "spam"},
                        }
                    ],
                }
            ]
        },
        {
            "entry": [
                {
                    "id": PAGE_A,
                    "messaging": [
                        {"sender": {"id": "1"}, "message": {"mid": "m", "attachments": "x"}}
                    ],
                }
            ]
        },
    ],
)
def test_garbage_never_raises(payload: Any) -> None:
    """Whatever arrives, parse returns a list and never raises."""
    assert isinstance(parse(payload), list)


def test_field_value_postback_with_user_ref_and_string_seconds() -> None:
    """The dashboard test form: lone event, user_ref sender, timestamp as a string."""
    (msg,) = parse(fixture("field_value_postback.json"))
    assert msg.inbox_key == "PAGE-ID"
    assert msg.external_id == "m_MESSAGE-ID"
    assert msg.contact_id == "user_ref:USER-REF-ID"
    assert msg.kind == "postback" and msg.text == "TITLE-FOR-THE-CTA"
    assert msg.context["payload"] == "USER-DEFINED-PAYLOAD"
    assert msg.context["referral"]["source"] == "SHORT-URL"
    assert msg.sent_at == datetime(2018, 5, 27, 22, 23, 44, tzinfo=UTC)  # "1527459824" s


def test_field_value_message() -> None:
    """A lone ``messages`` event routes by its recipient."""
    (msg,) = parse(fixture("field_value_message.json"))
    assert (msg.inbox_key, msg.contact_id, msg.text) == ("23245", "12334", "test_message")


def test_field_value_echo_with_string_flags() -> None:
    """Lone echoes route by their sender (the Page); ``"true"`` strings count."""
    payload = {
        "field": "message_echoes",
        "value": {
            "sender": {"id": "PAGE-ID"},
            "recipient": {"id": "PSID"},
            "timestamp": "1767225600000",
            "message": {"is_echo": "true", "app_id": "42", "mid": "m_e", "text": "hi"},
        },
    }
    (echo,) = parse(payload)
    assert isinstance(echo, EchoedOutbound)
    assert (echo.inbox_key, echo.contact_id, echo.app_id) == ("PAGE-ID", "PSID", "42")
    assert echo.sent_at == ms(1767225600000)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1767225600123, ms(1767225600123)),
        ("1767225600123", ms(1767225600123)),
        ("1527459824", datetime(2018, 5, 27, 22, 23, 44, tzinfo=UTC)),
    ],
)
def test_timestamps(raw: Any, expected: datetime) -> None:
    """Epoch ms as int or string (seconds in the dashboard form) -> aware UTC."""
    (msg,) = parse(
        _envelope(
            {
                "sender": {"id": "1"},
                "recipient": {"id": PAGE_A},
                "timestamp": raw,
                "message": {"mid": "m", "text": "t"},
            }
        )
    )
    assert msg.sent_at == expected and msg.sent_at.tzinfo == UTC


def test_missing_timestamp_falls_back_to_entry_time() -> None:
    """A message without timestamp is dated by its entry."""
    body = _envelope({"sender": {"id": "1"}, "message": {"mid": "m", "text": "t"}})
    (msg,) = parse(body)
    assert msg.sent_at == ms(1767225600999)


def test_optin_without_sender_uses_user_ref() -> None:
    """Checkbox-plugin opt-ins name the person by optin.user_ref only."""
    body = _envelope(
        {
            "recipient": {"id": PAGE_A},
            "timestamp": 1767225600000,
            "optin": {"ref": "checkout", "user_ref": "abc123"},
        }
    )
    (ctx,) = parse(body)
    assert isinstance(ctx, ConversationContext)
    assert ctx.contact_id == "user_ref:abc123" and ctx.data["optin"]["ref"] == "checkout"


def _envelope(*items: dict[str, Any]) -> dict[str, Any]:
    """Wrap messaging items in a one-Page webhook body."""
    return {
        "object": "page",
        "entry": [{"id": PAGE_A, "time": 1767225600999, "messaging": list(items)}],
    }


# --------------------------------------------------------------------------- corpus


def _corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.glob("*.json") if p.name != "signature_vectors.json")


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not available")
@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.name)
def test_corpus_payload_parses(path: Path) -> None:
    """Every recorded payload parses without exception, as a body and as an item."""
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(parse(payload), list)
    assert isinstance(page_ids(payload), list)
    if "entry" not in payload:
        events = parse(_envelope(payload))
        for event in events:
            assert event.inbox_key == PAGE_A


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not available")
def test_corpus_semantics() -> None:
    """Spot checks on recorded payloads."""

    def load(name: str) -> dict[str, Any]:
        return json.loads((CORPUS / name).read_text(encoding="utf-8"))

    (msg,) = parse(_envelope(load("jgorset__message__payload.json")))
    assert (msg.text, msg.kind, msg.context) == (
        "Hello, bot!",
        "quick_reply",
        {"payload": "Hi, I am a quick reply!"},
    )
    assert msg.attachments == (AttachmentRef(kind="image", url="https://www.example.com/1.jpg"),)
    (loc,) = parse(_envelope(load("jgorset__message__location_payload.json")))
    assert loc.attachments[0].extra["latitude"] == pytest.approx(39.92077)
    (echo,) = parse(_envelope(load("jgorset__message_echo__payload.json")))
    assert isinstance(echo, EchoedOutbound) and echo.app_id == "184719329217930000"
    delivered = parse(_envelope(load("jgorset__delivery__payload.json")))
    assert [d.external_id for d in delivered] == [
        "mid.1457764197618:41d102a3e1ae206a38",
        "mid.1458668856218:ed81099e15d3f4f233",
        None,
    ]
    assert delivered[-1].watermark == ms(1458668856253)
    (postback,) = parse(_envelope(load("jgorset__postback__payload.json")))
    assert postback.external_id == "postback:3:1457764197627"
    assert postback.context["referral"]["ref"] == "my-ref-value"
    (text,) = parse(load("fbmessenger-api-hs__wsTextMessageRequest.json"))
    assert (text.inbox_key, text.contact_id, text.text) == ("111111", "USER_ID", "hello, world!")
    assert parse(_envelope(load("jgorset__policy_enforcement__payload.json"))) == []


# --------------------------------------------------------------------------- text splitting


def test_split_text() -> None:
    """Parts stay within 2,000 characters and break at whitespace."""
    assert split_text("hello") == ["hello"]
    assert split_text("") == [] and split_text("   ") == []
    assert split_text("x" * 2000) == ["x" * 2000]
    assert split_text("x" * 2001) == ["x" * 2000, "x"]
    words = " ".join(f"word{i:04d}" for i in range(500))  # 4,499 characters
    parts = split_text(words)
    assert len(parts) == 3 and all(len(p) <= 2000 for p in parts)
    assert " ".join(parts) == words
    assert all(not p.startswith(" ") and not p.endswith(" ") for p in parts)
    paragraphs = "a" * 1500 + "\n\n" + "b" * 1000
    assert split_text(paragraphs) == ["a" * 1500, "b" * 1000]
    emoji = "😀" * 1500  # 3,000 UTF-16 code units
    assert [len(p) for p in split_text(emoji)] == [1000, 500]


# --------------------------------------------------------------------------- sending


@responses.activate
def test_send_response_text() -> None:
    """A reply is a RESPONSE with our reference as metadata; the token in a header, not the URL."""
    responses.post(SEND_URL, json={"recipient_id": U1, "message_id": "m_sent_1"})
    result = connector().send(outbound())
    assert result.ok and result.external_id == "m_sent_1"
    assert result.external_ids == ("m_sent_1",)
    (call,) = responses.calls
    assert sent_body(call) == {
        "recipient": {"id": U1},
        "messaging_type": "RESPONSE",
        "message": {"text": "Thanks, looking into it.", "metadata": "sb:42"},
    }
    expected_proof = hmac.new(b"s3cret", b"EAAG-page-token", hashlib.sha256).hexdigest()
    assert query(call) == {"appsecret_proof": [expected_proof]}
    assert bearer(call) == "EAAG-page-token"
    assert "EAAG" not in call.request.url
    assert call.request.req_kwargs["timeout"] == (3, 7)


@responses.activate
def test_send_default_graph_url() -> None:
    """Without options the connector talks to graph.facebook.com, v25.0."""
    responses.post("https://graph.facebook.com/v25.0/me/messages", json={"message_id": "m_default"})
    conn = MessengerConnector(dict(CONFIG))
    assert conn.send(outbound()).external_id == "m_default"


@responses.activate
def test_send_human_agent_tag() -> None:
    """A HUMAN_AGENT send is a MESSAGE_TAG with the tag."""
    responses.post(SEND_URL, json={"message_id": "m_tagged"})
    result = connector().send(outbound(options={"tag": "HUMAN_AGENT"}))
    assert result.ok
    assert sent_body(responses.calls[0]) == {
        "recipient": {"id": U1},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
        "message": {"text": "Thanks, looking into it.", "metadata": "sb:42"},
    }


@pytest.mark.parametrize(
    "tag", ["CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE", "SOMETHING"]
)
@responses.activate
def test_send_refuses_retired_tags_without_calling(tag: str) -> None:
    """Retired (and unknown) tags are refused before any request."""
    result = connector().send(outbound(options={"tag": tag}))
    assert result.error.kind is ErrorKind.PERMANENT
    assert len(responses.calls) == 0


@responses.activate
def test_send_splits_long_text_in_order() -> None:
    """Text over 2,000 characters goes out as ordered parts, each with our metadata."""
    for i in (1, 2, 3):
        responses.post(SEND_URL, json={"message_id": f"m_part_{i}"})
    text = " ".join(f"word{i:04d}" for i in range(500))
    result = connector().send(outbound(text))
    assert result.external_id == "m_part_1"
    assert result.external_ids == ("m_part_1", "m_part_2", "m_part_3")
    bodies = [sent_body(c) for c in responses.calls]
    assert [b["message"]["text"] for b in bodies] == split_text(text)
    assert " ".join(b["message"]["text"] for b in bodies) == text
    assert all(b["message"]["metadata"] == "sb:42" for b in bodies)
    assert all(b["messaging_type"] == "RESPONSE" for b in bodies)


@responses.activate
def test_send_part_failure_fails_the_message() -> None:
    """All parts must succeed; the error names what was already sent."""
    responses.post(SEND_URL, json={"message_id": "m_part_1"})
    responses.post(
        SEND_URL,
        status=400,
        json={"error": {"message": "Temporary send message failure", "code": 1200}},
    )
    result = connector().send(outbound("a" * 2500))
    assert not result.ok and result.error.kind is ErrorKind.TRANSIENT
    assert result.extra == {"sent_external_ids": ["m_part_1"], "parts_sent": 1, "parts_total": 2}


@responses.activate
def test_send_attachments_after_text() -> None:
    """Attachments go by URL, one request each, after the text."""
    for i in (1, 2, 3, 4):
        responses.post(SEND_URL, json={"message_id": f"m_{i}"})
    message = outbound(
        "Here you go",
        attachments=(
            OutboundAttachment("photo.jpg", "image/jpeg", url="https://files.test/photo.jpg"),
            OutboundAttachment("invoice.pdf", "application/pdf", url="https://files.test/i.pdf"),
            OutboundAttachment("clip.mp4", "video/mp4", url="https://files.test/clip.mp4"),
        ),
    )
    result = connector().send(message)
    assert result.external_ids == ("m_1", "m_2", "m_3", "m_4")
    bodies = [sent_body(c) for c in responses.calls]
    assert bodies[0]["message"] == {"text": "Here you go", "metadata": "sb:42"}
    assert bodies[1] == {
        "recipient": {"id": U1},
        "messaging_type": "RESPONSE",
        "message": {
            "attachment": {
                "type": "image",
                "payload": {"url": "https://files.test/photo.jpg", "is_reusable": True},
            },
            "metadata": "sb:42",
        },
    }
    assert bodies[2]["message"]["attachment"]["type"] == "file"
    assert bodies[3]["message"]["attachment"]["type"] == "video"


@responses.activate
def test_send_attachment_only_and_without_url() -> None:
    """An attachment-only message works; one without URL is refused up front."""
    responses.post(SEND_URL, json={"message_id": "m_audio"})
    audio = OutboundAttachment("note.m4a", "audio/mp4", url="https://files.test/note.m4a")
    assert connector().send(outbound("", attachments=(audio,))).external_id == "m_audio"
    assert sent_body(responses.calls[0])["message"]["attachment"]["type"] == "audio"
    bytes_only = OutboundAttachment("a.txt", "text/plain", content=b"hi")
    result = connector().send(outbound("text", attachments=(bytes_only,)))
    assert result.error.kind is ErrorKind.PERMANENT and len(responses.calls) == 1
    assert connector().send(outbound("  ")).error.kind is ErrorKind.PERMANENT


@responses.activate
def test_send_to_user_ref_contact() -> None:
    """Chat Plugin contacts are addressed by user_ref."""
    responses.post(SEND_URL, json={"message_id": "m_ref"})
    msg = OutboundMessage(contact_id="user_ref:abc123", text="hi", reference="sb:7")
    assert connector().send(msg).ok
    assert sent_body(responses.calls[0])["recipient"] == {"user_ref": "abc123"}


def test_send_without_token_is_auth_failed() -> None:
    """No Page token: AUTH_FAILED, no request."""
    conn = MessengerConnector({"page_id": PAGE_A}, ConnectorOptions(), requests.Session())
    assert conn.send(outbound()).error.kind is ErrorKind.AUTH_FAILED


GRAPH_ERRORS = [
    (400, 10, 2018278, "This message is sent outside of allowed window.", ErrorKind.WINDOW_CLOSED),
    (400, 10, 2018065, "outside of allowed window", ErrorKind.WINDOW_CLOSED),
    (400, 10, None, "Application does not have permission", ErrorKind.WINDOW_CLOSED),
    (400, 551, 1545041, "This person isn't available right now.", ErrorKind.UNDELIVERABLE),
    (400, 190, 463, "Error validating access token", ErrorKind.AUTH_FAILED),
    (403, 200, None, "Permissions error", ErrorKind.AUTH_FAILED),
    (403, 230, None, "Permissions disallow message to user", ErrorKind.AUTH_FAILED),
    (400, 4, None, "Application request limit reached", ErrorKind.TRANSIENT),
    (400, 613, None, "Calls to this api have exceeded the rate limit.", ErrorKind.TRANSIENT),
    (400, 1200, None, "Temporary send message failure.", ErrorKind.TRANSIENT),
    (500, 2, None, "An unexpected error has occurred.", ErrorKind.TRANSIENT),
    (400, 100, 2018001, "No matching user found", ErrorKind.PERMANENT),
    (400, 100, None, "Invalid parameter", ErrorKind.PERMANENT),
    (
        400,
        368,
        1390008,
        "You are engaging in behavior that may be considered bothersome",
        ErrorKind.PERMANENT,
    ),
    (400, 9999, None, "Something new", ErrorKind.PERMANENT),
]


@pytest.mark.parametrize(("status", "code", "subcode", "text", "kind"), GRAPH_ERRORS)
@responses.activate
def test_send_error_classification(
    status: int, code: int, subcode: int | None, text: str, kind: ErrorKind
) -> None:
    """Graph's error object decides the kind; code is code/subcode, message Meta's text."""
    error: dict[str, Any] = {"message": text, "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "AbCdEf"
    responses.post(SEND_URL, status=status, json={"error": error})
    result = connector().send(outbound())
    assert not result.ok
    assert result.error.kind is kind
    assert result.error.code == (f"{code}/{subcode}" if subcode is not None else str(code))
    assert result.error.message == text


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, ErrorKind.TRANSIENT),
        (502, ErrorKind.TRANSIENT),
        (503, ErrorKind.TRANSIENT),
        (429, ErrorKind.TRANSIENT),
        (404, ErrorKind.PERMANENT),
        (401, ErrorKind.AUTH_FAILED),
    ],
)
@responses.activate
def test_send_http_errors_without_graph_body(status: int, kind: ErrorKind) -> None:
    """HTTP status alone when Graph sends no error object (e.g. an HTML 502)."""
    responses.post(SEND_URL, status=status, body="<html>bad gateway</html>")
    error = connector().send(outbound()).error
    assert error.kind is kind and error.code == f"http_{status}"


@responses.activate
def test_retry_after_header() -> None:
    """Retry-After is passed on for transient errors."""
    responses.post(
        SEND_URL,
        status=400,
        json={"error": {"message": "rate limit", "code": 613}},
        headers={"Retry-After": "30"},
    )
    error = connector().send(outbound()).error
    assert error.kind is ErrorKind.TRANSIENT and error.retry_after == 30.0


def test_business_use_case_usage_gives_retry_after() -> None:
    """Without Retry-After, a rate limit's estimated_time_to_regain_access (minutes) is used."""
    usage = json.dumps(
        {
            "104800000000001": [
                {"type": "messenger", "call_count": 100, "estimated_time_to_regain_access": 5}
            ]
        }
    )
    error = classify_graph_error(
        400, {"error": {"code": 4, "message": "limit"}}, {"X-Business-Use-Case-Usage": usage}
    )
    assert error.kind is ErrorKind.TRANSIENT and error.retry_after == 300


@pytest.mark.parametrize(
    ("exc", "kind", "code"),
    [
        (
            requests.exceptions.ConnectTimeout("connect timed out access_token=EAAG-page-token"),
            ErrorKind.TRANSIENT,
            "timeout",
        ),
        (
            requests.exceptions.ConnectionError(
                urllib3.exceptions.MaxRetryError(
                    None,
                    "/v99.0/me/messages?access_token=EAAG-page-token",
                    urllib3.exceptions.NewConnectionError(None, "Connection refused"),
                )
            ),
            ErrorKind.TRANSIENT,
            "network",
        ),
        (
            requests.exceptions.ReadTimeout("read timed out access_token=EAAG-page-token"),
            ErrorKind.UNKNOWN,
            "no_answer",
        ),
        (
            requests.exceptions.ConnectionError(
                "Connection aborted: /v99.0/me/messages?access_token=EAAG-page-token"
            ),
            ErrorKind.UNKNOWN,
            "no_answer",
        ),
    ],
)
@responses.activate
def test_network_failures(exc: Exception, kind: ErrorKind, code: str) -> None:
    """Not reached: retried. Sent without an answer: unknown, never re-sent blindly.

    The token never reaches the error message.
    """
    responses.post(SEND_URL, body=exc)
    error = connector().send(outbound()).error
    assert error.kind is kind and error.code == code
    assert "EAAG" not in error.message


@responses.activate
def test_success_without_message_id_is_an_error() -> None:
    """A 200 without message_id is not taken as delivered."""
    responses.post(SEND_URL, json={"recipient_id": U1})
    assert connector().send(outbound()).error.kind is ErrorKind.PERMANENT


# --------------------------------------------------------------------------- actions, profile


@pytest.mark.parametrize("action", ["typing_on", "typing_off", "mark_seen"])
@responses.activate
def test_send_action(action: str) -> None:
    """Sender actions carry only recipient and sender_action."""
    responses.post(SEND_URL, json={"recipient_id": U1})
    assert connector().send_action(U1, action).ok
    call = responses.calls[0]
    assert sent_body(call) == {"recipient": {"id": U1}, "sender_action": action}
    assert bearer(call) == "EAAG-page-token" and "access_token" not in query(call)


@responses.activate
def test_send_action_unknown_and_failed() -> None:
    """Unknown actions are refused without a call; Graph errors are returned."""
    assert connector().send_action(U1, "react").error.kind is ErrorKind.PERMANENT
    assert len(responses.calls) == 0
    responses.post(SEND_URL, status=400, json={"error": {"code": 551, "message": "gone"}})
    assert connector().send_action(U1, "typing_on").error.kind is ErrorKind.UNDELIVERABLE


@responses.activate
def test_fetch_profile() -> None:
    """The profile request asks for the four fields with token (header) and proof."""
    responses.get(
        f"{GRAPH}/v99.0/{U1}",
        json={
            "first_name": "Ada",
            "last_name": "Lovelace",
            "name": "Ada Lovelace",
            "profile_pic": "https://cdn.fbsbx.test/ada.jpg",
            "id": U1,
        },
    )
    profile = connector().fetch_profile(U1)
    assert profile == ContactProfile(
        name="Ada Lovelace", avatar_url="https://cdn.fbsbx.test/ada.jpg"
    )
    params = query(responses.calls[0])
    assert params["fields"] == ["first_name,last_name,name,profile_pic"]
    assert "access_token" not in params and bearer(responses.calls[0]) == "EAAG-page-token"
    assert params["appsecret_proof"] == [
        hmac.new(b"s3cret", b"EAAG-page-token", hashlib.sha256).hexdigest()
    ]


@responses.activate
def test_fetch_profile_name_from_parts() -> None:
    """Without ``name`` the first and last names are joined."""
    responses.get(f"{GRAPH}/v99.0/{U2}", json={"first_name": "Grace", "last_name": "Hopper"})
    assert connector().fetch_profile(U2).name == "Grace Hopper"


@pytest.mark.parametrize(
    "reply",
    [
        {"status": 400, "json": {"error": {"code": 100, "message": "no profile"}}},
        {"status": 500, "body": "oops"},
        {"status": 200, "body": "not json"},
        {"body": requests.exceptions.ReadTimeout("slow")},
        {"body": requests.exceptions.ConnectionError("down")},
    ],
)
@responses.activate
def test_fetch_profile_errors_give_none(reply: dict[str, Any]) -> None:
    """Any failure gives None, never an exception."""
    responses.get(f"{GRAPH}/v99.0/{U1}", **reply)
    assert connector().fetch_profile(U1) is None


def test_fetch_profile_user_ref_is_none() -> None:
    """Chat Plugin contacts have no profile to fetch (and no call is made)."""
    with responses.RequestsMock() as mock:
        assert connector().fetch_profile("user_ref:abc") is None
        assert len(mock.calls) == 0
