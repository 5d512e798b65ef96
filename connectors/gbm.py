"""Google Business Messages (GBM): webhook handshake, signatures, parsing and sending.

**Google shut Business Messages down on 2024-07-31** (new conversations stopped on
2024-07-15). There is no live GBM API any more. This connector implements the
protocol as Google published it, so that Switchboard can replay archived webhook
deliveries and talk to compatible endpoints (fakes, proxies, successors speaking
the same wire format). Do not build new features on it.

Wire format, in short (see ``docs/channels.md`` section 2):

* Handshake: Google POSTs ``{"clientToken": ..., "secret": ...}``; the webhook
  checks the token and answers 200 with the secret as a plain-text body.
* Signature: ``X-Goog-Signature`` = base64(HMAC-SHA512(key, raw body)); the key is
  the webhook's client token (current docs) or the partner key (older samples).
* Events: one ``UserMessage`` per request (or base64 in a Pub/Sub envelope's
  ``message.data``), carrying exactly one of ``message``, ``receipts``,
  ``userStatus``, ``surveyResponse``, ``suggestionResponse``,
  ``authenticationResponse``. ``conversationId`` is the contact; ``agent`` routes
  to the inbox.
* Sending: ``POST {base}/v1/conversations/{id}/messages`` with a client-chosen
  ``messageId`` and an OAuth2 bearer token minted from a service account.

This module is pure: it never imports ``app`` and never touches the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.oauth2 import service_account

from connectors.base import (
    AttachmentRef,
    ConfigField,
    Connector,
    ConversationContext,
    DeliveryState,
    ErrorKind,
    InboundEvent,
    InboundMessage,
    MediaHosts,
    OutboundAttachment,
    OutboundMessage,
    SendError,
    SendResult,
    StatusUpdate,
    Typing,
    UnreadableBody,
    read_json,
    register,
    routing_key,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://businessmessages.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/businessmessages",)
SIGNATURE_HEADER = "X-Goog-Signature"

#: Namespace for the deterministic ``messageId``s derived from our references.
MESSAGE_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "switchboard:gbm:message")

#: ``send_action`` names GBM understands, plus the generic names other channels use.
EVENT_TYPES = ("REPRESENTATIVE_JOINED", "REPRESENTATIVE_LEFT", "TYPING_STARTED", "TYPING_STOPPED")
_ACTION_ALIASES = {
    "typing_on": "TYPING_STARTED",
    "typing_off": "TYPING_STOPPED",
    "mark_seen": "mark_read",
}

_PAYLOAD_FIELDS = (
    "message",
    "receipts",
    "userStatus",
    "surveyResponse",
    "suggestionResponse",
    "authenticationResponse",
)
_AGENT_RE = re.compile(r"^brands/[^/\s]+/agents/[^/\s]+$")
_MESSAGE_NAME_RE = re.compile(r"(?:^|/)conversations/([^/]+)/messages/([^/]+)$")
_SURVEY_NAME_RE = re.compile(r"(?:^|/)surveys/([^/]+)$")
_RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)
_RECEIPT_STATES = {"DELIVERED": DeliveryState.DELIVERED, "READ": DeliveryState.READ}


# --------------------------------------------------------------------------- webhook auth


def handshake(payload: Any) -> tuple[str, str] | None:
    """Return ``(clientToken, secret)`` when ``payload`` is a webhook handshake.

    The web layer finds the inbox by the client token and answers 200 with the
    secret as a plain-text body. Anything else (events, wrong types) gives None.
    """
    if not isinstance(payload, dict):
        return None
    token, secret = payload.get("clientToken"), payload.get("secret")
    if isinstance(token, str) and token and isinstance(secret, str) and secret:
        return token, secret
    return None


def check_signature(raw_body: bytes, header: str | None, keys: list[str]) -> bool:
    """True when ``header`` is base64(HMAC-SHA512(key, raw_body)) for one of ``keys``.

    ``keys`` are the inbox's client token and, for older agents, the partner key;
    empty keys are ignored. Fails closed on a missing or malformed header or when
    no key is configured. Digests are compared in constant time.
    """
    if not header or not isinstance(header, str) or not isinstance(raw_body, bytes | bytearray):
        return False
    try:
        provided = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(provided) != hashlib.sha512().digest_size:
        return False
    matched = False
    for key in keys:
        if not key or not isinstance(key, str):
            continue
        expected = hmac.new(key.encode("utf-8"), bytes(raw_body), hashlib.sha512).digest()
        # evaluate every key: no early exit that would reveal which one matched
        matched = hmac.compare_digest(expected, provided) | matched
    return matched


def sign(raw_body: bytes, key: str) -> str:
    """The ``X-Goog-Signature`` value for ``raw_body`` (for tests and fakes)."""
    digest = hmac.new(key.encode("utf-8"), raw_body, hashlib.sha512).digest()
    return base64.b64encode(digest).decode("ascii")


# --------------------------------------------------------------------------- parsing


def parse_timestamp(value: Any) -> datetime | None:
    """Parse an RFC 3339 timestamp (up to nine fractional digits) to aware UTC.

    Google sends nanosecond precision (``2024-05-01T15:01:23.045123456Z``), which
    ``datetime.fromisoformat`` rejects; the fraction is truncated to microseconds.
    Returns None for anything unparseable (e.g. the corpus placeholders).
    """
    if not isinstance(value, str):
        return None
    match = _RFC3339_RE.match(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        if offset in ("Z", "z"):
            tz = UTC
        else:
            sign_ = 1 if offset[0] == "+" else -1
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            tz = timezone(sign_ * timedelta(hours=hours, minutes=minutes))
        parsed = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tz
        )
    except ValueError:  # month 13, second 61, offset out of range ...
        return None
    return parsed.astimezone(UTC)


def unwrap(payload: Any) -> dict[str, Any] | None:
    """The ``UserMessage`` dict inside ``payload``.

    Webhook deliveries are the object itself; Pub/Sub push deliveries wrap it as
    ``{"message": {"data": "<base64 JSON>", ...}, "subscription": ...}``.
    Returns None when the envelope cannot be decoded.
    """
    if not isinstance(payload, dict):
        return None
    inner = payload.get("message")
    is_envelope = (
        isinstance(inner, dict)
        and isinstance(inner.get("data"), str)
        and "conversationId" not in payload
        and "agent" not in payload
    )
    if not is_envelope:
        return payload
    data = inner["data"]
    try:
        decoded = base64.b64decode(data + "=" * (-len(data) % 4), altchars=b"-_")
    except (binascii.Error, ValueError):
        try:
            decoded = base64.b64decode(data)
        except (binascii.Error, ValueError):
            return None
    try:
        obj = read_json(decoded)
    except UnreadableBody:
        return None
    return obj if isinstance(obj, dict) else None


def agent_of(payload: Any) -> str:
    """The agent an event body (or Pub/Sub envelope) is for: what routes it to an inbox.

    Raises :class:`~connectors.base.UnreadableBody` when there is none that can
    name an inbox: not an object, an envelope that does not decode, or an
    ``agent`` that is missing or not a short string (``[1]``, ``{}`` and
    ``10**30`` must never reach SQL).
    """
    body = unwrap(payload)
    if body is None:
        raise UnreadableBody("not a Business Messages event (or an undecodable envelope)")
    agent = routing_key(body.get("agent"))
    if agent is None:
        raise UnreadableBody("event without an agent that names an inbox")
    return agent


def parse(payload: Any) -> list[InboundEvent]:
    """Turn one GBM webhook body (or Pub/Sub envelope) into normalised events.

    Never raises: malformed or unknown payloads are logged and give ``[]``.
    Handshake bodies also give ``[]`` (see :func:`handshake`).
    """
    try:
        return _parse(payload)
    except Exception:  # never let a provider payload crash the webhook
        log.exception("gbm: could not parse payload")
        return []


def _parse(payload: Any) -> list[InboundEvent]:
    body = unwrap(payload)
    if body is None:
        log.warning("gbm: undecodable payload or Pub/Sub envelope")
        return []
    if handshake(body):
        return []
    inbox_key, contact_id = _str(body.get("agent")), _str(body.get("conversationId"))
    if not inbox_key or not contact_id:
        log.warning("gbm: payload without agent or conversationId; ignored")
        return []
    present = [name for name in _PAYLOAD_FIELDS if isinstance(body.get(name), dict)]
    if not present:
        log.info("gbm: payload with no known content (%s); ignored", sorted(body))
        return []
    if len(present) > 1:
        log.warning("gbm: several payload fields %s; using %s", present, present[0])
    env = _Envelope(body, inbox_key, contact_id)
    handler = _HANDLERS[present[0]]
    return handler(env, body[present[0]])


@dataclass
class _Envelope:
    """The ``UserMessage`` fields shared by every payload kind."""

    body: dict[str, Any]
    inbox_key: str
    contact_id: str

    @property
    def request_id(self) -> str | None:
        return _str(self.body.get("requestId"))

    @property
    def send_time(self) -> datetime | None:
        return parse_timestamp(self.body.get("sendTime"))

    @property
    def raw_context(self) -> dict[str, Any]:
        ctx = self.body.get("context")
        return ctx if isinstance(ctx, dict) else {}

    @property
    def contact_name(self) -> str | None:
        user = self.raw_context.get("userInfo")
        return _str(user.get("displayName")) if isinstance(user, dict) else None

    def context(self) -> dict[str, Any]:
        """The message context in our vocabulary (only the keys that are set)."""
        ctx = self.raw_context
        user = ctx.get("userInfo") if isinstance(ctx.get("userInfo"), dict) else {}
        widget = ctx.get("widget") if isinstance(ctx.get("widget"), dict) else {}
        out: dict[str, Any] = {
            "entry_point": _str(ctx.get("entryPoint")),
            "place_id": _str(ctx.get("placeId")),
            "near_place_id": _str(ctx.get("nearPlaceId")),
            "locale": _str(ctx.get("resolvedLocale")) or _str(user.get("userDeviceLocale")),
            "device_locale": _str(user.get("userDeviceLocale")),
            "custom_context": _str(ctx.get("customContext")),
            "request_id": self.request_id,
            "custom_agent_id": _str(self.body.get("customAgentId")),
        }
        widget_info = {
            "url": _str(widget.get("url")),
            "context": _str(widget.get("widgetContext")),
        }
        if any(widget_info.values()):
            out["widget"] = {k: v for k, v in widget_info.items() if v}
        dialogflow = self.body.get("dialogflowResponse")
        if isinstance(dialogflow, dict) and dialogflow.get("autoResponded") is True:
            out["dialogflow_auto_responded"] = True
        return {k: v for k, v in out.items() if v is not None}

    def sent_at(self, create_time: Any) -> datetime:
        """The event's own time, else ``sendTime``, else now (logged)."""
        parsed = parse_timestamp(create_time) or self.send_time
        if parsed is None:
            log.warning("gbm: no parseable createTime/sendTime; using the receive time")
            parsed = datetime.now(UTC)
        return parsed


def _parse_message(env: _Envelope, msg: dict[str, Any]) -> list[InboundEvent]:
    name_ids = _message_name_ids(msg.get("name"))
    external_id = (
        _str(msg.get("messageId")) or env.request_id or (name_ids[1] if name_ids else None)
    )
    if not external_id:
        log.warning("gbm: message without messageId/requestId; ignored")
        return []
    text = msg.get("text") if isinstance(msg.get("text"), str) else ""
    attachments: list[AttachmentRef] = []
    image = _image_attachment(msg.get("image"))
    if image:
        attachments.append(image)
    elif _is_gbm_image_url(text):
        # GBM delivers a user's photo as a message whose text is a signed URL
        attachments.append(AttachmentRef(kind="image", url=text.strip()))
        text = ""
    return [
        InboundMessage(
            inbox_key=env.inbox_key,
            external_id=external_id,
            contact_id=env.contact_id,
            sent_at=env.sent_at(msg.get("createTime")),
            text=text,
            contact_name=env.contact_name,
            attachments=tuple(attachments),
            kind="message",
            context=env.context(),
            raw=env.body,
        )
    ]


def _parse_suggestion(env: _Envelope, resp: dict[str, Any]) -> list[InboundEvent]:
    # ``message`` names the agent's message that carried the suggestion (our own
    # messageId), so it is the reply-to, not a dedupe key: requestId is.
    name_ids = _message_name_ids(resp.get("message"))
    reply_to = name_ids[1] if name_ids else None
    postback = _str(resp.get("postbackData"))
    suggestion_type = _str(resp.get("type")) or _str(resp.get("suggestionType"))
    external_id = env.request_id or _derived_id(
        "suggestion", env.contact_id, reply_to, postback, resp.get("createTime")
    )
    context = env.context()
    context.update(
        {k: v for k, v in (("postback_data", postback), ("suggestion_type", suggestion_type)) if v}
    )
    text = resp.get("text") if isinstance(resp.get("text"), str) else ""
    return [
        InboundMessage(
            inbox_key=env.inbox_key,
            external_id=external_id,
            contact_id=env.contact_id,
            sent_at=env.sent_at(resp.get("createTime")),
            text=text or postback or "",
            contact_name=env.contact_name,
            kind="suggestion",
            reply_to_external_id=reply_to,
            context=context,
            raw=env.body,
        )
    ]


def _parse_receipts(env: _Envelope, receipts: dict[str, Any]) -> list[InboundEvent]:
    items = receipts.get("receipts")
    events: list[InboundEvent] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        state = _RECEIPT_STATES.get(str(item.get("receiptType") or ""))
        ids = _message_name_ids(item.get("message"))
        if state is None or ids is None:
            continue  # RECEIPT_TYPE_UNSPECIFIED, unknown types, malformed names
        events.append(
            StatusUpdate(
                inbox_key=env.inbox_key,
                status=state,
                external_id=ids[1],
                contact_id=env.contact_id,
            )
        )
    return events


def _parse_user_status(env: _Envelope, status: dict[str, Any]) -> list[InboundEvent]:
    events: list[InboundEvent] = []
    is_typing = _bool(status.get("isTyping"))
    if is_typing is not None:
        events.append(Typing(env.inbox_key, env.contact_id, is_typing))
    if _bool(status.get("requestedLiveAgent")) is True:
        events.append(
            ConversationContext(
                inbox_key=env.inbox_key,
                contact_id=env.contact_id,
                data={"requested_live_agent": True},
                external_id=env.request_id,
                contact_name=env.contact_name,
                at=parse_timestamp(status.get("createTime")) or env.send_time,
            )
        )
    if not events:
        log.info("gbm: userStatus with nothing usable; ignored")
    return events


def _parse_survey(env: _Envelope, resp: dict[str, Any]) -> list[InboundEvent]:
    survey_name = _str(resp.get("survey"))
    survey_match = _SURVEY_NAME_RE.search(survey_name or "")
    survey = {
        "name": survey_name,
        "id": survey_match.group(1) if survey_match else None,
        "question_id": _str(resp.get("surveyQuestionId")),
        "question_type": _str(resp.get("questionType")),
        "question_index": _int(resp.get("questionIndex")),
        "total_questions": _int(resp.get("totalQuestionCount")),
        "response": _str(resp.get("questionResponseText")),
        "postback_data": _str(resp.get("questionResponsePostbackData")),
        "rating": _str(resp.get("rating")),
        "feedback": _str(resp.get("feedback")),
        "trigger_source": _str(resp.get("surveyTriggerSource")),
    }
    survey = {k: v for k, v in survey.items() if v is not None}
    data: dict[str, Any] = {"survey": survey}
    if "rating" in survey:
        data["rating"] = survey["rating"]
    external_id = env.request_id or _derived_id(
        "survey", env.contact_id, survey_name, survey.get("question_id"), resp.get("createTime")
    )
    return [
        ConversationContext(
            inbox_key=env.inbox_key,
            contact_id=env.contact_id,
            data=data,
            external_id=external_id,
            contact_name=env.contact_name,
            at=parse_timestamp(resp.get("createTime")) or env.send_time,
        )
    ]


def _parse_authentication(env: _Envelope, resp: dict[str, Any]) -> list[InboundEvent]:
    # code / codeVerifier are credentials: never stored
    details = resp.get("errorDetails") if isinstance(resp.get("errorDetails"), dict) else {}
    error = _str(details.get("error"))
    if error:
        outcome = "error"
    elif _str(resp.get("code")):
        outcome = "success"
    else:
        outcome = "unknown"
    auth = {
        "outcome": outcome,
        "error": error,
        "error_description": _str(details.get("errorDescription")),
        "redirect_uri": _str(resp.get("redirectUri")) or _str(resp.get("redirect_uri")),
    }
    data = {"authentication": {k: v for k, v in auth.items() if v is not None}}
    return [
        ConversationContext(
            inbox_key=env.inbox_key,
            contact_id=env.contact_id,
            data=data,
            external_id=env.request_id,
            contact_name=env.contact_name,
            at=env.send_time,
        )
    ]


_HANDLERS = {
    "message": _parse_message,
    "receipts": _parse_receipts,
    "userStatus": _parse_user_status,
    "surveyResponse": _parse_survey,
    "suggestionResponse": _parse_suggestion,
    "authenticationResponse": _parse_authentication,
}


def _str(value: Any) -> str | None:
    """A non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def _bool(value: Any) -> bool | None:
    """JSON booleans (and "true"/"false" strings); None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _int(value: Any) -> int | None:
    """An int from a JSON number or digit string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _message_name_ids(name: Any) -> tuple[str, str] | None:
    """``(conversationId, messageId)`` from ``conversations/C/messages/M``."""
    if not isinstance(name, str):
        return None
    match = _MESSAGE_NAME_RE.search(name.strip())
    return (match.group(1), match.group(2)) if match else None


def _derived_id(*parts: Any) -> str:
    """A stable id from event fields, for events without a ``requestId``."""
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()
    return f"gbm-{digest[:32]}"


def _image_attachment(image: Any) -> AttachmentRef | None:
    """An image object (``contentInfo.fileUrl`` or ``fileUrl``) as an attachment."""
    if not isinstance(image, dict):
        return None
    info = image.get("contentInfo") if isinstance(image.get("contentInfo"), dict) else image
    url = _str(info.get("fileUrl")) or _str(info.get("url"))
    if not url:
        return None
    thumb = _str(info.get("thumbnailUrl"))
    return AttachmentRef(kind="image", url=url, extra={"thumbnail_url": thumb} if thumb else {})


def _is_gbm_image_url(text: str) -> bool:
    """True for the signed Cloud Storage URL GBM sends in place of a user's image."""
    candidate = text.strip()
    if not candidate or any(ch.isspace() for ch in candidate):
        return False
    parts = urlsplit(candidate)
    return (
        parts.scheme == "https"
        and parts.hostname == "storage.googleapis.com"
        and parts.path.startswith("/business-messages")
    )


# --------------------------------------------------------------------------- auth tokens


@dataclass
class _CachedCredentials:
    credentials: service_account.Credentials
    lock: threading.Lock


_CREDENTIALS: dict[tuple[str, str], _CachedCredentials] = {}
_CREDENTIALS_LOCK = threading.Lock()


def clear_token_cache() -> None:
    """Forget every cached access token (tests; after rotating a key)."""
    with _CREDENTIALS_LOCK:
        _CREDENTIALS.clear()


def _forget_credentials(info: dict[str, Any]) -> None:
    with _CREDENTIALS_LOCK:
        _CREDENTIALS.pop(_cache_key(info), None)


def _cache_key(info: dict[str, Any]) -> tuple[str, str]:
    return (str(info.get("client_email", "")), str(info.get("private_key_id", "")))


class _TokenRequest(google.auth.transport.requests.Request):
    """google-auth's requests transport on our session, with our timeout.

    google-auth calls the token endpoint without a timeout (its default is 120 s)
    and closes the session when the transport is garbage-collected; neither suits
    a session the connector owns.
    """

    def __init__(self, session: requests.Session, timeout: Any) -> None:
        super().__init__(session=session)
        self._timeout = timeout

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Make the request with the connector's timeout unless one is given."""
        return super().__call__(
            url,
            method=method,
            body=body,
            headers=headers,
            timeout=timeout or self._timeout,
            **kwargs,
        )

    def __del__(self) -> None:  # the session belongs to the connector
        pass


def load_service_account(value: Any) -> dict[str, Any]:
    """The service-account JSON from config (a dict or a JSON string).

    Raises ValueError when it is missing or lacks the fields google-auth needs.
    """
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError("service_account is not valid JSON") from exc
    if not isinstance(value, dict):
        raise ValueError("service_account must be the service-account JSON")
    missing = [k for k in ("client_email", "private_key", "token_uri") if not value.get(k)]
    if missing:
        raise ValueError(f"service_account lacks {', '.join(missing)}")
    return value


# --------------------------------------------------------------------------- connector


@register
class GbmConnector(Connector):
    """Google Business Messages agent as an inbox (protocol archived; see module doc)."""

    channel: ClassVar[str] = "gbm"
    display_name: ClassVar[str] = "Google Business Messages"
    # customers' images: signed Cloud Storage URLs; image objects may name Google's image CDN
    media_hosts: ClassVar[MediaHosts] = MediaHosts(
        sources=("storage.googleapis.com", "*.googleusercontent.com")
    )
    fields: ClassVar[tuple[ConfigField, ...]] = (
        ConfigField("agent", help="The agent's resource name: brands/BRAND_ID/agents/AGENT_ID"),
        ConfigField(
            "client_token",
            secret=True,
            help="Client token from the webhook settings: handshake check and signature key",
        ),
        ConfigField(
            "service_account",
            secret=True,
            help="Service-account JSON (dict or JSON string) with the businessmessages scope",
        ),
        ConfigField(
            "partner_key",
            required=False,
            secret=True,
            help="Partner key that older agents' webhooks were signed with",
        ),
    )

    # module-level helpers, reachable from the class as well
    handshake = staticmethod(handshake)
    check_signature = staticmethod(check_signature)
    agent_of = staticmethod(agent_of)
    parse = staticmethod(parse)

    # -- description -----------------------------------------------------------
    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> list[str]:
        """Required fields, plus the agent name's shape and a usable service account."""
        problems = super().validate_config(config)
        agent = config.get("agent")
        if agent and not (isinstance(agent, str) and _AGENT_RE.match(agent)):
            problems.append("agent must look like brands/BRAND_ID/agents/AGENT_ID")
        if config.get("service_account"):
            try:
                load_service_account(config["service_account"])
            except ValueError as exc:
                problems.append(str(exc))
        return problems

    @classmethod
    def signature_keys(cls, config: dict[str, Any]) -> list[str]:
        """The keys an ``X-Goog-Signature`` may be made with for this inbox."""
        return [k for k in (config.get("client_token"), config.get("partner_key")) if k]

    # -- inbound helpers ---------------------------------------------------------
    def verify_handshake(self, payload: Any) -> str | None:
        """The secret to echo when ``payload`` is a handshake for this inbox's token."""
        found = handshake(payload)
        token = self.config.get("client_token")
        if not found or not isinstance(token, str) or not token:
            return None
        if not hmac.compare_digest(found[0].encode(), token.encode()):
            return None
        return found[1]

    def verify_signature(self, raw_body: bytes, header: str | None) -> bool:
        """:func:`check_signature` with this inbox's client token and partner key."""
        return check_signature(raw_body, header, self.signature_keys(self.config))

    # -- inbound: the webhook contract (see connectors.base.Connector) ------------
    @classmethod
    def webhook_handshake(cls, body: bytes, args: dict[str, str]) -> tuple[str, str] | None:
        """Google's handshake body: ``(clientToken, secret)``; the secret is echoed."""
        try:
            payload = read_json(body)
        except UnreadableBody:
            return None
        return handshake(payload)

    @classmethod
    def accepts_handshake(cls, config: dict[str, Any], token: str) -> bool:
        """The inbox's client token is the one presented (constant time)."""
        own = config.get("client_token")
        if not isinstance(own, str) or not own or not isinstance(token, str) or not token:
            return False
        return hmac.compare_digest(own.encode(), token.encode())

    @classmethod
    def webhook_route_keys(cls, body: bytes, args: dict[str, str]) -> list[str]:
        """The ``agent`` the event is for (:func:`agent_of`)."""
        return [agent_of(read_json(body))]

    def verify_webhook(self, body: bytes, url: str, headers: Any) -> bool:
        """``X-Goog-Signature`` with the client token (or partner key)."""
        return self.verify_signature(body, headers.get("X-Goog-Signature"))

    @classmethod
    def parse_webhook(cls, body: bytes, received_at: datetime) -> list[InboundEvent]:
        """The events of a body that names an agent."""
        payload = read_json(body)
        agent_of(payload)
        return parse(payload)

    # -- outbound --------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The Business Messages API base (``options.base_urls["gbm"]``)."""
        return self.options.base_urls.get("gbm", DEFAULT_BASE_URL).rstrip("/")

    @staticmethod
    def message_id(reference: str, part: int = 0, *, fallback: bool = False) -> str:
        """The deterministic ``messageId`` for one part of our message ``reference``.

        Part 0 is the text; attachment *i* (sent as its own message) is part *i + 1*;
        ``fallback`` marks the plain-text resend after FAILED_PRECONDITION. A retry
        of the same reference reuses the same ids, so Google can spot the duplicate.
        """
        seed = reference if part == 0 else f"{reference}#{part}"
        if fallback:
            seed += "#fallback"
        return str(uuid.uuid5(MESSAGE_ID_NAMESPACE, seed))

    def send(self, message: OutboundMessage) -> SendResult:
        """Send text and attachments as one GBM message each; never raises.

        Text goes first, then each attachment by URL (images as ``image``, other
        files as a link in text). ``external_id`` is the first part's messageId;
        ``external_ids`` lists all of them.
        """
        missing_url = [a.filename for a in message.attachments if not a.url]
        if missing_url:
            return _failed(
                ErrorKind.PERMANENT,
                "attachment_url_required",
                "Google Business Messages sends attachments by public URL only",
            )
        parts = self._message_parts(message)
        if not parts:
            return _failed(ErrorKind.PERMANENT, "empty_message", "Nothing to send")
        sent: list[str] = []
        for number, content, fallback_text in parts:
            result = self._send_part(message, number, content, fallback_text)
            if result.error:
                return SendResult(error=result.error, external_ids=tuple(sent))
            sent.append(result.external_id or "")
        return SendResult(external_id=sent[0], external_ids=tuple(sent))

    def send_action(self, contact_id: str, action: str, **kwargs: Any) -> SendResult:
        """Send a GBM event or an agent read receipt.

        ``action``: ``REPRESENTATIVE_JOINED``, ``REPRESENTATIVE_LEFT``,
        ``TYPING_STARTED``, ``TYPING_STOPPED`` (``agent_name``, ``agent_avatar_url``,
        ``automated`` keywords fill the representative), or ``mark_read`` with
        ``message_id`` (the customer's message). ``typing_on`` / ``typing_off`` /
        ``mark_seen`` are accepted as aliases; other actions are no-ops.
        """
        name = _ACTION_ALIASES.get(action, action)
        if name.upper() in EVENT_TYPES:
            body = {
                "eventType": name.upper(),
                "representative": _representative(
                    kwargs.get("agent_name"),
                    kwargs.get("agent_avatar_url"),
                    bool(kwargs.get("automated")),
                ),
            }
            url = f"{self._conversation_url(contact_id)}/events"
            return self._call("POST", url, body, params={"eventId": str(uuid.uuid4())})
        if name == "mark_read":
            message_id = kwargs.get("message_id") or kwargs.get("external_id")
            if not message_id:
                return _failed(
                    ErrorKind.PERMANENT, "message_id_required", "mark_read needs message_id"
                )
            url = f"{self._conversation_url(contact_id)}/messages/{quote(str(message_id), safe='')}/receipt"
            return self._call("PATCH", url, {"receiptType": "READ"})
        log.debug("gbm: action %r not supported; ignored", action)
        return SendResult()

    # -- internals -------------------------------------------------------------
    def _conversation_url(self, contact_id: str) -> str:
        """``{base}/v1/conversations/{id}`` with the id escaped as one path segment."""
        return f"{self.base_url}/v1/conversations/{quote(str(contact_id), safe='')}"

    def _message_parts(self, message: OutboundMessage) -> list[tuple[int, dict[str, Any], str]]:
        """``(part number, content, fallback text)`` per GBM message, in sending order.

        The text is part 0 and attachment *i* is part *i + 1*, whether or not
        there is text, so each part's messageId depends only on what it is.
        """
        parts: list[tuple[int, dict[str, Any], str]] = []
        if message.text:
            parts.append((0, {"text": message.text}, message.text))
        for number, attachment in enumerate(message.attachments, start=1):
            parts.append((number, *_attachment_content(attachment)))
        return parts

    def _send_part(
        self, message: OutboundMessage, index: int, content: dict[str, Any], fallback_text: str
    ) -> SendResult:
        url = f"{self._conversation_url(message.contact_id)}/messages"
        representative = _representative(
            message.agent_name, message.agent_avatar_url, message.automated
        )
        message_id = self.message_id(message.reference, index)
        body = {"messageId": message_id, "representative": representative}
        body.update(content)
        body["fallback"] = fallback_text
        result = self._call("POST", url, body)
        if _is_failed_precondition(result):
            # the device cannot render this content: send the fallback as plain text
            log.info("gbm: %s rejected with FAILED_PRECONDITION; sending the fallback", message_id)
            message_id = self.message_id(message.reference, index, fallback=True)
            body = {
                "messageId": message_id,
                "representative": representative,
                "text": fallback_text,
                "fallback": fallback_text,
            }
            result = self._call("POST", url, body)
        if result.error:
            return result
        return SendResult(external_id=message_id)

    def _call(
        self,
        method: str,
        url: str,
        body: dict[str, Any],
        params: dict[str, str] | None = None,
    ) -> SendResult:
        """One authorised API call, classified into a SendResult."""
        try:
            info = load_service_account(self.config.get("service_account"))
        except ValueError as exc:
            return _failed(ErrorKind.AUTH_FAILED, "service_account", f"{exc}: reconnect needed")
        try:
            token = self._access_token(info)
        except google.auth.exceptions.TransportError as exc:
            return _failed(ErrorKind.TRANSIENT, "token_unreachable", f"Token endpoint: {exc}")
        except google.auth.exceptions.RefreshError as exc:
            kind = ErrorKind.TRANSIENT if exc.retryable else ErrorKind.AUTH_FAILED
            return _failed(kind, "token_refresh", f"Service account rejected: {_first_arg(exc)}")
        except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            return _failed(ErrorKind.AUTH_FAILED, "service_account", f"Service account: {exc}")
        try:
            resp = self.http.request(
                method,
                url,
                json=body,
                params=params,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.options.timeout,
            )
        except requests.RequestException as exc:
            return _failed(ErrorKind.TRANSIENT, "network", f"{type(exc).__name__}: {exc}")
        if 200 <= resp.status_code < 300:
            return SendResult(external_id=body.get("messageId"))
        error = _classify(resp)
        if (
            resp.status_code == 409
            and error.code in ("ALREADY_EXISTS", "409")
            and body.get("messageId")
        ):
            # the same messageId was accepted before: a retry of a sent message
            return SendResult(external_id=body["messageId"])
        if error.kind is ErrorKind.AUTH_FAILED:
            _forget_credentials(info)
        return SendResult(error=error)

    def _access_token(self, info: dict[str, Any]) -> str:
        """A valid bearer token for ``info``, cached per service-account key."""
        key = _cache_key(info)
        with _CREDENTIALS_LOCK:
            entry = _CREDENTIALS.get(key)
            if entry is None:
                try:
                    creds = service_account.Credentials.from_service_account_info(
                        info, scopes=list(SCOPES)
                    )
                except Exception as exc:  # bad PEM, wrong key type ... all mean "reconnect"
                    raise ValueError(f"unusable private key ({type(exc).__name__})") from exc
                entry = _CachedCredentials(creds, threading.Lock())
                _CREDENTIALS[key] = entry
        with entry.lock:
            if not entry.credentials.valid:
                entry.credentials.refresh(_TokenRequest(self.http, self.options.timeout))
            return str(entry.credentials.token)


def _representative(name: Any, avatar: Any, automated: bool) -> dict[str, Any]:
    rep: dict[str, Any] = {"representativeType": "BOT" if automated else "HUMAN"}
    if name:
        rep["displayName"] = str(name)
    if avatar:
        rep["avatarImage"] = str(avatar)
    return rep


def _attachment_content(attachment: OutboundAttachment) -> tuple[dict[str, Any], str]:
    """Images as GBM ``image`` content; other files as a text link."""
    url = attachment.url or ""
    label = f"{attachment.filename}: {url}" if attachment.filename else url
    if (attachment.content_type or "").lower().startswith("image/"):
        return {"image": {"contentInfo": {"fileUrl": url, "forceRefresh": False}}}, label
    return {"text": label}, label


def _classify(resp: requests.Response) -> SendError:
    """Map a GBM error response to a SendError (``message`` is Google's)."""
    status = resp.status_code
    google_status, google_message = None, ""
    try:
        payload = resp.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        google_status = _str(payload["error"].get("status"))
        google_message = str(payload["error"].get("message") or "")
    message = google_message or f"HTTP {status} from Business Messages"
    code = google_status or str(status)
    if status == 401 or google_status == "UNAUTHENTICATED":
        return SendError(ErrorKind.AUTH_FAILED, code, f"{message} (reconnect needed)")
    if status in (403, 404) or google_status in ("PERMISSION_DENIED", "NOT_FOUND"):
        return SendError(ErrorKind.UNDELIVERABLE, code, message)
    if (
        status == 429
        or status >= 500
        or google_status in ("RESOURCE_EXHAUSTED", "UNAVAILABLE", "ABORTED")
    ):
        return SendError(ErrorKind.TRANSIENT, code, message, _retry_after(resp))
    return SendError(ErrorKind.PERMANENT, code, message)


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After", "")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _failed(kind: ErrorKind, code: str, message: str) -> SendResult:
    return SendResult(error=SendError(kind, code, message))


def _is_failed_precondition(result: SendResult) -> bool:
    """400 FAILED_PRECONDITION: the device cannot render the content."""
    error = result.error
    return (
        error is not None
        and error.kind is ErrorKind.PERMANENT
        and error.code == "FAILED_PRECONDITION"
    )


def _first_arg(exc: BaseException) -> str:
    return str(exc.args[0]) if exc.args else type(exc).__name__
