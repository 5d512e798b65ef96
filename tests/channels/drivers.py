"""One driver per channel: its provider's webhooks, forged and broken ones, what it was sent.

Each :class:`~tests.channels.harness.Driver` builds requests in the provider's
documented wire format and fakes the provider's API on a
:class:`~tests.channels.harness.FakeProvider` (or an SMTP sink), so that the
contract suite runs the same checks against every channel. The answers a channel
legitimately gives differently (email's 404 for a token no inbox has, Twilio's
empty TwiML) are declared here, never asked of a channel's name in a test.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import cache

from twilio.request_validator import RequestValidator

from connectors import gbm
from tests.channels import whatsapp_fake as wa
from tests.channels.harness import Call, Driver, Expect, Webhook

_n = itertools.count(1)

STORED = Expect(200, {"status": "ok", "stored": 1, "duplicates": 0})
REPLAYED = Expect(200, {"status": "ok", "stored": 0, "duplicates": 1})


# --------------------------------------------------------------------------- Messenger


def hub_signature(raw: bytes, secret: str) -> str:
    """``X-Hub-Signature-256`` as Meta computes it over the raw body."""
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


class MessengerDriver(Driver):
    """Meta's signed, batched webhooks; the Graph Send API."""

    channel = "messenger"
    PAGE = "104800000000001"
    UNKNOWN_PAGE = "104800000000999"
    SECRET = "meta-app-secret"
    contact = contact_id = "7011000000000001"
    accepted = STORED
    replayed = REPLAYED
    unknown_route = Expect(200, {"status": "ok", "stored": 0})
    malformed = Expect(200, {"status": "ignored", "reason": "malformed"})
    path = "/webhooks/messenger"
    object = "page"
    graph_setting = "MESSENGER_GRAPH_URL"

    def settings(self) -> dict[str, str]:
        """The inbox's settings."""
        return {
            "page_id": self.PAGE,
            "app_secret": self.SECRET,
            "page_token": "EAAG-page-token",
            "verify_token": "verify-me",
        }

    def connect(self, members=()) -> int:
        cfg = self.app.config
        base = f"{cfg[self.graph_setting].rstrip('/')}/{cfg['MESSENGER_GRAPH_VERSION']}"
        prefix = re.escape(base)
        self.provider.route("POST", re.compile(prefix + r"/me/messages(\?.*)?$"), self._send)
        self.provider.route(
            "GET",
            re.compile(prefix + r"/\d+(\?.*)?$"),
            lambda call: (200, {"id": call.path.rsplit("/", 1)[-1]}),
        )
        inbox = self.make.inbox(self.channel, members=members, **self.settings())
        return inbox.id

    def _send(self, call: Call):
        body = call.json()
        recipient = body["recipient"]["id"]
        if body.get("sender_action"):
            return 200, {"recipient_id": recipient}
        return 200, {"recipient_id": recipient, "message_id": f"m_sent_{next(_n)}"}

    def _body(self, page: str, text: str, mid: str) -> bytes:
        ms = int(time.time() * 1000)
        item = {
            "sender": {"id": self.contact},
            "recipient": {"id": page},
            "timestamp": ms,
            "message": {"mid": mid, "text": text},
        }
        return json.dumps(
            {"object": self.object, "entry": [{"id": page, "time": ms, "messaging": [item]}]}
        ).encode()

    def _signed(self, raw: bytes, signature: str | None = None, header="X-Hub-Signature-256"):
        headers = {} if signature == "" else {header: signature or hub_signature(raw, self.SECRET)}
        return Webhook(self.path, raw, headers=headers, content_type="application/json")

    def message(self, text: str, external_id: str) -> Webhook:
        return self._signed(self._body(self.PAGE, text, external_id))

    def forgeries(self, text: str) -> dict[str, Webhook]:
        raw = self._body(self.PAGE, text, "m_forged")
        sha1 = "sha1=" + hmac.new(self.SECRET.encode(), raw, hashlib.sha1).hexdigest()
        return {
            "unsigned": self._signed(raw, ""),
            "wrong secret": self._signed(raw, hub_signature(raw, "not-the-app-secret")),
            "tampered": self._signed(
                raw.replace(b"m_forged", b"m_Forged"), hub_signature(raw, self.SECRET)
            ),
            "sha1 only": self._signed(raw, sha1, header="X-Hub-Signature"),
            "garbage": self._signed(raw, "sha256=zz"),
        }

    def for_unknown_route(self, text: str) -> Webhook:
        return self._signed(self._body(self.UNKNOWN_PAGE, text, "m_elsewhere"))

    def unreadable(self) -> Webhook:
        return self._signed(b'{"object": "%s", "entry": [' % self.object.encode())

    def sent_texts(self) -> list[str]:
        return [
            c.json()["message"]["text"]
            for c in self.provider.calls
            if c.path.endswith("/me/messages") and "message" in (c.json() or {})
        ]

    def delivery_receipt(self) -> Webhook | None:
        item = {
            "sender": {"id": self.contact},
            "recipient": {"id": self.PAGE},
            "delivery": {"watermark": int(time.time() * 1000) + 1000},
        }
        raw = json.dumps(
            {"object": self.object, "entry": [{"id": self.PAGE, "time": 1, "messaging": [item]}]}
        ).encode()
        return self._signed(raw)


class InstagramDriver(MessengerDriver):
    """Messenger's webhooks and Send API, on an Instagram account and graph.instagram.com."""

    channel = "instagram"
    PAGE = "17841400000000001"  # the Instagram professional account id
    UNKNOWN_PAGE = "17841400000000999"
    SECRET = "instagram-app-secret"
    contact = contact_id = "1780000000000001"
    path = "/webhooks/instagram"
    object = "instagram"
    graph_setting = "INSTAGRAM_GRAPH_URL"

    def settings(self) -> dict[str, str]:
        return {
            "account_id": self.PAGE,
            "app_secret": self.SECRET,
            "access_token": "IGAA-access-token",
            "verify_token": "verify-me",
        }

    def delivery_receipt(self) -> Webhook | None:
        """Instagram reports no deliveries, only reads (``messaging_seen``): the flow test."""
        return None


# --------------------------------------------------------------------------- Business Messages


@cache
def rsa_private_pem() -> str:
    """A throwaway RSA key for fake service accounts (made once per process)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def service_account(token_uri: str) -> dict:
    """A service-account JSON whose ``token_uri`` is a fake token endpoint."""
    return {
        "type": "service_account",
        "project_id": "acme-support",
        "private_key_id": "key-" + uuid.uuid4().hex,
        "private_key": rsa_private_pem(),
        "client_email": "bm-agent@acme-support.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }


def gbm_stamp(at: datetime) -> str:
    """RFC 3339 with nanoseconds, as Google writes ``sendTime``/``createTime``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


class GbmDriver(Driver):
    """Google's signed events (one per request, routed by ``agent``); the Business
    Messages API with OAuth tokens from the service account's token endpoint."""

    channel = "gbm"
    AGENT = "brands/acme-brand/agents/acme-support"
    CLIENT_TOKEN = "SJENCPGJESMGUFPY"
    TOKEN_URI = "http://token.fake/oauth2/token"
    contact = contact_id = "c0ffee00-1111-4222-8333-444455556666"
    contact_name = "Jane Doe"
    accepted = STORED
    replayed = REPLAYED
    unknown_route = Expect(200, {"status": "ignored"})
    malformed = Expect(200, {"status": "ignored", "reason": "malformed"})

    def connect(self, members=()) -> int:
        gbm.clear_token_cache()
        api = self.app.config["GBM_API_URL"].rstrip("/")
        self.messages_url = f"{api}/v1/conversations/{self.contact}/messages"
        self.provider.route(
            "POST",
            self.TOKEN_URI,
            (200, {"access_token": "tok-1", "expires_in": 3600, "token_type": "Bearer"}),
        )
        self.provider.route(
            "POST", self.messages_url, lambda call: (200, {"name": call.path + "/x"})
        )
        self.provider.route("POST", f"{api}/v1/conversations/{self.contact}/events", (200, {}))
        inbox = self.make.inbox(
            "gbm",
            members=members,
            agent=self.AGENT,
            client_token=self.CLIENT_TOKEN,
            service_account=service_account(self.TOKEN_URI),
        )
        return inbox.id

    def _body(self, text: str, message_id: str, agent: str | None = None) -> bytes:
        at = gbm_stamp(datetime.now(UTC))
        return json.dumps(
            {
                "agent": agent or self.AGENT,
                "conversationId": self.contact,
                "requestId": f"req-{uuid.uuid4().hex}",
                "sendTime": at,
                "context": {"userInfo": {"displayName": self.contact_name}},
                "message": {
                    "messageId": message_id,
                    "name": f"conversations/{self.contact}/messages/{message_id}",
                    "text": text,
                    "createTime": at,
                },
            }
        ).encode()

    def _signed(self, raw: bytes, signature: str | None = None) -> Webhook:
        """``signature``: None signs ``raw`` with the client token, "" sends no header."""
        sig = gbm.sign(raw, self.CLIENT_TOKEN) if signature is None else signature
        headers = {"X-Goog-Signature": sig} if sig else {}
        return Webhook("/webhooks/gbm", raw, headers=headers, content_type="application/json")

    def message(self, text: str, external_id: str) -> Webhook:
        return self._signed(self._body(text, external_id))

    def forgeries(self, text: str) -> dict[str, Webhook]:
        raw = self._body(text, "msg-forged")
        return {
            "unsigned": self._signed(raw, ""),
            "empty": Webhook(
                "/webhooks/gbm",
                raw,
                headers={"X-Goog-Signature": ""},
                content_type="application/json",
            ),
            "garbage": self._signed(raw, "not base64!"),
            "tampered": self._signed(
                raw.replace(b"msg-forged", b"msg-Forged"), gbm.sign(raw, self.CLIENT_TOKEN)
            ),
            "wrong key": self._signed(raw, gbm.sign(raw, "wrong-key")),
            "other body": self._signed(raw, gbm.sign(b"another body", self.CLIENT_TOKEN)),
        }

    def for_unknown_route(self, text: str) -> Webhook:
        return self._signed(self._body(text, "msg-elsewhere", agent="brands/x/agents/unknown"))

    def unreadable(self) -> Webhook:
        return self._signed(b'{"agent": ')

    def sent_texts(self) -> list[str]:
        return [c.json()["text"] for c in self.provider.to(self.messages_url)]

    def delivery_receipt(self) -> Webhook | None:
        last = self.provider.to(self.messages_url)[-1].json()["messageId"]
        now = gbm_stamp(datetime.now(UTC))
        raw = json.dumps(
            {
                "agent": self.AGENT,
                "conversationId": self.contact,
                "requestId": f"req-{uuid.uuid4().hex}",
                "sendTime": now,
                "receipts": {
                    "receipts": [
                        {
                            "message": f"conversations/{self.contact}/messages/{last}",
                            "receiptType": "DELIVERED",
                        }
                    ],
                    "createTime": now,
                },
            }
        ).encode()
        return self._signed(raw)


# --------------------------------------------------------------------------- Twilio SMS


def twilio_sid(prefix: str = "SM") -> str:
    """A fresh 34-character Twilio SID."""
    return f"{prefix}{next(_n):032x}"


class SmsDriver(Driver):
    """Twilio's signed form posts (answered with TwiML) and status callbacks; the
    Messages API."""

    channel = "sms"
    WEBHOOK = "http://localhost/webhooks/sms/twilio"
    contact = contact_id = "+14155550123"
    reply_window = "none"
    TWIML = Expect(200, text_end="<Response></Response>", mimetype="text/xml")
    accepted = replayed = malformed = TWIML
    unknown_route = Expect(404)  # Twilio is told no inbox has the number
    receipt_answer = Expect(204)

    def connect(self, members=()) -> int:
        inbox = self.make.inbox("sms", members=members)
        self.number = inbox.config["number"]
        self.token = inbox.config["auth_token"]
        account = inbox.config["account_sid"]
        self.messages_url = (
            f"{self.app.config['TWILIO_API_URL'].rstrip('/')}"
            f"/2010-04-01/Accounts/{account}/Messages.json"
        )
        self.sids: list[str] = []
        self.provider.route("POST", self.messages_url, self._create)
        return inbox.id

    def _create(self, call: Call):
        new = twilio_sid()
        self.sids.append(new)
        return 201, {"sid": new, "status": "queued", "num_segments": "1", "error_code": None}

    def _form(self, text: str, message_sid: str, to: str | None = None) -> dict[str, str]:
        return {
            "MessageSid": message_sid,
            "SmsMessageSid": message_sid,
            "SmsSid": message_sid,
            "AccountSid": "AC" + "1" * 32,
            "From": self.contact,
            "To": to or self.number,
            "Body": text,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }

    def _signed(self, form: dict, url: str | None = None, token: str | None = None, sig=None):
        url = url or self.WEBHOOK
        if sig is None:
            sig = RequestValidator(token or self.token).compute_signature(url, form)
        headers = {"X-Twilio-Signature": sig} if sig else {}
        return Webhook("/" + url.split("://", 1)[1].split("/", 1)[1], form=form, headers=headers)

    def message(self, text: str, external_id: str) -> Webhook:
        return self._signed(self._form(text, external_id))

    def forgeries(self, text: str) -> dict[str, Webhook]:
        form = self._form(text, twilio_sid())
        good = RequestValidator(self.token).compute_signature(self.WEBHOOK, form)
        return {
            "unsigned": self._signed(form, sig=""),
            "wrong token": self._signed(form, token="not-the-auth-token"),
            "tampered": self._signed({**form, "Body": "Tampered"}, sig=good),
            "other url": Webhook(
                "/webhooks/sms/twilio",
                form=form,
                headers={
                    "X-Twilio-Signature": RequestValidator(self.token).compute_signature(
                        "https://evil.example/webhooks/sms/twilio", form
                    )
                },
            ),
        }

    def for_unknown_route(self, text: str) -> Webhook:
        return self._signed(self._form(text, twilio_sid(), to="+14155550999"))

    def unreadable(self) -> Webhook:
        form = {k: v for k, v in self._form("no id", "x").items() if "Sid" not in k}
        return self._signed({**form, "AccountSid": "AC" + "1" * 32})

    def sent_texts(self) -> list[str]:
        return [c.form()["Body"] for c in self.provider.to(self.messages_url, "POST")]

    def delivery_receipt(self) -> Webhook | None:
        form = {
            "MessageSid": self.sids[-1],
            "SmsSid": self.sids[-1],
            "MessageStatus": "delivered",
            "SmsStatus": "delivered",
            "AccountSid": "AC" + "1" * 32,
            "From": self.number,
            "To": self.contact,
            "ApiVersion": "2010-04-01",
        }
        return self._signed(form, url=self.WEBHOOK + "/status")


# --------------------------------------------------------------------------- email


class EmailDriver(Driver):
    """Raw RFC 822 posted to the inbox's secret URL (a Postfix pipe); SMTP out."""

    channel = "email"
    ADDRESS = "support@shop.example"
    contact = contact_id = "anna@example.com"
    contact_name = "Anna Schmidt"
    reply_window = "none"
    needs = ("smtp_sink",)
    accepted = STORED
    replayed = REPLAYED
    forged = unknown_route = Expect(404)  # the URL's token is the only credential
    malformed = Expect(400)  # an empty message: refused, not retried

    def connect(self, members=()) -> int:
        self.sink, port = self.fixtures["smtp_sink"]
        inbox = self.make.inbox("email", members=members, address=self.ADDRESS, smtp_port=port)
        self.token = inbox.inbound_token
        return inbox.id

    def mail(self, text: str, message_id: str) -> bytes:
        """A plain-text message as the customer's client writes it."""
        lines = [
            f"From: {self.contact_name} <{self.contact}>",
            f"To: {self.ADDRESS}",
            "Subject: Order late",
            f"Date: {format_datetime(datetime.now(UTC) - timedelta(minutes=5))}",
            f"Message-ID: <{message_id}@mail.example.com>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "",
            text,
        ]
        return ("\r\n".join(lines) + "\r\n").encode()

    def _post(self, raw: bytes, token: str | None = None) -> Webhook:
        return Webhook(
            f"/webhooks/email/inbound/{token or self.token}", raw, content_type="message/rfc822"
        )

    def message(self, text: str, external_id: str) -> Webhook:
        return self._post(self.mail(text, external_id))

    def forgeries(self, text: str) -> dict[str, Webhook]:
        raw = self.mail(text, "forged")
        other = self.token[:-1] + ("A" if self.token[-1] != "A" else "B")
        return {
            "wrong token": self._post(raw, "not-the-token"),
            "one letter off": self._post(raw, other),
        }

    def for_unknown_route(self, text: str) -> Webhook:
        return self._post(self.mail(text, "elsewhere"), "0" * len(self.token))

    def unreadable(self) -> Webhook:
        return self._post(b"   ")

    def sent_texts(self) -> list[str]:
        return self.sink.texts()


# --------------------------------------------------------------------------- WhatsApp


class WhatsAppDriver(Driver):
    """Meta's signed WhatsApp Business Account webhooks; the Cloud API's messages endpoint."""

    channel = "whatsapp"
    contact = wa.WA_ID
    contact_id = wa.E164
    contact_name = wa.NAME
    accepted = STORED
    replayed = REPLAYED
    unknown_route = Expect(200, {"status": "ok", "stored": 0})
    malformed = Expect(200, {"status": "ignored", "reason": "malformed"})

    def connect(self, members=()) -> int:
        cfg = self.app.config
        self.graph = wa.FakeGraph(
            self.provider, cfg["WHATSAPP_GRAPH_URL"], cfg["MESSENGER_GRAPH_VERSION"]
        )
        inbox = self.make.inbox(
            "whatsapp",
            members=members,
            phone_number_id=wa.NUMBER_ID,
            waba_id=wa.WABA_ID,
            access_token=wa.TOKEN,
            app_secret=wa.SECRET,
            verify_token=wa.VERIFY,
        )
        return inbox.id

    def message(self, text: str, external_id: str) -> Webhook:
        return wa.signed(wa.messages(wa.text(text, external_id)))

    def forgeries(self, text: str) -> dict[str, Webhook]:
        raw = json.dumps(wa.messages(wa.text(text, "wamid.forged"))).encode()
        sha1 = "sha1=" + hmac.new(wa.SECRET.encode(), raw, hashlib.sha1).hexdigest()
        tampered = wa.signed(raw)
        return {
            "unsigned": wa.signed(raw, None),
            "wrong secret": wa.signed(raw, "not-the-app-secret"),
            "tampered": Webhook(
                tampered.path,
                raw.replace(b"wamid.forged", b"wamid.Forged"),
                headers=tampered.headers,
                content_type="application/json",
            ),
            "sha1 only": Webhook(
                tampered.path,
                raw,
                headers={"X-Hub-Signature": sha1},
                content_type="application/json",
            ),
            "garbage": Webhook(
                tampered.path,
                raw,
                headers={"X-Hub-Signature-256": "sha256=zz"},
                content_type="application/json",
            ),
        }

    def for_unknown_route(self, text: str) -> Webhook:
        body = wa.messages(wa.text(text, "wamid.elsewhere"), number_id=wa.OTHER_NUMBER_ID)
        return wa.signed(body)

    def unreadable(self) -> Webhook:
        return wa.signed(b'{"object": "whatsapp_business_account", "entry": [')

    def sent_texts(self) -> list[str]:
        return [b["text"]["body"] for b in self.graph.sends() if b.get("type") == "text"]

    def delivery_receipt(self) -> Webhook | None:
        return wa.signed(wa.status(self.graph.sent_ids[-1], "delivered"))


DRIVERS: dict[str, type[Driver]] = {
    d.channel: d
    for d in (
        MessengerDriver,
        GbmDriver,
        SmsDriver,
        EmailDriver,
        WhatsAppDriver,
        InstagramDriver,
    )
}
