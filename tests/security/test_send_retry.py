"""A reply that got no answer from the provider is never sent a second time blindly.

A read timeout (or a connection dropped once the request went out) does not
say whether the provider accepted the message. Re-posting the same body would
give the customer the reply twice. A connection that was refused or never
opened sent nothing and is retried. While a reply waits for its next attempt,
its ``error`` says why and the inbox says that sending is failing.

Providers are faked at the HTTP boundary: ``responses`` for Graph and Twilio
(a fake that can accept a message and lose the answer), and real local sockets
for the two kinds of network failure.
"""

from __future__ import annotations

import email.utils
import itertools
import json
import socket
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
import time_machine

from app.clock import now
from app.extensions import db
from app.models import Message
from app.runtime.worker import run_once
from connectors import base as cb
from tests.channels.test_messenger_flow import (
    PAGE_A,
    U1,
    Api,
    customer_writes,
    echo,
    entry,
    envelope,
    graph,
    page_inbox,
    post_webhook,
)
from tests.channels.test_sms_flow import (
    ACCOUNT,
    LA,
    MESSAGES_URL,
    STATUS_URL,
    inbound,
    signed_post,
    snap,
)

__all__ = ["graph"]  # the fake Graph fixture

LATER = timedelta(hours=2)  # past any back-off


def run_later(times: int = 3) -> None:
    """Run the worker as time goes by: every back-off is over."""
    for step in range(1, times + 1):
        with time_machine.travel(now() + step * LATER, tick=False):
            run_once()


@pytest.fixture
def api(client, make):
    return Api(client, make.headers(make.user("lead", name="Lea Lead")))


def lost_answer(mid, body):
    """Meta accepted the message (it has a mid), but the answer never reached us."""
    raise requests.exceptions.ReadTimeout("HTTPSConnectionPool: Read timed out. (read timeout=20)")


def updates_of(events, message_id: int) -> list[dict]:
    return [
        e.payload for e in events if e.name == "message.updated" and e.payload["id"] == message_id
    ]


def closed_port() -> int:
    """A local port nothing listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- Messenger


def test_messenger_reply_without_an_answer_is_not_sent_again(
    client, make, api, graph, captured_events
):
    inbox_id = page_inbox(make)
    customer_writes(client)
    conv_id = api.conversation_with(U1)["id"]
    graph.on_send = lost_answer
    queued = api.reply(conv_id, "Your refund is on its way.")
    captured_events.clear()

    run_once()
    graph.on_send = None
    run_later()

    assert len(graph.sends) == 1  # the customer got it once, or not at all: never twice
    msg = api.message(conv_id, queued["id"])
    assert msg["status"] == "unknown"
    assert msg["error"]["code"] == "unknown"
    assert "may or may not have been delivered" in msg["error"]["message"]
    assert updates_of(captured_events, queued["id"])[-1]["status"] == "unknown"
    assert api.inbox(inbox_id)["last_error"].startswith("Sending is failing: Messenger did not")

    # the agent checked on Facebook and sends it again
    resp = api.post(f"/conversations/{conv_id}/messages/{queued['id']}/retry")
    assert resp.status_code == 202 and resp.get_json()["status"] == "queued"
    assert resp.get_json()["error"] is None
    run_once()
    assert len(graph.sends) == 2
    msg = api.message(conv_id, queued["id"])
    assert (msg["status"], msg["error"]) == ("sent", None)
    assert api.inbox(inbox_id)["last_error"] is None


def test_messenger_echo_settles_an_unknown_delivery(client, make, api, graph):
    page_inbox(make)
    customer_writes(client)
    conv_id = api.conversation_with(U1)["id"]
    sent_mids = []
    graph.on_send = lambda mid, body: (sent_mids.append(mid), lost_answer(mid, body))
    queued = api.reply(conv_id, "Your refund is on its way.")
    run_once()
    assert api.message(conv_id, queued["id"])["status"] == "unknown"

    # Meta reports the Page's message, with our reference as metadata: it did go out
    body = envelope(
        entry(
            PAGE_A,
            echo(
                PAGE_A,
                U1,
                sent_mids[0],
                "Your refund is on its way.",
                metadata=f"sb:{queued['id']}",
            ),
        )
    )
    assert post_webhook(client, body).status_code == 200
    msg = api.message(conv_id, queued["id"])
    assert (msg["status"], msg["error"]) == ("sent", None)
    assert len(graph.sends) == 1


def test_parts_of_a_long_reply_that_went_out_are_not_sent_again(client, make, api, graph):
    page_inbox(make)
    customer_writes(client)
    conv_id = api.conversation_with(U1)["id"]
    calls = itertools.count(1)
    graph.on_send = lambda mid, body: next(calls) == 2 and lost_answer(mid, body)
    text = ("First paragraph. " * 100).strip() + "\n\n" + ("Second paragraph. " * 60).strip()
    queued = api.reply(conv_id, text)
    run_once()
    graph.on_send = None
    run_later()
    assert len(graph.sends) == 2  # part one went out; part two got no answer
    assert api.message(conv_id, queued["id"])["status"] == "unknown"

    api.post(f"/conversations/{conv_id}/messages/{queued['id']}/retry")
    run_once()
    texts = [c.body["message"]["text"] for c in graph.sends]
    assert texts[0].startswith("First") and texts[1].startswith("Second") and texts[2] == texts[1]
    assert len(texts) == 3  # only the part in doubt was sent again
    assert api.message(conv_id, queued["id"])["status"] == "sent"


def test_a_refused_connection_is_retried_showing_why(
    client, make, api, graph, app, captured_events
):
    inbox_id = page_inbox(make)
    customer_writes(client)
    conv_id = api.conversation_with(U1)["id"]
    real_graph = app.config["MESSENGER_GRAPH_URL"]
    down = f"http://127.0.0.1:{closed_port()}"
    graph.rsps.add_passthru(down)
    app.config["MESSENGER_GRAPH_URL"] = down
    queued = api.reply(conv_id, "Thanks, looking into it.")
    captured_events.clear()

    run_once()

    msg = api.message(conv_id, queued["id"])
    assert msg["status"] == "queued"  # nothing reached Meta: it will be sent again
    assert msg["error"]["code"] == "network"
    assert "Could not reach the Graph API" in msg["error"]["message"]
    live = updates_of(captured_events, queued["id"])
    assert live and live[-1]["error"] == msg["error"]  # the open thread shows it at once
    inbox = api.inbox(inbox_id)
    assert inbox["last_error"] == "Sending is failing: " + msg["error"]["message"]
    assert inbox["last_error_at"]
    assert any(e.name == "inbox.updated" for e in captured_events)

    app.config["MESSENGER_GRAPH_URL"] = real_graph
    run_later(1)
    assert len(graph.sends) == 1
    msg = api.message(conv_id, queued["id"])
    assert (msg["status"], msg["error"]) == ("sent", None)
    assert api.inbox(inbox_id)["last_error"] is None


# --------------------------------------------------------------------------- Twilio


class FakeTwilio:
    """Twilio's Messages resource: create (which can lose its answer) and list."""

    def __init__(self, rsps: responses.RequestsMock) -> None:
        self.rsps = rsps
        self.stored: list[dict] = []
        self.log: list[str] = []  # "POST" / "GET", in order
        self.mode = "answer"  # answer | lose_answer (stored, no answer) | drop (not stored)
        self.sids = (f"SM{n:032x}" for n in itertools.count(0xF00D0000))
        rsps.add_callback(responses.POST, MESSAGES_URL, callback=self._create)
        rsps.add_callback(responses.GET, MESSAGES_URL, callback=self._list)

    def store(self, to: str, frm: str, body: str, at: datetime | None = None) -> dict:
        message = {
            "sid": next(self.sids),
            "to": to,
            "from": frm,
            "body": body,
            "status": "queued",
            "direction": "outbound-api",
            "messaging_service_sid": None,
            "date_created": email.utils.format_datetime(at or datetime.now(UTC)),
        }
        self.stored.append(message)
        return message

    def _create(self, request):
        self.log.append("POST")
        form = dict(parse_qsl(request.body))
        if self.mode == "drop":
            raise requests.exceptions.ReadTimeout("Read timed out. (read timeout=20)")
        message = self.store(form["To"], form["From"], form.get("Body", ""))
        if self.mode == "lose_answer":
            raise requests.exceptions.ReadTimeout("Read timed out. (read timeout=20)")
        return 201, {"Content-Type": "application/json"}, json.dumps(message)

    def _list(self, request):
        self.log.append("GET")
        query = dict(parse_qsl(urlsplit(request.url).query))
        found = [
            m
            for m in reversed(self.stored)
            if m["to"] == query.get("To") and m["from"] == query.get("From", m["from"])
        ]
        body = {"messages": found, "page": 0, "page_size": int(query.get("PageSize", 50))}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)


@pytest.fixture
def twilio():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeTwilio(rsps)


@pytest.fixture
def sms(client, make, twilio):
    """An SMS inbox with a customer who wrote; (inbox, auth headers, conversation id)."""
    agent = make.user("agent", name="Ana Agent")
    inbox = snap(make.inbox("sms", members=[agent]))
    auth = make.headers(agent)
    assert inbound(client, inbox, "Where is my parcel?").status_code == 200
    conv_id = client.get("/api/v1/conversations?status=all", headers=auth).get_json()["items"][0][
        "id"
    ]
    return inbox, auth, conv_id


def sms_reply(client, auth, conv_id: int, body: str) -> int:
    resp = client.post(
        f"/api/v1/conversations/{conv_id}/messages", headers=auth, json={"body": body}
    )
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()["id"]


def sms_message(client, auth, conv_id: int, message_id: int) -> dict:
    items = client.get(f"/api/v1/conversations/{conv_id}/messages", headers=auth).get_json()[
        "items"
    ]
    (found,) = [m for m in items if m["id"] == message_id]
    return found


def inbox_error(client, auth, inbox_id: int) -> str | None:
    items = client.get("/api/v1/inboxes", headers=auth).get_json()["items"]
    (found,) = [i for i in items if i["id"] == inbox_id]
    return found["last_error"]


def test_twilio_accepted_but_unanswered_is_found_not_sent_again(
    client, twilio, sms, captured_events
):
    inbox, auth, conv_id = sms
    twilio.mode = "lose_answer"
    msg_id = sms_reply(client, auth, conv_id, "Your parcel left the warehouse.")
    captured_events.clear()
    run_once()

    waiting = sms_message(client, auth, conv_id, msg_id)
    assert waiting["status"] == "queued"
    assert waiting["error"]["code"] == "no_answer"
    assert "checks whether it went out" in waiting["error"]["message"]
    assert updates_of(captured_events, msg_id)[-1]["error"] == waiting["error"]
    assert inbox_error(client, auth, inbox.id).startswith("Sending is failing: Twilio did not")

    twilio.mode = "answer"
    run_later()

    assert twilio.log == ["POST", "GET"]  # asked, found it, did not post again
    msg = sms_message(client, auth, conv_id, msg_id)
    assert (msg["status"], msg["error"]) == ("sent", None)
    assert db.session.get(Message, msg_id).provider_id == twilio.stored[0]["sid"]
    assert inbox_error(client, auth, inbox.id) is None
    # its receipts are recognised: the SID Twilio gave it is the one recorded
    form = {
        "MessageSid": twilio.stored[0]["sid"],
        "MessageStatus": "delivered",
        "AccountSid": ACCOUNT,
        "From": inbox.number,
        "To": LA,
    }
    assert signed_post(client, STATUS_URL, form, inbox.token).status_code == 204
    assert sms_message(client, auth, conv_id, msg_id)["status"] == "delivered"


def test_twilio_unanswered_and_not_created_is_sent_after_checking(client, twilio, sms):
    inbox, auth, conv_id = sms
    twilio.mode = "drop"
    msg_id = sms_reply(client, auth, conv_id, "Your parcel left the warehouse.")
    run_once()
    twilio.mode = "answer"
    run_later()
    assert twilio.log == ["POST", "GET", "POST"]  # not found by the check: sent once
    assert len(twilio.stored) == 1
    assert sms_message(client, auth, conv_id, msg_id)["status"] == "sent"


def test_twilio_receipt_for_the_unanswered_send_settles_it(client, twilio, sms):
    inbox, auth, conv_id = sms
    twilio.mode = "lose_answer"
    msg_id = sms_reply(client, auth, conv_id, "Your parcel left the warehouse.")
    run_once()
    assert sms_message(client, auth, conv_id, msg_id)["error"]["code"] == "no_answer"

    # the status callback names our message by the ref in its URL
    form = {
        "MessageSid": twilio.stored[0]["sid"],
        "MessageStatus": "sent",
        "AccountSid": ACCOUNT,
        "From": inbox.number,
        "To": LA,
    }
    assert signed_post(client, f"{STATUS_URL}?ref={msg_id}", form, inbox.token).status_code == 204
    msg = sms_message(client, auth, conv_id, msg_id)
    assert (msg["status"], msg["error"]) == ("sent", None)
    twilio.mode = "answer"
    run_later()
    assert twilio.log == ["POST"]


def test_twilio_unanswered_with_other_messages_since_is_left_to_the_agent(client, twilio, sms):
    inbox, auth, conv_id = sms
    twilio.mode = "drop"
    msg_id = sms_reply(client, auth, conv_id, "Your parcel left the warehouse.")
    run_once()
    twilio.store(LA, inbox.number, "A message sent from elsewhere")  # cannot tell them apart
    twilio.mode = "answer"
    run_later()
    assert twilio.log == ["POST", "GET"]
    msg = sms_message(client, auth, conv_id, msg_id)
    assert msg["status"] == "unknown"
    assert "may or may not" in msg["error"]["message"]

    resp = client.post(f"/api/v1/conversations/{conv_id}/messages/{msg_id}/retry", headers=auth)
    assert resp.status_code == 202
    run_once()
    assert twilio.log == ["POST", "GET", "POST"]  # the agent decided: sent without asking
    assert sms_message(client, auth, conv_id, msg_id)["status"] == "sent"


# --------------------------------------------------------------------------- real sockets


class Silent:
    """A local server that reads the request and never answers it."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.received = b""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            conn.settimeout(0.2)
            while not self.stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                self.received += chunk

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.server.close()


@pytest.fixture
def silent():
    server = Silent()
    yield server
    server.close()


def _connector(channel: str, base: str) -> cb.Connector:
    options = cb.ConnectorOptions(
        base_urls={"messenger_graph": base, "twilio": base}, timeout=(1.0, 0.3)
    )
    config = {
        "messenger": {"page_id": "1", "page_token": "t", "app_secret": "s"},
        "sms": {"number": "+14155550100", "account_sid": ACCOUNT, "auth_token": "a"},
    }[channel]
    return cb.get(channel)(config, options)


def _outbound() -> cb.OutboundMessage:
    return cb.OutboundMessage(contact_id=LA, text="Hello", reference="sb:1")


@pytest.mark.parametrize("channel", ["messenger", "sms"])
def test_a_request_that_went_out_unanswered_is_unknown(silent, channel):
    error = _connector(channel, silent.url).send(_outbound()).error
    silent.close()
    assert error.kind is cb.ErrorKind.UNKNOWN, error
    assert b"Hello" in silent.received  # it did reach the provider


@pytest.mark.parametrize("channel", ["messenger", "sms"])
def test_a_refused_connection_is_transient(channel):
    error = _connector(channel, f"http://127.0.0.1:{closed_port()}").send(_outbound()).error
    assert error.kind is cb.ErrorKind.TRANSIENT, error
