"""Which language a customer writes in, detected offline, and which languages agents speak.

Detection uses lingua (``lingua-language-detector``) with only the languages our
customers write in loaded, in its low-accuracy mode (trigram models only): on support
messages in these five languages it was as accurate as the high-accuracy mode, for
about 20 MiB of memory instead of about 150 MiB per process, and a message takes
about 0.15 ms (``bench/language.py`` measures both). The detector is built once per
process, on the first message that needs it, with its five models loaded then (a
few hundred milliseconds, once), so importing this module costs nothing.

A detection counts only when it is confident: at least two words and
:data:`MIN_LETTERS` letters once links, addresses and numbers are taken out, and a
confidence of at least :data:`MIN_CONFIDENCE`. "ok", "merci" or a thumbs-up say
nothing about the conversation's language and never change it. No Flask here.
"""

from __future__ import annotations

import re
import threading
import unicodedata

#: Languages we detect and agents may say they speak (ISO 639-1), in the order shown.
LANGUAGES = ("en", "fr", "pt", "ar", "fa")
MIN_LETTERS = 8
MIN_WORDS = 2
MIN_CONFIDENCE = 0.7
#: Only the start of a long message is read: a few hundred characters settle it.
MAX_CHARS = 400

_NOISE = re.compile(
    r"https?://\S+|www\.\S+|\S+@\S+\.\S+|@\[[^\]]*\]\(user:\d+\)|[\d_]+",
    re.IGNORECASE,
)

_lock = threading.Lock()
_detector = None
_codes: dict = {}


def _build():
    """The detector for :data:`LANGUAGES` (lingua imported here: only when first needed)."""
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    wanted = [getattr(IsoCode639_1, code.upper()) for code in LANGUAGES]
    detector = LanguageDetectorBuilder.from_iso_codes_639_1(*wanted).with_low_accuracy_mode()
    detector = detector.with_preloaded_language_models()
    return detector.build()


def detector():
    """The process's detector, built on first use (thread-safe)."""
    global _detector
    if _detector is None:
        with _lock:
            if _detector is None:
                _detector = _build()
    return _detector


def _letters_and_words(text: str) -> tuple[int, int]:
    words = [w for w in text.split() if any(unicodedata.category(c).startswith("L") for c in w)]
    letters = sum(1 for c in text if unicodedata.category(c).startswith("L"))
    return letters, len(words)


def clean(text: str | None) -> str:
    """The words of ``text`` that tell its language: no links, addresses, mentions or numbers."""
    return _NOISE.sub(" ", (text or "")[:MAX_CHARS]).strip()


def detect(text: str | None) -> str | None:
    """The language of ``text`` (a code of :data:`LANGUAGES`), or None when not confident."""
    words = clean(text)
    letters, count = _letters_and_words(words)
    if letters < MIN_LETTERS or count < MIN_WORDS:
        return None
    values = detector().compute_language_confidence_values(words)
    if not values or values[0].value < MIN_CONFIDENCE:
        return None
    return values[0].language.iso_code_639_1.name.lower()


class InvalidLanguages(ValueError):
    """A list of spoken languages the profile cannot store."""


def spoken(value) -> list[str]:
    """Validate the languages an agent says they speak: a list of codes of :data:`LANGUAGES`."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidLanguages(f"languages must be a list of codes among {', '.join(LANGUAGES)}")
    codes = [v.strip().lower() for v in value]
    unknown = [c for c in codes if c not in LANGUAGES]
    if unknown:
        raise InvalidLanguages(
            f"unknown language {unknown[0]!r}: use codes among {', '.join(LANGUAGES)}"
        )
    return [c for c in LANGUAGES if c in codes]  # once each, in a stable order


def speaks(user, language: str | None) -> bool:
    """True when ``user`` listed ``language`` among the languages they speak."""
    return bool(language) and language in (user.languages or [])
