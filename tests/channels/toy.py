"""A channel that exists only in the tests: one connector, one adapter, one registry line.

"Toy" speaks a trivial wire format: one JSON event per webhook, signed with an
HMAC-SHA256 of the body (``X-Toy-Signature``, hex) keyed by the inbox's secret and
routed by its ``account``; replies are POSTed as JSON to ``{TOY_API_URL}/messages``.
It is registered only while :func:`registered` is active, before the app is created,
and no app code knows its name: that it passes the contract suite shows that a new
channel is a connector, an adapter and a registry line.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import requests

import connectors
from app import channels
from app.channels import Channel, Field
from app.channels.base import Answer
from app.channels.base import Webhook as Hook
from connectors import base as cb
from tests.channels.harness import Call, Driver, Expect, Webhook

API_URL_SETTING = "TOY_API_URL"
API_URL = "http://toy.fake"
SIGNATURE = "X-Toy-Signature"


def sign(raw: bytes, secret: str) -> str:
    """The ``X-Toy-Signature`` of a body."""
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


class ToyConnector(cb.Connector):
    """The toy provider's wire format."""

    channel = "toy"
    display_name = "Toy"
    fields = (cb.ConfigField("account"), cb.ConfigField("secret", secret=True))

    @classmethod
    def webhook_route_keys(cls, body: bytes, args: dict[str, str], kind: str = "") -> list[str]:
        """The ``account`` the event is for."""
        data = cb.read_json(body)
        key = cb.routing_key(data.get("account")) if isinstance(data, dict) else None
        if key is None:
            raise cb.UnreadableBody("no account")
        return [key]

    def verify_webhook(self, body: bytes, url: str, headers) -> bool:
        """The body's HMAC under this inbox's secret."""
        secret = self.config.get("secret")
        given = headers.get(SIGNATURE) or ""
        return bool(secret) and hmac.compare_digest(given.encode(), sign(body, secret).encode())

    @classmethod
    def parse_webhook(
        cls, body: bytes, received_at: datetime, kind: str = ""
    ) -> list[cb.InboundEvent]:
        """A message, or a delivery receipt for one of ours."""
        data = cb.read_json(body)
        try:
            if "receipt" in data:
                return [
                    cb.StatusUpdate(
                        inbox_key=data["account"],
                        status=cb.DeliveryState(data["receipt"]["status"]),
                        external_id=data["receipt"]["id"],
                    )
                ]
            return [
                cb.InboundMessage(
                    inbox_key=data["account"],
                    external_id=data["id"],
                    contact_id=data["from"],
                    contact_name=data.get("name"),
                    sent_at=datetime.fromtimestamp(data["at"], UTC),
                    text=data.get("text") or "",
                )
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise cb.UnreadableBody(f"not a toy event: {exc!r}") from None

    def send(self, message: cb.OutboundMessage) -> cb.SendResult:
        """POST the text; 5xx and unreached calls are transient, other errors permanent."""
        url = self.options.base_urls["toy"] + "/messages"
        payload = {"to": message.contact_id, "text": message.text, "ref": message.reference}
        try:
            resp = self.http.post(url, json=payload, timeout=self.options.timeout)
        except requests.RequestException as exc:
            kind = cb.ErrorKind.TRANSIENT if cb.never_reached(exc) else cb.ErrorKind.UNKNOWN
            return cb.SendResult(error=cb.SendError(kind, None, type(exc).__name__))
        if resp.status_code >= 500:
            return cb.SendResult(error=cb.SendError(cb.ErrorKind.TRANSIENT, str(resp.status_code)))
        if resp.status_code >= 400:
            return cb.SendResult(error=cb.SendError(cb.ErrorKind.PERMANENT, str(resp.status_code)))
        return cb.SendResult(external_id=resp.json()["id"])


class Toy(Channel):
    """The toy channel's adapter."""

    name = "toy"
    label = "Toy"
    fields = (Field("account", "Account"), Field("secret", "Signing secret", "secret"))
    route_field = "account"
    webhook_paths = ("/webhooks/toy",)
    webhooks = (Hook(unknown=Answer(200, {"status": "ignored", "reason": "unknown account"})),)
    api_urls = {"toy": API_URL_SETTING}


@contextlib.contextmanager
def registered() -> Iterator[None]:
    """The toy channel is known while the block runs (create the app inside it)."""
    connectors.register(ToyConnector)
    channels.register(Toy)
    try:
        yield
    finally:
        channels._registry.channels.pop(Toy.name, None)
        cb._REGISTRY.pop(ToyConnector.channel, None)


class ToyDriver(Driver):
    """The toy provider, for the contract suite."""

    channel = "toy"
    ACCOUNT = "acct-1"
    SECRET = "toy-secret"
    contact = contact_id = "toy-customer-7"
    contact_name = "Toy Customer"
    reply_window = "none"
    accepted = Expect(200, {"status": "ok", "stored": 1, "duplicates": 0})
    replayed = Expect(200, {"status": "ok", "stored": 0, "duplicates": 1})
    unknown_route = Expect(200, {"status": "ignored"})
    malformed = Expect(200, {"status": "ignored", "reason": "malformed"})

    def connect(self, members=()) -> int:
        self.ids: list[str] = []
        self.provider.route("POST", API_URL + "/messages", self._create)
        inbox = self.make.inbox("toy", members=members, account=self.ACCOUNT, secret=self.SECRET)
        return inbox.id

    def _create(self, call: Call):
        self.ids.append(f"toy-out-{len(self.ids) + 1}")
        return 201, {"id": self.ids[-1]}

    def _signed(self, raw: bytes, signature: str | None = None) -> Webhook:
        sig = sign(raw, self.SECRET) if signature is None else signature
        headers = {SIGNATURE: sig} if sig else {}
        return Webhook("/webhooks/toy", raw, headers=headers, content_type="application/json")

    def _event(self, text: str, external_id: str, account: str | None = None) -> bytes:
        return json.dumps(
            {
                "account": account or self.ACCOUNT,
                "id": external_id,
                "from": self.contact,
                "name": self.contact_name,
                "at": datetime.now(UTC).timestamp(),
                "text": text,
            }
        ).encode()

    def message(self, text: str, external_id: str) -> Webhook:
        return self._signed(self._event(text, external_id))

    def forgeries(self, text: str) -> dict[str, Webhook]:
        raw = self._event(text, "forged")
        return {
            "unsigned": self._signed(raw, ""),
            "wrong secret": self._signed(raw, sign(raw, "not-the-secret")),
            "tampered": self._signed(raw.replace(b"forged", b"Forged"), sign(raw, self.SECRET)),
        }

    def for_unknown_route(self, text: str) -> Webhook:
        return self._signed(self._event(text, "elsewhere", account="acct-unknown"))

    def unreadable(self) -> Webhook:
        return self._signed(b'{"account": ')

    def sent_texts(self) -> list[str]:
        return [c.json()["text"] for c in self.provider.to(API_URL + "/messages")]

    def delivery_receipt(self) -> Webhook | None:
        body = {"account": self.ACCOUNT, "receipt": {"id": self.ids[-1], "status": "delivered"}}
        return self._signed(json.dumps(body).encode())
