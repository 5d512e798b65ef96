"""Email threading helpers: Message-IDs, References, subjects and reply tokens.

Named ``threads`` so that it never shadows the standard library's ``threading``.

Message-ID convention
---------------------
Everything this package *stores or compares* is the bare id without angle
brackets and surrounding whitespace (``abc@example.com``); that is what
:func:`normalize_message_id` returns, what ``ParsedEmail.message_id`` /
``thread_refs`` hold and what ``SendResult.external_id`` is. Header values
(``Message-ID``, ``In-Reply-To``, ``References``) are written with brackets:
:func:`make_message_id` and :func:`build_references` return that header form,
and :func:`bracket` converts one way, :func:`normalize_message_id` the other.
Ids are compared case-sensitively (RFC 5322 gives no case rules for them).

Our own Message-IDs look like ``<sb.{conversation_token}.{message_ref}@domain>``,
so a reply that quotes any of them routes back to its conversation even when
the stored id lookup fails (:func:`token_from_message_id`).

Subjects
--------
:func:`display_subject` removes reply/forward prefixes in many languages
(``Re:``, ``AW:``, ``回复：`` ...) but keeps the case and ``[#123]`` tokens;
:func:`match_subject` (alias :func:`base_subject`) is the RFC 5256 base subject
for matching: prefixes, leading ``[blobs]`` and the ``(fwd)`` trailer removed,
whitespace collapsed, case-folded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "base_subject",
    "bracket",
    "build_references",
    "display_subject",
    "make_message_id",
    "match_subject",
    "normalize_message_id",
    "parse_message_id",
    "parse_id_list",
    "plus_address",
    "plus_token",
    "reply_subject",
    "subject_ticket_token",
    "token_from_message_id",
]

# Reply and forward prefixes seen in the wild. Single letters ("R:", "I:") are left
# out on purpose: they collide with real subjects.
_PREFIX_WORDS = (
    "re",
    "fwd",
    "fw",
    "aw",  # de: Antwort
    "wg",  # de: Weitergeleitet
    "sv",  # sv/da/no: Svar
    "vs",  # fi: Vastaus
    "vl",  # fi: Välitetty
    "rv",  # es: Reenviado
    "tr",  # fr: Transféré
    "ref",
    "réf",
    "rif",  # it
    "odp",  # pl: Odpowiedź
    "pd",  # pl: Przekazanie dalej
    "antw",  # nl: Antwoord
    "doorst",  # nl
    "res",  # pt: Resposta (Outlook pt-BR)
    "enc",  # pt: Encaminhado
    "encaminhado",
    "fs",  # da/no: Fremsend
    "vb",  # nl: Verzonden bericht
    "ynt",  # tr: Yanıt
    "ilt",  # tr: İlet
    "odg",  # hr
    "přeposlat",
    "отв",  # ru
    "ответ",
    "пересл",
    "rép",
    "رد",  # ar
    "إعادة توجيه",
    "پاسخ",  # fa
    "هدایت",
    "回复",  # zh-CN
    "回覆",  # zh-TW
    "答复",
    "转发",
    "轉寄",
    "转寄",
)
_PREFIX_ALT = "|".join(sorted((re.escape(w) for w in _PREFIX_WORDS), key=len, reverse=True))
# "Re:", "RE :", "Re[2]:", "Re(2):", "Re^2:", "回复：" (full-width colon)
_PREFIX_RE = re.compile(
    rf"^\s*(?:{_PREFIX_ALT})\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:：]\s*",
    re.IGNORECASE,
)
_BLOB_RE = re.compile(r"^\s*\[[^\[\]]*\]\s*")
_FWD_TRAILER_RE = re.compile(r"\s*\(fwd\)\s*$", re.IGNORECASE)
_FWD_WRAP_RE = re.compile(r"^\s*\[fwd:\s*(.*)\]\s*$", re.IGNORECASE | re.DOTALL)
_TICKET_RE = re.compile(r"\[#(\d{1,18})\]")
_TOKEN_CHARS_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_OUR_ID_RE = re.compile(r"^sb\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)@", re.IGNORECASE)
_ANGLE_ID_RE = re.compile(r"<([^<>\s]+)>")


def _clean(subject: str | None) -> str:
    """Collapse whitespace (folding leftovers, tabs, NBSP) into single spaces."""
    return " ".join((subject or "").split())


def display_subject(subject: str | None) -> str:
    """Strip stacked reply/forward prefixes, keeping case and ``[#123]`` tokens.

    ``"Re: AW: Fwd: Order late"`` -> ``"Order late"``;
    ``"RE: [#12] Re: Order late"`` -> ``"[#12] Order late"``;
    ``"[Fwd: Order late]"`` -> ``"Order late"``.
    """
    s = _clean(subject)
    m = _FWD_WRAP_RE.match(s)
    if m:
        s = m.group(1)
    while True:
        before = s
        s = _PREFIX_RE.sub("", s, count=1)
        blob = _BLOB_RE.match(s)
        if blob:  # "[#12] Re: x" -> "[#12] x": drop prefixes after leading blobs
            rest = s[blob.end() :]
            stripped = _PREFIX_RE.sub("", rest, count=1)
            if stripped != rest:
                s = s[: blob.end()] + stripped
        s = _FWD_TRAILER_RE.sub("", s)
        m = _FWD_WRAP_RE.match(s)
        if m:
            s = m.group(1)
        s = s.strip()
        if s == before:
            return s


def match_subject(subject: str | None) -> str:
    """The RFC 5256 base subject, case-folded, for "same subject" matching.

    Reply/forward prefixes (localised ones too), leading ``[blobs]`` such as
    ``[#123]`` or ``[list-name]``, the ``(fwd)`` trailer and ``[Fwd: ...]``
    wrapping are removed and whitespace is collapsed.
    """
    s = display_subject(subject)
    while True:
        blob = _BLOB_RE.match(s)
        if not blob or not s[blob.end() :].strip():
            break  # RFC 5256: never strip a blob that is the whole subject
        s = display_subject(s[blob.end() :])
    return _clean(s).casefold()


base_subject = match_subject


def reply_subject(original: str | None) -> str:
    """``"Re: "`` plus the original subject without stacked prefixes."""
    base = display_subject(original)
    return f"Re: {base}" if base else "Re:"


def subject_ticket_token(subject: str | None) -> int | None:
    """The ticket number in a ``[#123]`` subject token, or None."""
    m = _TICKET_RE.search(subject or "")
    return int(m.group(1)) if m else None


def plus_token(address: str | None, our_address: str | None) -> str | None:
    """The ``TOKEN`` of ``support+TOKEN@domain`` when ``support@domain`` is ours.

    Local part and domain are compared case-insensitively; the token is returned
    as written. Returns None for any other address or an empty token.
    """
    if not address or not our_address or "@" not in address or "@" not in our_address:
        return None
    local, _, domain = address.strip().strip("<>").rpartition("@")
    our_local, _, our_domain = our_address.strip().strip("<>").rpartition("@")
    if domain.casefold() != our_domain.casefold() or "+" not in local:
        return None
    base, _, token = local.partition("+")
    if base.casefold() != our_local.split("+", 1)[0].casefold():
        return None
    return token or None


def plus_address(our_address: str, token: str) -> str:
    """``support@domain`` + ``TOKEN`` -> ``support+TOKEN@domain`` (the reply address).

    An existing ``+tag`` on our address is replaced; :func:`plus_token` reads the
    token back. Raises ValueError for an address without ``@`` or a token that is
    not ``[A-Za-z0-9_-]+``.
    """
    if not _TOKEN_CHARS_RE.match(str(token or "")):
        raise ValueError(f"token must match [A-Za-z0-9_-]+, got {token!r}")
    local, at, domain = (our_address or "").strip().strip("<>").rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"not an email address: {our_address!r}")
    return f"{local.split('+', 1)[0]}+{token}@{domain}"


def normalize_message_id(value: str | None) -> str:
    """The bare id (no angle brackets, no whitespace) of a Message-ID value.

    When the value holds several ``<...>`` ids the first one wins. Returns ""
    for an empty value.
    """
    if not value:
        return ""
    value = str(value).strip()
    m = _ANGLE_ID_RE.search(value)
    if m:
        return m.group(1)
    return "".join(value.strip("<>").split())


def bracket(message_id: str) -> str:
    """``abc@x`` -> ``<abc@x>`` (idempotent)."""
    bare = normalize_message_id(message_id)
    return f"<{bare}>" if bare else ""


def parse_id_list(value: str | None) -> list[str]:
    """Bare ids from an ``In-Reply-To``/``References`` value, in order, deduplicated.

    Bracketed ids are preferred; without any, whitespace/comma separated tokens
    that contain ``@`` are taken (some clients drop the brackets).
    """
    if not value:
        return []
    ids = _ANGLE_ID_RE.findall(value)
    if not ids:
        ids = [t.strip("<>") for t in re.split(r"[\s,]+", value) if "@" in t]
    return _dedupe(ids)


def _dedupe(ids: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for i in ids:
        if i and i not in seen:
            seen.add(i)
            out.append(i)
    return out


def make_message_id(conversation_token: str, message_ref: str, domain: str) -> str:
    """Our Message-ID header value: ``<sb.{conversation_token}.{message_ref}@{domain}>``.

    Both parts must be ``[A-Za-z0-9_-]+`` (ValueError otherwise) so that
    :func:`token_from_message_id` can read the token back. The same inputs always
    give the same id, which keeps retries idempotent for the recipient.
    """
    for name, part in (("conversation_token", conversation_token), ("message_ref", message_ref)):
        if not _TOKEN_CHARS_RE.match(str(part or "")):
            raise ValueError(f"{name} must match [A-Za-z0-9_-]+, got {part!r}")
    domain = (domain or "").strip().strip("@").lower()
    if not domain or any(c in domain for c in " <>@\r\n"):
        raise ValueError(f"invalid Message-ID domain {domain!r}")
    return f"<sb.{conversation_token}.{message_ref}@{domain}>"


def parse_message_id(mid: str | None) -> tuple[str, str] | None:
    """``(conversation_token, message_ref)`` from one of our ids, else None."""
    m = _OUR_ID_RE.match(normalize_message_id(mid))
    return (m.group(1), m.group(2)) if m else None


def token_from_message_id(mid: str | None) -> str | None:
    """The conversation token of one of our Message-IDs (bare or bracketed), else None."""
    parsed = parse_message_id(mid)
    return parsed[0] if parsed else None


def build_references(
    parent_references: Iterable[str], parent_id: str, limit: int = 20
) -> list[str]:
    """The ``References`` list for a reply: the parent's References plus its id.

    Returns bracketed ids (header form), deduplicated, oldest first. Over
    ``limit`` entries the first (thread root) and the last ``limit - 1`` are
    kept, as RFC 5322 §3.6.4 allows.
    """
    flat: list[str] = []
    for ref in [*(parent_references or []), parent_id]:
        if ref:  # an entry may itself be a whole header value with several ids
            flat.extend(parse_id_list(ref) or [normalize_message_id(ref)])
    ids = _dedupe(flat)
    limit = max(int(limit), 2)
    if len(ids) > limit:
        ids = [ids[0], *ids[-(limit - 1) :]]
    return [f"<{i}>" for i in ids]
