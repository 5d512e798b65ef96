"""What every page template needs: the signed-in user, languages, and the UI strings the
browser code shows (translated on the server, handed to JavaScript as JSON).

JavaScript marks its strings with ``t("...")``. :func:`extract_js` finds them, both for
``pybabel extract`` (see ``babel.cfg``) and at run time, so the two lists never drift.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from flask import current_app
from flask_babel import get_locale, gettext
from flask_login import current_user

from app.channels import all_channels
from app.inbox.activity import TEMPLATES
from app.inbox.language import LANGUAGES as SPOKEN_LANGUAGES

JS_DIR = Path(__file__).resolve().parents[1] / "static" / "js"
_T_CALL = re.compile(r'(?<![\w.$])t\(\s*"((?:[^"\\\n]|\\.)*)"')

LANGUAGE_NAMES = {
    "en": "English",
    "fr": "Français",
    "pt": "Português",
    "ar": "العربية",
    "fa": "فارسی",
}
RTL_LANGUAGES = {"ar", "fa", "he", "ur"}


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text)


def extract_js(fileobj, keywords, comment_tags, options) -> Iterator[tuple]:
    """Babel extractor: every ``t("...")`` string in a JavaScript file, nested calls included."""
    source = fileobj.read().decode(options.get("encoding", "utf-8"))
    for match in _T_CALL.finditer(source):
        lineno = source.count("\n", 0, match.start()) + 1
        yield lineno, None, _unescape(match.group(1)), []


@lru_cache(maxsize=1)
def js_msgids() -> tuple[str, ...]:
    """The msgids of every string the browser code shows (read once per process).

    The ``t("...")`` calls of the scripts, the thread's activity lines, which the
    browser shows from their template (:mod:`app.inbox.activity`), and the channels'
    names, window names and the files they take, which it shows from the boot data (:func:`channel_caps`).
    """
    found: dict[str, None] = {}
    for path in sorted(JS_DIR.glob("*.js")):
        for match in _T_CALL.finditer(path.read_text(encoding="utf-8")):
            found[_unescape(match.group(1))] = None
    found.update(dict.fromkeys(TEMPLATES))
    for caps in channel_caps().values():
        window = caps["window"] or {}
        labels = (caps["short_label"], window.get("standard_label"), window.get("human_label"))
        for text in (*labels, caps["attachments"]["types_label"]):
            if text:
                found[text] = None
    return tuple(found)


def js_strings() -> dict[str, str]:
    """UI strings for the browser, translated into the request's language (only those that differ)."""
    out = {}
    for msgid in js_msgids():
        text = gettext(msgid)
        if text != msgid:
            out[msgid] = text
    return out


def locale_code() -> str:
    """The request's language code (``en``, ``ar`` ...)."""
    return str(get_locale() or "en")


def me_dict() -> dict | None:
    """The signed-in user for page scripts (no secrets)."""
    if not getattr(current_user, "is_authenticated", False):
        return None
    return {**current_user.to_dict(), "locale": current_user.locale or locale_code()}


def channel_caps() -> dict[str, dict]:
    """What each channel can do, by name, for page scripts and templates (no secrets)."""
    return {channel.name: channel.capabilities() for channel in all_channels()}


def template_context() -> dict:
    """Variables every template can use."""
    return {
        "language_names": {
            code: LANGUAGE_NAMES.get(code, code) for code in current_app.config["LANGUAGES"]
        },
        "locale_code": locale_code,
        "text_direction": lambda: "rtl" if locale_code().split("_")[0] in RTL_LANGUAGES else "ltr",
        "me_dict": me_dict,
        "js_strings": js_strings,
        "channel_caps": channel_caps,
        "spoken_language_codes": SPOKEN_LANGUAGES,  # what agents may say they speak
    }
