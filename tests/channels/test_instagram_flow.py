"""Instagram end to end: signed webhooks in, the JSON API and the CLI, the worker, a fake Graph.

Meta calls ``/webhooks/instagram`` with Messenger's envelope (``object: instagram``,
routed by ``entry[].id``, the Instagram account id); replies go to a fake
``graph.instagram.com`` (``INSTAGRAM_GRAPH_URL``) through the outbox worker. Payloads
are built in the shapes of Meta's Instagram messaging webhook examples.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from datetime import timedelta

import pytest
import requests
import time_machine

from app.clock import now
from tests.channels import harness
from tests.channels.harness import run_worker

ACCOUNT = "17841400000000001"
OTHER_ACCOUNT = "17841400000000002"
USER, USER2 = "1780000000000001", "1780000000000002"
SECRET = "instagram-app-secret"
HOUR_MS = 3600 * 1000
STORY_URL = "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=180001&signature=abc"


def now_ms() -> int:
    return int(time.time() * 1000)


def body(*items: dict, account: str = ACCOUNT) -> bytes:
    return json.dumps(
        {
            "object": "instagram",
            "entry": [{"id": account, "time": now_ms(), "messaging": list(items)}],
        }
    ).encode()


def signed(raw: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": "sha256=" + digest, "Content-Type": "application/json"}


def post(client, *items: dict, account: str = ACCOUNT):
    raw = body(*items, account=account)
    resp = client.post("/webhooks/instagram", data=raw, headers=signed(raw))
    assert resp.status_code == 200, resp.data
    return resp.get_json()


def customer(
    mid: str, text: str | None = None, ts: int | None = None, user=USER, account=ACCOUNT, **message
):
    msg = {"mid": mid, **({"text": text} if text is not None else {}), **message}
    return {
        "sender": {"id": user},
        "recipient": {"id": account},
        "timestamp": ts or now_ms(),
        "message": msg,
    }


def echo(mid: str, text: str) -> dict:
    """A message the account sent (from the Instagram app, or ours reported back)."""
    return {
        "sender": {"id": ACCOUNT},
        "recipient": {"id": USER},
        "timestamp": now_ms(),
        "message": {"mid": mid, "text": text, "is_echo": True},
    }


def seen(mid: str) -> dict:
    """``messaging_seen``: the customer saw the message ``mid``."""
    return {
        "sender": {"id": USER},
        "recipient": {"id": ACCOUNT},
        "timestamp": now_ms(),
        "read": {"mid": mid},
    }


class Graph:
    """graph.instagram.com, faked: the Send API, the profile, /me and the subscription."""

    def __init__(self, app, provider: harness.FakeProvider) -> None:
        self.provider = provider
        self.base = f"{app.config['INSTAGRAM_GRAPH_URL']}/{app.config['MESSENGER_GRAPH_VERSION']}"
        prefix = re.escape(self.base)
        self.n = 0
        self.on_send = None
        self.refusals: list[tuple[int, dict]] = []  # answers to the next message sends
        self.send = provider.route("POST", re.compile(prefix + r"/me/messages(\?.*)?$"), self._send)
        provider.route(
            "GET",
            re.compile(prefix + r"/\d+(\?.*)?$"),
            lambda call: (200, {"name": "Ana Porto", "username": "ana.porto"}),
        )
        self.me = provider.route(
            "GET", re.compile(prefix + r"/me\?.*$"), (200, {"user_id": ACCOUNT, "username": "shop"})
        )
        self.subscriptions = provider.route(
            "GET",
            re.compile(prefix + r"/me/subscribed_apps(\?.*)?$"),
            (200, {"data": [{"subscribed_fields": ["messages", "messaging_seen"]}]}),
        )
        self.subscribe = provider.route(
            "POST", re.compile(prefix + r"/me/subscribed_apps(\?.*)?$"), (200, {"success": True})
        )

    def _send(self, call: harness.Call):
        payload = call.json()
        if payload.get("sender_action"):
            return 200, {"recipient_id": payload["recipient"]["id"]}
        if self.refusals:
            return self.refusals.pop(0)
        self.n += 1
        mid = f"m_ig_sent_{self.n}"
        if self.on_send is not None:
            self.on_send(mid, payload)
        return 200, {"recipient_id": payload["recipient"]["id"], "message_id": mid}

    @property
    def sends(self) -> list[harness.Call]:
        return [
            c
            for c in self.provider.calls
            if c.path.endswith("/me/messages") and "message" in (c.json() or {})
        ]


@pytest.fixture
def graph(app, provider) -> Graph:
    return Graph(app, provider)


@pytest.fixture
def api(client, make) -> harness.Api:
    return harness.Api(client, make.headers(make.user("lead", name="Lea Lead")))


def account_inbox(make, account: str = ACCOUNT, human_agent: bool = False) -> int:
    inbox = make.inbox(
        "instagram",
        settings={"human_agent": True} if human_agent else {},
        account_id=account,
        access_token=f"IGAA-token-{account}",
        app_secret=SECRET,
        verify_token="verify-me",
    )
    return inbox.id


def customer_wrote(client, make, api, **inbox) -> int:
    """A connected account whose customer wrote "Hello?" just now; the conversation's id."""
    account_inbox(make, **inbox)
    post(client, customer("m_in_1", "Hello?"))
    return api.conversation_with(USER)["id"]


# --------------------------------------------------------------------------- inbound


def test_text_and_story_reply_arrive_with_metas_time_and_the_story_link(client, make, api, graph):
    account_inbox(make)
    written = now_ms() - 2 * HOUR_MS
    post(client, customer("m_in_1", "Do you ship to Porto?", ts=written))
    reply_to = {"story": {"url": STORY_URL, "id": "3400000000000000001"}}
    post(client, customer("m_in_2", "Is this one still available?", reply_to=reply_to))

    conv = api.conversation_with(USER)
    first, story_reply = api.messages(conv["id"], "inbound")
    assert first["body"] == "Do you ship to Porto?"
    assert first["platform_at"].startswith(
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(written / 1000))
    )
    assert story_reply["body"] == "Is this one still available?"
    (story,) = story_reply["attachments"]
    assert story["kind"] == "story" and story["state"] == "stored"
    assert story["extra"]["link"] == STORY_URL
    assert story["extra"]["title"] == "Replied to your story"
    run_worker()
    assert not graph.provider.to("https://lookaside.fbsbx.com")  # story media never fetched


def test_echo_from_the_instagram_app_is_stored_once_as_outbound(client, make, api, graph):
    account_inbox(make)
    post(client, customer("m_in_1", "Hello?"))
    post(client, echo("m_app_1", "Hi! Answered from the phone."))
    post(client, echo("m_app_1", "Hi! Answered from the phone."))  # Meta retries
    conv = api.conversation_with(USER)
    (out,) = api.messages(conv["id"], "outbound")
    assert out["body"] == "Hi! Answered from the phone."
    assert out["meta"]["outside_switchboard"] is True


def test_echo_of_our_own_reply_is_not_a_second_message(client, make, api, graph):
    conv_id = customer_wrote(client, make, api)
    queued = api.reply(conv_id, "We shipped it today.")
    run_worker()
    post(client, echo("m_ig_sent_1", "We shipped it today."))
    (out,) = api.messages(conv_id, "outbound")
    assert out["id"] == queued["id"] and out["status"] == "sent"


def test_echoes_of_every_part_of_a_long_reply_are_ours(client, make, api, graph, live_server):
    """A long reply goes out in parts; their echoes (some overtaking the answers) add nothing."""
    conv_id = customer_wrote(client, make, api)
    graph.provider.mock.add_passthru(live_server.url)

    def echo_first(mid: str, payload: dict) -> None:
        if mid == "m_ig_sent_2":  # the second part's echo comes while we still send
            raw = body(echo(mid, payload["message"]["text"]))
            requests.post(
                f"{live_server.url}/webhooks/instagram", data=raw, headers=signed(raw), timeout=10
            )

    graph.on_send = echo_first
    text = "\n\n".join(f"Paragraph {n}: " + "x" * 900 for n in range(1, 5))
    queued = api.reply(conv_id, text)
    run_worker()
    parts = [s.json()["message"]["text"] for s in graph.sends]
    assert len(parts) == 2
    post(client, echo("m_ig_sent_1", parts[0]), echo("m_ig_sent_2", parts[1]))
    (out,) = api.messages(conv_id, "outbound")
    assert out["id"] == queued["id"] and out["status"] == "sent"


def test_echo_arriving_before_the_send_api_answer_is_merged(client, make, api, graph, live_server):
    """Instagram echoes carry no metadata: ours is the reply being sent, same contact and text."""
    conv_id = customer_wrote(client, make, api)
    graph.provider.mock.add_passthru(live_server.url)
    answers: list[int] = []

    def echo_first(mid: str, payload: dict) -> None:
        raw = body(echo(mid, payload["message"]["text"]))
        resp = requests.post(
            f"{live_server.url}/webhooks/instagram", data=raw, headers=signed(raw), timeout=10
        )
        answers.append(resp.status_code)

    graph.on_send = echo_first
    queued = api.reply(conv_id, "Your refund is on its way.")
    run_worker()
    assert answers == [200]
    (out,) = api.messages(conv_id, "outbound")
    assert out["id"] == queued["id"] and out["status"] == "sent"
    assert out["meta"].get("outside_switchboard") is None


# --------------------------------------------------------------------------- replies


def test_reply_inside_24_hours_is_a_response_on_the_instagram_graph(client, make, api, graph):
    account_inbox(make)
    post(client, customer("m_in_1", "Hello?", ts=now_ms() - 23 * HOUR_MS))
    conv_id = api.conversation_with(USER)["id"]
    assert api.conversation(conv_id)["reply_window"]["rule"].startswith("Instagram 24-hour window")
    queued = api.reply(conv_id, "Thanks, looking into it.")
    run_worker()
    (send,) = graph.sends
    assert send.url.startswith(graph.base + "/me/messages")
    assert send.json() == {
        "recipient": {"id": USER},
        "messaging_type": "RESPONSE",
        "message": {"text": "Thanks, looking into it."},
    }
    assert send.headers["Authorization"] == f"Bearer IGAA-token-{ACCOUNT}"
    assert "appsecret_proof" not in send.query
    assert api.message(conv_id, queued["id"])["status"] == "sent"


def test_after_24_hours_human_agent_where_enabled_else_refused_before_any_call(
    client, make, api, graph
):
    account_inbox(make, ACCOUNT, human_agent=True)
    account_inbox(make, OTHER_ACCOUNT)
    late = now_ms() - 30 * HOUR_MS
    post(client, customer("m_in_1", "Any news?", ts=late))
    post(
        client,
        customer("m_in_2", "Any news?", ts=late, user=USER2, account=OTHER_ACCOUNT),
        account=OTHER_ACCOUNT,
    )
    tagged, plain = api.conversation_with(USER), api.conversation_with(USER2)
    assert tagged["reply_window"]["state"] == "human_agent"
    assert tagged["reply_window"]["rule"].startswith("Instagram 7-day human agent window")
    assert plain["reply_window"]["state"] == "closed"

    refused = api.post(f"/conversations/{plain['id']}/messages", {"body": "Sorry for the wait"})
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert error["code"] == "window_closed"
    assert error["message"].startswith("The Instagram 24-hour window has closed.")
    assert (
        "Instagram 7-day human agent replies are possible only where Meta approved the app "
        "for the HUMAN_AGENT tag" in error["message"]
    )
    run_worker()
    assert graph.sends == []

    api.reply(tagged["id"], "Sorry for the wait, here is your answer.")
    run_worker()
    (send,) = graph.sends
    assert (send.json()["messaging_type"], send.json()["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
    assert send.json()["recipient"] == {"id": USER}


def test_seen_receipt_ticks_the_reply(client, make, api, graph):
    conv_id = customer_wrote(client, make, api)
    first = api.reply(conv_id, "First answer.")
    run_worker()
    second = api.reply(conv_id, "Second answer.")
    run_worker()
    post(client, seen("m_ig_sent_2"))
    assert api.message(conv_id, first["id"])["status"] == "read"
    assert api.message(conv_id, second["id"])["status"] == "read"


def test_expired_token_marks_the_inbox_for_reconnecting(client, make, api, graph, app):
    conv_id = customer_wrote(client, make, api)
    inbox_id = api.conversation(conv_id)["inbox"]["id"]
    expired = {
        "error": {
            "message": "Error validating access token: Session has expired.",
            "type": "OAuthException",
            "code": 190,
            "error_subcode": 463,
        }
    }
    graph.refusals.append((400, expired))
    queued = api.reply(conv_id, "Your order shipped.")
    run_worker()
    inbox = api.inbox(inbox_id)
    assert inbox["needs_reconnect"] is True and "Session has expired" in inbox["last_error"]
    assert api.message(conv_id, queued["id"])["status"] == "queued"  # kept, not failed
    with time_machine.travel(now() + timedelta(hours=3), tick=True):
        run_worker()  # paused: no more calls with a dead token
    assert len(graph.sends) == 1

    result = app.test_cli_runner().invoke(
        args=["inboxes", "reconnect", str(inbox_id), "--set", "access_token=IGAA-fresh"]
    )
    assert result.exit_code == 0, result.output
    run_worker()
    assert graph.sends[-1].headers["Authorization"] == "Bearer IGAA-fresh"
    assert api.message(conv_id, queued["id"])["status"] == "sent"
    assert api.inbox(inbox_id)["needs_reconnect"] is False


# --------------------------------------------------------------------------- connecting


def test_cli_adds_an_inbox_that_webhooks_reach(client, make, api, app, graph):
    result = app.test_cli_runner().invoke(
        args=[
            "inboxes", "add", "instagram", "--name", "Shop DMs", "--account-id", ACCOUNT,
            "--access-token", "IGAA-cli", "--app-secret", SECRET, "--verify-token", "verify-me",
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "/webhooks/instagram" in result.output
    handshake = client.get(
        "/webhooks/instagram",
        query_string={
            "hub.mode": "subscribe",
            "hub.verify_token": "verify-me",
            "hub.challenge": "7",
        },
    )
    assert (handshake.status_code, handshake.data) == (200, b"7")
    assert post(client, customer("m_in_1", "Hello from the CLI inbox"))["stored"] == 1


def _admin_api(client, make) -> harness.Api:
    return harness.Api(client, make.headers(make.user("admin", name="Ada Admin")))


def test_add_inbox_form_checks_the_token_account_and_subscribes(client, make, graph):
    admin = _admin_api(client, make)
    config = {
        "account_id": ACCOUNT,
        "access_token": "IGAA-form",
        "app_secret": SECRET,
        "verify_token": "verify-me",
    }
    created = admin.post("/inboxes", {"channel": "instagram", "name": "Shop", "config": config})
    assert created.status_code == 201, created.get_json()
    checks = {c["name"]: c for c in created.get_json()["checks"]}
    assert checks["access_token"]["ok"] and "@shop" in checks["access_token"]["message"]
    assert checks["subscription"]["ok"]
    (subscribe,) = graph.provider.to(graph.base + "/me/subscribed_apps", "POST")
    assert subscribe.query["subscribed_fields"].startswith("messages,messaging_seen")

    graph.me.then((200, {"user_id": "17841400000000777", "username": "someone.else"}))
    other = admin.post(
        "/inboxes",
        {
            "channel": "instagram",
            "name": "Other",
            "config": {**config, "account_id": OTHER_ACCOUNT},
        },
    )
    assert other.status_code >= 400
    assert "someone.else" in json.dumps(other.get_json())
