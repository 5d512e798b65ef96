"""WhatsApp end to end: signed webhooks in, the JSON API, the worker, a fake Cloud API.

Everything goes through the boundaries a user or Meta would use: signed POSTs to
``/webhooks/whatsapp``, the JSON API with a bearer token, and the delivery worker
talking to a fake Graph at ``WHATSAPP_GRAPH_URL`` (``tests/channels/whatsapp_fake.py``).
"""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from app.runtime.worker import run_once
from tests.channels import harness
from tests.channels import whatsapp_fake as wa
from tests.files import png

HOUR = 3600


@pytest.fixture
def graph(app, provider) -> wa.FakeGraph:
    """The fake Cloud API."""
    return wa.FakeGraph(
        provider, app.config["WHATSAPP_GRAPH_URL"], app.config["MESSENGER_GRAPH_VERSION"]
    )


@pytest.fixture
def lead(make):
    return make.user("lead", name="Lea Lead")


@pytest.fixture
def api(client, make, lead) -> harness.Api:
    return harness.Api(client, make.headers(lead))


@pytest.fixture
def inbox_id(make) -> int:
    inbox = make.inbox(
        "whatsapp",
        phone_number_id=wa.NUMBER_ID,
        waba_id=wa.WABA_ID,
        access_token=wa.TOKEN,
        app_secret=wa.SECRET,
        verify_token=wa.VERIFY,
    )
    return inbox.id


def post(client, payload, secret: str | None = wa.SECRET):
    resp = wa.signed(payload, secret).send(client)
    return resp


def customer_writes(client, api, body="Hello?", ts=None, wamid=None) -> dict:
    """A text arrives; returns the conversation."""
    resp = post(client, wa.messages(wa.text(body, wamid, ts)))
    assert resp.status_code == 200, resp.data
    return api.only_conversation()


# --------------------------------------------------------------------------- inbound


def test_verify_handshake_echoes_the_challenge_only_for_our_token(client, inbox_id):
    ok = client.get(
        "/webhooks/whatsapp",
        query_string={
            "hub.mode": "subscribe",
            "hub.verify_token": wa.VERIFY,
            "hub.challenge": "42",
        },
    )
    assert ok.status_code == 200 and ok.get_data(as_text=True) == "42"
    bad = client.get(
        "/webhooks/whatsapp",
        query_string={"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "42"},
    )
    assert bad.status_code == 403 and b"42" not in bad.data


def test_text_image_and_interactive_reply_arrive_with_metas_time_and_the_profile(
    client, api, inbox_id, graph, provider
):
    picture = b"\x89PNG\r\n\x1a\n" + b"p" * 300
    graph.media["media-1"] = (picture, "image/png")
    sent = int(time.time()) - 2 * HOUR  # Meta's timestamp, not the webhook's arrival
    body = wa.messages(
        wa.text("Does it come in blue?", "wamid.in1", ts=sent),
        wa.message(
            "image",
            {"mime_type": "image/png", "sha256": "x", "id": "media-1", "caption": "This one"},
            "wamid.in2",
            ts=sent + 1,
        ),
        wa.message(
            "interactive",
            {"type": "button_reply", "button_reply": {"id": "yes-blue", "title": "Yes, blue"}},
            "wamid.in3",
            ts=sent + 2,
            context={"from": wa.DISPLAY, "id": "wamid.OUT-question"},
        ),
    )
    resp = post(client, body)
    assert resp.status_code == 200 and resp.get_json()["stored"] == 3
    # the webhook answered without fetching the picture: the worker does
    assert not [c for c in provider.calls if "lookaside" in c.url or "media-1" in c.url]

    conv = api.only_conversation()
    assert conv["contact"]["name"] == wa.NAME
    assert [(i["channel"], i["external_id"]) for i in conv["contact"]["identities"]] == [
        ("whatsapp", wa.E164)
    ]
    expires = datetime.fromisoformat(conv["reply_window"]["expires_at"].replace("Z", "+00:00"))
    assert expires == datetime.fromtimestamp(sent + 2 + 24 * HOUR, tz=UTC)
    first, image, button = api.messages(conv["id"])
    assert first["body"] == "Does it come in blue?"
    assert image["body"] == "This one"
    assert image["attachments"][0]["state"] == "pending"
    assert button["body"] == "Yes, blue"

    run_once()

    (att,) = api.messages(conv["id"])[1]["attachments"]
    assert att["state"] == "stored" and att["size"] == len(picture)
    with client.get(att["url"], headers=api.headers) as got:
        assert got.status_code == 200 and got.data == picture
    fetched = [c for c in provider.calls if "lookaside" in c.url]
    assert fetched and fetched[0].headers["Authorization"] == f"Bearer {wa.TOKEN}"


def test_an_unsupported_message_is_shown_as_such_and_blocks_nothing(client, api, inbox_id):
    unknown = wa.message(
        "unsupported",
        None,
        "wamid.odd",
        errors=[
            {
                "code": 131051,
                "title": "Message type unknown",
                "message": "Message type unknown",
                "error_data": {"details": "Message type is currently not supported."},
            }
        ],
    )
    resp = post(client, wa.messages(unknown, wa.text("Did you get my poll?", "wamid.after")))
    assert resp.status_code == 200 and resp.get_json()["stored"] == 2
    conv = api.only_conversation()
    odd, after = api.messages(conv["id"])
    assert "unsupported" in odd["body"] and "Message type unknown" in odd["body"]
    assert after["body"] == "Did you get my poll?"


# --------------------------------------------------------------------------- outbound


def test_a_reply_in_the_window_goes_out_as_a_whatsapp_message_and_marks_read(
    client, api, inbox_id, graph
):
    conv = customer_writes(client, api, "Where is my order?", wamid="wamid.q1")
    queued = api.reply(conv["id"], "It left our warehouse today.")
    run_once()
    (body,) = graph.sends()
    assert body["messaging_product"] == "whatsapp"
    assert body["to"] == wa.WA_ID
    assert body["type"] == "text"
    assert body["text"]["body"] == "It left our warehouse today."
    assert graph.reads() == ["wamid.q1"]
    assert api.message(conv["id"], queued["id"])["status"] == "sent"

    # the customer answers quoting the reply: the thread shows which one
    (wamid,) = graph.sent_ids
    post(client, wa.messages(wa.text("Great, thanks", context={"from": wa.DISPLAY, "id": wamid})))
    answer = api.messages(conv["id"], "inbound")[-1]
    assert answer["reply_to"] == {
        "id": queued["id"],
        "direction": "outbound",
        "body": "It left our warehouse today.",
    }


def test_outside_the_window_only_an_approved_template_goes_out(
    client, api, inbox_id, graph, provider
):
    conv = customer_writes(client, api, "Thanks!", ts=int(time.time()) - 30 * HOUR)
    assert conv["reply_window"]["state"] == "closed"
    calls_before = len(provider.calls)

    refused = api.post(f"/conversations/{conv['id']}/messages", {"body": "Any news?"})
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert error["code"] == "window_closed" and "template is needed" in error["message"]
    assert "WhatsApp 24-hour window" in error["message"]
    assert len(provider.calls) == calls_before  # nothing asked of Meta

    listed = api.get(f"/inboxes/{inbox_id}/templates")["items"]
    assert [(t["name"], t["language"]) for t in listed] == [
        ("order_update", "en_US"),
        ("follow_up", "pt_BR"),
    ]  # the pending one is not offered
    assert listed[0]["body"] == "Hi {{1}}, your order {{2}} is on its way."
    assert listed[0]["params"] == 2 and listed[0]["category"] == "UTILITY"
    api.get(f"/inboxes/{inbox_id}/templates")
    template_reads = [c for c in provider.calls if "message_templates" in c.url]
    assert len(template_reads) == 1  # kept briefly

    missing = api.post(
        f"/conversations/{conv['id']}/messages",
        {"template": {"name": "order_update", "language": "en_US", "params": ["Sheena"]}},
    )
    assert missing.status_code == 422

    queued = api.post(
        f"/conversations/{conv['id']}/messages",
        {"template": {"name": "order_update", "language": "en_US", "params": ["Sheena", "#1042"]}},
    )
    assert queued.status_code == 202, queued.get_json()
    assert queued.get_json()["body"] == "Hi Sheena, your order #1042 is on its way."
    run_once()
    (body,) = graph.sends()
    assert body["type"] == "template"
    assert body["template"] == {
        "name": "order_update",
        "language": {"code": "en_US"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "Sheena"},
                    {"type": "text", "text": "#1042"},
                ],
            }
        ],
    }
    assert api.message(conv["id"], queued.get_json()["id"])["status"] == "sent"


def test_a_header_parameter_is_asked_for_and_sent_and_templates_the_inbox_cannot_fill_are_refused(
    client, api, inbox_id, graph, provider
):
    graph.templates = list(wa.HEADER_TEMPLATES)
    conv = customer_writes(client, api, "Thanks!", ts=int(time.time()) - 30 * HOUR)
    listed = {t["name"]: t for t in api.get(f"/inboxes/{inbox_id}/templates")["items"]}
    assert (listed["shipped"]["header_params"], listed["shipped"]["params"]) == (1, 1)
    assert listed["shipped"]["unsupported"] is None
    assert listed["new_collection"]["unsupported"] == "media_header"
    assert listed["discount"]["unsupported"] == "button_params"
    assert listed["track"]["unsupported"] == "named_params"

    def send(name: str, **extra):
        template = {"name": name, "language": "en_US", **extra}
        return api.post(f"/conversations/{conv['id']}/messages", {"template": template})

    calls = len(provider.calls)
    no_header = send("shipped", params=["Sheena"])
    assert no_header.status_code == 422
    assert "1 header parameter" in no_header.get_json()["error"]["message"]
    for name in ("new_collection", "discount", "track"):
        refused = send(name)
        assert refused.status_code == 422, name
        error = refused.get_json()["error"]
        assert error["code"] == "template_unsupported" and "cannot be sent" in error["message"]
    assert [c for c in provider.calls[calls:] if "/messages" in c.url] == []

    queued = send("shipped", params=["Sheena"], header_params=["#1042"])
    assert queued.status_code == 202, queued.get_json()
    run_once()
    (body,) = graph.sends()
    assert body["template"]["components"] == [
        {"type": "header", "parameters": [{"type": "text", "text": "#1042"}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Sheena"}]},
    ]
    assert api.message(conv["id"], queued.get_json()["id"])["status"] == "sent"


def test_delivered_then_read_tick_the_reply_and_a_late_sent_changes_nothing(
    client, api, inbox_id, graph
):
    conv = customer_writes(client, api)
    queued = api.reply(conv["id"], "On its way")
    run_once()
    (wamid,) = graph.sent_ids

    def status() -> str:
        return api.message(conv["id"], queued["id"])["status"]

    assert post(client, wa.status(wamid, "delivered")).status_code == 200
    assert status() == "delivered"
    assert post(client, wa.status(wamid, "read")).status_code == 200
    assert status() == "read"
    assert post(client, wa.status(wamid, "sent")).status_code == 200  # arrives late
    assert post(client, wa.status(wamid, "delivered")).status_code == 200
    assert status() == "read"
    assert len(api.messages(conv["id"], "inbound")) == 1


def test_a_failed_status_shows_metas_reason(client, api, inbox_id, graph):
    conv = customer_writes(client, api)
    queued = api.reply(conv["id"], "Here is your invoice")
    run_once()
    (wamid,) = graph.sent_ids
    errors = [
        {
            "code": 131026,
            "title": "Message undeliverable",
            "message": "Message undeliverable",
            "error_data": {"details": "Unable to deliver message."},
        }
    ]
    assert post(client, wa.status(wamid, "failed", errors)).status_code == 200
    msg = api.message(conv["id"], queued["id"])
    assert msg["status"] == "failed"
    assert msg["error"]["code"] == "131026"
    assert "Message undeliverable" in msg["error"]["message"]
    assert "could not deliver" in msg["error"]["message"]


def test_a_window_refusal_from_meta_fails_the_reply_and_closes_the_window(
    client, api, inbox_id, graph
):
    conv = customer_writes(client, api)
    graph.answers.append(
        (
            400,
            {
                "error": {
                    "message": "(#131047) Re-engagement message",
                    "type": "OAuthException",
                    "code": 131047,
                    "error_data": {
                        "messaging_product": "whatsapp",
                        "details": "Message failed to send because more than 24 hours have "
                        "passed since the customer last replied to this number.",
                    },
                }
            },
        )
    )
    queued = api.reply(conv["id"], "Hello?")
    run_once()
    msg = api.message(conv["id"], queued["id"])
    assert msg["status"] == "failed" and msg["error"]["code"] == "window_closed"
    assert "24 hours" in msg["error"]["message"]
    again = api.post(f"/conversations/{conv['id']}/messages", {"body": "Try again"})
    assert again.status_code == 409 and "template" in again.get_json()["error"]["message"]


def test_rate_limits_are_retried_and_an_expired_token_pauses_the_inbox(
    client, api, inbox_id, graph
):
    conv = customer_writes(client, api)
    graph.answers.append(
        (400, {"error": {"message": "(#131056) Pair rate limit hit", "code": 131056}}),
    )
    queued = api.reply(conv["id"], "One")
    run_once()
    msg = api.message(conv["id"], queued["id"])
    assert msg["status"] == "queued" and "Pair rate limit" in msg["error"]["message"]
    assert graph.sent_ids == []

    graph.answers.append(
        (
            401,
            {
                "error": {
                    "message": "Error validating access token: Session has expired",
                    "type": "OAuthException",
                    "code": 190,
                    "error_subcode": 463,
                }
            },
        ),
    )
    second = api.reply(conv["id"], "Two")
    from app.extensions import db
    from app.models import OutboxItem

    db.session.query(OutboxItem).update({"next_attempt_at": datetime.now(UTC)})
    db.session.commit()
    run_once()
    inbox = [i for i in api.get("/inboxes")["items"] if i["id"] == inbox_id][0]
    assert inbox["needs_reconnect"] is True
    assert api.message(conv["id"], second["id"])["status"] == "queued"


# --------------------------------------------------------------------------- connecting


CONFIG = {
    "phone_number_id": wa.NUMBER_ID,
    "waba_id": wa.WABA_ID,
    "access_token": wa.TOKEN,
    "app_secret": wa.SECRET,
    "verify_token": wa.VERIFY,
}


def test_connecting_a_number_checks_the_token_and_subscribes_the_app(client, make, graph, provider):
    admin = make.headers(make.user("admin", name="Ada Admin"))
    refused = client.post(
        "/api/v1/inboxes",
        json={"channel": "whatsapp", "name": "WA", "config": {**CONFIG, "access_token": "old"}},
        headers=admin,
    )
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert error["code"] == "check_failed"
    assert any("Session has expired" in c["message"] for c in error["checks"])
    assert client.get("/api/v1/inboxes", headers=admin).get_json()["items"] == []

    created = client.post(
        "/api/v1/inboxes",
        json={"channel": "whatsapp", "name": "WA", "config": CONFIG},
        headers=admin,
    )
    assert created.status_code == 201, created.get_json()
    inbox = created.get_json()
    assert wa.TOKEN not in created.get_data(as_text=True)
    assert wa.SECRET not in created.get_data(as_text=True)
    setup = {item["label"]: item["value"] for item in inbox["setup"]}
    assert setup["Callback URL"].endswith("/webhooks/whatsapp")
    assert setup["Verify token"] == wa.VERIFY
    assert [c.method for c in provider.calls if c.path.endswith("/subscribed_apps")][-1] == "POST"

    channel = [
        c
        for c in client.get("/api/v1/channels", headers=admin).get_json()
        if c["channel"] == "whatsapp"
    ][0]
    assert channel["capabilities"]["templates"] is True
    assert channel["capabilities"]["color"] == "#25d366" and channel["capabilities"]["icon"]
    assert {f["name"] for f in channel["fields"]} == set(CONFIG)


def test_inboxes_add_whatsapp_on_the_command_line(app):
    app.config["PUBLIC_URL"] = "https://support.shop.example"
    args = [part for k, v in CONFIG.items() for part in (f"--{k.replace('_', '-')}", v)]
    r = app.test_cli_runner().invoke(args=["inboxes", "add", "whatsapp", "--name", "WA", *args])
    assert r.exit_code == 0, r.output
    assert "Callback URL: https://support.shop.example/webhooks/whatsapp" in r.output.splitlines()
    assert wa.TOKEN not in r.output


def test_the_same_persons_sms_identity_is_suggested_for_merging(client, api, inbox_id, make):
    sms = make.inbox("sms")
    make.inbound(sms, contact="+5511987654321", text="Oi, é a Sheena")
    (texted,) = api.conversations(channel="sms")
    assert post(client, wa.messages(wa.text("Hello from WhatsApp"))).status_code == 200
    (conv,) = api.conversations(channel="whatsapp")
    found = api.get(f"/contacts/{conv['contact']['id']}/suggestions")
    assert [(s["id"], s["shared"]) for s in found["items"]] == [
        (texted["contact"]["id"], {"kind": "phone", "value": wa.E164})
    ]


def test_an_image_over_metas_5_mb_is_refused_with_the_reason(client, api, inbox_id, graph):
    conv = customer_writes(client, api, "Show me")
    big = png() + b"\0" * (6 * 1024 * 1024)
    boundary, body = encode_multipart(
        {"file": FileStorage(io.BytesIO(big), "photo.png", content_type="image/png")}
    )
    resp = client.post(
        "/api/v1/uploads",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        headers=api.headers,
    )
    if resp.status_code == 201:  # another channel could carry it: refused when posted here
        resp = api.post(
            f"/conversations/{conv['id']}/messages",
            {"body": "Here", "attachment_ids": [resp.get_json()["id"]]},
        )
        assert resp.status_code == 409
    else:
        assert resp.status_code == 422
    assert "5 MB" in resp.get_json()["error"]["message"]
    assert graph.sends() == []
