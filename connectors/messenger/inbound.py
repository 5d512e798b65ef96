"""Messenger inbound: the webhook handshake, signatures, and parsing events into normalised inbound events."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from typing import Any

from connectors.base import (
    AttachmentRef,
    ConversationContext,
    DeliveryState,
    EchoedOutbound,
    InboundEvent,
    InboundMessage,
    StatusUpdate,
    UnreadableBody,
    read_json,
    routing_key,
)

from .constants import (
    _HEX_SHA256,
    CONTEXT_EVENTS,
    OWN_REFERENCE_PREFIX,
    STORY_KIND,
    STORY_MENTION,
    STORY_REPLY,
    USER_REF_PREFIX,
)

logger = logging.getLogger("connectors.messenger")


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
        candidates = [id_text(e.get("id")) for e in payload["entry"] if isinstance(e, dict)]
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
    page_id = id_text(entry.get("id"))
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
        ref = id_text(item["optin"].get("user_ref"))  # checkbox plugin: no sender, a user_ref
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
        return _parse_read(item["read"], page_id, contact, at)
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
    mid = id_text(message.get("mid"))
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
    reply_mid = id_text(reply_to.get("mid")) if isinstance(reply_to, dict) else None
    attachments = _attachments(message.get("attachments"))
    story = reply_to.get("story") if isinstance(reply_to, dict) else None
    if isinstance(story, dict):  # Instagram: a reply to the business's story
        context["story_reply"] = {k: story.get(k) for k in ("id", "url") if story.get(k)}
        attachments = (_story(story, STORY_REPLY), *attachments)
    return [
        InboundMessage(
            inbox_key=page_id,
            external_id=mid,
            contact_id=contact,
            sent_at=sent_at,
            text=text_of(message.get("text")),
            attachments=attachments,
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
    mid = id_text(message.get("mid"))
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
            text=text_of(message.get("text")),
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
    mid = id_text(postback.get("mid"))
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
        text=text_of(postback.get("title")),
        kind="postback",
        context=context,
        raw=item,
    )


def _parse_read(
    read: dict[str, Any], page_id: str, contact: str, at: datetime | None
) -> list[InboundEvent]:
    """A read receipt: Messenger's watermark (everything up to it), or Instagram's ``mid``
    (``messaging_seen``: the customer opened the thread at ``at`` and saw that message,
    so what was sent before then is read too)."""
    watermark = _ms_to_datetime(_epoch_ms(read.get("watermark")))
    if watermark is not None:
        return [StatusUpdate(page_id, DeliveryState.READ, contact_id=contact, watermark=watermark)]
    mid = id_text(read.get("mid"))
    if mid:
        seen = StatusUpdate(
            page_id, DeliveryState.READ, external_id=mid, contact_id=contact, watermark=at
        )
        return [seen]
    logger.warning("meta: skipping a read receipt without watermark or mid (account %s)", page_id)
    return []


def _parse_delivery(delivery: dict[str, Any], page_id: str, contact: str) -> list[InboundEvent]:
    """One DELIVERED update per listed mid, plus one for the watermark."""
    events: list[InboundEvent] = []
    mids = delivery.get("mids")
    if isinstance(mids, list):
        for mid in mids:
            mid_text = id_text(mid)
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


def _story(story: dict[str, Any], title: str) -> AttachmentRef:
    """An Instagram story as a link: Meta forbids keeping its media, and it expires."""
    url = story.get("url")
    extra = {"story_id": str(story["id"])} if story.get("id") else {}
    return AttachmentRef(
        kind=STORY_KIND, url=url if isinstance(url, str) and url else None, title=title, extra=extra
    )


def _attachment(item: dict[str, Any]) -> AttachmentRef:
    """One ``attachments[]`` element; every type is kept, unknown ones by name."""
    kind = item.get("type") if isinstance(item.get("type"), str) and item.get("type") else "file"
    payload = item.get("payload") if isinstance(item.get("payload"), dict) else {}
    if kind == "story_mention":  # Instagram: the customer mentioned the business in a story
        return _story(payload, STORY_MENTION)
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
    return id_text(value.get("id")) if isinstance(value, dict) else None


def _party_id(party: Any) -> str | None:
    """A sender/recipient as a contact id: the PSID, or ``user_ref:<ref>``."""
    if not isinstance(party, dict):
        return None
    psid = id_text(party.get("id"))
    if psid:
        return psid
    ref = id_text(party.get("user_ref"))
    return f"{USER_REF_PREFIX}{ref}" if ref else None


def id_text(value: Any) -> str | None:
    """An id as text; ints are accepted (older payloads), other types are not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def text_of(value: Any) -> str:
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


def _object(body: bytes) -> dict[str, Any]:
    """A webhook body that must be a JSON object; raises :class:`UnreadableBody`."""
    payload = read_json(body)
    if not isinstance(payload, dict):
        raise UnreadableBody("not a JSON object")
    return payload
