"""The WhatsApp connector alone: webhook bodies shaped like Meta's published examples in,
Cloud API bodies and error classifications out."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import responses

from connectors.base import (
    AttachmentRef,
    AttachmentTooLarge,
    ConnectorOptions,
    DeliveryState,
    ErrorKind,
    InboundMessage,
    OutboundAttachment,
    OutboundMessage,
    StatusUpdate,
    UnreadableBody,
)
from connectors.whatsapp import WhatsAppConnector, classify, parse, phone_number_ids
from tests.channels.whatsapp_fake import signature

NUMBER = "106540352242922"
META = {"display_phone_number": "15550783881", "phone_number_id": NUMBER}
GRAPH = "http://whatsapp.fake"


def body(*messages, statuses=None, contacts=None, number=NUMBER) -> dict:
    value = {"messaging_product": "whatsapp", "metadata": {**META, "phone_number_id": number}}
    if messages:
        value["contacts"] = contacts or [
            {"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}
        ]
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = statuses
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def msg(
    kind: str,
    content=None,
    wamid="wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
    **extra,
):
    out = {"from": "16505551234", "id": wamid, "timestamp": "1749416383", "type": kind, **extra}
    if content is not None:
        out[kind] = content
    return out


def one(payload) -> InboundMessage:
    (ev,) = parse(payload)
    assert isinstance(ev, InboundMessage)
    return ev


def test_a_text_is_routed_by_phone_number_id_with_metas_time_and_the_profile():
    payload = body(msg("text", {"body": "Does it come in another color?"}))
    assert phone_number_ids(payload) == [NUMBER]
    ev = one(payload)
    assert ev.inbox_key == NUMBER
    assert ev.contact_id == "+16505551234"  # E.164, the same as an SMS identity
    assert ev.contact_name == "Sheena Nelson"
    assert ev.text == "Does it come in another color?"
    assert ev.sent_at == datetime.fromtimestamp(1749416383, tz=UTC)


@pytest.mark.parametrize(
    ("kind", "content", "attachment_kind", "text"),
    [
        (
            "image",
            {"caption": "Blue?", "mime_type": "image/jpeg", "sha256": "a", "id": "111"},
            "image",
            "Blue?",
        ),
        (
            "audio",
            {"mime_type": "audio/ogg; codecs=opus", "sha256": "a", "id": "112", "voice": True},
            "audio",
            "",
        ),
        ("video", {"mime_type": "video/mp4", "sha256": "a", "id": "113"}, "video", ""),
        (
            "document",
            {"filename": "invoice.pdf", "mime_type": "application/pdf", "sha256": "a", "id": "114"},
            "file",
            "",
        ),
        (
            "sticker",
            {"mime_type": "image/webp", "sha256": "a", "id": "115", "animated": False},
            "sticker",
            "",
        ),
    ],
)
def test_media_arrive_as_ids_fetched_later(kind, content, attachment_kind, text):
    ev = one(body(msg(kind, content)))
    (att,) = ev.attachments
    assert att.kind == attachment_kind
    assert att.url == f"whatsapp-media:{content['id']}"
    assert att.content_type == content["mime_type"].split(";")[0]
    assert ev.text == text
    if kind == "document":
        assert att.filename == "invoice.pdf"


def test_location_contacts_interactive_button_reaction_and_order():
    location = one(
        body(
            msg(
                "location",
                {
                    "latitude": 37.48,
                    "longitude": -122.14,
                    "name": "Philz Coffee",
                    "address": "101 Forest Ave, Palo Alto",
                },
            )
        )
    )
    (pin,) = location.attachments
    assert pin.kind == "location" and pin.extra["latitude"] == 37.48
    assert location.text == "Philz Coffee, 101 Forest Ave, Palo Alto"

    card = {
        "name": {"formatted_name": "Barbara Johnson", "first_name": "Barbara"},
        "phones": [{"phone": "+1 (940) 555-1234", "wa_id": "19405551234", "type": "MOBILE"}],
    }
    contacts = one(body(msg("contacts", None, contacts=[card])))
    assert contacts.text == "Barbara Johnson: +1 (940) 555-1234"

    button = one(
        body(
            msg(
                "interactive",
                {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes please"}},
            )
        )
    )
    assert (button.kind, button.text, button.context["payload"]) == (
        "quick_reply",
        "Yes please",
        "yes",
    )
    listed = one(
        body(
            msg(
                "interactive",
                {
                    "type": "list_reply",
                    "list_reply": {"id": "s1", "title": "Small", "description": "Fits 1-2"},
                },
            )
        )
    )
    assert listed.text == "Small\nFits 1-2"
    template_button = one(body(msg("button", {"payload": "STOP", "text": "Stop promotions"})))
    assert template_button.text == "Stop promotions"

    reaction = one(body(msg("reaction", {"message_id": "wamid.OUT1", "emoji": "\U0001f44d"})))
    assert reaction.kind == "reaction" and reaction.text == "\U0001f44d"
    assert (
        reaction.reply_to_external_id == "wamid.OUT1"
        and reaction.context["reaction"]["message_id"] == "wamid.OUT1"
    )

    order = one(
        body(
            msg(
                "order",
                {
                    "catalog_id": "1",
                    "text": "Gift wrap",
                    "product_items": [
                        {
                            "product_retailer_id": "SKU-1",
                            "quantity": 2,
                            "item_price": 12.5,
                            "currency": "USD",
                        }
                    ],
                },
            )
        )
    )
    assert order.text == "Order:\nGift wrap\n2 x SKU-1 (12.5 USD)"

    system = one(
        body(
            msg(
                "system",
                {
                    "body": "NAME changed from 1 650 555 1234 to 1 650 555 5678",
                    "wa_id": "16505555678",
                    "type": "user_changed_number",
                },
            )
        )
    )
    assert system.text.startswith("NAME changed from")


def test_a_reply_names_the_quoted_message_and_an_unknown_type_blocks_nothing():
    reply = msg(
        "text", {"body": "That one"}, context={"from": "15550783881", "id": "wamid.OUT-question"}
    )
    unknown = msg("poll_v9", {"question": "?"}, wamid="wamid.poll")
    broken = {"from": "16505551234", "type": "text"}  # no id: logged, skipped
    events = parse(body(unknown, broken, reply))
    assert [e.external_id for e in events] == ["wamid.poll", reply["id"]]
    assert "unsupported WhatsApp message: poll_v9" in events[0].text
    assert events[1].reply_to_external_id == "wamid.OUT-question"


def test_statuses_and_metas_failure_reason():
    errors = [
        {
            "code": 131047,
            "title": "Re-engagement message",
            "message": "Re-engagement message",
            "error_data": {"details": "More than 24 hours have passed."},
        }
    ]
    events = parse(
        body(
            statuses=[
                {
                    "id": "wamid.1",
                    "status": "delivered",
                    "timestamp": "1749416400",
                    "recipient_id": "16505551234",
                },
                {
                    "id": "wamid.2",
                    "status": "failed",
                    "timestamp": "1749416400",
                    "recipient_id": "16505551234",
                    "errors": errors,
                    "biz_opaque_callback_data": "sb:77",
                },
                {"id": "wamid.3", "status": "deleted"},
            ]
        )
    )
    delivered, failed = events
    assert isinstance(delivered, StatusUpdate) and delivered.status is DeliveryState.DELIVERED
    assert failed.status is DeliveryState.FAILED and failed.reference == "77"
    assert failed.error.kind is ErrorKind.WINDOW_CLOSED and failed.error.code == "131047"
    assert "Re-engagement message" in failed.error.message


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        (131047, 400, ErrorKind.WINDOW_CLOSED),
        (131026, 400, ErrorKind.UNDELIVERABLE),
        (131056, 400, ErrorKind.TRANSIENT),
        (130429, 400, ErrorKind.TRANSIENT),
        (190, 401, ErrorKind.AUTH_FAILED),
        (368, 400, ErrorKind.PERMANENT),
        (131051, 400, ErrorKind.PERMANENT),
        (100, 400, ErrorKind.PERMANENT),
    ],
)
def test_error_map(code, status, kind):
    err = classify(status, {"error": {"message": f"(#{code}) text", "code": code}})
    assert err.kind is kind and err.code == str(code)
    if kind is ErrorKind.TRANSIENT:
        assert err.retry_after is None or err.retry_after > 0


def test_webhook_contract_signature_and_unreadable_bodies():
    raw = json.dumps(body(msg("text", {"body": "hi"}))).encode()
    conn = WhatsAppConnector({"app_secret": "s3cret"})
    assert conn.verify_webhook(raw, "", {"X-Hub-Signature-256": signature(raw, "s3cret")})
    assert not conn.verify_webhook(raw, "", {"X-Hub-Signature-256": signature(raw, "other")})
    assert not conn.verify_webhook(raw, "", {})
    assert not WhatsAppConnector({}).verify_webhook(
        raw, "", {"X-Hub-Signature-256": signature(raw, "")}
    )
    with pytest.raises(UnreadableBody):
        WhatsAppConnector.webhook_route_keys(b"[1]", {})
    assert WhatsAppConnector.webhook_handshake(
        b"", {"hub.mode": "subscribe", "hub.verify_token": "v", "hub.challenge": "c"}
    ) == ("v", "c")


def connector(**config) -> WhatsAppConnector:
    options = ConnectorOptions(
        base_urls={"whatsapp_graph": GRAPH},
        attachment_hosts=("http://whatsapp.fake",),
        max_attachment_bytes=1000,
    )
    return WhatsAppConnector(
        {"phone_number_id": NUMBER, "waba_id": "9", "access_token": "tok", **config}, options
    )


@responses.activate
def test_sends_text_then_uploaded_file_with_our_reference():
    url = f"{GRAPH}/v25.0/{NUMBER}/messages"
    responses.add(responses.POST, url, json={"messages": [{"id": "wamid.A"}]})
    responses.add(responses.POST, url, json={"messages": [{"id": "wamid.B"}]})
    responses.add(responses.POST, f"{GRAPH}/v25.0/{NUMBER}/media", json={"id": "up-1"})
    file = OutboundAttachment("a.pdf", "application/pdf", url=None, content=b"%PDF-1.4")
    result = connector().send(OutboundMessage("+16505551234", "Here", "sb:5", attachments=(file,)))
    assert result.ok and result.external_ids == ("wamid.A", "wamid.B")
    sends = [json.loads(c.request.body) for c in responses.calls if c.request.url == url]
    assert sends[0] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505551234",
        "biz_opaque_callback_data": "sb:5",
        "type": "text",
        "text": {"preview_url": False, "body": "Here"},
    }
    assert sends[1]["document"] == {"id": "up-1", "filename": "a.pdf"}
    assert all(c.request.headers["Authorization"] == "Bearer tok" for c in responses.calls)


@responses.activate
def test_media_download_looks_up_the_url_and_honours_the_size_cap():
    responses.add(
        responses.GET,
        f"{GRAPH}/v25.0/m1",
        json={"url": f"{GRAPH}/cdn/?mid=m1", "mime_type": "image/jpeg", "file_size": "5"},
    )
    responses.add(responses.GET, f"{GRAPH}/cdn/", body=b"\xff\xd8abc")
    got = connector().download(AttachmentRef(kind="image", url="whatsapp-media:m1"))
    assert got.content == b"\xff\xd8abc" and got.content_type == "image/jpeg"
    assert responses.calls[1].request.headers["Authorization"] == "Bearer tok"
    responses.add(
        responses.GET,
        f"{GRAPH}/v25.0/m2",
        json={"url": f"{GRAPH}/cdn/?mid=m2", "file_size": "5000"},
    )
    with pytest.raises(AttachmentTooLarge):
        connector().download(AttachmentRef(kind="video", url="whatsapp-media:m2"))


@responses.activate
def test_live_checks_name_the_number_and_a_refused_token():
    responses.add(
        responses.GET,
        f"{GRAPH}/v25.0/{NUMBER}",
        json={"display_phone_number": "+1 555-078-3881", "verified_name": "Acme"},
    )
    responses.add(responses.GET, f"{GRAPH}/v25.0/9/subscribed_apps", json={"data": []})
    checks = connector().check_credentials()
    assert [c.ok for c in checks] == [True, True, True]
    assert "+1 555-078-3881 (Acme)" in checks[1].message and checks[2].warning
    responses.replace(
        responses.GET,
        f"{GRAPH}/v25.0/{NUMBER}",
        status=401,
        json={"error": {"message": "Error validating access token", "code": 190}},
    )
    (bad,) = connector().check_credentials()
    assert not bad.ok and bad.field == "access_token" and "validating access token" in bad.message
