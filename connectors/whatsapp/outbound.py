"""Bodies of ``POST /{phone-number-id}/messages``: text, media, templates, mark-as-read."""

from __future__ import annotations

import re
from typing import Any

from connectors.base import OutboundAttachment
from connectors.messenger.outbound import split_text

from .constants import MAX_CAPTION_LENGTH, MAX_TEXT_LENGTH, MEDIA_LIMITS

PARAMETER = re.compile(r"\{\{\s*(\d+)\s*\}\}")


def recipient(contact_id: str) -> str:
    """The ``to`` of a send: the customer's number as WhatsApp writes it (digits)."""
    return contact_id.strip().removeprefix("+")


def envelope(contact_id: str, reference: str | None = None) -> dict[str, Any]:
    """What every message body starts with."""
    out: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": recipient(contact_id),
    }
    if reference:
        out["biz_opaque_callback_data"] = reference  # comes back on each status
    return out


def text_bodies(text: str) -> list[dict[str, Any]]:
    """One ``text`` message per 4,096 characters."""
    return [
        {"type": "text", "text": {"preview_url": False, "body": part}}
        for part in split_text(text, MAX_TEXT_LENGTH)
    ]


def media_type(content_type: str | None) -> str:
    """The Cloud API message type a file goes out as (image, video, audio, document)."""
    bare = (content_type or "").split(";")[0].strip().lower()
    for kind in ("image", "video", "audio"):
        if bare in MEDIA_LIMITS[kind][1]:
            return kind
    if bare == "image/webp":
        return "sticker"
    return "document"


def media_body(
    attachment: OutboundAttachment, media_id: str | None, caption: str = ""
) -> dict[str, Any]:
    """A media message: by the id of an upload, or by the file's link."""
    kind = media_type(attachment.content_type)
    media: dict[str, Any] = {"id": media_id} if media_id else {"link": attachment.url}
    if kind == "document":
        media["filename"] = attachment.filename
    if caption and kind in ("image", "video", "document"):
        media["caption"] = caption[:MAX_CAPTION_LENGTH]
    return {"type": kind, kind: media}


def template_body(template: dict[str, Any]) -> dict[str, Any]:
    """A template message: ``{"name", "language", "params", "header_params"}`` -> Meta's
    ``template`` object.

    ``params`` fill the body's ``{{1}}``, ``{{2}}`` ... in order; ``header_params`` the
    ``{{1}}`` of a text header.
    """
    out: dict[str, Any] = {
        "name": str(template["name"]),
        "language": {"code": str(template.get("language") or "en_US")},
    }
    components = []
    for kind, key in (("header", "header_params"), ("body", "params")):
        params = [str(p) for p in template.get(key) or ()]
        if params:
            parameters = [{"type": "text", "text": p} for p in params]
            components.append({"type": kind, "parameters": parameters})
    if components:
        out["components"] = components
    return {"type": "template", "template": out}


def read_body(message_id: str) -> dict[str, Any]:
    """Mark the customer's message (and those before it) as read: blue ticks."""
    return {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}


def render(body_text: str, params: list[str]) -> str:
    """A template's body with its ``{{n}}`` filled (an unfilled one stays as written)."""

    def fill(match: re.Match) -> str:
        index = int(match.group(1)) - 1
        return params[index] if 0 <= index < len(params) else match.group(0)

    return PARAMETER.sub(fill, body_text or "")


def parameter_count(body_text: str) -> int:
    """How many ``{{n}}`` parameters a template body takes (the highest n)."""
    return max((int(n) for n in PARAMETER.findall(body_text or "")), default=0)


#: Why a template cannot be sent from the inbox: the parts only Meta's tools fill.
UNSUPPORTED_HEADER = "media_header"  # an image, video, document or location header
UNSUPPORTED_BUTTON = "button_params"  # a button with a value per send (URL suffix, code)
UNSUPPORTED_NAMED = "named_params"  # parameters by name ({{customer}}), not by number
NAMED = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def _unsupported(item: dict[str, Any], header_format: str, texts: list[str]) -> str | None:
    if str(item.get("parameter_format") or "").upper() == "NAMED" or any(
        NAMED.search(t) for t in texts
    ):
        return UNSUPPORTED_NAMED
    if header_format not in ("", "TEXT"):
        return UNSUPPORTED_HEADER
    for comp in item.get("components") or ():
        if isinstance(comp, dict) and str(comp.get("type") or "").upper() == "BUTTONS":
            for button in comp.get("buttons") or ():
                if not isinstance(button, dict):
                    continue
                kind = str(button.get("type") or "").upper()
                if kind in ("COPY_CODE", "OTP", "FLOW", "CATALOG", "MPM") or (
                    kind == "URL" and PARAMETER.search(str(button.get("url") or ""))
                ):
                    return UNSUPPORTED_BUTTON
    return None


def template_summary(item: dict[str, Any]) -> dict[str, Any] | None:
    """One ``message_templates`` node as the composer shows it, or None when unreadable.

    ``params`` and ``header_params``: how many ``{{n}}`` the body and a text header take;
    ``unsupported``: why the inbox cannot send it (:data:`UNSUPPORTED_HEADER` ...), else
    None.
    """
    if not isinstance(item, dict) or not item.get("name"):
        return None
    body = header = footer = header_format = ""
    for comp in item.get("components") or ():
        if not isinstance(comp, dict):
            continue
        kind = str(comp.get("type") or "").upper()
        text = comp.get("text") if isinstance(comp.get("text"), str) else ""
        if kind == "BODY":
            body = text
        elif kind == "HEADER":
            header_format = str(comp.get("format") or "TEXT").upper()
            header = text if header_format == "TEXT" else ""
        elif kind == "FOOTER":
            footer = text
    return {
        "id": str(item.get("id") or ""),
        "name": str(item["name"]),
        "language": str(item.get("language") or ""),
        "category": str(item.get("category") or ""),
        "status": str(item.get("status") or ""),
        "body": body,
        "header": header,
        "footer": footer,
        "params": parameter_count(body),
        "header_params": parameter_count(header),
        "unsupported": _unsupported(item, header_format, [header, body]),
    }
