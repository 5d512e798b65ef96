"""WhatsApp inbound: routing by phone number id, and webhook values into normalised events.

A body (``object: whatsapp_business_account``) batches WhatsApp Business Accounts
(``entry[]``), each with ``changes[]`` whose ``value`` names the business number it is
for (``metadata.phone_number_id``) and carries ``messages[]``, ``statuses[]``,
``contacts[]`` (the senders' profile names) or ``errors[]``. Every item is parsed on
its own: a type we do not know, or one that cannot be read, is kept as an
``unsupported`` message or logged, never raised, so it holds nothing else back.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from connectors.base import (
    AttachmentRef,
    DeliveryState,
    InboundEvent,
    InboundMessage,
    StatusUpdate,
    UnreadableBody,
    read_json,
    routing_key,
)
from connectors.messenger.inbound import id_text, text_of
from connectors.sms import phone

from .constants import MEDIA_PREFIX
from .errors import classify_error

logger = logging.getLogger("connectors.whatsapp")

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
_STATES = {
    "sent": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.READ,
    "failed": DeliveryState.FAILED,
}


def read_object(body: bytes) -> dict[str, Any]:
    """A webhook body that must be a JSON object; raises :class:`UnreadableBody`."""
    payload = read_json(body)
    if not isinstance(payload, dict):
        raise UnreadableBody("not a JSON object")
    return payload


def _values(payload: dict[str, Any]):
    """Every ``entry[].changes[].value`` object, with the field it came in."""
    entries = payload.get("entry")
    if not isinstance(entries, list):
        return
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            continue
        for change in changes:
            if isinstance(change, dict) and isinstance(change.get("value"), dict):
                yield str(change.get("field") or "messages"), change["value"]


def phone_number_ids(payload: dict[str, Any]) -> list[str]:
    """The business numbers a body is for (``value.metadata.phone_number_id``), unique."""
    found: dict[str | None, None] = {}
    for _field, value in _values(payload if isinstance(payload, dict) else {}):
        metadata = value.get("metadata")
        if isinstance(metadata, dict):
            found[routing_key(id_text(metadata.get("phone_number_id")))] = None
    found.pop(None, None)
    return [k for k in found if k]


def contact_id(wa_id: Any) -> str | None:
    """A WhatsApp user's id as the contact's identity: the number in E.164 (``+<wa_id>``)."""
    raw = id_text(wa_id)
    if not raw:
        return None
    digits = raw.lstrip("+")
    return phone.normalise("+" + digits) or ("+" + digits if digits.isdigit() else raw)


def parse(payload: dict[str, Any]) -> list[InboundEvent]:
    """Every message and status of a webhook body; never raises."""
    events: list[InboundEvent] = []
    if payload.get("object") not in (None, "whatsapp_business_account"):
        logger.warning("whatsapp: ignoring a body for object %r", payload.get("object"))
        return events
    for field, value in _values(payload):
        metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
        number_id = id_text(metadata.get("phone_number_id"))
        if not number_id:
            logger.warning("whatsapp: skipping a %s change without a phone number id", field)
            continue
        names = _profile_names(value.get("contacts"))
        for item in _list(value.get("messages")):
            events.extend(_safely(_message, item, number_id, names))
        for item in _list(value.get("statuses")):
            events.extend(_safely(_status, item, number_id))
        for error in _list(value.get("errors")):
            logger.warning("whatsapp: Meta reported an error for %s: %r", number_id, error)
    return events


def _safely(parse_one, item: Any, *args: Any) -> list[InboundEvent]:
    """One item, with any surprise logged instead of raised (the rest of the batch goes on)."""
    if not isinstance(item, dict):
        logger.warning("whatsapp: skipping an item that is not an object")
        return []
    try:
        return parse_one(item, *args)
    except Exception:  # a surprising shape must not lose the rest of the batch
        logger.exception("whatsapp: skipping an item that could not be parsed")
        return []


def _profile_names(contacts: Any) -> dict[str, str]:
    """wa_id -> the profile name the customer set in WhatsApp."""
    names = {}
    for contact in _list(contacts):
        if not isinstance(contact, dict):
            continue
        profile = contact.get("profile") if isinstance(contact.get("profile"), dict) else {}
        name, wa_id = profile.get("name"), id_text(contact.get("wa_id"))
        if wa_id and isinstance(name, str) and name.strip():
            names[wa_id] = name.strip()
    return names


def _message(item: dict[str, Any], number_id: str, names: dict[str, str]) -> list[InboundEvent]:
    """A customer's message of any type."""
    wamid, sender = id_text(item.get("id")), id_text(item.get("from"))
    contact = contact_id(sender)
    if not wamid or not contact:
        logger.warning("whatsapp: skipping a message without id or sender (%s)", number_id)
        return []
    kind_name = str(item.get("type") or "unknown")
    text, kind, attachments, context = _content(kind_name, item)
    ctx = item.get("context") if isinstance(item.get("context"), dict) else {}
    reply_to = id_text(ctx.get("id"))
    if kind == "reaction":  # a reaction is about one of the thread's messages
        reply_to = id_text((context.get("reaction") or {}).get("message_id")) or reply_to
    if ctx.get("forwarded") or ctx.get("frequently_forwarded"):
        context["forwarded"] = True
    if isinstance(ctx.get("referred_product"), dict):
        context["referred_product"] = ctx["referred_product"]
    if isinstance(item.get("referral"), dict):
        context["referral"] = item["referral"]
    return [
        InboundMessage(
            inbox_key=number_id,
            external_id=wamid,
            contact_id=contact,
            sent_at=_seconds(item.get("timestamp")) or datetime.now(UTC),
            text=text,
            contact_name=names.get(sender or ""),
            attachments=attachments,
            kind=kind,
            reply_to_external_id=reply_to,
            context=context,
            raw=item,
        )
    ]


def _content(
    kind_name: str, item: dict[str, Any]
) -> tuple[str, str, tuple[AttachmentRef, ...], dict[str, Any]]:
    """(text, kind, attachments, context) of one message by its ``type``."""
    body = item.get(kind_name) if isinstance(item.get(kind_name), dict) else {}
    context: dict[str, Any] = {"whatsapp_type": kind_name}
    if kind_name == "text":
        return text_of(body.get("body")), "message", (), context
    if kind_name in MEDIA_TYPES and id_text(body.get("id")):
        return text_of(body.get("caption")), "message", (_media(kind_name, body),), context
    if kind_name == "location":
        extra = {k: body[k] for k in ("latitude", "longitude", "name", "address") if k in body}
        link = body.get("url") if isinstance(body.get("url"), str) else None
        ref = AttachmentRef(
            kind="location", url=link, title=text_of(body.get("name")) or None, extra=extra
        )
        words = ", ".join(text_of(body.get(k)) for k in ("name", "address") if body.get(k))
        return words, "message", (ref,), context
    if kind_name == "contacts":
        cards = [c for c in _list(item.get("contacts")) if isinstance(c, dict)]
        context["contacts"] = cards
        return "\n".join(_card(c) for c in cards), "message", (), context
    if kind_name == "interactive":
        reply = body.get(body.get("type")) if isinstance(body.get("type"), str) else None
        reply = reply if isinstance(reply, dict) else {}
        context["payload"] = reply.get("id")
        context["interactive"] = body.get("type")
        title = text_of(reply.get("title"))
        if reply.get("description"):
            title = f"{title}\n{text_of(reply.get('description'))}".strip()
        if body.get("type") == "nfm_reply":
            title = text_of(reply.get("body")) or text_of(reply.get("name"))
        return title, "quick_reply", (), context
    if kind_name == "button":
        context["payload"] = body.get("payload")
        return text_of(body.get("text")), "quick_reply", (), context
    if kind_name == "reaction":
        context["reaction"] = {"message_id": body.get("message_id"), "emoji": body.get("emoji")}
        return text_of(body.get("emoji")) or "(reaction removed)", "reaction", (), context
    if kind_name == "system":  # the customer changed their number, or similar
        context["system"] = body
        return text_of(body.get("body")) or text_of(body.get("type")), "message", (), context
    if kind_name == "order":
        context["order"] = body
        return _order_text(body), "message", (), context
    # unsupported, unknown, or a known type whose content is missing: shown as such
    errors = [e for e in _list(item.get("errors")) if isinstance(e, dict)]
    context["unsupported"] = True
    if errors:
        context["errors"] = errors
        why = errors[0].get("title") or errors[0].get("message") or ""
    else:
        why = ""
    label = f"[unsupported WhatsApp message: {kind_name}" + (f" ({why})]" if why else "]")
    return label, "message", (), context


def _media(kind_name: str, body: dict[str, Any]) -> AttachmentRef:
    """A media message's file, fetched later by its id (``GET /{media-id}``)."""
    extra = {"media_id": id_text(body.get("id"))}
    for key in ("sha256", "voice", "animated"):
        if key in body:
            extra[key] = body[key]
    return AttachmentRef(
        kind={"document": "file"}.get(kind_name, kind_name),
        url=MEDIA_PREFIX + str(id_text(body.get("id"))),
        content_type=text_of(body.get("mime_type")).split(";")[0].strip() or None,
        filename=text_of(body.get("filename")) or None,
        extra=extra,
    )


def _card(card: dict[str, Any]) -> str:
    """A shared contact as one line: name and numbers."""
    name = card.get("name") if isinstance(card.get("name"), dict) else {}
    phones = [
        text_of(p.get("phone") or p.get("wa_id"))
        for p in _list(card.get("phones"))
        if isinstance(p, dict)
    ]
    head = text_of(name.get("formatted_name")) or text_of(name.get("first_name")) or "Contact"
    return f"{head}: {', '.join(p for p in phones if p)}" if phones else head


def _order_text(order: dict[str, Any]) -> str:
    """An order from the catalogue: its note and one line per item."""
    lines = [text_of(order.get("text"))] if order.get("text") else []
    for product in _list(order.get("product_items")):
        if isinstance(product, dict):
            price = f" ({product.get('item_price')} {product.get('currency')})".replace(" None", "")
            lines.append(
                f"{product.get('quantity', 1)} x {product.get('product_retailer_id')}{price}"
            )
    return "Order:\n" + "\n".join(lines) if lines else "Order"


def _status(item: dict[str, Any], number_id: str) -> list[InboundEvent]:
    """``sent`` / ``delivered`` / ``read`` / ``failed`` of one of the business's messages."""
    state = _STATES.get(str(item.get("status") or ""))
    wamid = id_text(item.get("id"))
    if state is None or not wamid:
        logger.info("whatsapp: ignoring status %r (%s)", item.get("status"), number_id)
        return []
    error = None
    if state is DeliveryState.FAILED:
        errors = [e for e in _list(item.get("errors")) if isinstance(e, dict)]
        error = classify_error(errors[0] if errors else {"title": "Meta reported a failure"})
    return [
        StatusUpdate(
            inbox_key=number_id,
            status=state,
            external_id=wamid,
            contact_id=contact_id(item.get("recipient_id")),
            error=error,
            reference=_own_reference(item.get("biz_opaque_callback_data")),
        )
    ]


def _own_reference(value: Any) -> str | None:
    """Our message id from the ``biz_opaque_callback_data`` we sent (``sb:<id>``)."""
    text = text_of(value)
    return text[3:] if text.startswith("sb:") and text[3:].isdigit() else None


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _seconds(value: Any) -> datetime | None:
    """Meta's ``timestamp``: epoch seconds (a string), as an aware UTC datetime."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
        return datetime.fromtimestamp(number, tz=UTC) if number >= 0 else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None
