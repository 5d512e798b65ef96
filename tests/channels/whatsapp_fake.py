"""WhatsApp Cloud API as Meta sends and answers it: webhook bodies and a fake Graph.

Bodies follow the shapes of Meta's published webhook examples
(``object: whatsapp_business_account``, ``entry[].changes[].value`` with ``metadata``,
``contacts``, ``messages`` or ``statuses``); the fake Graph answers
``/{phone-number-id}/messages``, ``/media``, ``/{media-id}``, ``/message_templates``
like the Cloud API does, and records every call.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from typing import Any

from tests.channels.harness import Call, FakeProvider, Webhook

NUMBER_ID = "106540352242922"
DISPLAY = "15550783881"
WABA_ID = "102290129340398"
OTHER_NUMBER_ID = "106540352249999"
SECRET = "wa-app-secret"
TOKEN = "EAAJB-system-user-token"
VERIFY = "wa-verify-me"
WA_ID = "5511987654321"  # a Brazilian mobile, as WhatsApp writes it
E164 = "+" + WA_ID
NAME = "Sheena Nelson"
MEDIA_HOST = "http://whatsapp.fake/lookaside"

TEMPLATES = [
    {
        "id": "594425479261596",
        "name": "order_update",
        "language": "en_US",
        "status": "APPROVED",
        "category": "UTILITY",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Your order"},
            {"type": "BODY", "text": "Hi {{1}}, your order {{2}} is on its way."},
            {"type": "FOOTER", "text": "Reply STOP to opt out"},
        ],
    },
    {
        "id": "594425479261597",
        "name": "follow_up",
        "language": "pt_BR",
        "status": "APPROVED",
        "category": "MARKETING",
        "components": [{"type": "BODY", "text": "Olá {{1}}, podemos ajudar?"}],
    },
    {
        "id": "594425479261598",
        "name": "draft_offer",
        "language": "en_US",
        "status": "PENDING",
        "category": "MARKETING",
        "components": [{"type": "BODY", "text": "Not approved yet"}],
    },
]

#: Templates with a text header parameter, and three the inbox cannot fill (an image
#: header, a copy-code button, named parameters).
HEADER_TEMPLATES = [
    {
        "name": "shipped",
        "language": "en_US",
        "status": "APPROVED",
        "category": "UTILITY",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}} shipped"},
            {"type": "BODY", "text": "Hi {{1}}, it is on its way."},
        ],
    },
    {
        "name": "new_collection",
        "language": "en_US",
        "status": "APPROVED",
        "category": "MARKETING",
        "components": [
            {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW..."]}},
            {"type": "BODY", "text": "Our new collection is here."},
        ],
    },
    {
        "name": "discount",
        "language": "en_US",
        "status": "APPROVED",
        "category": "MARKETING",
        "components": [
            {"type": "BODY", "text": "Here is your code."},
            {"type": "BUTTONS", "buttons": [{"type": "COPY_CODE", "example": "SAVE10"}]},
        ],
    },
    {
        "name": "track",
        "language": "en_US",
        "status": "APPROVED",
        "category": "UTILITY",
        "parameter_format": "NAMED",
        "components": [{"type": "BODY", "text": "Hi {{customer}}, track it here."}],
    },
]

_n = itertools.count(1)


def signature(raw: bytes, secret: str = SECRET) -> str:
    """``X-Hub-Signature-256`` as Meta computes it over the raw body."""
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def envelope(*values: dict, waba: str = WABA_ID) -> dict:
    """The webhook body: one account's ``messages`` changes."""
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba, "changes": [{"value": v, "field": "messages"} for v in values]}],
    }


def value(number_id: str = NUMBER_ID, **content: Any) -> dict:
    """A change's ``value`` for one business number."""
    return {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY, "phone_number_id": number_id},
        **content,
    }


def message(
    kind: str, body: dict | None = None, wamid: str | None = None, ts: int | None = None, **extra
) -> dict:
    """One customer message of ``kind`` (``text``, ``image`` ...)."""
    out = {
        "from": WA_ID,
        "id": wamid or f"wamid.HBgN{next(_n):08d}",
        "timestamp": str(ts or int(time.time())),
        "type": kind,
        **extra,
    }
    if body is not None:
        out[kind] = body
    return out


def messages(*items: dict, number_id: str = NUMBER_ID, name: str = NAME) -> dict:
    """A body with customer messages (and the sender's profile)."""
    contacts = [{"profile": {"name": name}, "wa_id": WA_ID}]
    return envelope(value(number_id, contacts=contacts, messages=list(items)))


def text(body: str, wamid: str | None = None, ts: int | None = None, **extra) -> dict:
    return message("text", {"body": body}, wamid, ts, **extra)


def status(wamid: str, state: str, errors: list | None = None, ts: int | None = None) -> dict:
    """A ``statuses`` body for one of the business's messages."""
    item = {
        "id": wamid,
        "status": state,
        "timestamp": str(ts or int(time.time())),
        "recipient_id": WA_ID,
    }
    if state == "sent":
        item["conversation"] = {"id": "CONV", "origin": {"type": "service"}}
        item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "service"}
    if errors:
        item["errors"] = errors
    return envelope(value(statuses=[item]))


def signed(payload: dict | bytes, secret: str | None = SECRET, header="X-Hub-Signature-256"):
    """The POST Meta makes (``secret=None``: unsigned)."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {header: signature(raw, secret)} if secret is not None else {}
    return Webhook("/webhooks/whatsapp", raw, headers=headers, content_type="application/json")


class FakeGraph:
    """The Cloud API on a :class:`FakeProvider`: sends, uploads, media and templates."""

    def __init__(self, provider: FakeProvider, base: str, version: str) -> None:
        self.provider = provider
        self.prefix = f"{base.rstrip('/')}/{version}"
        self.media: dict[str, tuple[bytes, str]] = {}
        self.templates = list(TEMPLATES)
        self.sent_ids: list[str] = []
        self.uploaded: list[int] = []
        self.answers: list[tuple[int, dict]] = []  # the next message sends' answers
        p = re.escape(self.prefix)
        self.send = provider.route("POST", re.compile(p + r"/\d+/messages$"), self._send)
        provider.route("POST", re.compile(p + r"/\d+/media$"), self._upload)
        provider.route("GET", re.compile(p + r"/\d+/message_templates(\?.*)?$"), self._templates)
        provider.route("GET", re.compile(p + r"/\d+/subscribed_apps(\?.*)?$"), self._apps)
        provider.route(
            "POST", re.compile(p + r"/\d+/subscribed_apps(\?.*)?$"), (200, {"success": True})
        )
        provider.route("GET", re.compile(p + r"/media-[\w-]+$"), self._media_url)
        provider.route("GET", re.compile(re.escape(MEDIA_HOST) + r"/.*"), self._media_bytes)
        provider.route("GET", re.compile(p + r"/\d+(\?.*)?$"), self._number)

    def _send(self, call: Call):
        body = call.json()
        if body.get("status") == "read":
            return 200, {"success": True}
        if self.answers:
            return self.answers.pop(0)
        wamid = f"wamid.OUT{next(_n):08d}"
        self.sent_ids.append(wamid)
        return 200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": body["to"], "wa_id": body["to"].lstrip("+")}],
            "messages": [{"id": wamid}],
        }

    def _upload(self, call: Call):
        n = next(_n)
        self.uploaded.append(n)
        return 200, {"id": f"upload-{n}"}

    def _templates(self, call: Call):
        return 200, {"data": self.templates, "paging": {"cursors": {"before": "a", "after": "b"}}}

    def _apps(self, call: Call):
        return 200, {"data": [{"whatsapp_business_api_data": {"id": "1", "name": "Switchboard"}}]}

    def _number(self, call: Call):
        if call.headers.get("Authorization") != f"Bearer {TOKEN}":
            error = {"message": "Error validating access token: Session has expired", "code": 190}
            return 401, {"error": {**error, "type": "OAuthException", "error_subcode": 463}}
        number = call.path.rsplit("/", 1)[-1]
        return 200, {
            "display_phone_number": "+1 555-078-3881",
            "verified_name": "Acme",
            "id": number,
        }

    def _media_url(self, call: Call):
        media_id = call.path.rsplit("/", 1)[-1]
        content, mime = self.media.get(media_id, (b"", "application/octet-stream"))
        return 200, {
            "messaging_product": "whatsapp",
            "url": f"{MEDIA_HOST}/whatsapp_business/attachments/?mid={media_id}",
            "mime_type": mime,
            "sha256": hashlib.sha256(content).hexdigest(),
            "file_size": str(len(content)),
            "id": media_id,
        }

    def _media_bytes(self, call: Call):
        media_id = call.query.get("mid", "")
        if call.headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {"error": {"message": "no token", "code": 190}}
        return 200, self.media.get(media_id, (b"", ""))[0]

    # -- what a test reads -----------------------------------------------------
    def sends(self) -> list[dict]:
        """Message bodies posted (mark-as-read excluded), in order."""
        return [
            c.json()
            for c in self.provider.calls
            if c.method == "POST"
            and c.path.endswith("/messages")
            and c.path.startswith("/" + self.prefix.split("/", 3)[-1])
            and (c.json() or {}).get("status") != "read"
        ]

    def reads(self) -> list[str]:
        """The message ids marked read, in order."""
        return [
            c.json()["message_id"]
            for c in self.provider.calls
            if c.method == "POST"
            and c.path.endswith("/messages")
            and c.json().get("status") == "read"
        ]
