"""Facebook Messenger: webhook verification, event parsing and the Send API.

Inbound: the web layer answers the ``GET`` handshake with :func:`verify_token_matches`,
authenticates each ``POST`` with :func:`check_signature` over the raw body, routes it
with :func:`page_ids` and turns it into normalised events with :func:`parse`. A body
batches several Pages (``entry[]``) and several events per Page (``messaging[]``, or
``standby[]`` when another app owns the thread); every item is parsed, and a malformed
one is logged and skipped, never raised.

Outbound: :class:`MessengerConnector` posts to ``/{version}/me/messages`` with the Page
token (an ``Authorization: Bearer`` header, never in the URL, so it stays out of proxy and
server logs) and its ``appsecret_proof``, splits long text, sends attachments by URL and
classifies Graph errors into :class:`~connectors.base.ErrorKind`.

Identity: a contact is its PSID. Chat Plugin users that only have a ``user_ref`` become
``"user_ref:<ref>"`` so they cannot collide with a PSID and can still be answered.

Pure: no database, no ``app`` import; tested with recorded payloads and a fake Graph.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import logging
import math
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests

from connectors.base import (
    AttachmentRef,
    ConfigField,
    Connector,
    ContactProfile,
    ConversationContext,
    DeliveryState,
    EchoedOutbound,
    ErrorKind,
    InboundEvent,
    InboundMessage,
    MediaHosts,
    OutboundAttachment,
    OutboundMessage,
    SendError,
    SendResult,
    StatusUpdate,
    UnreadableBody,
    never_reached,
    read_json,
    register,
    routing_key,
)

logger = logging.getLogger(__name__)

DEFAULT_GRAPH_URL = "https://graph.facebook.com"
DEFAULT_GRAPH_VERSION = "v25.0"
MAX_TEXT_LENGTH = 2000  # Send API text limit, counted here in UTF-16 code units (conservative)
MAX_METADATA_LENGTH = 1000
OWN_REFERENCE_PREFIX = "sb:"  # our OutboundMessage.reference values, echoed back as metadata
USER_REF_PREFIX = "user_ref:"  # contact ids of Chat Plugin users known only by user_ref

HUMAN_AGENT_TAG = "HUMAN_AGENT"
# Meta answers these with error 100 from 2026-04-27; we refuse them before any call.
RETIRED_TAGS = frozenset({"CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE"})
SENDER_ACTIONS = frozenset({"typing_on", "typing_off", "mark_seen"})
PROFILE_FIELDS = "first_name,last_name,name,profile_pic"

# Events that are facts about the conversation rather than messages. Each becomes a
# ConversationContext whose ``data`` holds the event object under the same key.
CONTEXT_EVENTS = (
    "referral",
    "optin",
    "reaction",
    "message_edit",
    "account_linking",
    "pass_thread_control",
    "take_thread_control",
    "request_thread_control",
    "message_request",
)

# Graph error codes -> how the domain reacts (docs/channels.md section 1.7).
_WINDOW_CODES = frozenset({10})
_UNDELIVERABLE_CODES = frozenset({551})
# 190/102: token invalid. 200/230: permission missing or revoked; the fix is the same as
# for a dead token (an admin re-grants the Page connection), and PERMANENT would make
# every later message fail one by one without anyone being told to reconnect.
_AUTH_CODES = frozenset({102, 190, 200, 230})
# 4/17/32/613/80006: rate limits; 1200: temporary send failure; 1/2: unknown/unexpected.
_TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 613, 1200, 80006})
_RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80006})

_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


# --------------------------------------------------------------------------- verification


def verify_token_matches(given: str | None, expected: str) -> bool:
    """True when the handshake's ``hub.verify_token`` equals ours (constant time); never raises."""
    if not given or not expected or not isinstance(given, str):
        return False
    return hmac.compare_digest(_utf8(given), _utf8(expected))


def _utf8(text: str) -> bytes:
    """UTF-8 that tolerates lone surrogates (which then match nothing real)."""
    return text.encode("utf-8", "surrogatepass")


def check_signature(raw_body: bytes, header_value: str | None, app_secret: str) -> bool:
    """Check ``X-Hub-Signature-256: sha256=<hex>`` over the raw request bytes.

    Fails closed: a missing or malformed header, another algorithm (``sha1=``) or an
    empty app secret all give False; never raises.
    """
    if not app_secret or not header_value or not isinstance(header_value, str):
        return False
    algorithm, sep, digest = header_value.strip().partition("=")
    if not sep or algorithm.strip().lower() != "sha256" or not _HEX_SHA256.fullmatch(digest):
        return False
    if isinstance(raw_body, str):
        raw_body = _utf8(raw_body)
    try:
        body = bytes(raw_body)
    except TypeError:
        return False
    expected = hmac.new(_utf8(app_secret), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, digest.lower())


def appsecret_proof(access_token: str, app_secret: str) -> str:
    """Graph's ``appsecret_proof``: hex HMAC-SHA256 of the token keyed with the app secret."""
    return hmac.new(
        app_secret.encode("utf-8"), access_token.encode("utf-8"), hashlib.sha256
    ).hexdigest()


# --------------------------------------------------------------------------- inbound


def page_ids(payload: dict[str, Any]) -> list[str]:
    """The Page ids a webhook body is for (``entry[].id``), unique, in order.

    For the single-event ``{"field", "value"}`` form the Page is read from the event.
    Only ids that can name an inbox (:func:`~connectors.base.routing_key`: strings or
    JSON integers, short, no control characters) are listed; never raises.
    """
    if not isinstance(payload, dict):
        return []
    if isinstance(payload.get("entry"), list):
        candidates = [_str_id(e.get("id")) for e in payload["entry"] if isinstance(e, dict)]
    elif isinstance(payload.get("value"), dict):
        candidates = [_event_page_id(payload["value"])]
    else:
        candidates = []
    found = dict.fromkeys(map(routing_key, candidates))  # unique, in order, in linear time
    found.pop(None, None)
    return list(found)


def parse(payload: dict[str, Any]) -> list[InboundEvent]:
    """Turn a webhook body into normalised events; never raises.

    Handles the batched envelope (``entry[].messaging[]`` and ``entry[].standby[]``,
    plus ``entry[].changes[]`` values that are messaging events) and the single-event
    ``{"field": ..., "value": {...}}`` form of the App Dashboard's test button.
    """
    events: list[InboundEvent] = []
    if not isinstance(payload, dict):
        logger.warning("messenger: ignoring a webhook body that is not an object")
        return events
    if "entry" in payload:
        entries = payload.get("entry")
        if not isinstance(entries, list):
            logger.warning("messenger: ignoring a webhook body whose entry is not a list")
            return events
        for entry in entries:
            events.extend(_parse_entry(entry))
    elif isinstance(payload.get("value"), dict):
        value = payload["value"]
        page_id = _event_page_id(value)
        if page_id:
            events.extend(_parse_item_safely(value, page_id, None, standby=False))
        else:
            logger.warning("messenger: skipping a %r event without a Page id", payload.get("field"))
    else:
        logger.warning("messenger: ignoring a webhook body with neither entry nor value")
    return events


def is_own_echo(echo: EchoedOutbound, config: dict[str, Any]) -> bool:
    """True when ``echo`` reports one of Switchboard's own sends.

    Ours when the metadata carries one of our references (``sb:...``) or the echo's
    ``app_id`` is the Meta app configured for the inbox (``config["app_id"]``). Echoes
    from the Page Inbox carry Meta's Page Inbox app id instead and are not ours.
    """
    if echo.metadata and echo.metadata.startswith(OWN_REFERENCE_PREFIX):
        return True
    own_app_id = str(config.get("app_id") or "").strip()
    return bool(own_app_id) and (echo.app_id or "").strip() == own_app_id


def _parse_entry(entry: Any) -> list[InboundEvent]:
    """Every event of one ``entry`` (one Page)."""
    if not isinstance(entry, dict):
        logger.warning("messenger: skipping an entry that is not an object")
        return []
    page_id = _str_id(entry.get("id"))
    if not page_id:
        logger.warning("messenger: skipping an entry without a Page id")
        return []
    entry_time = entry.get("time")
    events: list[InboundEvent] = []
    for key in ("messaging", "standby"):
        items = entry.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            logger.warning(
                "messenger: skipping entry.%s that is not a list (Page %s)", key, page_id
            )
            continue
        for item in items:
            events.extend(_parse_item_safely(item, page_id, entry_time, standby=key == "standby"))
    changes = entry.get("changes")
    if isinstance(changes, list):
        for change in changes:
            value = change.get("value") if isinstance(change, dict) else None
            if isinstance(value, dict) and ("sender" in value or "recipient" in value):
                events.extend(_parse_item_safely(value, page_id, entry_time, standby=False))
    return events


def _parse_item_safely(
    item: Any, page_id: str, entry_time: Any, *, standby: bool
) -> list[InboundEvent]:
    """:func:`_parse_item`, with any surprise logged instead of raised."""
    try:
        return _parse_item(item, page_id, entry_time, standby=standby)
    except Exception:  # a surprising shape must not lose the rest of the batch
        logger.exception("messenger: skipping an event that could not be parsed (Page %s)", page_id)
        return []


def _parse_item(item: Any, page_id: str, entry_time: Any, *, standby: bool) -> list[InboundEvent]:
    """One ``messaging[]``/``standby[]`` item, dispatched in the documented order."""
    if not isinstance(item, dict):
        logger.warning("messenger: skipping a messaging item that is not an object")
        return []
    ms = _epoch_ms(item.get("timestamp"))
    at = _ms_to_datetime(ms)
    message = item.get("message")
    if isinstance(message, dict) and _truthy(message.get("is_echo")):
        return _parse_echo(item, message, page_id, at or _fallback_time(entry_time))

    contact = _party_id(item.get("sender"))
    if contact is None and isinstance(item.get("optin"), dict):
        ref = _str_id(item["optin"].get("user_ref"))  # checkbox plugin: no sender, a user_ref
        contact = f"{USER_REF_PREFIX}{ref}" if ref else None
    if contact is None:
        if "policy_enforcement" in item:
            logger.warning(
                "messenger: policy enforcement for Page %s: %r", page_id, item["policy_enforcement"]
            )
        elif "app_roles" in item:
            logger.info("messenger: app roles changed for Page %s", page_id)
        else:
            logger.warning(
                "messenger: skipping an event without a sender (Page %s, keys %s)",
                page_id,
                sorted(item),
            )
        return []

    if isinstance(message, dict):
        return _parse_message(
            item, message, page_id, contact, at or _fallback_time(entry_time), standby
        )
    if isinstance(item.get("postback"), dict):
        return [_parse_postback(item, page_id, contact, ms, entry_time, standby)]
    if isinstance(item.get("delivery"), dict):
        return _parse_delivery(item["delivery"], page_id, contact)
    if isinstance(item.get("read"), dict):
        watermark = _ms_to_datetime(_epoch_ms(item["read"].get("watermark")))
        if watermark is None:
            logger.warning(
                "messenger: skipping a read receipt without a watermark (Page %s)", page_id
            )
            return []
        return [StatusUpdate(page_id, DeliveryState.READ, contact_id=contact, watermark=watermark)]
    if "policy_enforcement" in item:
        logger.warning(
            "messenger: policy enforcement for Page %s: %r", page_id, item["policy_enforcement"]
        )
        return []
    for key in CONTEXT_EVENTS:
        if key in item:
            return [_parse_context(item, key, page_id, contact, ms, at)]
    logger.info("messenger: ignoring an event with keys %s (Page %s)", sorted(item), page_id)
    return []


def _parse_message(
    item: dict[str, Any],
    message: dict[str, Any],
    page_id: str,
    contact: str,
    sent_at: datetime,
    standby: bool,
) -> list[InboundEvent]:
    """A customer's message: text, quick reply, attachments, reply-to."""
    mid = _str_id(message.get("mid"))
    if not mid:
        logger.warning("messenger: skipping a message without a mid (Page %s)", page_id)
        return []
    if _truthy(message.get("is_deleted")):
        data = {"message_deleted": {"mid": mid}}
        return [
            ConversationContext(page_id, contact, data, external_id=f"deleted:{mid}", at=sent_at)
        ]
    context: dict[str, Any] = {}
    kind = "message"
    quick_reply = message.get("quick_reply")
    if isinstance(quick_reply, dict):
        kind = "quick_reply"
        context["payload"] = quick_reply.get("payload")
    if isinstance(message.get("referral"), dict):
        context["referral"] = message["referral"]
    if _truthy(message.get("is_unsupported")):
        context["unsupported"] = True
    if standby:
        context["standby"] = True
    reply_to = message.get("reply_to")
    reply_mid = _str_id(reply_to.get("mid")) if isinstance(reply_to, dict) else None
    return [
        InboundMessage(
            inbox_key=page_id,
            external_id=mid,
            contact_id=contact,
            sent_at=sent_at,
            text=_text(message.get("text")),
            attachments=_attachments(message.get("attachments")),
            kind=kind,
            reply_to_external_id=reply_mid,
            context=context,
            raw=item,
        )
    ]


def _parse_echo(
    item: dict[str, Any], message: dict[str, Any], page_id: str, sent_at: datetime
) -> list[InboundEvent]:
    """A message the Page sent (sender and recipient swapped)."""
    contact = _party_id(item.get("recipient"))
    mid = _str_id(message.get("mid"))
    if contact is None or not mid:
        logger.warning("messenger: skipping an echo without recipient or mid (Page %s)", page_id)
        return []
    metadata = message.get("metadata")
    app_id = message.get("app_id")
    return [
        EchoedOutbound(
            inbox_key=page_id,
            external_id=mid,
            contact_id=contact,
            sent_at=sent_at,
            text=_text(message.get("text")),
            attachments=_attachments(message.get("attachments")),
            metadata=None if metadata is None else str(metadata),
            app_id=None if app_id is None or app_id == "" else str(app_id),
        )
    ]


def _parse_postback(
    item: dict[str, Any],
    page_id: str,
    contact: str,
    ms: int | None,
    entry_time: Any,
    standby: bool,
) -> InboundMessage:
    """A button, Get Started or menu tap; its title is what the customer saw and chose."""
    postback = item["postback"]
    mid = _str_id(postback.get("mid"))
    if not mid:
        stamp = ms if ms is not None else _epoch_ms(entry_time)
        if stamp is None:
            digest = hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode())
            stamp_text = digest.hexdigest()[:16]
        else:
            stamp_text = str(stamp)
        mid = f"postback:{contact}:{stamp_text}"
    context: dict[str, Any] = {"payload": postback.get("payload")}
    if isinstance(postback.get("referral"), dict):
        context["referral"] = postback["referral"]
    if standby:
        context["standby"] = True
    return InboundMessage(
        inbox_key=page_id,
        external_id=mid,
        contact_id=contact,
        sent_at=_ms_to_datetime(ms) or _fallback_time(entry_time),
        text=_text(postback.get("title")),
        kind="postback",
        context=context,
        raw=item,
    )


def _parse_delivery(delivery: dict[str, Any], page_id: str, contact: str) -> list[InboundEvent]:
    """One DELIVERED update per listed mid, plus one for the watermark."""
    events: list[InboundEvent] = []
    mids = delivery.get("mids")
    if isinstance(mids, list):
        for mid in mids:
            mid_text = _str_id(mid)
            if mid_text:
                events.append(
                    StatusUpdate(
                        page_id, DeliveryState.DELIVERED, external_id=mid_text, contact_id=contact
                    )
                )
    watermark = _ms_to_datetime(_epoch_ms(delivery.get("watermark")))
    if watermark is not None:
        events.append(
            StatusUpdate(page_id, DeliveryState.DELIVERED, contact_id=contact, watermark=watermark)
        )
    if not events:
        logger.warning(
            "messenger: skipping a delivery without mids or watermark (Page %s)", page_id
        )
    return events


def _parse_context(
    item: dict[str, Any], key: str, page_id: str, contact: str, ms: int | None, at: datetime | None
) -> ConversationContext:
    """A non-message fact (referral, opt-in, reaction, handover, edit ...)."""
    value = item[key]
    external_id = f"{key}:{contact}:{ms}" if ms is not None else None
    if key == "message_edit" and isinstance(value, dict) and value.get("mid"):
        external_id = f"message_edit:{value.get('mid')}:{value.get('num_edit', ms)}"
    return ConversationContext(page_id, contact, {key: value}, external_id=external_id, at=at)


def _attachments(items: Any) -> tuple[AttachmentRef, ...]:
    """Attachment references, with the sticker transition's duplicate image dropped."""
    if not isinstance(items, list):
        return ()
    refs = [_attachment(item) for item in items if isinstance(item, dict)]
    # Until 2026-08-30 a sticker arrives twice, as "sticker" and as "image": keep one.
    sticker_urls = {r.url for r in refs if r.kind == "sticker" and r.url}
    kept: list[AttachmentRef] = []
    seen: set[str] = set()
    for ref in refs:
        if ref.kind == "image" and ref.url in sticker_urls:
            continue
        if ref.kind == "sticker":
            key = str(ref.extra.get("sticker_id") or ref.url or "")
            if key and key in seen:
                continue
            seen.add(key)
        kept.append(ref)
    return tuple(kept)


def _attachment(item: dict[str, Any]) -> AttachmentRef:
    """One ``attachments[]`` element; every type is kept, unknown ones by name."""
    kind = item.get("type") if isinstance(item.get("type"), str) and item.get("type") else "file"
    payload = item.get("payload") if isinstance(item.get("payload"), dict) else {}
    url = payload.get("url") or item.get("url")
    title = item.get("title") or payload.get("title")
    extra = {k: v for k, v in payload.items() if k not in ("url", "title")}
    if kind == "image" and payload.get("sticker_id"):
        kind = "sticker"
    coordinates = payload.get("coordinates")
    if isinstance(coordinates, dict):
        for name, key in (("latitude", "lat"), ("longitude", "long")):
            number = _float(coordinates.get(key))
            if number is not None:
                extra[name] = number
    return AttachmentRef(
        kind=kind,
        url=url if isinstance(url, str) and url else None,
        title=title if isinstance(title, str) and title else None,
        extra=extra,
    )


def _event_page_id(event: dict[str, Any]) -> str | None:
    """The Page of a lone event: the recipient, or the sender for echoes."""
    message = event.get("message")
    party = (
        "sender" if isinstance(message, dict) and _truthy(message.get("is_echo")) else "recipient"
    )
    value = event.get(party)
    return _str_id(value.get("id")) if isinstance(value, dict) else None


def _party_id(party: Any) -> str | None:
    """A sender/recipient as a contact id: the PSID, or ``user_ref:<ref>``."""
    if not isinstance(party, dict):
        return None
    psid = _str_id(party.get("id"))
    if psid:
        return psid
    ref = _str_id(party.get("user_ref"))
    return f"{USER_REF_PREFIX}{ref}" if ref else None


def _str_id(value: Any) -> str | None:
    """An id as text; ints are accepted (older payloads), other types are not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _text(value: Any) -> str:
    """Text fields as strings ('' when absent)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _truthy(value: Any) -> bool:
    """Booleans that may arrive as strings ("All JSON properties ... are strings")."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return value is True or (isinstance(value, int) and value == 1)


def _float(value: Any) -> float | None:
    """A coordinate as a float, or None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds from an int or a numeric string.

    Meta documents milliseconds, but the dashboard's test events carry seconds
    (``"1527459824"``). Values below 1e11 cannot be real millisecond times (that is
    March 1973), so they are read as seconds.
    """
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    if number != number or number < 0:  # NaN or negative
        return None
    if number < 1e11:
        number *= 1000
    return int(number)


def _ms_to_datetime(ms: int | None) -> datetime | None:
    """Epoch milliseconds as an aware UTC datetime, or None when out of range."""
    if ms is None:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _fallback_time(entry_time: Any) -> datetime:
    """When an event has no usable timestamp: the entry's time, else now."""
    return _ms_to_datetime(_epoch_ms(entry_time)) or datetime.now(UTC)


# --------------------------------------------------------------------------- outbound


def split_text(text: str, limit: int = MAX_TEXT_LENGTH) -> list[str]:
    """Split ``text`` into ordered parts of at most ``limit`` characters.

    Cuts at a paragraph break, a line break or a space where one lies in the second
    half of the window, else hard. Length is counted in UTF-16 code units, so an
    emoji counts as two: never more than Meta may count. Whitespace-only text gives [].
    """
    if not text or not text.strip():
        return []
    parts: list[str] = []
    rest = text
    while _utf16_len(rest) > limit:
        cut = _cut_index(rest, _fit(rest, limit))
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if head:
            parts.append(head)
    if rest.strip():
        parts.append(rest)
    return parts


def _utf16_len(text: str) -> int:
    """Length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _fit(text: str, limit: int) -> int:
    """How many characters of ``text`` fit in ``limit`` UTF-16 code units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _cut_index(text: str, hard: int) -> int:
    """Where to cut ``text`` so the head has at most ``hard`` characters."""
    if hard < len(text) and text[hard].isspace():
        return hard
    window = text[:hard]
    floor = hard // 2
    for separator in ("\n\n", "\n"):
        index = window.rfind(separator)
        if index > floor:
            return index
    for index in range(hard - 1, floor, -1):
        if window[index].isspace():
            return index
    cut = hard
    # do not separate a character from its combining marks / joiners
    while cut > floor and (unicodedata.combining(text[cut]) or text[cut] in "\u200d\ufe0f"):
        cut -= 1
    return max(cut, 1)


def classify_graph_error(status: int, body: Any, headers: Any = None) -> SendError:
    """Classify a failed Graph call from its HTTP status, JSON body and headers.

    ``code`` is ``"<code>/<subcode>"`` (``"<code>"`` without a subcode, ``"http_<status>"``
    without a Graph error object); ``message`` is Meta's own text.
    """
    headers = headers or {}
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = _int_or_none(error.get("code"))
    subcode = _int_or_none(error.get("error_subcode"))
    message = (
        error.get("message") or error.get("error_user_msg") or f"Graph API answered HTTP {status}"
    )
    if code is None:
        code_text = f"http_{status}"
    else:
        code_text = f"{code}/{subcode}" if subcode is not None else str(code)

    if code in _WINDOW_CODES:
        kind = ErrorKind.WINDOW_CLOSED
    elif code in _UNDELIVERABLE_CODES:
        kind = ErrorKind.UNDELIVERABLE
    elif code in _AUTH_CODES:
        kind = ErrorKind.AUTH_FAILED
    elif code in _TRANSIENT_CODES or status >= 500 or status == 429:
        kind = ErrorKind.TRANSIENT
    elif code is None and status in (401, 403):
        kind = ErrorKind.AUTH_FAILED
    elif code is not None and code not in (100, 368) and _truthy(error.get("is_transient")):
        kind = ErrorKind.TRANSIENT
    else:  # 100 (incl. 2018001 and the retired tags), 368, anything unknown
        kind = ErrorKind.PERMANENT

    retry_after = None
    if kind is ErrorKind.TRANSIENT:
        retry_after = _retry_after(headers.get("Retry-After"))
        if retry_after is None and code in _RATE_LIMIT_CODES:
            retry_after = _buc_wait(headers.get("X-Business-Use-Case-Usage"))
    return SendError(kind=kind, code=code_text, message=str(message), retry_after=retry_after)


def _int_or_none(value: Any) -> int | None:
    """Graph codes as ints (they may arrive as strings)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _retry_after(value: Any) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or HTTP date), or None."""
    if not value or not isinstance(value, str):
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _buc_wait(value: Any) -> float | None:
    """Seconds until access returns, from ``X-Business-Use-Case-Usage`` (minutes there)."""
    if not value or not isinstance(value, str):
        return None
    try:
        usage = json.loads(value)
        minutes = [
            float(item.get("estimated_time_to_regain_access") or 0)
            for items in usage.values()
            for item in items
            if isinstance(item, dict)
        ]
    except (ValueError, TypeError, AttributeError):
        return None
    longest = max(minutes, default=0.0)
    return longest * 60 if longest > 0 else None


def _attachment_type(content_type: str | None) -> str:
    """Send API attachment type for a MIME type."""
    major = (content_type or "").split("/", 1)[0].strip().lower()
    return major if major in ("image", "video", "audio") else "file"


def _object(body: bytes) -> dict[str, Any]:
    """A webhook body that must be a JSON object; raises :class:`UnreadableBody`."""
    payload = read_json(body)
    if not isinstance(payload, dict):
        raise UnreadableBody("not a JSON object")
    return payload


@register
class MessengerConnector(Connector):
    """One Facebook Page: sends through the Graph Send API with the Page token."""

    channel = "messenger"
    display_name = "Facebook Messenger"
    # attachment URLs: scontent.xx.fbcdn.net, video.xx.fbcdn.net, cdn.fbsbx.com, lookaside.fbsbx.com
    media_hosts = MediaHosts(sources=("*.fbcdn.net", "*.fbsbx.com"))
    fields = (
        ConfigField("page_id", help="The Facebook Page id (routes webhooks to this inbox)."),
        ConfigField("page_token", secret=True, help="Page access token with pages_messaging."),
        ConfigField(
            "app_secret", secret=True, help="Meta app secret: signatures, appsecret_proof."
        ),
        ConfigField("verify_token", secret=True, help="The webhook Verify Token set in Meta."),
        ConfigField(
            "human_agent",
            required=False,
            help="true when the app has the HUMAN_AGENT tag: 7-day window for human replies.",
        ),
        ConfigField(
            "app_id", required=False, help="Our Meta app id, to recognise echoes of our own sends."
        ),
    )

    # Module functions, reachable from the class too.
    verify_token_matches = staticmethod(verify_token_matches)
    check_signature = staticmethod(check_signature)
    page_ids = staticmethod(page_ids)
    parse = staticmethod(parse)
    is_own_echo = staticmethod(is_own_echo)

    # -- inbound: the webhook contract (see connectors.base.Connector) ------------
    @classmethod
    def webhook_handshake(cls, body: bytes, args: dict[str, str]) -> tuple[str, str] | None:
        """Meta's ``GET`` subscription check: ``(hub.verify_token, hub.challenge)``."""
        given = args.get("hub.verify_token")
        if args.get("hub.mode") == "subscribe" and given:
            return given, args.get("hub.challenge", "")
        return None

    @classmethod
    def accepts_handshake(cls, config: dict[str, Any], token: str) -> bool:
        """The inbox's verify token is the one presented."""
        return verify_token_matches(token, config.get("verify_token") or "")

    @classmethod
    def webhook_route_keys(cls, body: bytes, args: dict[str, str]) -> list[str]:
        """The Page ids (``entry[].id``) of a body that is a JSON object."""
        return page_ids(_object(body))

    def verify_webhook(self, body: bytes, url: str, headers: Any) -> bool:
        """``X-Hub-Signature-256`` over the raw body with the inbox's app secret."""
        return check_signature(
            body, headers.get("X-Hub-Signature-256"), self.config.get("app_secret") or ""
        )

    @classmethod
    def parse_webhook(cls, body: bytes, received_at: datetime) -> list[InboundEvent]:
        """Every event of the batch (the caller keeps those of its verified Pages)."""
        return parse(_object(body))

    # -- outbound --------------------------------------------------------------
    def send(self, message: OutboundMessage) -> SendResult:
        """Send text (split past 2,000 characters) then each attachment by URL.

        Every part must succeed; on failure the result carries the error and, in
        ``extra``, the ids of the parts already sent (``sent_external_ids``). The
        parts an earlier attempt sent (``options["sent_parts"]``) are not sent again.
        Graph has no look-up of a message by our metadata, so a send that got no
        answer is returned as UNKNOWN for the agent to decide.
        """
        refused = self._refusal(message)
        if refused is not None:
            return SendResult(error=refused)
        envelope: dict[str, Any] = {"recipient": _recipient(message.contact_id)}
        tag = _tag(message)
        if tag:
            envelope.update(messaging_type="MESSAGE_TAG", tag=tag)
        else:
            envelope["messaging_type"] = "RESPONSE"
        metadata = (message.reference or "")[:MAX_METADATA_LENGTH]
        bodies: list[dict[str, Any]] = [{"text": part} for part in split_text(message.text)]
        bodies += [{"attachment": _attachment_body(a)} for a in message.attachments]
        ids = [str(mid) for mid in message.options.get("sent_parts") or ()][: len(bodies)]
        for body in bodies[len(ids) :]:
            if metadata:
                body["metadata"] = metadata
            data, error = self._call("POST", "me/messages", json_body={**envelope, "message": body})
            mid = _str_id(data.get("message_id")) if data else None
            if error is None and not mid:
                error = SendError(ErrorKind.PERMANENT, "no_message_id", "Graph sent no message_id")
            if error is not None:
                extra = {"sent_external_ids": list(ids), "parts_sent": len(ids)}
                return SendResult(error=error, extra={**extra, "parts_total": len(bodies)})
            ids.append(mid)
        return SendResult(external_id=ids[0], external_ids=tuple(ids))

    def send_action(self, contact_id: str, action: str, **kwargs: Any) -> SendResult:
        """Send ``typing_on``, ``typing_off`` or ``mark_seen`` (recipient + action only)."""
        if action not in SENDER_ACTIONS:
            message = f"Messenger has no sender action {action!r}"
            return SendResult(error=SendError(ErrorKind.PERMANENT, "unsupported_action", message))
        problem = self._credentials_problem()
        if problem is not None:
            return SendResult(error=problem)
        body = {"recipient": _recipient(contact_id), "sender_action": action}
        _, error = self._call("POST", "me/messages", json_body=body)
        return SendResult(error=error)

    def fetch_profile(self, contact_id: str) -> ContactProfile | None:
        """The contact's name and picture from the Graph user profile; None on any error."""
        if not contact_id or contact_id.startswith(USER_REF_PREFIX):
            return None
        if self._credentials_problem() is not None:
            return None
        data, error = self._call(
            "GET", quote(contact_id, safe=""), params={"fields": PROFILE_FIELDS}
        )
        if error is not None or not data:
            return None
        first, last = data.get("first_name"), data.get("last_name")
        name = data.get("name") or " ".join(p for p in (first, last) if isinstance(p, str) and p)
        timezone = data.get("timezone")
        return ContactProfile(
            name=name if isinstance(name, str) and name else None,
            avatar_url=data.get("profile_pic")
            if isinstance(data.get("profile_pic"), str)
            else None,
            locale=data.get("locale") if isinstance(data.get("locale"), str) else None,
            timezone=None if timezone is None else str(timezone),
        )

    # -- helpers ---------------------------------------------------------------
    def _refusal(self, message: OutboundMessage) -> SendError | None:
        """Why ``message`` must not go out at all (checked before any HTTP call)."""
        raw_tag = message.options.get("tag")
        tag = str(raw_tag).strip().upper() if raw_tag else ""
        if tag in RETIRED_TAGS:
            text = f"The {tag} message tag was retired by Meta on 2026-04-27; use HUMAN_AGENT"
            return SendError(ErrorKind.PERMANENT, "retired_tag", text)
        if tag and tag != HUMAN_AGENT_TAG:
            return SendError(ErrorKind.PERMANENT, "unsupported_tag", f"Unsupported tag {tag}")
        if not message.contact_id:
            return SendError(ErrorKind.PERMANENT, "no_recipient", "The message has no recipient")
        if not split_text(message.text) and not message.attachments:
            return SendError(ErrorKind.PERMANENT, "empty", "The message has no text or attachment")
        if any(not a.url for a in message.attachments):
            text = "Messenger attachments are sent by URL; an attachment has none"
            return SendError(ErrorKind.PERMANENT, "attachment_without_url", text)
        return self._credentials_problem()

    def _credentials_problem(self) -> SendError | None:
        """AUTH_FAILED when the inbox has no Page token to send with."""
        if not self.config.get("page_token"):
            return SendError(ErrorKind.AUTH_FAILED, "no_token", "The inbox has no Page token")
        return None

    def _url(self, path: str) -> str:
        """``{base}/{version}/{path}``, base and version from the process options."""
        base = self.options.base_urls.get("messenger_graph", DEFAULT_GRAPH_URL).rstrip("/")
        version = str(self.options.extra.get("messenger_graph_version", DEFAULT_GRAPH_VERSION))
        return f"{base}/{version.strip('/')}/{path}"

    def _auth(self) -> tuple[dict[str, str], dict[str, str]]:
        """(headers, query): the Page token as a Bearer header; ``appsecret_proof`` in the query.

        The proof is an HMAC of the token: it does not reveal the token, and Graph
        reads it from the query string.
        """
        token = str(self.config.get("page_token") or "")
        params = {}
        secret = self.config.get("app_secret")
        if secret:
            params["appsecret_proof"] = appsecret_proof(token, str(secret))
        return {"Authorization": f"Bearer {token}"}, params

    def _call(
        self,
        method: str,
        path: str,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[dict[str, Any] | None, SendError | None]:
        """One Graph request: (JSON body, None) on success, (body or None, error) otherwise.

        Exception texts are not passed on: they contain the URL and its proof.
        """
        headers, auth_params = self._auth()
        try:
            resp = self.http.request(
                method,
                self._url(path),
                params={**(params or {}), **auth_params},
                headers=headers,
                json=json_body,
                timeout=self.options.timeout,
            )
        except requests.RequestException as exc:
            name, endpoint = type(exc).__name__, path.split("/")[-1]
            if never_reached(exc):
                logger.warning("messenger: Graph %s %s not reached: %s", method, endpoint, name)
                if isinstance(exc, requests.Timeout):
                    return None, SendError(
                        ErrorKind.TRANSIENT, "timeout", "The Graph API timed out"
                    )
                text = f"Could not reach the Graph API ({name})"
                return None, SendError(ErrorKind.TRANSIENT, "network", text)
            logger.warning(
                "messenger: Graph %s %s sent but not answered: %s", method, endpoint, name
            )
            text = (
                f"Messenger did not answer ({name}): the reply may or may not have been "
                "delivered. Check the conversation on Facebook before sending it again."
            )
            return None, SendError(ErrorKind.UNKNOWN, "no_answer", text)
        try:
            data = resp.json()
        except ValueError:
            data = None
        if 200 <= resp.status_code < 300 and isinstance(data, dict) and "error" not in data:
            return data, None
        if 200 <= resp.status_code < 300 and data is None:
            error = SendError(ErrorKind.PERMANENT, "bad_response", "Graph answered without JSON")
            return None, error
        return (data if isinstance(data, dict) else None), classify_graph_error(
            resp.status_code, data, resp.headers
        )


def _tag(message: OutboundMessage) -> str | None:
    """The message tag to send (only HUMAN_AGENT survives :meth:`_refusal`)."""
    raw = message.options.get("tag")
    tag = str(raw).strip().upper() if raw else ""
    return tag or None


def _recipient(contact_id: str) -> dict[str, str]:
    """Send API ``recipient`` for a contact id (PSID or ``user_ref:<ref>``)."""
    if contact_id.startswith(USER_REF_PREFIX):
        return {"user_ref": contact_id[len(USER_REF_PREFIX) :]}
    return {"id": contact_id}


def _attachment_body(attachment: OutboundAttachment) -> dict[str, Any]:
    """Send API ``attachment`` object for a file reachable by URL."""
    return {
        "type": _attachment_type(attachment.content_type),
        "payload": {"url": attachment.url, "is_reusable": True},
    }
