"""Instagram connector: its webhooks (Messenger's format with stories and seen receipts), the
Send API on graph.instagram.com, the error map and the live checks, against a fake Graph."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

import connectors
from connectors.base import (
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
from connectors.instagram import InstagramConnector

FIXTURES = Path(__file__).parents[1] / "fixtures" / "instagram"
ACCOUNT = "17841400000000001"
USER = "1780000000000001"
GRAPH = "https://graph.instagram.test"
SEND_URL = f"{GRAPH}/v99.0/me/messages"
CONFIG = {
    "account_id": ACCOUNT,
    "access_token": "IGAA-access-token",
    "app_secret": "ig-s3cret",
    "verify_token": "verify-me",
}


def batch() -> bytes:
    """Our fixture, shaped like Meta's Instagram messaging examples."""
    return (FIXTURES / "messaging_batch.json").read_bytes()


def events() -> list[Any]:
    return InstagramConnector.parse_webhook(batch(), datetime.now(UTC))


def mid(n: int) -> str:
    return f"aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx{n:02d}"


def by_id(found: list[Any], external_id: str) -> Any:
    (one,) = [e for e in found if getattr(e, "external_id", None) == external_id]
    return one


def connector(config: dict[str, Any] | None = None) -> InstagramConnector:
    options = ConnectorOptions(
        base_urls={"instagram_graph": GRAPH}, extra={"messenger_graph_version": "v99.0"}
    )
    return InstagramConnector(dict(config or CONFIG), options, requests.Session())


def outbound(text: str = "Yes, we ship to Porto.", **kwargs: Any) -> OutboundMessage:
    return OutboundMessage(contact_id=USER, text=text, reference="sb:42", **kwargs)


def sent(call: Any) -> dict[str, Any]:
    return json.loads(call.request.body)


def graph_error(code: int, subcode: int | None = None, message: str = "Graph said no") -> dict:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


# --------------------------------------------------------------------------- inbound


def test_registered_under_its_own_name() -> None:
    assert connectors.get("instagram") is InstagramConnector
    assert InstagramConnector.secret_fields() == {"access_token", "app_secret", "verify_token"}


def test_handshake_and_signature_fail_closed() -> None:
    args = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "42"}
    token, challenge = InstagramConnector.webhook_handshake(b"", args)
    assert challenge == "42" and InstagramConnector.accepts_handshake(CONFIG, token)
    assert not InstagramConnector.accepts_handshake(CONFIG, "another")
    raw = batch()
    good = "sha256=" + hmac.new(b"ig-s3cret", raw, hashlib.sha256).hexdigest()
    ig = connector()
    assert ig.verify_webhook(raw, "", {"X-Hub-Signature-256": good})
    assert not ig.verify_webhook(raw + b" ", "", {"X-Hub-Signature-256": good})
    assert not ig.verify_webhook(raw, "", {})
    assert not connector({**CONFIG, "app_secret": ""}).verify_webhook(
        raw, "", {"X-Hub-Signature-256": good}
    )


def test_routed_by_the_instagram_account_id() -> None:
    assert InstagramConnector.webhook_route_keys(batch(), {}) == [ACCOUNT]


def test_text_with_meta_timestamp() -> None:
    msg = by_id(events(), mid(1))
    assert isinstance(msg, InboundMessage)
    assert (msg.inbox_key, msg.contact_id, msg.text) == (ACCOUNT, USER, "Do you ship to Porto?")
    assert msg.sent_at == datetime(2025, 11, 29, 7, 6, 40, tzinfo=UTC)  # 1764400000000 ms


def test_story_reply_keeps_the_story_link_and_never_downloads_it() -> None:
    msg = by_id(events(), mid(2))
    assert msg.text == "Is this one still available?"
    (story,) = msg.attachments
    assert story.kind == "story" and story.title == "Replied to your story"
    assert story.url.startswith("https://lookaside.fbsbx.com/") and "asset_id=180001" in story.url
    assert story.extra == {"story_id": "3400000000000000001"}
    assert msg.context["story_reply"]["id"] == "3400000000000000001"


def test_story_mention_is_a_story_link() -> None:
    msg = by_id(events(), mid(3))
    (story,) = msg.attachments
    assert (story.kind, story.title) == ("story", "Mentioned you in their story")
    assert "asset_id=180002" in story.url


def test_every_attachment_type() -> None:
    msg = by_id(events(), mid(4))
    kinds = [(a.kind, a.url.rsplit("=", 1)[-1]) for a in msg.attachments]
    assert kinds == [
        ("image", "180003"),
        ("video", "180004"),
        ("audio", "180005"),
        ("file", "180006"),
        ("share", "180007"),
        ("ig_reel", "180008"),
    ]
    reel = msg.attachments[-1]
    assert reel.title == "New colours are in" and reel.extra["reel_video_id"] == "18000000000000007"


def test_reaction_is_context_on_the_conversation() -> None:
    (reaction,) = [e for e in events() if isinstance(e, ConversationContext)]
    assert reaction.contact_id == USER
    assert reaction.data["reaction"]["emoji"] == "\u2764\ufe0f"
    assert reaction.data["reaction"]["mid"] == mid(90)


def test_echo_from_the_instagram_app_is_outbound_without_metadata() -> None:
    (echo,) = [e for e in events() if isinstance(e, EchoedOutbound)]
    assert echo.external_id == mid(91)
    assert isinstance(echo, EchoedOutbound)
    assert (echo.contact_id, echo.text, echo.metadata) == (USER, "Yes, we ship to Portugal.", None)


def test_seen_receipt_names_the_message_and_the_time_it_was_seen() -> None:
    (read,) = [e for e in events() if isinstance(e, StatusUpdate)]
    assert read.status is DeliveryState.READ
    assert (read.external_id, read.contact_id) == (mid(91), USER)
    assert read.watermark == datetime(2025, 11, 29, 7, 6, 46, tzinfo=UTC)


def test_postback_from_an_ice_breaker() -> None:
    tap = by_id(events(), mid(8))
    assert (tap.kind, tap.text, tap.context["payload"]) == ("postback", "Track my order", "TRACK")


# --------------------------------------------------------------------------- outbound


@responses.activate
def test_reply_inside_the_window_is_a_response_with_the_token_only() -> None:
    responses.post(SEND_URL, json={"recipient_id": USER, "message_id": "m_ig_1"})
    result = connector().send(outbound())
    assert result.ok and result.external_id == "m_ig_1"
    (call,) = responses.calls
    assert sent(call) == {
        "recipient": {"id": USER},
        "messaging_type": "RESPONSE",
        "message": {"text": "Yes, we ship to Porto."},
    }
    assert call.request.headers["Authorization"] == "Bearer IGAA-access-token"
    assert "appsecret_proof" not in parse_qs(urlsplit(call.request.url).query)


@responses.activate
def test_human_agent_reply_carries_the_tag() -> None:
    responses.post(SEND_URL, json={"message_id": "m_ig_2"})
    assert connector().send(outbound(options={"tag": "HUMAN_AGENT"})).ok
    body = sent(responses.calls[0])
    assert (body["messaging_type"], body["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")


@responses.activate
def test_other_tags_are_refused_before_any_call() -> None:
    result = connector().send(outbound(options={"tag": "ACCOUNT_UPDATE"}))
    assert result.error.code == "retired_tag" and len(responses.calls) == 0


@responses.activate
def test_attachments_go_by_url_one_message_each() -> None:
    responses.post(SEND_URL, json={"message_id": "m_ig_3"})
    responses.post(SEND_URL, json={"message_id": "m_ig_4"})
    pdf = OutboundAttachment(
        filename="size-chart.pdf", url="https://sb.example/a/1", content_type="application/pdf"
    )
    result = connector().send(outbound(attachments=(pdf,)))
    assert result.external_ids == ("m_ig_3", "m_ig_4")
    assert sent(responses.calls[1])["message"]["attachment"]["type"] == "file"


@pytest.mark.parametrize(
    ("code", "subcode", "kind"),
    [
        (190, None, ErrorKind.AUTH_FAILED),  # token expired: the inbox needs reconnecting
        (190, 463, ErrorKind.AUTH_FAILED),
        (10, 2018278, ErrorKind.WINDOW_CLOSED),
        (100, 2018278, ErrorKind.WINDOW_CLOSED),
        (4, None, ErrorKind.TRANSIENT),
        (613, None, ErrorKind.TRANSIENT),
        (100, 2018001, ErrorKind.PERMANENT),
    ],
)
@responses.activate
def test_graph_errors(code: int, subcode: int | None, kind: ErrorKind) -> None:
    responses.post(SEND_URL, status=400, json=graph_error(code, subcode, "Session has expired"))
    error = connector().send(outbound()).error
    assert error.kind is kind
    assert error.message == "Session has expired"


@responses.activate
def test_rate_limit_waits_as_told() -> None:
    responses.post(SEND_URL, status=429, json=graph_error(4), headers={"Retry-After": "30"})
    error = connector().send(outbound()).error
    assert (error.kind, error.retry_after) == (ErrorKind.TRANSIENT, 30)


@responses.activate
def test_profile_falls_back_to_the_username() -> None:
    responses.get(
        f"{GRAPH}/v99.0/{USER}", json={"username": "ana.porto", "profile_pic": "https://x"}
    )
    assert connector().fetch_profile(USER) == ContactProfile(
        name="ana.porto", avatar_url="https://x"
    )
    assert "username" in parse_qs(urlsplit(responses.calls[0].request.url).query)["fields"][0]


# --------------------------------------------------------------------------- live checks


@responses.activate
def test_checks_token_account_and_subscription() -> None:
    responses.get(f"{GRAPH}/v99.0/me", json={"user_id": ACCOUNT, "username": "shop.porto"})
    responses.get(
        f"{GRAPH}/v99.0/me/subscribed_apps",
        json={"data": [{"subscribed_fields": ["messages", "messaging_seen"]}]},
    )
    checks = connector().check_credentials()
    assert [(c.name, c.ok, c.warning) for c in checks] == [
        ("access_token", True, False),
        ("subscription", True, False),
    ]
    assert "@shop.porto" in checks[0].message


@responses.activate
def test_a_token_for_another_account_points_at_the_account_id() -> None:
    responses.get(f"{GRAPH}/v99.0/me", json={"user_id": "17841400000000777", "username": "other"})
    (check,) = connector().check_credentials()
    assert (check.ok, check.field) == (False, "account_id")
    assert "@other" in check.message


@responses.activate
def test_an_expired_token_fails_the_check() -> None:
    responses.get(f"{GRAPH}/v99.0/me", status=400, json=graph_error(190, None, "Session expired"))
    (check,) = connector().check_credentials()
    assert (check.ok, check.field) == (False, "access_token")
    assert "Session expired" in check.message


@responses.activate
def test_subscription_without_messages_fails_and_unreadable_warns() -> None:
    responses.get(f"{GRAPH}/v99.0/me", json={"user_id": ACCOUNT, "username": "shop.porto"})
    responses.get(
        f"{GRAPH}/v99.0/me/subscribed_apps", json={"data": [{"subscribed_fields": ["comments"]}]}
    )
    assert connector().check_credentials()[-1].ok is False
    responses.replace(
        responses.GET, f"{GRAPH}/v99.0/me/subscribed_apps", status=400, json=graph_error(3)
    )
    last = connector().check_credentials()[-1]
    assert last.ok and last.warning


@responses.activate
def test_provision_subscribes_the_account() -> None:
    responses.post(f"{GRAPH}/v99.0/me/subscribed_apps", json={"success": True})
    (check,) = connector().provision({})
    assert check.ok
    fields = parse_qs(urlsplit(responses.calls[0].request.url).query)["subscribed_fields"][0]
    assert fields.split(",")[:2] == ["messages", "messaging_seen"]
