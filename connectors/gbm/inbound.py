"""GBM inbound: the webhook handshake, signatures, timestamps, and parsing ``UserMessage`` payloads."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from connectors.base import (
    AttachmentRef,
    ConversationContext,
    InboundEvent,
    InboundMessage,
    StatusUpdate,
    Typing,
    UnreadableBody,
    read_json,
    routing_key,
)

from .constants import (
    _MESSAGE_NAME_RE,
    _PAYLOAD_FIELDS,
    _RECEIPT_STATES,
    _RFC3339_RE,
    _SURVEY_NAME_RE,
)

log = logging.getLogger("connectors.gbm")


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
