"""Facebook Messenger end to end: signed webhooks in, the JSON API, the worker, a fake Graph.

Everything goes through the boundaries a user or Meta would use: signed POSTs to
``/webhooks/messenger``, the JSON API with a bearer token, the CLI, Socket.IO, and the
delivery worker (``run_once``) talking to a fake Graph API at ``MESSENGER_GRAPH_URL``
(the ``responses`` library; ``http://graph.fake`` in the test app). Payloads are built in
Meta's documented shapes (docs/channels.md section 1.4).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
import time_machine

from app.clock import now
from app.runtime.worker import run_once
from tests.channels import harness

PAGE_A = "104800000000001"
PAGE_B = "104800000000002"
PAGE_UNKNOWN = "104800000000999"
U1, U2, U3 = "7011000000000001", "7011000000000002", "7011000000000003"
APP_SECRET = "meta-app-secret"  # one Meta app serves every Page of the business
OUR_APP_ID = "1517776481860111"
PAGE_INBOX_APP_ID = 263902037430900  # Meta's own Page Inbox app
CDN = "https://cdn.fbsbx.test"
HOUR_MS = 3600 * 1000


# --------------------------------------------------------------------------- the fake Graph


@dataclass
class GraphCall:
    """One request the fake Graph received."""

    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any] | None
    authorization: str | None = None

    @property
    def token(self) -> str | None:
        """The Page token the call carried (``Authorization: Bearer``)."""
        value = self.authorization or ""
        return value.removeprefix("Bearer ") if value.startswith("Bearer ") else None

    @property
    def sender_action(self) -> str | None:
        """``typing_on`` / ``mark_seen`` ... for sender-action calls."""
        return (self.body or {}).get("sender_action")


@dataclass
class FakeGraph:
    """A Graph API that records every call and answers like Meta."""

    version: str
    calls: list[GraphCall] = field(default_factory=list)
    send_answers: list[tuple[int, dict]] = field(default_factory=list)  # next message sends
    profiles: dict[str, tuple[int, dict]] = field(default_factory=dict)
    accepted_ms: dict[str, int] = field(default_factory=dict)  # mid -> Meta's timestamp
    on_send: Any = None  # called with (mid, body) before the answer goes back
    counter: int = 0

    def _record(self, request) -> GraphCall:
        parts = urlsplit(request.url)
        body = json.loads(request.body) if request.body else None
        call = GraphCall(
            request.method,
            parts.path,
            dict(parse_qsl(parts.query)),
            body,
            request.headers.get("Authorization"),
        )
        self.calls.append(call)
        return call

    def messages(self, request):
        """``POST /{version}/me/messages``: a message send or a sender action."""
        call = self._record(request)
        if call.sender_action:
            return 200, {}, json.dumps({"recipient_id": call.body["recipient"]["id"]})
        if self.send_answers:
            status, answer = self.send_answers.pop(0)
            if status >= 400:
                return status, {}, json.dumps(answer)
        self.counter += 1
        mid = f"m_sent_{self.counter}"
        self.accepted_ms[mid] = int(time.time() * 1000)
        if self.on_send is not None:
            self.on_send(mid, call.body)
        return (
            200,
            {},
            json.dumps({"recipient_id": call.body["recipient"]["id"], "message_id": mid}),
        )

    def profile(self, request):
        """``GET /{version}/{psid}``: the user profile."""
        call = self._record(request)
        psid = call.path.rsplit("/", 1)[-1]
        status, answer = self.profiles.get(psid, (200, {"id": psid}))
        return status, {}, json.dumps(answer)

    @property
    def sends(self) -> list[GraphCall]:
        """Message sends (not sender actions), in order."""
        return [c for c in self.calls if c.body and "message" in c.body]

    @property
    def actions(self) -> list[str]:
        """Sender actions, in order."""
        return [c.sender_action for c in self.calls if c.sender_action]

    def kinds(self) -> list[str]:
        """Every Send API call as ``message`` or the sender action's name, in order."""
        return [c.sender_action or "message" for c in self.calls if c.path.endswith("/me/messages")]


@pytest.fixture
def graph(app):
    """The fake Graph at ``MESSENGER_GRAPH_URL``; attachment CDN downloads are added per test."""
    base = app.config["MESSENGER_GRAPH_URL"].rstrip("/")
    version = app.config["MESSENGER_GRAPH_VERSION"]
    fake = FakeGraph(version)
    prefix = re.escape(f"{base}/{version}")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(
            responses.POST, re.compile(prefix + r"/me/messages(\?.*)?$"), callback=fake.messages
        )
        rsps.add_callback(
            responses.GET, re.compile(prefix + r"/\d+(\?.*)?$"), callback=fake.profile
        )
        fake.rsps = rsps
        yield fake


# --------------------------------------------------------------------------- payloads


def now_ms() -> int:
    """The current time as Meta writes it: epoch milliseconds."""
    return int(time.time() * 1000)


def sign(raw: bytes, secret: str = APP_SECRET) -> str:
    """``X-Hub-Signature-256`` as Meta computes it over the raw body."""
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def envelope(*entries: dict) -> dict:
    """The batched webhook body."""
    return {"object": "page", "entry": list(entries)}


def entry(page: str, *items: dict) -> dict:
    """One Page's ``entry`` with its ``messaging`` items."""
    return {"id": page, "time": now_ms(), "messaging": list(items)}


def text(
    page: str, psid: str, mid: str, body: str | None = None, ts: int | None = None, **message: Any
) -> dict:
    """A customer's message (``messages`` field)."""
    msg = {"mid": mid, **({"text": body} if body is not None else {}), **message}
    return {
        "sender": {"id": psid},
        "recipient": {"id": page},
        "timestamp": ts or now_ms(),
        "message": msg,
    }


def echo(
    page: str,
    psid: str,
    mid: str,
    body: str,
    *,
    metadata: str | None = None,
    app_id: int | str = PAGE_INBOX_APP_ID,
    ts: int | None = None,
) -> dict:
    """A message the Page sent (``message_echoes``): sender and recipient swapped."""
    msg: dict[str, Any] = {"is_echo": True, "app_id": app_id, "mid": mid, "text": body}
    if metadata is not None:
        msg["metadata"] = metadata
    return {
        "sender": {"id": page},
        "recipient": {"id": psid},
        "timestamp": ts or now_ms(),
        "message": msg,
    }


def delivery(page: str, psid: str, watermark: int, mids: list[str] | None = None) -> dict:
    """A delivery receipt (``message_deliveries``)."""
    receipt: dict[str, Any] = {"watermark": watermark}
    if mids is not None:
        receipt["mids"] = mids
    return {"sender": {"id": psid}, "recipient": {"id": page}, "delivery": receipt}


def read(page: str, psid: str, watermark: int) -> dict:
    """A read receipt (``message_reads``)."""
    return {
        "sender": {"id": psid},
        "recipient": {"id": page},
        "timestamp": now_ms(),
        "read": {"watermark": watermark},
    }


def postback(
    page: str,
    psid: str,
    title: str,
    payload: str,
    mid: str | None = None,
    referral: dict | None = None,
) -> dict:
    """A button tap (``messaging_postbacks``)."""
    pb: dict[str, Any] = {"title": title, "payload": payload}
    if mid:
        pb["mid"] = mid
    if referral:
        pb["referral"] = referral
    return {
        "sender": {"id": psid},
        "recipient": {"id": page},
        "timestamp": now_ms(),
        "postback": pb,
    }


def post_webhook(
    client, payload: dict, secret: str | None = APP_SECRET, headers: dict | None = None
):
    """POST a body to the webhook, signed like Meta signs it (``secret=None``: unsigned)."""
    raw = json.dumps(payload).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    if secret is not None:
        sent["X-Hub-Signature-256"] = sign(raw, secret)
    return client.post("/webhooks/messenger", data=raw, headers=sent)


# --------------------------------------------------------------------------- API helpers


Api = harness.Api  # finds conversations by PSID (conversation_with)


@pytest.fixture
def lead(make):
    """A team lead (sees every inbox)."""
    return make.user("lead", name="Lea Lead")


@pytest.fixture
def api(client, make, lead):
    """The API with the lead's token."""
    return Api(client, make.headers(lead))


def page_inbox(make, page_id: str = PAGE_A, human_agent: bool = False, **config: Any) -> int:
    """A connected Page; returns the inbox id."""
    settings = {"human_agent": True} if human_agent else {}
    inbox = make.inbox(
        "messenger",
        settings=settings,
        page_id=page_id,
        app_secret=APP_SECRET,
        page_token=f"EAAG-token-{page_id}",
        verify_token=f"verify-{page_id}",
        app_id=OUR_APP_ID,
        **config,
    )
    return inbox.id


def customer_writes(
    client,
    page: str = PAGE_A,
    psid: str = U1,
    body: str = "Hello?",
    ts: int | None = None,
    mid: str | None = None,
) -> None:
    """A customer message arrives through the webhook."""
    mid = mid or f"m_in_{psid}_{time.perf_counter_ns()}"
    resp = post_webhook(client, envelope(entry(page, text(page, psid, mid, body, ts=ts))))
    assert resp.status_code == 200, resp.data


def stored_message_count(session) -> int:
    """Customer and outbound messages in the database (activity lines excluded)."""
    import sqlalchemy as sa

    from app.models import Message

    return session.scalar(
        sa.select(sa.func.count())
        .select_from(Message)
        .where(Message.direction.in_(("inbound", "outbound")))
    )


# --------------------------------------------------------------------------- verification


def test_verify_handshake_echoes_the_challenge_only_for_our_token(client, make):
    page_inbox(make)
    ok = client.get(
        "/webhooks/messenger",
        query_string={
            "hub.mode": "subscribe",
            "hub.verify_token": f"verify-{PAGE_A}",
            "hub.challenge": "1158201444",
        },
    )
    assert ok.status_code == 200
    assert ok.data == b"1158201444"

    for args in (
        {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": f"verify-{PAGE_A}", "hub.challenge": "1"},
        {"hub.challenge": "1"},
    ):
        resp = client.get("/webhooks/messenger", query_string=args)
        assert resp.status_code == 403, args
        assert b"1" not in resp.data


def test_unknown_page_in_a_batch_is_skipped_and_logged(client, make, api, session, caplog):
    """A batch for a known and an unknown Page: ours is stored (the contract suite checks
    that a body for unknown Pages only is acknowledged and stores nothing)."""
    page_inbox(make)
    only_unknown = envelope(entry(PAGE_UNKNOWN, text(PAGE_UNKNOWN, U1, "m_other", "Hi")))
    assert post_webhook(client, only_unknown).status_code == 200
    assert PAGE_UNKNOWN in caplog.text  # the admin can see which Page is not connected
    mixed = envelope(
        entry(PAGE_UNKNOWN, text(PAGE_UNKNOWN, U2, "m_other2", "Hi")),
        entry(PAGE_A, text(PAGE_A, U1, "m_ours", "Hello shop")),
    )
    assert post_webhook(client, mixed).status_code == 200
    (conv,) = api.conversations()
    assert [m["body"] for m in api.messages(conv["id"])] == ["Hello shop"]
    assert stored_message_count(session) == 1


# --------------------------------------------------------------------------- batches and replays


def test_batch_with_several_entries_and_two_pages_lands_in_two_inboxes(client, make, api):
    agent_b = make.user("agent", name="Bo")
    inbox_a = page_inbox(make, PAGE_A)
    inbox_b = page_inbox(make, PAGE_B)
    from app.extensions import db
    from app.models import InboxMember

    db.session.add(InboxMember(inbox_id=inbox_b, user_id=agent_b.id))
    db.session.commit()
    t0 = now_ms() - 60_000
    payload = envelope(
        entry(
            PAGE_A,
            text(PAGE_A, U1, "m_a1", "Is the blue mug in stock?", ts=t0),
            text(
                PAGE_A,
                U1,
                "m_a2",
                "Yes please",
                ts=t0 + 1000,
                quick_reply={"payload": "CONFIRM_ORDER_77"},
            ),
        ),
        entry(PAGE_B, text(PAGE_B, U2, "m_b1", "Bonjour, vous livrez à Lyon ?", ts=t0 + 2000)),
        entry(
            PAGE_A,
            text(
                PAGE_A,
                U3,
                "m_a3",
                "About that order",
                ts=t0 + 3000,
                reply_to={"mid": "m_a1", "is_self_reply": False},
            ),
        ),
    )
    resp = post_webhook(client, payload)
    assert resp.status_code == 200
    assert resp.get_json()["stored"] == 4

    in_a = api.conversations(inbox=inbox_a)
    in_b = api.conversations(inbox=inbox_b)
    assert len(in_a) == 2 and len(in_b) == 1
    conv_u1 = api.conversation_with(U1)
    assert conv_u1["inbox"] == {
        "id": inbox_a,
        "channel": "messenger",
        "name": conv_u1["inbox"]["name"],
    }
    first, second = api.messages(conv_u1["id"])
    assert (first["body"], second["body"]) == ("Is the blue mug in stock?", "Yes please")
    assert second["kind"] == "quick_reply"
    assert second["meta"]["context"]["payload"] == "CONFIRM_ORDER_77"
    (reply,) = api.messages(api.conversation_with(U3)["id"])
    assert reply["meta"]["reply_to"] == "m_a1"
    # the reply window is counted from the customer's own send time
    window = conv_u1["reply_window"]
    assert window["state"] == "open"
    assert 23 * 3600 < window["seconds_left"] <= 24 * 3600 - 59
    assert conv_u1["contact"]["name"].startswith("Messenger user")

    (conv_b,) = in_b
    assert api.messages(conv_b["id"])[0]["body"] == "Bonjour, vous livrez à Lyon ?"
    # an agent of Page B sees Page B only
    mine = Api(client, make.headers(agent_b)).conversations()
    assert [c["id"] for c in mine] == [conv_b["id"]]


def test_a_message_repeated_within_a_batch_is_stored_once(client, make, api):
    """Meta also repeats an item inside one batch (replays of whole bodies: the contract suite)."""
    page_inbox(make)
    item = text(PAGE_A, U1, "m_replayed", "Where is my parcel?")
    resp = post_webhook(client, envelope(entry(PAGE_A, item, item)))
    assert resp.get_json() == {"status": "ok", "stored": 1, "duplicates": 1}
    again = post_webhook(client, envelope(entry(PAGE_A, item), entry(PAGE_A, item)))
    assert again.get_json()["stored"] == 0
    (conv,) = api.conversations()
    assert [m["body"] for m in api.messages(conv["id"])] == ["Where is my parcel?"]
    assert conv["unread_count"] == 1


def test_dashboard_test_event_in_field_value_form_is_stored(client, make, api):
    page_inbox(make)
    payload = {
        "field": "messages",
        "value": {
            "sender": {"id": U1},
            "recipient": {"id": PAGE_A},
            "timestamp": str(now_ms()),
            "message": {"mid": "m_field_value", "text": "test_message"},
        },
    }
    assert post_webhook(client, payload).status_code == 200
    (conv,) = api.conversations()
    assert api.messages(conv["id"])[0]["body"] == "test_message"


# --------------------------------------------------------------------------- attachments


def test_attachments_are_downloaded_by_the_worker_within_the_size_cap(
    client, make, api, graph, app
):
    page_inbox(make)
    app.config["MAX_ATTACHMENT_BYTES"] = 1000
    picture = b"\x89PNG\r\n\x1a\n" + b"p" * 200
    graph.rsps.add(responses.GET, f"{CDN}/photo.png", body=picture, content_type="image/png")
    graph.rsps.add(responses.GET, f"{CDN}/huge.mp4", body=b"v" * 5000, content_type="video/mp4")
    payload = envelope(
        entry(
            PAGE_A,
            text(
                PAGE_A,
                U1,
                "m_files",
                attachments=[
                    {"type": "image", "payload": {"url": f"{CDN}/photo.png"}},
                    {"type": "video", "payload": {"url": f"{CDN}/huge.mp4"}},
                    {
                        "type": "location",
                        "title": "Pinned Location",
                        "url": "https://l.facebook.test/l.php?u=maps",
                        "payload": {"coordinates": {"lat": 52.520008, "long": 13.404954}},
                    },
                    {
                        "type": "fallback",
                        "title": "Our catalogue",
                        "url": "https://l.facebook.test/l.php?u=x",
                        "payload": None,
                    },
                ],
            ),
        )
    )
    assert post_webhook(client, payload).status_code == 200
    # the webhook answered without fetching anything: the URLs are fetched by the worker
    assert not [c for c in graph.rsps.calls if c.request.url.startswith(CDN)]
    (conv,) = api.conversations()
    (msg,) = api.messages(conv["id"])
    assert [a["state"] for a in msg["attachments"]][:2] == ["pending", "pending"]
    assert conv["last_message"]["body"] == "[image]"

    run_once()

    image, video, location, link = api.messages(conv["id"])[0]["attachments"]
    assert image["state"] == "stored" and image["size"] == len(picture)
    assert image["content_type"] == "image/png"
    with client.get(image["url"], headers=api.headers) as got:
        assert got.status_code == 200 and got.data == picture
    assert video["state"] == "failed" and "Too large" in video["error"]
    assert video["url"] is None
    # links are kept as links, never fetched as files
    assert location["kind"] == "location"
    assert location["extra"]["latitude"] == pytest.approx(52.520008)
    assert location["extra"]["title"] == "Pinned Location"
    assert link["kind"] == "fallback" and link["extra"]["title"] == "Our catalogue"
    assert link["extra"]["link"] == "https://l.facebook.test/l.php?u=x"
    fetched = [c.request.url for c in graph.rsps.calls if "facebook.test" in c.request.url]
    assert fetched == []


# --------------------------------------------------------------------------- postbacks, referrals


def test_postback_shows_the_button_title_and_referral_becomes_context(client, make, api):
    page_inbox(make)
    ad = {"ref": "spring-sale", "source": "ADS", "type": "OPEN_THREAD", "ad_id": "6045246247433"}
    payload = envelope(
        entry(
            PAGE_A,
            postback(PAGE_A, U1, "Talk to a human", "HUMAN", mid="m_pb", referral=ad),
            postback(PAGE_A, U1, "Get Started", "GET_STARTED"),
        )
    )
    assert post_webhook(client, payload).status_code == 200
    conv = api.conversation_with(U1)
    tapped, started = api.messages(conv["id"])
    assert (tapped["body"], tapped["kind"], tapped["direction"]) == (
        "Talk to a human",
        "postback",
        "inbound",
    )
    assert tapped["meta"]["context"]["payload"] == "HUMAN"
    assert started["body"] == "Get Started"
    assert conv["context"]["referral"]["ref"] == "spring-sale"

    # a returning customer opens the thread from an m.me link: context, not a message
    link = {
        "sender": {"id": U1},
        "recipient": {"id": PAGE_A},
        "timestamp": now_ms(),
        "referral": {"ref": "qr-counter", "source": "SHORTLINK", "type": "OPEN_THREAD"},
    }
    assert post_webhook(client, envelope(entry(PAGE_A, link))).status_code == 200
    conv = api.conversation(conv["id"])
    assert conv["context"]["referral"]["ref"] == "qr-counter"
    assert len(api.messages(conv["id"])) == 2


# --------------------------------------------------------------------------- echoes


def test_echo_from_the_page_inbox_is_stored_as_sent_outside_switchboard(client, make, api):
    page_inbox(make)
    customer_writes(client, body="Do you ship to Porto?")
    payload = envelope(entry(PAGE_A, echo(PAGE_A, U1, "m_page_inbox", "Yes, in 3 days.")))
    assert post_webhook(client, payload).status_code == 200
    assert post_webhook(client, payload).status_code == 200  # replayed: still one
    conv = api.conversation_with(U1)
    question, answer = api.messages(conv["id"])
    assert answer["direction"] == "outbound"
    assert answer["body"] == "Yes, in 3 days."
    assert answer["status"] == "sent"
    assert answer["sender"]["name"] == "Sent outside Switchboard"
    assert answer["meta"]["outside_switchboard"] is True
    assert conv["response_due"]["due_at"] is None  # someone answered, on the Page


def test_echo_of_our_own_send_is_merged_not_duplicated(client, make, api, graph):
    page_inbox(make)
    customer_writes(client)
    conv_id = api.conversation_with(U1)["id"]
    queued = api.reply(conv_id, "We shipped it today.")
    run_once()
    (send,) = graph.sends
    mid = "m_sent_1"
    payload = envelope(
        entry(
            PAGE_A,
            echo(
                PAGE_A,
                U1,
                mid,
                "We shipped it today.",
                metadata=f"sb:{queued['id']}",
                app_id=OUR_APP_ID,
            ),
        )
    )
    assert post_webhook(client, payload).status_code == 200
    outbound = [m for m in api.messages(conv_id) if m["direction"] == "outbound"]
    assert len(outbound) == 1
    assert outbound[0]["status"] == "sent" and outbound[0]["sender"]["name"] == "Lea Lead"


def test_echo_arriving_before_the_send_api_answer_is_merged(client, make, api, graph, live_server):
    """Meta can deliver the echo (and even a delivery receipt) before /me/messages returns."""
    page_inbox(make)
    customer_writes(client)
    conv_id = api.conversation_with(U1)["id"]
    graph.rsps.add_passthru(live_server.url)
    seen: list[int] = []

    def echo_first(mid: str, body: dict) -> None:
        # the race: Meta calls our webhook (another thread, another DB session) while our
        # worker still waits for the Send API answer
        payload = envelope(
            entry(
                PAGE_A,
                echo(
                    PAGE_A,
                    U1,
                    mid,
                    body["message"]["text"],
                    metadata=body["message"]["metadata"],
                    app_id=OUR_APP_ID,
                ),
                delivery(PAGE_A, U1, now_ms(), mids=[mid]),
            )
        )
        raw = json.dumps(payload).encode()
        resp = requests.post(
            f"{live_server.url}/webhooks/messenger",
            data=raw,
            timeout=10,
            headers={"X-Hub-Signature-256": sign(raw), "Content-Type": "application/json"},
        )
        seen.append(resp.status_code)

    graph.on_send = echo_first
    queued = api.reply(conv_id, "Your refund is on its way.")
    run_once()

    assert seen == [200]
    assert graph.sends[0].body["message"]["metadata"] == f"sb:{queued['id']}"
    outbound = [m for m in api.messages(conv_id) if m["direction"] == "outbound"]
    assert len(outbound) == 1, outbound
    assert outbound[0]["id"] == queued["id"]
    assert outbound[0]["status"] == "delivered"  # the late Send API answer did not downgrade it
    assert outbound[0]["error"] is None


# --------------------------------------------------------------------------- receipts


def test_delivery_and_read_watermarks_tick_earlier_replies_and_never_downgrade(
    client, make, api, graph
):
    page_inbox(make)
    customer_writes(client)
    conv_id = api.conversation_with(U1)["id"]
    first = api.reply(conv_id, "One moment please.")
    run_once()
    second = api.reply(conv_id, "Found it: it ships Monday.")
    run_once()
    assert len(graph.sends) == 2
    first_ms, second_ms = graph.accepted_ms["m_sent_1"], graph.accepted_ms["m_sent_2"]

    def status(msg: dict) -> str:
        return api.message(conv_id, msg["id"])["status"]

    # delivered up to the first message (a watermark alone, no mids)
    post_webhook(client, envelope(entry(PAGE_A, delivery(PAGE_A, U1, first_ms))))
    assert (status(first), status(second)) == ("delivered", "sent")
    # read up to Meta's own timestamp of the second message
    post_webhook(client, envelope(entry(PAGE_A, read(PAGE_A, U1, second_ms))))
    assert (status(first), status(second)) == ("read", "read")
    # a late, older delivery receipt never turns "read" back into "delivered"
    post_webhook(
        client,
        envelope(entry(PAGE_A, delivery(PAGE_A, U1, second_ms, mids=["m_sent_1", "m_sent_2"]))),
    )
    assert (status(first), status(second)) == ("read", "read")


def test_a_receipt_never_marks_a_reply_that_was_not_sent_yet(client, make, api, graph):
    page_inbox(make)
    customer_writes(client)
    conv_id = api.conversation_with(U1)["id"]
    queued = api.reply(conv_id, "Still in the outbox")
    post_webhook(
        client,
        envelope(
            entry(PAGE_A, delivery(PAGE_A, U1, now_ms() + 1000), read(PAGE_A, U1, now_ms() + 1000))
        ),
    )
    assert api.message(conv_id, queued["id"])["status"] == "queued"
    run_once()
    assert len(graph.sends) == 1  # it still goes out
    assert api.message(conv_id, queued["id"])["status"] == "sent"


# --------------------------------------------------------------------------- contact profile


def test_profile_is_fetched_by_the_worker_after_the_webhook_answered(client, make, api, graph):
    page_inbox(make)
    graph.profiles[U1] = (
        200,
        {
            "first_name": "Amira",
            "last_name": "Haddad",
            "profile_pic": "https://cdn.fbsbx.test/amira.jpg",
            "id": U1,
        },
    )
    customer_writes(client)
    assert graph.calls == []  # the webhook never waits for Graph
    conv = api.conversation_with(U1)
    assert conv["contact"]["name"] == f"Messenger user {U1[-4:]}"  # readable meanwhile

    run_once()

    (call,) = graph.calls
    assert call.method == "GET" and call.path.endswith(f"/{U1}")
    assert call.token == f"EAAG-token-{PAGE_A}" and "access_token" not in call.query
    assert "appsecret_proof" in call.query
    conv = api.conversation(conv["id"])
    assert conv["contact"]["name"] == "Amira Haddad"
    assert conv["contact"]["avatar_url"] == "https://cdn.fbsbx.test/amira.jpg"
    customer_writes(client, body="again")  # known contact: no second look-up
    run_once()
    assert len(graph.calls) == 1


def test_graph_errors_on_the_profile_never_fail_ingest(client, make, api, graph):
    page_inbox(make)
    graph.profiles[U1] = (500, {"error": {"message": "An unknown error occurred", "code": 1}})
    graph.profiles[U2] = (400, {"error": {"message": "Invalid OAuth access token.", "code": 190}})
    customer_writes(client, psid=U1, body="first")
    customer_writes(client, psid=U2, body="second")
    run_once()
    assert len(graph.calls) == 2
    names = sorted(c["contact"]["name"] for c in api.conversations())
    assert names == [f"Messenger user {U1[-4:]}", f"Messenger user {U2[-4:]}"]
    assert api.inbox(api.conversations()[0]["inbox"]["id"])["needs_reconnect"] is False


# --------------------------------------------------------------------------- sending in the window


def test_reply_inside_24_hours_is_a_response_with_appsecret_proof(client, make, api, graph):
    page_inbox(make)
    customer_writes(client, ts=now_ms() - 23 * HOUR_MS)
    conv_id = api.conversation_with(U1)["id"]
    queued = api.reply(conv_id, "Thanks, looking into it.")
    assert queued["status"] == "queued"
    run_once()

    assert graph.kinds() == ["mark_seen", "message"]
    (send,) = graph.sends
    assert send.path == f"/{graph.version}/me/messages"
    assert send.body == {
        "recipient": {"id": U1},
        "messaging_type": "RESPONSE",
        "message": {"text": "Thanks, looking into it.", "metadata": f"sb:{queued['id']}"},
    }
    token = f"EAAG-token-{PAGE_A}"
    assert send.token == token and "access_token" not in send.query
    proof = hmac.new(APP_SECRET.encode(), token.encode(), hashlib.sha256).hexdigest()
    assert send.query["appsecret_proof"] == proof
    assert api.message(conv_id, queued["id"])["status"] == "sent"


def test_long_text_is_sent_as_ordered_parts(client, make, api, graph):
    page_inbox(make)
    customer_writes(client)
    conv_id = api.conversation_with(U1)["id"]
    body = "\n\n".join(f"Paragraph {n}: " + "x" * 900 for n in range(1, 5))
    api.reply(conv_id, body)
    run_once()
    parts = [s.body["message"]["text"] for s in graph.sends]
    assert len(parts) == 2 and all(len(p) <= 2000 for p in parts)  # cut between paragraphs
    assert parts[0].startswith("Paragraph 1") and parts[1].startswith("Paragraph 3")
    assert len({s.body["message"]["metadata"] for s in graph.sends}) == 1
    assert "".join(parts).replace("\n", "") == body.replace("\n", "")


def test_human_agent_tag_only_between_24_hours_and_7_days_where_enabled(client, make, api, graph):
    inbox_tagged = page_inbox(make, PAGE_A, human_agent=True)
    page_inbox(make, PAGE_B)
    customer_writes(client, PAGE_A, U1, ts=now_ms() - 30 * HOUR_MS)
    customer_writes(client, PAGE_B, U2, ts=now_ms() - 30 * HOUR_MS)
    tagged = api.conversation_with(U1)
    plain = api.conversation_with(U2)
    assert tagged["reply_window"]["state"] == "human_agent"
    assert plain["reply_window"]["state"] == "closed"

    refused = api.post(f"/conversations/{plain['id']}/messages", {"body": "Sorry for the wait"})
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "window_closed"
    assert "HUMAN_AGENT" in refused.get_json()["error"]["message"]
    api.reply(tagged["id"], "Sorry for the wait, here is your answer.")
    run_once()

    (send,) = graph.sends
    assert send.body["recipient"] == {"id": U1}
    assert send.body["messaging_type"] == "MESSAGE_TAG"
    assert send.body["tag"] == "HUMAN_AGENT"
    assert not [m for m in api.messages(plain["id"]) if m["direction"] == "outbound"]
    assert api.inbox(inbox_tagged)["settings"]["human_agent"] is True


def test_nothing_is_sent_once_the_window_is_closed(client, make, api, graph):
    page_inbox(make, PAGE_A, human_agent=True)
    customer_writes(client, ts=now_ms() - 8 * 24 * HOUR_MS)
    conv = api.conversation_with(U1)
    assert conv["reply_window"]["state"] == "closed"
    refused = api.post(f"/conversations/{conv['id']}/messages", {"body": "Hello again"})
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "window_closed"
    run_once()
    assert graph.sends == [] and graph.actions == []
    # a private note is still fine, and never sent
    note = api.post(f"/conversations/{conv['id']}/messages", {"body": "call her", "private": True})
    assert note.status_code == 201
    run_once()
    assert graph.sends == []


def test_a_reply_queued_in_the_window_is_not_sent_after_it_closed(client, make, api, graph):
    page_inbox(make)
    start = now()
    customer_writes(client, ts=now_ms() - 23 * HOUR_MS - 50 * 60 * 1000)
    conv_id = api.conversation_with(U1)["id"]
    queued = api.reply(conv_id, "Just in time?")
    with time_machine.travel(start + timedelta(minutes=20), tick=True):
        run_once()
        failed = api.message(conv_id, queued["id"])
    assert graph.sends == []
    assert failed["status"] == "failed" and failed["error"]["code"] == "window_closed"


# --------------------------------------------------------------------------- Graph errors


def graph_error(code: int, message: str, subcode: int | None = None, status: int = 400):
    """A Graph error answer."""
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbC",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return status, {"error": error}


def test_window_error_fails_the_reply_and_closes_the_conversation(client, make, api, graph):
    page_inbox(make)
    customer_writes(client)
    conv_id = api.conversation_with(U1)["id"]
    graph.send_answers.append(
        graph_error(10, "This message is sent outside of allowed window.", 2018278)
    )
    queued = api.reply(conv_id, "Hello?")
    run_once()
    msg = api.message(conv_id, queued["id"])
    assert msg["status"] == "failed"
    assert msg["error"]["code"] == "window_closed"
    assert "outside of allowed window" in msg["error"]["message"]
    conv = api.conversation(conv_id)
    assert conv["reply_window"]["state"] == "closed"
    again = api.post(f"/conversations/{conv_id}/messages", {"body": "Try again"})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "window_closed"
    run_once()
    assert len(graph.sends) == 1
    # the customer writes again: Meta opens a new window
    customer_writes(client, body="I'm here")
    assert api.conversation(conv_id)["reply_window"]["state"] == "open"
    api.reply(conv_id, "Great, here it is.")
    run_once()
    assert len(graph.sends) == 2


def test_unavailable_customer_makes_the_conversation_undeliverable(client, make, api, graph):
    page_inbox(make)
    customer_writes(client)
    conv_id = api.conversation_with(U1)["id"]
    graph.send_answers.append(graph_error(551, "This person isn't available right now.", 1545041))
    queued = api.reply(conv_id, "Are you there?")
    run_once()
    msg = api.message(conv_id, queued["id"])
    assert msg["status"] == "failed" and msg["error"]["code"] == "undeliverable"
    conv = api.conversation(conv_id)
    assert "isn't available" in conv["undeliverable"]
    refused = api.post(f"/conversations/{conv_id}/messages", {"body": "Hello?"})
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "undeliverable"
    run_once()
    assert len(graph.sends) == 1  # nothing more reached Meta
    # the customer unblocked the Page and writes again: they can be answered
    customer_writes(client, body="Sorry, I blocked you by mistake")
    assert api.conversation(conv_id)["undeliverable"] is None
    api.reply(conv_id, "No problem!")
    run_once()
    assert len(graph.sends) == 2


def test_invalid_token_pauses_sending_until_the_page_is_reconnected(client, make, api, graph, app):
    inbox_id = page_inbox(make)
    customer_writes(client)
    conv_id = api.conversation_with(U1)["id"]
    graph.send_answers.append(graph_error(190, "Error validating access token: session expired."))
    queued = api.reply(conv_id, "Your order shipped.")
    run_once()
    inbox = api.inbox(inbox_id)
    assert inbox["needs_reconnect"] is True
    assert "Reconnect" in inbox["last_error"]
    assert api.message(conv_id, queued["id"])["status"] == "queued"  # kept, not failed

    with time_machine.travel(now() + timedelta(hours=3), tick=True):
        run_once()  # paused: no more calls with a dead token
    assert len(graph.sends) == 1

    result = app.test_cli_runner().invoke(
        args=["inboxes", "reconnect", str(inbox_id), "--page-token", "EAAG-fresh-token"]
    )
    assert result.exit_code == 0, result.output
    run_once()
    assert len(graph.sends) == 2
    assert graph.sends[-1].token == "EAAG-fresh-token"
    assert api.message(conv_id, queued["id"])["status"] == "sent"
    assert api.inbox(inbox_id)["needs_reconnect"] is False
    assert "fresh" not in json.dumps(api.inbox(inbox_id))  # the token is never shown


def test_temporary_failure_is_retried_with_backoff(client, make, api, graph, session):
    page_inbox(make)
    customer_writes(client)
    conv_id = api.conversation_with(U1)["id"]
    graph.send_answers.append(graph_error(1200, "Temporary send message failure.", status=500))
    queued = api.reply(conv_id, "Tracking number: 123")
    run_once()
    assert api.message(conv_id, queued["id"])["status"] == "queued"
    run_once()  # not due yet: backoff
    assert len(graph.sends) == 1
    with time_machine.travel(now() + timedelta(hours=2), tick=True):
        run_once()
        assert api.message(conv_id, queued["id"])["status"] == "sent"
    assert len(graph.sends) == 2
    assert graph.sends[0].body == graph.sends[1].body  # same metadata: echoes still match


def test_invalid_parameter_fails_with_metas_message(client, make, api, graph):
    page_inbox(make)
    customer_writes(client)
    conv_id = api.conversation_with(U1)["id"]
    graph.send_answers.append(graph_error(100, "(#100) The parameter recipient is required"))
    queued = api.reply(conv_id, "Hi")
    run_once()
    msg = api.message(conv_id, queued["id"])
    assert msg["status"] == "failed"
    assert msg["error"]["code"] == "permanent"
    assert "(#100) The parameter recipient is required" in msg["error"]["message"]
    run_once()
    assert len(graph.sends) == 1  # not retried


# --------------------------------------------------------------------------- mark_seen, typing


def test_mark_seen_only_when_the_agent_replies_or_asks(client, make, api, graph):
    page_inbox(make)
    customer_writes(client, body="Are you open today?")
    conv_id = api.conversation_with(U1)["id"]
    run_once()  # the profile look-up
    graph.calls.clear()

    # opening and reading the conversation tells the customer nothing
    api.conversation(conv_id)
    api.messages(conv_id)
    assert api.post(f"/conversations/{conv_id}/read").status_code == 200
    run_once()
    assert graph.calls == []

    api.reply(conv_id, "Yes, until 6 pm.")
    run_once()
    assert graph.kinds() == ["mark_seen", "message"]
    assert graph.calls[0].body == {"recipient": {"id": U1}, "sender_action": "mark_seen"}

    api.reply(conv_id, "And tomorrow too.")  # nothing new from the customer: no second seen
    run_once()
    assert graph.kinds() == ["mark_seen", "message", "message"]

    graph.calls.clear()
    asked = api.post(f"/conversations/{conv_id}/mark-seen")
    assert asked.status_code == 202
    run_once()
    assert graph.kinds() == ["mark_seen"]


def test_mark_seen_endpoint_checks_access_and_channel(client, make, api):
    page_inbox(make)
    customer_writes(client)
    conv_id = api.conversation_with(U1)["id"]
    outsider = make.user("agent")
    resp = client.post(f"/api/v1/conversations/{conv_id}/mark-seen", headers=make.headers(outsider))
    assert resp.status_code == 404
    assert client.post(f"/api/v1/conversations/{conv_id}/mark-seen").status_code == 401
    sms = make.inbox("sms")
    make.inbound(sms, contact="+14155550123", text="hi")
    sms_conv = api.conversations(channel="sms")[0]["id"]
    resp = api.post(f"/conversations/{sms_conv}/mark-seen")
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "unsupported"


def test_typing_in_the_inbox_sends_typing_on_throttled(client, make, api, graph, app):
    from app.extensions import socketio

    agent = make.user("agent", name="Tam")
    inbox_id = page_inbox(make)
    from app.extensions import db
    from app.models import InboxMember

    db.session.add(InboxMember(inbox_id=inbox_id, user_id=agent.id))
    db.session.commit()
    outsider_token = make.token(make.user("agent", name="Other"))
    agent_token = make.token(agent)
    customer_writes(client)
    conv_id = api.conversation_with(U1)["id"]
    run_once()
    graph.calls.clear()

    outsider = socketio.test_client(app, auth={"token": outsider_token})
    assert outsider.is_connected()
    outsider.emit("typing", {"conversation_id": conv_id})
    outsider.disconnect()
    run_once()
    assert graph.calls == []  # not their inbox

    typist = socketio.test_client(app, auth={"token": agent_token})
    assert typist.is_connected()
    typist.emit("typing", {"conversation_id": conv_id})
    typist.emit("typing", {"conversation_id": conv_id})  # keystrokes: throttled
    typist.disconnect()
    run_once()
    assert graph.kinds() == ["typing_on"]
    assert graph.calls[0].body == {"recipient": {"id": U1}, "sender_action": "typing_on"}
