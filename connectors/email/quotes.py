"""Quoted-reply and signature stripping: show the new text of a reply.

:func:`extract_reply` returns the part of a message body the sender just
wrote. The full body is always kept elsewhere (``context["full_text"]``); this
is only the default view.

How it works (plain text):

1. Every line is classified: empty, quoted (``>``), a quote *intro*
   ("On ... wrote:", "Le ... a écrit :", "Am ... schrieb ...:", "Em ...
   escreveu:", "في ... كتب:", "در ... نوشت:", "在 ... 写道：", "-----Original
   Message-----", "Begin forwarded message:" ...; wrapped intros spanning up to
   three lines are joined first), an Outlook-style header line ("From:",
   "Von:", "De :", "Enviada em:", "من:", "از:", "发件人：" ...), a delimiter
   (``____``/``----``), a ``-- `` signature separator, a mobile signature
   ("Sent from my iPhone", "Envoyé de mon iPhone", "Von meinem iPhone
   gesendet", "Enviado do meu iPhone", "أرسلت من iPhone", "ارسال شده از
   iPhone", "发自我的iPhone" ...) or text. ``mail-parser-reply``'s per-language
   "wrote" header patterns are consulted as well, for the languages asked for.
2. The body is cut at the first intro or header block (two or more header
   lines, one naming the sender) that follows some text, unless text continues
   *between* the quotes below it (an inline, interleaved answer: then the
   quotes are kept for context and only the trailing quote is dropped).
3. A trailing ``>`` quote block is dropped, then a ``-- `` signature (when
   short), mailing-list footers, mobile signatures, delimiter lines and a
   ``-Name`` sign-off at the very end. Sign-offs such as "Thanks,\\nAlex" are
   kept: they are part of what the person wrote.
4. When nothing would remain (a bare forward, a quote-only message) the whole
   text is returned, stripped.

HTML-only mail goes through :func:`html_reply_text`: known quote containers
(Gmail ``gmail_quote``, Apple/Thunderbird ``blockquote type=cite``, Outlook's
``divRplyFwdMsg``/``appendonsend``/border-top separator, Yahoo, ProtonMail,
Hotmail ``stopSpelling``, Outlook for Mac ``OLK_SRC_BODY_SECTION``) are cut
with everything after them, the rest is converted to text (``<blockquote>`` as
``>``) and trimmed as above.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from connectors.email.sanitize import html_to_text, parse_html

__all__ = ["DEFAULT_LANGUAGES", "extract_reply", "html_reply_text", "trim_text"]

#: Languages whose mail-parser-reply header patterns are used by default.
DEFAULT_LANGUAGES: tuple[str, ...] = (
    "en",
    "de",
    "fr",
    "es",
    "it",
    "nl",
    "pl",
    "sv",
    "da",
    "cs",
    "ja",
    "ko",
    "zh",
)

# Line kinds
EMPTY, QUOTE, INTRO, WEAK_INTRO, FWD, HEADER, DELIM, SIGSEP, MOBILE, TEXT = (
    "e",
    "q",
    "b",
    "w",
    "f",
    "h",
    "d",
    "s",
    "m",
    "t",
)

_I = re.IGNORECASE
_Q = r"^[-\s>*]*"  # intros may sit inside a quote level or between dashes
_END = r"[\s.:：>*-]*$"
_EMAIL = r"<?[^<>\s@]+@[^<>\s]+\.[^<>\s]+>?"
_WROTE = (
    r"(?:wrote|writes|schrieb|a écrit|escribió|escreveu|ha scritto|schreef|skrev|napisał(?:\(a\))?"
    r"|написал|написала|пишет|kirjoitti|كتب|نوشت)"
)

# Strong intros: a date/sender line that introduces a quoted or forwarded message.
_INTRO_RES = [
    re.compile(p, _I)
    for p in (
        _Q + r"(?:on|at)\s.{3,}?\s(?:wrote|writes|said|says)" + _END,
        _Q + r"in message\s.+\swrites" + _END,
        _Q + r"le\s.{3,}?\s(?:a\s+écrit|a\s+ecrit|nous\s+a\s+dit)" + _END,
        _Q + r"am\s.{3,}?\s(?:schrieb|geschrieben|schrieben\s+sie)\b.*:" + _END,
        _Q + r"el\s.{3,}?\s(?:escribió|escribio)" + _END,
        _Q + r"em\s.{3,}?\s(?:escreveu|escrito)" + _END,
        _Q + r"no\sdia\s.{3,}?\s(?:escreveu)" + _END,
        _Q + r"il\s.{3,}?\sha\s+scritto" + _END,
        _Q + r"op\s.{3,}?\s(?:schreef|het\s+volgende\s+geschreven)\b.*:" + _END,
        _Q + r"(?:dnia|dňa)\s.{3,}?\snapisał(?:\(a\))?" + _END,
        _Q + r"(?:den|man|tir|ons|tor|fre|lør|søn|mån|tis|lör|sön)\.?\s.{3,}?\sskrev\b.*:" + _END,
        _Q + r".{3,}?\s(?:kirjoitti)" + _END,
        _Q + r".{0,80}\d.{0,80}(?:пользователь|написал|написала|написал\(а\)|пишет|пише)" + _END,
        _Q + r".+\s(?:wrote|schrieb)\s+(?:on|am)\s.+:" + _END,
        _Q + r".+\starihinde\s.+\syazdı" + _END,
        _Q + r"(?:في|فى)\s.{3,}?\s(?:كتب|كتبت|کتب)" + _END,
        _Q + r"(?:در|در تاریخ)\s.{3,}?\s(?:نوشت|نوشته است)" + _END,
        _Q + r"在\s?.{3,}?\s?写道" + _END,
        _Q + r".{3,}?(?:写道|寫道)\s*[:：]" + _END,
        _Q + r"\d{4}年\d{1,2}月\d{1,2}日.{0,80}[:：]" + _END,
        _Q + r"\d{4}년\s?\d{1,2}월\s?\d{1,2}일.{0,80}작성.{0,10}[:：]" + _END,
        # "2015-10-18 0:17 GMT+03:00 Matt <m@x.org>:", "26.06.2014, 14:41, "A" <a@x>:"
        _Q + r".{0,40}\d.{0,80}<[^<>\s@]+@[^<>\s]+>\s*(?:\S+\s*){0,2}[:：]" + _END,
        _Q + r"\d{4}[/-]\d{1,2}[/-]\d{1,2}\s.{1,80}<[^<>\s@]+@[^<>\s]+>\s*$",
        _Q + r"20\d\d-\d\d-\d\d \d\d?:\d\d GMT[+-]\d\d:\d\d [\w ]+$",
        _Q + r"posted by .+ on \d{1,2}/\d{1,2}/\d{4}\s*$",
        # "Some One <someone@example.com> wrote:", "Ana (ana@x.pt) escreveu:"
        _Q + r".{0,80}" + _EMAIL + r"\)?\s*" + _WROTE + r"\s*[:：]?" + _END,
        _Q + r".{1,80}\svia\s.{1,80}\s" + _WROTE + r"\s*[:：]?" + _END,
    )
]
# Weak intros ("Bob wrote:"): only an intro when a quote follows.
_WEAK_INTRO_RES = [
    re.compile(_Q + r".{1,120}\s" + _WROTE + r"\s*[:：]\s*$", _I),
    re.compile(_Q + r".{1,80}<[^<>\s@]+@[^<>\s]+>\s*[:：]\s*$", _I),
]
_FWD_WORDS = (
    "original message|forwarded message|forwarded e-?mail|reply message|mensaje original"
    "|mensaje reenviado|mensagem original|mensagem encaminhada|e-mail encaminhado"
    "|message d'origine|message original|message transféré|message transfere"
    "|ursprüngliche nachricht|ursprungliche nachricht|weitergeleitete nachricht"
    "|originalnachricht|messaggio originale|messaggio inoltrato|oorspronkelijk bericht"
    "|doorgestuurd bericht|origineel bericht|ursprungligt meddelande"
    "|vidarebefordrat meddelande|oprindelig meddelelse|videresendt meddelelse"
    "|opprinnelig melding|videresendt melding|alkuperäinen viesti|välitetty viesti"
    "|wiadomość oryginalna|oryginalna wiadomość|przekazana wiadomość|původní zpráva"
    "|přeposlaná zpráva|исходное сообщение|пересылаемое сообщение|пересланное сообщение"
    "|原始邮件|原始郵件|转发邮件|轉寄郵件|原始訊息|الرسالة الأصلية|رسالة معاد توجيهها"
    "|الرسالة المعاد توجيهها|پیام اصلی|پیام بازارسال شده|پیام هدایت شده"
)
_FWD_RES = [
    re.compile(r"^[\s>*]*-{2,}\s*(?:" + _FWD_WORDS + r")\s*-{2,}\s*\**\s*$", _I),
    re.compile(
        r"^[\s>*]*(?:begin forwarded message|début du message (?:réexpédié|transféré)"
        r"|anfang der weitergeleiteten (?:e-mail|nachricht)|inicio del mensaje reenviado"
        r"|início da mensagem (?:reencaminhada|encaminhada)|inizio messaggio inoltrato"
        r"|begin doorgestuurd bericht|" + _FWD_WORDS + r")\s*[:：]?\s*\**\s*$",
        _I,
    ),
]
_FROM_KEYS = (
    "from|von|de|van|från|fra|od|от|da|expéditeur|absender|remitente|发件人|發件人|寄件者"
    "|差出人|من|المرسل|المُرسل|از|فرستنده"
)
_OTHER_KEYS = (
    "sent|to|cc|bcc|subject|date|reply-to|organization|gesendet|an|betreff|datum|kopie"
    "|envoyé|envoye|à|a|objet|destinataire|répondre à|para|enviado|enviada|enviado em|enviada em"
    "|data|assunto|asunto|fecha|inviato|oggetto|verzonden|aan|onderwerp|skickat|till|ämne"
    "|sendt|til|emne|wysłano|do|temat|dw|отправлено|кому|тема|дата|копия|发送时间|收件人|主题"
    "|抄送|日期|寄件日期|收件者|主旨|副本|送信日時|宛先|件名|日時|أرسلت|أُرسلت|تم الإرسال"
    "|إلى|الى|الموضوع|التاريخ|نسخة|ارسال شده|ارسال|تاریخ|به|گیرنده|موضوع|رونوشت"
)
_HEADER_RE = re.compile(
    r"^[\s>]*\*?\s*(" + _FROM_KEYS + "|" + _OTHER_KEYS + r")\s*\*?\s*[:：]\s*\*?\s*\S", _I
)
_FROM_RE = re.compile(r"^[\s>]*\*?\s*(?:" + _FROM_KEYS + r")\s*\*?\s*[:：]", _I)
_DELIM_RE = re.compile(r"^\s*[-_=*~#+—–ᐧ]{2,}\s*$|^\s*ᐧ\s*$")
_LONG_DELIM_RE = re.compile(r"^\s*[-_=*—–]{10,}\s*$")
_UNDERSCORES_RE = re.compile(r"^\s*_{5,}\s*$")
_SIGSEP_RE = re.compile(r"^(?:--|—|-- )\s*$")
_QUOTE_RE = re.compile(r"^\s*(?:>|[A-Za-z]{1,3}>(?:\s|$))")
_DASH_NAME_RE = re.compile(r"^\s*(?:-|—|~)(?=\S)[A-Z][\w.'-]*(?:\s[A-Z][\w.'-]*){0,3}\s*$")
_FOOTER_HINT_RE = re.compile(
    r"mailing list|listinfo|unsubscribe|abmelden|désinscri|desinscri|cancelar (?:a )?inscri"
    r"|to respond, reply|reply to this email|view it on github",
    _I,
)

_MOBILE_RES = [
    re.compile(p, _I)
    for p in (
        r"^[(<\[\s]*sent\s+(?:from|via|with|by|using)\s+(?:my\s+)?[^,.;!?]{1,50}?"
        r"(?:[,.;!]?\s*(?:please\s+)?(?:excuse|pardon|forgive|sorry|apologi[sz]e|typos?|brevity)"
        r".*)?[)>\]\s.]*$",
        r"^\S+\s+from\s+(?:my\s+)?(?:mobile|phone|iphone|ipad|android)\.?$",
        r"^from\s+my\s+(?:iphone|ipad|android|mobile|phone|samsung|galaxy|blackberry|pixel)"
        r"\b.{0,20}$",
        r"^get\s+outlook\s+for\s+\w+",
        r"^envoy[ée]\s+(?:depuis|de|à partir de|avec)\s+(?:mon|ma|yahoo|l'application|outlook"
        r"|free|orange|gmail|iphone|ipad)\b.{0,50}$",
        r"^t[ée]l[ée]charger outlook pour",
        r"^von\s+meinem\s+.{1,50}\s+gesendet\.?$",
        r"^diese\s+nachricht\s+wurde\s+von\s+.{1,80}\s+gesendet\.?$",
        r"^gesendet\s+(?:von|mit)\s+(?:meinem|meiner|mein|outlook|yahoo|mail|iphone|ipad"
        r"|android|samsung|der|dem)\b.{0,50}$",
        r"^inviato\s+da\s+(?:il\s+mio|iphone|ipad|outlook|yahoo|mail|smartphone|android"
        r"|libero|samsung)\b.{0,50}$",
        r"^(?:verzonden|verstuurd)\s+(?:met|vanaf|van|via)\s+.{1,50}$",
        r"^(?:skickat|sendt)\s+(?:från|fra|från min|fra min)\s+.{1,50}$",
        r"^(?:enviado|enviada)\s+(?:do|de|a partir do|a partir de|pelo|pela|desde)\s+"
        r"(?:meu|minha|mi|iphone|ipad|outlook|yahoo|samsung|smartphone|android|email|e-mail"
        r"|el)\b.{0,50}$",
        r"^(?:從我的|从我的|发自我的|發自我的|来自我的|來自我的)\s*\S.{0,30}$",
        r"^\S.{0,30}から送信$",
        r"^(?:أُرسلت|أرسلت|ارسلت|مرسلة|مُرسلة|مرسل|تم الإرسال|تم ارسال)\s+(?:من|عبر|بواسطة)"
        r"\s+.{1,50}$",
        r"^(?:ارسال\s*شده|ارسال‌شده|فرستاده\s*شده)\s+(?:از|با|توسط)\s+.{1,50}$",
        r"^отправлено\s+(?:с|из|со|через)\s+.{1,50}$",
        r"^(?:wysłane|wysłano)\s+z\s+.{1,50}$",
        r"^[(<\[]+\s*sent\s+.{1,40}[)>\]]+$",
    )
]
_MD_LINK_RE = re.compile(r"\[([^\[\]]+)\]\([^()]*\)")  # linear: no class crosses a bracket
_URL_RE = re.compile(r"<?https?://[^\s>]*>?")
_MAX_LINES = 5000  # beyond this, only the first lines are examined for quotes

_mpr_cache: dict[tuple[str, ...], list[re.Pattern[str]]] = {}


def _mpr_intro_patterns(languages: Sequence[str]) -> list[re.Pattern[str]]:
    """Per-language "wrote" header regexes from mail-parser-reply (cached)."""
    key = tuple(sorted(set(languages)))
    if key in _mpr_cache:
        return _mpr_cache[key]
    patterns: list[re.Pattern[str]] = []
    try:
        from mailparser_reply.constants import MAIL_LANGUAGES

        for lang in key:
            if lang == "en":  # covered by _INTRO_RES; its nested lazy groups are slow
                continue
            source = MAIL_LANGUAGES.get(lang, {}).get("wrote_header")
            if source:
                patterns.append(re.compile(source, re.IGNORECASE))
    except Exception:  # a changed mail-parser-reply layout must not break parsing
        patterns = []
    _mpr_cache[key] = patterns
    return patterns


def _is_mobile(line: str) -> bool:
    s = _MD_LINK_RE.sub(r"\1", line.strip())
    s = _URL_RE.sub("", s).strip()
    if not s or len(s) > 120:
        return False
    return any(r.match(s) for r in _MOBILE_RES)


# Every intro pattern needs one of these; checking first keeps long bodies fast.
_INTRO_HINT_RE = re.compile(
    r"wrote|writes|said|says|écrit|ecrit|nous a dit|schrieb|geschrieben|escribi|escreveu|escrito"
    r"|scritto|schreef|geschreven|napisa|napsal|skrev|kirjoitti|писал|пишет|пише|пользователь"
    r"|yazdı|كتب|کتب|نوشت|写道|寫道|年|년|작성|@|gmt|posted by",
    _I,
)


def _is_intro(s: str, mpr: list[re.Pattern[str]]) -> bool:
    if len(s) >= 400 or not _INTRO_HINT_RE.search(s):
        return False
    return any(r.match(s) for r in _INTRO_RES) or any(r.match(s) for r in mpr)


def _classify(line: str, mpr: list[re.Pattern[str]]) -> str:
    s = line.strip()
    if not s:
        return EMPTY
    if _SIGSEP_RE.match(line):
        return SIGSEP
    if _DELIM_RE.match(s):
        return DELIM
    if any(r.match(s) for r in _FWD_RES):
        return FWD
    if _is_intro(s, mpr):
        return INTRO
    if _is_mobile(s):
        return MOBILE
    if _QUOTE_RE.match(line):
        return QUOTE
    if _HEADER_RE.match(s) and len(s) < 300:
        return HEADER
    if len(s) < 300 and _INTRO_HINT_RE.search(s) and any(r.match(s) for r in _WEAK_INTRO_RES):
        return WEAK_INTRO
    return TEXT


_JOIN_START_RE = re.compile(
    r"^[-\s>*]*(?:on|at|le|am|el|em|il|op|dnia|den|في|فى|در|在|no dia|\d)|[<@]|\d{1,2}:\d\d", _I
)


_SENTENCE_END_RE = re.compile(r"(?:[^\W\d]\.|[!?。！？])\s*$")


def _join_wrapped_intros(lines: list[str], kinds: list[str], mpr: list[re.Pattern[str]]) -> None:
    """Mark intros wrapped over several lines ("On Tue, ... Bob <\\nbob@x> wrote:")."""
    for i, line in enumerate(lines):
        if kinds[i] not in (TEXT, QUOTE, WEAK_INTRO, HEADER) or len(line) > 200:
            continue
        if not _JOIN_START_RE.search(line) or _SENTENCE_END_RE.search(line):
            continue  # a finished sentence does not wrap into an intro
        joined = ""
        count = 0
        for j in range(i, min(i + 6, len(lines))):
            part = re.sub(r"^[\s>]*", "", lines[j]).strip()
            if not part:
                continue
            if j > i and kinds[j] not in (TEXT, QUOTE, WEAK_INTRO, HEADER, DELIM, INTRO):
                break
            glue = "" if not joined or joined.endswith(("<", "(", "[")) else " "
            joined = f"{joined}{glue}{part}"
            count += 1
            if count < 2:
                continue
            if len(joined) > 400:
                break
            if _is_intro(joined, mpr):
                for k in range(i, j + 1):
                    kinds[k] = INTRO
                break


def _next_content(kinds: list[str], start: int) -> int | None:
    for j in range(start, len(kinds)):
        if kinds[j] != EMPTY:
            return j
    return None


def _header_block_end(lines: list[str], kinds: list[str], i: int) -> int | None:
    """End (exclusive) of a header block of two or more lines starting at ``i``, or None.

    A block needs three header lines, or two when one of them names the sender.
    """
    count, has_from, j, gaps, end = 0, False, i, 0, i
    while j < len(kinds) and gaps <= 1:
        if kinds[j] == HEADER:
            count += 1
            has_from = has_from or bool(_FROM_RE.match(lines[j]))
            gaps = 0
            end = j + 1
        elif kinds[j] == EMPTY:
            gaps += 1
        elif kinds[j] == TEXT and count and j == end and len(lines[j]) < 120 and gaps == 0:
            end = j + 1  # a wrapped header value ("Subject: long\\n  continued")
        else:
            break
        j += 1
    if count >= 3 or (count >= 2 and has_from):
        return end
    return None


def _text_after_quote(kinds: list[str], start: int) -> bool:
    """True when the sender's own text follows a quote below ``start`` (inline answers)."""
    seen_quote = False
    for k in kinds[start:]:
        if k == QUOTE:
            seen_quote = True
        elif seen_quote and k == TEXT:
            return True
        elif k == SIGSEP:
            return False  # what follows is a signature, not an answer
    return False


def _find_cut(lines: list[str], kinds: list[str]) -> tuple[int | None, int | None]:
    """``(cut, forwarded_start)``: where the quoted history starts, and for a bare
    forward (nothing written above it) where the forwarded body starts."""
    seen_text = False
    for i, kind in enumerate(kinds):
        if kind in (INTRO, WEAK_INTRO, FWD, HEADER, DELIM):
            block_end = None
            if kind == DELIM:
                nxt = _next_content(kinds, i + 1)
                if nxt is None or kinds[nxt] != HEADER:
                    continue
                block_end = _header_block_end(lines, kinds, nxt)
                if block_end is None:
                    continue
            elif kind == HEADER:
                block_end = _header_block_end(lines, kinds, i)
                if block_end is None:
                    continue
            elif kind == FWD:
                nxt = _next_content(kinds, i + 1)
                block_end = i + 1
                if nxt is not None and kinds[nxt] == HEADER:
                    block_end = _header_block_end(lines, kinds, nxt) or block_end
            elif kind == WEAK_INTRO:
                nxt = _next_content(kinds, i + 1)
                if nxt is None or kinds[nxt] != QUOTE:
                    continue
            if kind in (INTRO, WEAK_INTRO) and _text_after_quote(kinds, i + 1):
                continue  # an inline or bottom-posted answer: keep going
            if not seen_text:
                if kind in (FWD, HEADER, DELIM):
                    return i, block_end
                nxt = _next_content(kinds, i + 1)
                if nxt is not None and kinds[nxt] == QUOTE:
                    return i, None  # only quoted history: the caller keeps everything
                continue  # a stray intro above the sender's text: dropped later
            start = i
            while start > 0 and kinds[start - 1] in (EMPTY, DELIM):
                start -= 1  # pull the cut up over delimiter/blank lines directly above
            return start, None
        if kind in (TEXT, MOBILE):
            seen_text = True
    return None, None


def _strip_tail(lines: list[str], kinds: list[str]) -> tuple[list[str], list[str]]:
    """Drop trailing quotes, signatures, footers and blank lines."""
    has_text = TEXT in kinds
    for i, k in enumerate(kinds):  # "-- " signature separator: cut when the rest is short
        if k != SIGSEP:
            continue
        if len([x for x in kinds[i + 1 :] if x != EMPTY]) <= 15 and TEXT in kinds[:i]:
            lines, kinds = lines[:i], kinds[:i]
            break
    for i, k in enumerate(kinds):  # list footers and "____" signature blocks
        if k == DELIM and TEXT in kinds[:i]:
            tail = [x for x in lines[i + 1 :] if x.strip()]
            footer = _LONG_DELIM_RE.match(lines[i]) and len(tail) <= 8
            footer = footer and any(_FOOTER_HINT_RE.search(x) for x in tail)
            short_sig = _UNDERSCORES_RE.match(lines[i]) and 0 < len(tail) <= 4
            if footer or short_sig:
                lines, kinds = lines[:i], kinds[:i]
                break
    end = len(kinds)
    changed = True
    while changed and end:
        changed = False
        while end and (
            kinds[end - 1] in (EMPTY, MOBILE, DELIM, SIGSEP)
            or (kinds[end - 1] == QUOTE and has_text)
        ):
            end -= 1
            changed = True
        last = lines[end - 1] if end else ""
        if (
            end > 1
            and kinds[end - 1] == TEXT
            and kinds[end - 2] == EMPTY
            and _DASH_NAME_RE.match(last)
            and len(last.strip()) <= 40
            and not last.lstrip().startswith("—")
        ):
            end -= 1  # a lone "-Name" sign-off
            changed = True
    lines, kinds = lines[:end], kinds[:end]
    return lines, kinds


def trim_text(text: str, languages: Iterable[str] | None = None, _depth: int = 0) -> str:
    """The new text of a plain-text reply (see the module docstring); "" for empty input."""
    if not text or not text.strip():
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    text = text.replace("\u200b", "").replace("\ufeff", "")
    all_lines = [line.rstrip() for line in text.split("\n")]
    lines, overflow = all_lines[:_MAX_LINES], all_lines[_MAX_LINES:]
    mpr = _mpr_intro_patterns(tuple(languages) if languages else DEFAULT_LANGUAGES)
    kinds = [_classify(line, mpr) for line in lines]
    _join_wrapped_intros(lines, kinds, mpr)

    cut, forwarded = _find_cut(lines, kinds)
    if cut is not None and TEXT not in kinds[:cut]:  # nothing new above the history
        if forwarded is not None and _depth < 3:  # a bare forward: show what was forwarded
            inner = trim_text("\n".join(lines[forwarded:]), languages, _depth + 1)
            if inner:
                return inner
        return text.strip()
    if cut is not None:
        lines, kinds = lines[:cut], kinds[:cut]
        overflow = []
    else:
        # no cut: an answer below or between quotes. A quote right after a leading
        # intro is dropped (bottom posting); intro lines themselves go.
        first = _next_content(kinds, 0)
        if first is not None and kinds[first] in (INTRO, FWD):
            j = first
            while j < len(kinds) and kinds[j] in (INTRO, FWD, EMPTY):
                j += 1
            if j < len(kinds) and kinds[j] == QUOTE:
                while j < len(kinds) and kinds[j] in (QUOTE, EMPTY):
                    j += 1
            if TEXT in kinds[j:]:
                lines, kinds = lines[j:], kinds[j:]
        keep = [k not in (INTRO, FWD) for k in kinds]
        lines = [x for x, ok in zip(lines, keep, strict=True) if ok]
        kinds = [k for k, ok in zip(kinds, keep, strict=True) if ok]
    if overflow:
        lines = lines + overflow
        kinds = kinds + [TEXT] * len(overflow)
    lines, kinds = _strip_tail(lines, kinds)
    while kinds and kinds[0] in (EMPTY, DELIM):
        lines, kinds = lines[1:], kinds[1:]
    result = "\n".join(lines).rstrip()
    return result if result.strip() else text.strip()


# ----------------------------------------------------------------------------- HTML

_HTML_QUOTE_XPATHS = (
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote_container ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_extra ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' moz-cite-prefix ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' moz-forward-container ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' yahoo_quoted ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' protonmail_quote ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' zmail_extra ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' tutanota_quote ')]",
    "//blockquote[@type='cite']",
    "//*[@id='divRplyFwdMsg']",
    "//*[@id='appendonsend']",
    "//*[@id='mail-editor-reference-message-container']",
    "//*[starts-with(@id, 'OLK_SRC_BODY_SECTION')]",
    "//hr[@id='stopSpelling']",
    "//*[contains(translate(@style, 'ABCDEF ', 'abcdef'), 'border-top:solid#b5c4df')]",
    "//*[contains(translate(@style, 'ABCDEF ', 'abcdef'), 'border-top:solid#e1e1e1')]",
)


def _cut_from(el) -> None:
    """Remove ``el`` and everything after it in document order."""
    node = el
    while node is not None and node.getparent() is not None:
        parent = node.getparent()
        sib = node.getnext()
        while sib is not None:
            nxt = sib.getnext()
            parent.remove(sib)
            sib = nxt
        node.tail = None
        if parent.tag in ("body", "html"):
            break
        node = parent
    parent = el.getparent()
    if parent is not None:
        parent.remove(el)


def html_reply_text(html: str, languages: Iterable[str] | None = None) -> str:
    """The new text of an HTML reply: quote containers cut, converted, then trimmed."""
    import lxml.html

    doc = parse_html(html)
    if doc is None:
        return trim_text(html_to_text(html), languages)
    first = None
    order = {el: i for i, el in enumerate(doc.iter())}
    for xpath in _HTML_QUOTE_XPATHS:
        try:
            found = doc.xpath(xpath)
        except Exception:
            continue
        for el in found:
            if first is None or order.get(el, 1 << 30) < order.get(first, 1 << 30):
                first = el
    full_text = html_to_text(lxml.html.tostring(doc, encoding="unicode"))
    if first is not None:
        _cut_from(first)
        cut_text = html_to_text(lxml.html.tostring(doc, encoding="unicode"))
        if cut_text.strip():
            return trim_text(cut_text, languages)
    return trim_text(full_text, languages)


def extract_reply(
    text: str | None,
    html: str | None = None,
    languages: Iterable[str] | None = None,
) -> str:
    """The text the sender just wrote, without quoted history and signatures.

    ``text`` is the plain-text body; ``html`` is used only when ``text`` is
    empty (HTML-only mail). ``languages`` narrows the mail-parser-reply header
    patterns consulted (default: all it supports); the built-in patterns for
    English, French, German, Spanish, Portuguese, Italian, Dutch, Nordic,
    Polish, Russian, Arabic, Persian, Chinese, Japanese and Korean always apply.
    Never raises: on an internal error the input text is returned stripped.
    """
    try:
        if text and text.strip():
            return trim_text(text, languages)
        if html and html.strip():
            return html_reply_text(html, languages)
    except Exception:
        return (text or html_to_text(html)).strip()
    return ""
