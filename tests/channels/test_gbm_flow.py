"""Google Business Messages end to end, through the HTTP boundary.

Google calls ``POST /webhooks/gbm`` (handshake, signed events); agents use the
JSON API; the outbox worker sends replies and representative events to a fake
Business Messages API (``GBM_API_URL`` = http://gbm.fake) with OAuth tokens
from a fake token endpoint (the service account's ``token_uri``). Both fakes
are ``responses`` mocks, so the tests see exactly what would go over the wire.
Payloads follow Google's documented ``UserMessage`` shapes.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
import time_machine
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt as google_jwt

from connectors import gbm
from tests.channels.harness import Api

AGENT = "brands/acme-brand/agents/acme-support"
CLIENT_TOKEN = "SJENCPGJESMGUFPY"
PARTNER_KEY = "partner-key-0001"
CONV = "c0ffee00-1111-4222-8333-444455556666"
API = "http://gbm.fake"
TOKEN_URI = "http://token.fake/oauth2/token"
MESSAGES_URL = f"{API}/v1/conversations/{CONV}/messages"
EVENTS_URL = f"{API}/v1/conversations/{CONV}/events"
SCOPE = "https://www.googleapis.com/auth/businessmessages"
IMAGE_URL = (
    "https://storage.googleapis.com/business-messages-us/1234/photo-abc?"
    "x-goog-algorithm=GOOG4-RSA-SHA256&x-goog-date=20240501T150123Z"
    "&x-goog-expires=604800&x-goog-signedheaders=host&x-goog-signature=deadbeef"
)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


# --------------------------------------------------------------------------- payloads


def stamp(at: datetime) -> str:
    """RFC 3339 with nanoseconds, as Google writes ``sendTime``/``createTime``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def user_message(
    *,
    request_id: str | None = None,
    conversation: str = CONV,
    agent: str = AGENT,
    name: str = "Jane Doe",
    locale: str = "en",
    at: datetime | None = None,
    **payload: object,
) -> dict:
    """A ``UserMessage`` around one payload field."""
    at = at or datetime.now(UTC)
    body = {
        "agent": agent,
        "conversationId": conversation,
        "customAgentId": "acme-support",
        "requestId": request_id or f"req-{uuid.uuid4().hex}",
        "sendTime": stamp(at),
        "context": {
            "entryPoint": "PLACESHEET",
            "placeId": "ChIJN1t_tDeuEmsRUsoyG83frY4",
            "userInfo": {"displayName": name, "userDeviceLocale": f"{locale}-US"},
            "resolvedLocale": locale,
            "customContext": "",
        },
    }
    body.update(payload)
    return body


def text_message(
    text: str = "Hello, is my order ready?",
    *,
    message_id: str | None = None,
    at: datetime | None = None,
    **kw: object,
) -> dict:
    """A customer's text message."""
    at = at or datetime.now(UTC)
    mid = message_id or f"msg-{uuid.uuid4().hex[:12]}"
    conversation = kw.get("conversation", CONV)
    return user_message(
        at=at,
        message={
            "messageId": mid,
            "name": f"conversations/{conversation}/messages/{mid}",
            "text": text,
            "createTime": stamp(at),
        },
        **kw,
    )


def receipts(*pairs: tuple[str, str], conversation: str = CONV) -> dict:
    """A receipts batch: ``(our messageId, DELIVERED|READ)`` pairs."""
    now = stamp(datetime.now(UTC))
    return {
        "agent": AGENT,
        "conversationId": conversation,
        "requestId": f"req-{uuid.uuid4().hex}",
        "sendTime": now,
        "receipts": {
            "receipts": [
                {"message": f"conversations/{conversation}/messages/{mid}", "receiptType": kind}
                for mid, kind in pairs
            ],
            "createTime": now,
        },
    }


def deliver(client, body: dict, key: str | None = CLIENT_TOKEN, signature: str | None = None):
    """POST ``body`` to the webhook as Google would, signed with ``key``."""
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Goog-Signature"] = signature
    elif key is not None:
        headers["X-Goog-Signature"] = gbm.sign(raw, key)
    return client.post("/webhooks/gbm", data=raw, headers=headers)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def rsa_private_pem() -> str:
    """A throwaway RSA key for the fake service account."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def service_account(rsa_private_pem: str) -> dict:
    """A service-account JSON whose ``token_uri`` is the fake token endpoint."""
    return {
        "type": "service_account",
        "project_id": "acme-support",
        "private_key_id": "key-" + uuid.uuid4().hex,
        "private_key": rsa_private_pem,
        "client_email": "bm-agent@acme-support.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": TOKEN_URI,
    }


@pytest.fixture(autouse=True)
def _fresh_token_cache():
    gbm.clear_token_cache()
    yield
    gbm.clear_token_cache()


@pytest.fixture
def agent(make):
    return make.user("agent", name="Alex Martin")


@pytest.fixture
def lead(make):
    return make.user("lead", name="Lea Lead")


@pytest.fixture
def inbox(make, agent, service_account):
    return make.inbox(
        "gbm",
        members=[agent],
        agent=AGENT,
        client_token=CLIENT_TOKEN,
        service_account=service_account,
    )


@pytest.fixture
def as_agent(client, make, agent) -> Api:
    return Api(client, make.headers(agent))


@pytest.fixture
def as_lead(client, make, lead) -> Api:
    return Api(client, make.headers(lead))


class FakeGoogle:
    """The fake token endpoint and Business Messages API (``responses``)."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.mock = mock
        self.tokens_issued = 0
        mock.add_callback(responses.POST, TOKEN_URI, callback=self._token)

    def _token(self, request):
        self.tokens_issued += 1
        body = {
            "access_token": f"tok-{self.tokens_issued}",
            "expires_in": 3600,
            "token_type": "Bearer",
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def answer(self, *statuses: int, url: str = MESSAGES_URL, google_status: str = "") -> None:
        """Queue answers for ``url`` in order (the last one repeats)."""
        for status in statuses:
            if status < 300:
                self.mock.add(responses.POST, url, json={"name": f"conversations/{CONV}/x"})
            else:
                error = {
                    "code": status,
                    "message": f"fake error {status}",
                    "status": google_status or "INTERNAL",
                }
                self.mock.add(responses.POST, url, json={"error": error}, status=status)

    def calls(self, prefix: str) -> list:
        return [c for c in self.mock.calls if c.request.url.startswith(prefix)]

    def sent(self) -> list[dict]:
        """Bodies POSTed to the messages endpoint."""
        return [json.loads(c.request.body) for c in self.calls(MESSAGES_URL)]

    def events(self) -> list[dict]:
        return [json.loads(c.request.body) for c in self.calls(EVENTS_URL)]

    def token_calls(self) -> list:
        return self.calls(TOKEN_URI)


@pytest.fixture
def google():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeGoogle(mock)


def run_worker() -> int:
    from app.runtime.worker import run_once

    return run_once()


def customer_writes(client, *, at: datetime | None = None, text: str = "Hello?") -> None:
    resp = deliver(client, text_message(text, at=at))
    assert resp.status_code == 200, resp.data


# --------------------------------------------------------------------------- handshake


def test_handshake_with_the_right_client_token_echoes_the_secret(client, inbox):
    resp = client.post("/webhooks/gbm", json={"clientToken": CLIENT_TOKEN, "secret": "1234567890"})
    assert resp.status_code == 200
    assert resp.mimetype == "text/plain"
    assert resp.get_data(as_text=True) == "1234567890"


@pytest.mark.parametrize("token", ["WRONGTOKEN", CLIENT_TOKEN.lower(), CLIENT_TOKEN + "X"])
def test_handshake_with_a_wrong_client_token_is_refused(client, inbox, token):
    resp = client.post("/webhooks/gbm", json={"clientToken": token, "secret": "1234567890"})
    assert resp.status_code == 403
    assert "1234567890" not in resp.get_data(as_text=True)


# --------------------------------------------------------------------------- inbound


def test_text_message_appears_with_the_contact_name_and_context(client, inbox, as_agent):
    at = datetime.now(UTC) - timedelta(minutes=3)
    body = text_message(
        "Bonjour, ma commande est prête ?", at=at, name="Jeanne Dupont", locale="fr"
    )
    resp = deliver(client, body)
    assert resp.status_code == 200
    assert resp.get_json()["stored"] == 1

    conv = as_agent.only_conversation()
    assert conv["inbox"]["channel"] == "gbm"
    assert conv["contact"]["name"] == "Jeanne Dupont"
    [identity] = conv["contact"]["identities"]
    assert (identity["channel"], identity["external_id"]) == ("gbm", CONV)
    assert conv["last_message"]["body"] == "Bonjour, ma commande est prête ?"
    assert conv["context"]["entry_point"] == "PLACESHEET"
    assert conv["context"]["place_id"] == "ChIJN1t_tDeuEmsRUsoyG83frY4"
    assert conv["context"]["locale"] == "fr"
    # timers count from the customer's own send time
    assert conv["last_inbound_at"].startswith(at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert conv["reply_window"]["state"] == "open"
    [msg] = as_agent.messages(conv["id"], "inbound")
    assert msg["sender"] == {"type": "contact", "name": "Jeanne Dupont"}
    assert msg["body"] == "Bonjour, ma commande est prête ?"


def test_context_follows_the_latest_message(client, inbox, as_agent):
    deliver(client, text_message("first"))
    later = text_message("second")
    later["context"] = {
        "entryPoint": "MAPS",
        "nearPlaceId": "ChIJnear",
        "userInfo": {"displayName": "Jane Doe", "userDeviceLocale": "de-DE"},
    }
    deliver(client, later)
    context = as_agent.only_conversation()["context"]
    assert context["entry_point"] == "MAPS"
    assert context["near_place_id"] == "ChIJnear"
    assert context["locale"] == "de-DE"


def test_partner_key_signature_is_accepted_where_configured(client, make, service_account, as_lead):
    make.inbox(
        "gbm",
        agent=AGENT,
        client_token=CLIENT_TOKEN,
        partner_key=PARTNER_KEY,
        service_account=service_account,
    )
    resp = deliver(client, text_message("signed with the partner key"), key=PARTNER_KEY)
    assert resp.status_code == 200
    assert as_lead.only_conversation()["last_message"]["body"] == "signed with the partner key"


def test_partner_key_signature_is_refused_where_not_configured(client, inbox, as_lead):
    resp = deliver(client, text_message("signed with a partner key"), key=PARTNER_KEY)
    assert resp.status_code == 403
    assert as_lead.counts()["all"] == 0


def test_image_is_downloaded_by_the_worker_and_stored(client, inbox, as_agent, google):
    google.mock.add(responses.GET, IMAGE_URL, body=PNG, content_type="image/png")
    resp = deliver(client, text_message(IMAGE_URL))
    assert resp.status_code == 200
    conv = as_agent.only_conversation()
    [msg] = as_agent.messages(conv["id"], "inbound")
    assert msg["body"] == ""
    assert [a["state"] for a in msg["attachments"]] == ["pending"]
    assert conv["last_message"]["body"] == "[image]"

    run_worker()

    [msg] = as_agent.messages(conv["id"], "inbound")
    [att] = msg["attachments"]
    assert att["state"] == "stored"
    assert att["kind"] == "image"
    assert att["content_type"] == "image/png"
    assert att["size"] == len(PNG)
    got = as_agent.client.get(att["url"], headers=as_agent.headers)
    data = got.get_data()
    got.close()
    assert got.status_code == 200
    assert data == PNG
    assert len(google.calls("https://storage.googleapis.com/")) == 1


def test_customer_typing_is_shown_live(client, inbox, captured_events, session):
    from app.models import Message

    customer_writes(client)
    before = session.query(Message).count()
    captured_events.clear()
    body = user_message(userStatus={"isTyping": True, "createTime": stamp(datetime.now(UTC))})
    assert deliver(client, body).status_code == 200
    typing = [e for e in captured_events if e.name == "contact.typing"]
    assert len(typing) == 1
    assert typing[0].payload["is_typing"] is True
    assert typing[0].payload["conversation_id"] > 0
    assert ("inbox", inbox.id) in typing[0].audience
    assert session.query(Message).count() == before  # typing is not stored


def test_requested_live_agent_flags_and_raises_the_conversation(client, inbox, as_agent):
    early = datetime.now(UTC) - timedelta(hours=2)
    deliver(client, text_message("older question", at=early))
    deliver(client, text_message("newer question", conversation="other-conv", name="Bob"))
    listed = as_agent.conversations(status="open")
    assert [c["contact"]["name"] for c in listed] == ["Bob", "Jane Doe"]

    body = user_message(
        userStatus={"requestedLiveAgent": True, "createTime": stamp(datetime.now(UTC))}
    )
    assert deliver(client, body).status_code == 200
    assert deliver(client, body).status_code == 200  # a replay changes nothing more

    listed = as_agent.conversations(status="open")
    assert [c["contact"]["name"] for c in listed] == ["Jane Doe", "Bob"]
    jane = listed[0]
    assert jane["requested_live_agent"] is True
    assert jane["priority"] >= 1
    assert listed[1]["requested_live_agent"] is False
    activity = [m["body"] for m in as_agent.messages(jane["id"], "activity")]
    assert activity == ["The customer asked to talk to a person"]


def test_suggestion_response_is_stored_as_the_customer_message(client, inbox, as_agent):
    customer_writes(client)
    at = datetime.now(UTC)
    body = user_message(
        suggestionResponse={
            "message": f"conversations/{CONV}/messages/our-msg-1",
            "postbackData": "order_status",
            "createTime": stamp(at),
            "text": "Where is my order?",
            "type": "REPLY",
        }
    )
    assert deliver(client, body).status_code == 200
    assert deliver(client, body).status_code == 200  # replay
    conv = as_agent.only_conversation()
    inbound = as_agent.messages(conv["id"], "inbound")
    assert [m["body"] for m in inbound] == ["Hello?", "Where is my order?"]
    assert inbound[1]["kind"] == "suggestion"
    assert inbound[1]["sender"]["name"] == "Jane Doe"
    assert conv["last_message"]["body"] == "Where is my order?"


def test_survey_response_is_a_rating_on_the_conversation(client, inbox, as_agent):
    customer_writes(client)
    body = user_message(
        surveyResponse={
            "survey": f"conversations/{CONV}/surveys/survey-1",
            "rating": "VERY_SATISFIED",
            "createTime": stamp(datetime.now(UTC)),
            "surveyQuestionId": "GOOGLE_DEFINED_ASSOCIATE_SATISFACTION",
            "questionResponseText": "Very satisfied",
            "questionResponsePostbackData": "very-satisfied",
            "questionType": "GOOGLE_STANDARD_QUESTION",
            "questionIndex": 1,
            "totalQuestionCount": 1,
            "surveyTriggerSource": "GOOGLE",
        }
    )
    assert deliver(client, body).status_code == 200
    assert deliver(client, body).status_code == 200  # replay
    conv = as_agent.only_conversation()
    assert conv["context"]["rating"] == "VERY_SATISFIED"
    assert conv["context"]["survey"]["response"] == "Very satisfied"
    # the rating is not a customer message
    assert [m["body"] for m in as_agent.messages(conv["id"], "inbound")] == ["Hello?"]
    survey_lines = [
        m for m in as_agent.messages(conv["id"], "activity") if m["meta"].get("event") == "survey"
    ]
    assert len(survey_lines) == 1
    fetched = as_agent.get(f"/conversations/{conv['id']}")
    assert fetched["context"]["rating"] == "VERY_SATISFIED"


# --------------------------------------------------------------------------- sending


def _token_assertion(call) -> dict:
    form = parse_qs(
        call.request.body if isinstance(call.request.body, str) else call.request.body.decode()
    )
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    return google_jwt.decode(form["assertion"][0], verify=False)


def test_reply_reaches_google_as_the_human_agent(client, inbox, agent, as_agent, google):
    customer_writes(client)
    conv = as_agent.only_conversation()
    google.answer(200)
    queued = as_agent.reply(conv["id"], "Hi Jane, your order is ready for pickup.")
    assert queued["status"] == "queued"
    assert google.sent() == []  # nothing leaves before the worker runs

    run_worker()

    [sent] = google.sent()
    assert set(sent) == {"messageId", "representative", "text", "fallback"}
    assert str(uuid.UUID(sent["messageId"])) == sent["messageId"]
    assert sent["representative"] == {"representativeType": "HUMAN", "displayName": "Alex Martin"}
    assert sent["text"] == sent["fallback"] == "Hi Jane, your order is ready for pickup."
    [call] = google.calls(MESSAGES_URL)
    assert call.request.headers["Authorization"] == "Bearer tok-1"
    assert call.request.headers["Content-Type"] == "application/json"
    [token_call] = google.token_calls()
    claims = _token_assertion(token_call)
    assert claims["scope"] == SCOPE
    assert claims["iss"] == "bm-agent@acme-support.iam.gserviceaccount.com"

    [out] = as_agent.messages(conv["id"], "outbound")
    assert out["status"] == "sent"
    assert out["sender"]["name"] == "Alex Martin"

    # the token is cached: a second reply costs no token request
    as_agent.reply(conv["id"], "Anything else?")
    run_worker()
    assert len(google.sent()) == 2
    assert len(google.token_calls()) == 1
    assert google.sent()[1]["messageId"] != sent["messageId"]


def test_agent_avatar_is_sent_when_set(client, inbox, agent, as_agent, google, session):
    agent.avatar_url = "https://cdn.example.test/alex.png"
    session.commit()
    customer_writes(client)
    google.answer(200)
    as_agent.reply(as_agent.only_conversation()["id"], "Hello!")
    run_worker()
    [sent] = google.sent()
    assert sent["representative"] == {
        "representativeType": "HUMAN",
        "displayName": "Alex Martin",
        "avatarImage": "https://cdn.example.test/alex.png",
    }


def test_transient_failure_is_retried_with_the_same_message_id(client, inbox, as_agent, google):
    customer_writes(client)
    conv = as_agent.only_conversation()
    google.answer(500, 200)
    as_agent.reply(conv["id"], "Your parcel left the warehouse.")

    run_worker()
    [first] = google.sent()
    [out] = as_agent.messages(conv["id"], "outbound")
    assert out["status"] == "queued"  # still on its way
    assert run_worker() == 0  # backoff: not yet due

    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=10), tick=True):
        run_worker()
    first_again, second = google.sent()
    assert first_again == first
    assert second["messageId"] == first["messageId"]
    assert second == first
    [out] = as_agent.messages(conv["id"], "outbound")
    assert out["status"] == "sent"
    assert out["error"] is None


def test_unauthorised_pauses_sending_and_asks_for_a_reconnect(
    client, inbox, as_agent, as_lead, google
):
    customer_writes(client)
    conv = as_agent.only_conversation()
    google.answer(401, google_status="UNAUTHENTICATED")
    as_agent.reply(conv["id"], "Are you there?")

    run_worker()
    assert len(google.sent()) == 1
    [out] = as_agent.messages(conv["id"], "outbound")
    assert out["status"] == "queued"  # kept, not lost
    [listed] = as_lead.get("/inboxes")["items"]
    assert listed["needs_reconnect"] is True
    assert "Reconnect needed" in listed["last_error"]

    assert run_worker() == 0  # paused: nothing more goes out
    assert len(google.sent()) == 1


@pytest.mark.parametrize(
    ("status", "google_status"), [(404, "NOT_FOUND"), (403, "PERMISSION_DENIED")]
)
def test_conversation_gone_is_undeliverable(client, inbox, as_agent, google, status, google_status):
    customer_writes(client)
    conv = as_agent.only_conversation()
    google.answer(status, google_status=google_status)
    as_agent.reply(conv["id"], "Hello again")

    run_worker()
    [out] = as_agent.messages(conv["id"], "outbound")
    assert out["status"] == "failed"
    assert out["error"]["code"] == "undeliverable"
    conv = as_agent.get(f"/conversations/{conv['id']}")
    assert conv["undeliverable"]

    # the next reply is refused up front and never reaches Google
    resp = as_agent.post(f"/conversations/{conv['id']}/messages", {"body": "Still there?"})
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "undeliverable"
    run_worker()
    assert len(google.sent()) == 1


def test_receipts_batch_advances_our_messages_and_never_downgrades(client, inbox, as_agent, google):
    customer_writes(client)
    conv = as_agent.only_conversation()
    google.answer(200)
    as_agent.reply(conv["id"], "First answer")
    as_agent.reply(conv["id"], "Second answer")
    run_worker()
    first_id, second_id = (body["messageId"] for body in google.sent())

    resp = deliver(
        client, receipts((first_id, "DELIVERED"), (second_id, "READ"), ("not-ours", "READ"))
    )
    assert resp.status_code == 200
    statuses = [m["status"] for m in as_agent.messages(conv["id"], "outbound")]
    assert statuses == ["delivered", "read"]

    # a late DELIVERED for a message already READ does not move it back
    deliver(client, receipts((second_id, "DELIVERED"), (first_id, "READ")))
    statuses = [m["status"] for m in as_agent.messages(conv["id"], "outbound")]
    assert statuses == ["read", "read"]
    assert len(as_agent.messages(conv["id"], "inbound")) == 1  # receipts are not messages


def test_assignment_and_closing_send_representative_events(client, inbox, agent, as_agent, google):
    customer_writes(client)
    conv = as_agent.only_conversation()
    google.answer(200, url=EVENTS_URL)

    resp = as_agent.post(f"/conversations/{conv['id']}/assign", {"assignee_id": agent.id})
    assert resp.status_code == 200
    run_worker()
    assert google.events() == [
        {
            "eventType": "REPRESENTATIVE_JOINED",
            "representative": {"representativeType": "HUMAN", "displayName": "Alex Martin"},
        }
    ]

    resp = as_agent.post(f"/conversations/{conv['id']}/status", {"status": "closed"})
    assert resp.status_code == 200
    run_worker()
    assert [e["eventType"] for e in google.events()] == [
        "REPRESENTATIVE_JOINED",
        "REPRESENTATIVE_LEFT",
    ]
    assert google.events()[1]["representative"]["displayName"] == "Alex Martin"
    event_ids = [
        parse_qs(urlsplit(c.request.url).query)["eventId"][0] for c in google.calls(EVENTS_URL)
    ]
    assert len(set(event_ids)) == 2
    assert all(str(uuid.UUID(e)) == e for e in event_ids)
    assert google.sent() == []  # events are not messages


def test_lead_assigning_sends_the_assignee_as_representative_with_avatar(
    client, inbox, agent, as_agent, as_lead, google, session
):
    agent.avatar_url = "https://cdn.example.test/alex.png"
    session.commit()
    customer_writes(client)
    conv = as_agent.only_conversation()
    google.answer(200, url=EVENTS_URL)
    resp = as_lead.post(f"/conversations/{conv['id']}/assign", {"assignee_id": agent.id})
    assert resp.status_code == 200
    run_worker()
    assert google.events() == [
        {
            "eventType": "REPRESENTATIVE_JOINED",
            "representative": {
                "representativeType": "HUMAN",
                "displayName": "Alex Martin",
                "avatarImage": "https://cdn.example.test/alex.png",
            },
        }
    ]


def test_composer_typing_sends_typing_started(client, app, inbox, agent, make, google):
    from app.extensions import socketio

    customer_writes(client)
    conv_id = Api(client, make.headers(agent)).only_conversation()["id"]
    google.answer(200, url=EVENTS_URL)

    sio = socketio.test_client(app, auth={"token": make.token(agent)})
    assert sio.is_connected()
    sio.emit("typing", {"conversation_id": conv_id})
    sio.emit("typing", {"conversation_id": conv_id})  # throttled
    sio.disconnect()
    run_worker()
    assert google.events() == [
        {
            "eventType": "TYPING_STARTED",
            "representative": {"representativeType": "HUMAN", "displayName": "Alex Martin"},
        }
    ]


# --------------------------------------------------------------------------- windows


def test_reply_allowed_until_thirty_days_after_the_customer_last_wrote(
    client, inbox, as_agent, google
):
    customer_writes(client, at=datetime.now(UTC) - timedelta(days=29, hours=23))
    conv = as_agent.only_conversation()
    assert conv["reply_window"]["state"] == "open"
    assert 0 < conv["reply_window"]["seconds_left"] <= 3600
    google.answer(200)
    as_agent.reply(conv["id"], "Sorry for the wait!")
    run_worker()
    assert len(google.sent()) == 1


def test_reply_refused_after_thirty_days(client, inbox, as_agent, google):
    customer_writes(client, at=datetime.now(UTC) - timedelta(days=30, minutes=1))
    conv = as_agent.only_conversation()
    assert conv["reply_window"]["state"] == "closed"
    resp = as_agent.post(f"/conversations/{conv['id']}/messages", {"body": "Too late?"})
    assert resp.status_code == 409
    error = resp.get_json()["error"]
    assert error["code"] == "window_closed"
    assert "30-day" in error["message"]
    run_worker()
    assert google.sent() == []
    assert as_agent.messages(conv["id"], "outbound") == []
    # a private note is still possible
    note = as_agent.post(
        f"/conversations/{conv['id']}/messages", {"body": "Call her instead", "private": True}
    )
    assert note.status_code == 201


def test_response_due_defaults_to_24_hours(client, inbox, as_agent):
    at = datetime.now(UTC) - timedelta(hours=1)
    customer_writes(client, at=at)
    due = as_agent.only_conversation()["response_due"]
    expected = at + timedelta(hours=24)
    got = datetime.fromisoformat(due["due_at"].replace("Z", "+00:00"))
    assert abs((got - expected).total_seconds()) < 1
    assert due["breached"] is False
    assert 22 * 3600 < due["seconds_left"] <= 23 * 3600


def test_busy_process_queues_the_body_and_threads_it_once(client, inbox, as_agent, session):
    """Under load the body waits in the intake (stored, answered) and is threaded once later."""
    from app.runtime import intake

    body = text_message("Queued while busy", message_id="msg-queued")
    with intake._drain_lock:  # another batch is being threaded in this process
        first, again = deliver(client, body), deliver(client, body)
        assert first.get_json() == again.get_json() == {"status": "ok", "queued": True}
        assert len(intake.rows()) == 2
        assert as_agent.counts()["all"] == 0
    done = intake.drain_all()
    assert done.rows == 2 and len(done.created) == 1 and done.duplicates == 1
    conv = as_agent.only_conversation()
    assert [m["body"] for m in as_agent.messages(conv["id"], "inbound")] == ["Queued while busy"]
    assert conv["context"]["entry_point"] == "PLACESHEET"
