"""Messenger outbound helpers: splitting text to the Send API limit, tags, recipients and attachment bodies."""

from __future__ import annotations

import unicodedata
from typing import Any

from connectors.base import (
    OutboundAttachment,
    OutboundMessage,
)

from .constants import MAX_TEXT_LENGTH, USER_REF_PREFIX

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


def _attachment_type(content_type: str | None) -> str:
    """Send API attachment type for a MIME type."""
    major = (content_type or "").split("/", 1)[0].strip().lower()
    return major if major in ("image", "video", "audio") else "file"


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
