"""What every channel test needs: the agent's JSON API, a fake provider, webhook requests.

- :class:`Api` is the JSON API as one user sees it (bearer token): conversations, the
  thread, replies, assignment, status.
- :class:`FakeProvider` is a provider's HTTP API faked at the ``requests`` boundary
  (``responses``): routes answer as the test says and every call is recorded.
- :class:`SmtpSink` is the mail provider of email inboxes: a local SMTP server.
- :class:`Webhook` is one request a provider makes to us; :class:`Driver` describes how a
  channel's provider talks (see ``tests/channels/drivers.py``), so that the contract
  suite (``test_contract.py``) runs the same checks against every channel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from aiosmtpd.controller import Controller

from app.runtime import worker

# --------------------------------------------------------------------------- the agent's API


class Api:
    """The JSON API (``/api/v1``) as the user whose headers it carries sees it."""

    def __init__(self, client, headers: dict) -> None:
        self.client = client
        self.headers = headers

    def get(self, path: str, **params: Any) -> Any:
        """GET ``/api/v1{path}``; asserts 200 and returns the JSON."""
        resp = self.client.get(f"/api/v1{path}", query_string=params, headers=self.headers)
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    def post(self, path: str, body: dict | None = None):
        """POST JSON to ``/api/v1{path}``; returns the response."""
        return self.client.post(f"/api/v1{path}", json=body or {}, headers=self.headers)

    def conversations(self, **params: Any) -> list[dict]:
        """Every conversation the user sees (any status unless ``status`` is given)."""
        return self.get("/conversations", **{"status": "all", **params})["items"]

    def counts(self, **params: Any) -> dict:
        """The list's counts (``mine``, ``unassigned``, ``all``)."""
        return self.get("/conversations", **{"status": "all", **params})["counts"]

    def only_conversation(self) -> dict:
        """The one conversation the user sees (fails when there are more or none)."""
        (conv,) = self.conversations()
        return conv

    def conversation(self, conv_id: int) -> dict:
        """One conversation object."""
        return self.get(f"/conversations/{conv_id}")

    def conversation_with(self, external_id: str) -> dict:
        """The one conversation whose contact has this id on the channel (PSID, IGSID ...)."""
        (found,) = [
            c
            for c in self.conversations()
            if any(i["external_id"] == external_id for i in c["contact"]["identities"])
        ]
        return found

    def inbox(self, inbox_id: int) -> dict:
        """One inbox as the inbox list shows it."""
        (found,) = [i for i in self.get("/inboxes")["items"] if i["id"] == inbox_id]
        return found

    def messages(self, conv_id: int, direction: str | None = None) -> list[dict]:
        """The thread, oldest first; only ``direction`` (inbound, outbound, ...) when given."""
        items = self.get(f"/conversations/{conv_id}/messages", limit=200)["items"]
        return [m for m in items if direction is None or m["direction"] == direction]

    def message(self, conv_id: int, message_id: int) -> dict:
        """One message of the thread."""
        (found,) = [m for m in self.messages(conv_id) if m["id"] == message_id]
        return found

    def reply(self, conv_id: int, body: str, expect: int = 202, **extra: Any) -> dict:
        """An agent's reply; asserts the answer's status (202: queued for the worker)."""
        resp = self.post(f"/conversations/{conv_id}/messages", {"body": body, **extra})
        assert resp.status_code == expect, resp.get_json()
        return resp.get_json()

    def assign(self, conv_id: int, user_id: int | None, expect: int = 200) -> dict:
        """Assign the conversation (``None``: unassign)."""
        resp = self.post(f"/conversations/{conv_id}/assign", {"assignee_id": user_id})
        assert resp.status_code == expect, resp.get_json()
        return resp.get_json()

    def set_status(self, conv_id: int, status: str, expect: int = 200) -> dict:
        """Open, pend, snooze or close the conversation."""
        resp = self.post(f"/conversations/{conv_id}/status", {"status": status})
        assert resp.status_code == expect, resp.get_json()
        return resp.get_json()

    def close(self, conv_id: int) -> dict:
        """Close the conversation."""
        return self.set_status(conv_id, "closed")


def run_worker(limit: int = 10) -> int:
    """Run the outbox worker until nothing is due; returns how many items it handled."""
    done = 0
    for _ in range(limit):
        handled = worker.run_once()
        if not handled:
            break
        done += handled
    return done


# --------------------------------------------------------------------------- fake providers


@dataclass
class Call:
    """One request a fake provider received."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        """The URL's path."""
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, str]:
        """The URL's query parameters."""
        return dict(parse_qsl(urlsplit(self.url).query))

    def json(self) -> Any:
        """The body as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None

    def form(self) -> dict[str, str]:
        """The body as form fields."""
        return dict(parse_qsl(self.body.decode()))


Answer = tuple[int, Any]  # (HTTP status, JSON-able body, or str/bytes sent as is)


@dataclass
class Endpoint:
    """One faked URL: answers with ``answer(call)`` unless answers were queued."""

    method: str
    url: str | re.Pattern
    answer: Callable[[Call], Answer]
    queued: list[Answer] = field(default_factory=list)

    def then(self, *answers: Answer) -> Endpoint:
        """Answer the next calls with these, in order, before the default answer again."""
        self.queued.extend(answers)
        return self


class FakeProvider:
    """A provider's HTTP API at the ``requests`` boundary; records every call in order."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.mock = mock
        self.calls: list[Call] = []

    def route(
        self,
        method: str,
        url: str | re.Pattern,
        answer: Callable[[Call], Answer] | Answer = (200, {}),
    ) -> Endpoint:
        """Fake ``method url`` (a string matches the URL without its query)."""
        default = answer if callable(answer) else (lambda call, fixed=answer: fixed)
        endpoint = Endpoint(method, url, default)

        def callback(request):
            body = request.body or b""
            call = Call(
                request.method,
                request.url,
                dict(request.headers),
                body.encode() if isinstance(body, str) else bytes(body),
            )
            self.calls.append(call)
            status, out = endpoint.queued.pop(0) if endpoint.queued else endpoint.answer(call)
            if isinstance(out, bytes | str):
                return status, {}, out
            return status, {"Content-Type": "application/json"}, json.dumps(out)

        self.mock.add_callback(method, url, callback=callback)
        return endpoint

    def to(self, url: str, method: str | None = None) -> list[Call]:
        """The calls whose URL starts with ``url`` (and of ``method``), in order."""
        return [
            c
            for c in self.calls
            if c.url.startswith(url) and (method is None or c.method == method)
        ]


@pytest.fixture
def provider():
    """The fake providers of a test: one ``responses`` mock; any other HTTP call fails."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeProvider(mock)


class SmtpSink:
    """An SMTP server (aiosmtpd handler): records what it accepts, or answers DATA with
    ``reply`` (``"451 ..."``, ``"554 ..."``)."""

    def __init__(self) -> None:
        self.reply: str | None = None
        self.received: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.reply:
            return self.reply
        self.received.append(envelope.content)
        return "250 Message accepted"

    def last(self):
        """The last accepted message, parsed."""
        return BytesParser(policy=policy.default).parsebytes(self.received[-1])

    def texts(self) -> list[str]:
        """The plain-text bodies of every accepted message, in order."""
        out = []
        for raw in self.received:
            msg = BytesParser(policy=policy.default).parsebytes(raw)
            out.append(msg.get_body(("plain",)).get_content().strip())
        return out


@pytest.fixture
def smtp_sink():
    """A local SMTP server on a free port; yields ``(sink, port)``."""
    from tests.connectors.imap_server import free_port

    sink, port = SmtpSink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


# --------------------------------------------------------------------------- webhooks


@dataclass(frozen=True)
class Webhook:
    """One request a provider makes to us."""

    path: str
    body: bytes | None = None
    form: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    method: str = "POST"

    def send(self, client):
        """Make the request with the test client; returns the response."""
        data: Any = self.form if self.form is not None else self.body
        return client.open(
            self.path,
            method=self.method,
            data=data,
            headers=self.headers,
            content_type=self.content_type,
        )


@dataclass(frozen=True)
class Expect:
    """What a webhook should be answered: a status, and what the body holds (a subset of
    its JSON, or text it ends with)."""

    status: int
    json: dict | None = None
    text_end: str | None = None
    mimetype: str | None = None

    def check(self, resp) -> None:
        """Assert that ``resp`` is this answer."""
        assert resp.status_code == self.status, (resp.status_code, resp.get_data(as_text=True))
        if self.json is not None:
            got = resp.get_json()
            assert {k: got.get(k) for k in self.json} == self.json, got
        if self.mimetype is not None:
            assert resp.mimetype == self.mimetype, resp.mimetype
        if self.text_end is not None:
            assert resp.get_data(as_text=True).endswith(self.text_end), resp.get_data()


class Driver:
    """How one channel's provider talks to us and how we talk to it, for the contract suite.

    A driver is built per test with the app's fixtures, connects one inbox
    (:meth:`connect`), then makes the webhooks the provider would send and reads
    what reached the fake provider. Where the channel's answers legitimately differ,
    the class attributes say so; the contract tests never ask a channel's name.
    """

    channel: ClassVar[str] = ""
    #: a customer's id on the channel, as sent, and as the contact's identity shows it
    contact: ClassVar[str] = ""
    contact_id: ClassVar[str] = ""
    #: the name the provider gives the customer (None: the channel sends none)
    contact_name: ClassVar[str | None] = None
    #: the reply window's state right after the customer wrote ("none": the channel has none)
    reply_window: ClassVar[str] = "open"
    accepted: ClassVar[Expect] = Expect(200)
    replayed: ClassVar[Expect] = Expect(200)
    forged: ClassVar[Expect] = Expect(403)
    unknown_route: ClassVar[Expect] = Expect(200)
    malformed: ClassVar[Expect] = Expect(200)
    receipt_answer: ClassVar[Expect] = Expect(200)

    #: further fixtures the driver needs (``smtp_sink``), handed over as ``fixtures``
    needs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, app, make, provider: FakeProvider, **fixtures: Any) -> None:
        self.app = app
        self.make = make
        self.provider = provider
        self.fixtures = fixtures

    # -- what a test asks ------------------------------------------------------
    def connect(self, members=()) -> int:
        """Connect one inbox of the channel (and fake its provider); returns its id."""
        raise NotImplementedError

    def message(self, text: str, external_id: str) -> Webhook:
        """The authentic webhook of a customer's message (``external_id``: the provider's)."""
        raise NotImplementedError

    def forgeries(self, text: str) -> dict[str, Webhook]:
        """Requests that must not pass as the provider's: name -> request."""
        raise NotImplementedError

    def for_unknown_route(self, text: str) -> Webhook:
        """A message for a route no inbox has (signed as well as one can be)."""
        raise NotImplementedError

    def unreadable(self) -> Webhook:
        """An authentic request whose body the channel cannot read."""
        raise NotImplementedError

    def sent_texts(self) -> list[str]:
        """The texts of the messages that reached the fake provider, in order."""
        raise NotImplementedError

    def delivery_receipt(self) -> Webhook | None:
        """The provider's receipt that the last message sent was delivered (None: the
        channel has none)."""
        return None
