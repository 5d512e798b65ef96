"""HTML from email: a safe subset for display, and plain text for search and replies.

:func:`sanitize_html` is the only way email HTML reaches a browser. It runs
``nh3`` (the Rust ``ammonia`` sanitiser) on the mail's HTML, then one strict
pass over nh3's own output. Decisions:

- scripts, ``<style>`` blocks, forms and their controls, iframes, objects,
  embeds, SVG/MathML, ``<base>``/``<meta>``/``<link>`` and every ``on*``
  handler are removed; ``<style>`` *blocks* go (they can restyle the host page
  and fetch remote ``url()``), inline ``style`` attributes stay but are limited
  to layout/typography properties that cannot load anything
  (:data:`ALLOWED_CSS`), and any declaration mentioning ``url(``,
  ``expression`` or ``@import`` is dropped;
- URLs: only ``http``, ``https``, ``mailto`` and ``cid`` survive; links get
  ``rel="noopener noreferrer"`` and ``target="_blank"``;
- every attribute that makes a browser fetch something is decided on the HTML
  nh3 *produced*, never on the input (:func:`_make_inert`): an ``<img src>``
  that is ``cid:`` is rewritten through ``cid_map`` (Content-ID without
  brackets -> URL the domain serves; an unknown cid loses its ``src``; with
  ``cid_map=None`` it is kept, so HTML sanitised at ingestion, before
  attachment URLs exist, can be passed through again with the map at display
  time: sanitising is idempotent); an absolute ``http(s)`` URL, spelled in any
  way a browser accepts (``//host``, ``http:\\\\host``, tabs or newlines inside
  ``http``) is written out in its plain form to ``data-src`` so the UI can
  offer "load images" (:func:`has_remote_images` tells whether any are
  present); any other ``src`` (relative, ``http:/path``, anything a browser
  would resolve against the page) is dropped, as are ``srcset``,
  ``background``, ``poster`` and the like on every element, and CSS that could
  load (``url(``, ``image-set(`` ...) in ``style``. Because the decision is
  made on nh3's serialisation, which the pass re-serialises strictly (a ``<``
  that does not open a well-formed tag becomes ``&lt;``), no difference
  between the parsers (lxml, html5ever, the browser's) can bring back a live
  URL.

Render the result inside a sandboxed ``<iframe>`` with a strict CSP anyway.

:func:`html_to_text` is a small lxml-based converter (no GPL ``html2text``):
block elements become line breaks, ``<blockquote>`` becomes ``> `` quoting (so
the quote stripper can see it), links keep their URL in parentheses, hidden
elements and ``<head>``/``<style>``/``<script>`` are skipped.
"""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

import nh3

__all__ = [
    "ALLOWED_CSS",
    "has_remote_images",
    "html_to_text",
    "parse_html",
    "sanitize_html",
]

# CSS properties that can neither load resources nor escape the message box.
ALLOWED_CSS = frozenset(
    {
        "color",
        "background-color",
        "font",
        "font-family",
        "font-size",
        "font-style",
        "font-weight",
        "font-variant",
        "text-align",
        "text-decoration",
        "text-indent",
        "text-transform",
        "letter-spacing",
        "word-spacing",
        "line-height",
        "white-space",
        "vertical-align",
        "direction",
        "unicode-bidi",
        "margin",
        "margin-top",
        "margin-right",
        "margin-bottom",
        "margin-left",
        "padding",
        "padding-top",
        "padding-right",
        "padding-bottom",
        "padding-left",
        "border",
        "border-top",
        "border-right",
        "border-bottom",
        "border-left",
        "border-color",
        "border-style",
        "border-width",
        "border-radius",
        "border-collapse",
        "border-spacing",
        "width",
        "max-width",
        "min-width",
        "height",
        "max-height",
        "min-height",
        "display",
        "list-style-type",
        "table-layout",
    }
)

_EXTRA_TAGS = {"font", "tfoot", "caption", "center", "u", "s", "strike", "big", "small"}
_TAGS = set(nh3.ALLOWED_TAGS) | _EXTRA_TAGS
_CLEAN_CONTENT = {
    "script",
    "style",
    "title",
    "noscript",
    "template",
    "iframe",
    "object",
    "embed",
    "applet",
    "svg",
    "math",
    "select",
    "textarea",
    "button",
    "head",
}
_GENERIC_ATTRS = {"dir", "lang", "title", "style", "align", "valign", "width", "height", "bgcolor"}
_ATTRS: dict[str, set[str]] = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRS.setdefault("img", set()).update({"data-src", "alt", "width", "height"})
_ATTRS.setdefault("font", set()).update({"color", "face", "size"})
_ATTRS.setdefault("td", set()).update({"colspan", "rowspan", "nowrap"})
_ATTRS.setdefault("th", set()).update({"colspan", "rowspan", "nowrap"})
_ATTRS.setdefault("table", set()).update({"border", "cellpadding", "cellspacing"})
_ATTRS["*"] = set(_GENERIC_ATTRS)
_SCHEMES = {"http", "https", "mailto", "cid"}

_BAD_CSS_RE = re.compile(
    r"url\s*\(|image-set\s*\(|image\s*\(|cross-fade\s*\(|element\s*\(|src\s*\("
    r"|expression|@import|javascript:|\\",
    re.IGNORECASE,
)
_XML_DECL_RE = re.compile(r"^\s*<\?xml[^>]*>", re.IGNORECASE)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]")

#: Attributes with which some browser, on some element, fetches a URL by itself.
_LOADING_ATTRS = frozenset(
    {
        "src",
        "srcset",
        "lowsrc",
        "dynsrc",
        "background",
        "poster",
        "data",
        "codebase",
        "archive",
        "classid",
        "manifest",
        "icon",
        "ping",
        "imagesrcset",
        "action",
        "formaction",
        "xlink:href",
        "profile",
        "longdesc",
    }
)
# nh3's serialisation (html5ever): double-quoted values with & and " escaped (< > too, in
# nh3 0.3), text with & < > escaped, no comments. Anything else at a "<" is not a tag we
# understand: it becomes text.
_START_TAG_RE = re.compile(
    r'<([A-Za-z][A-Za-z0-9]*)((?:[ \t\n\f\r]+[^ \t\n\f\r"\'<>/=]+(?:="[^"]*")?)*)[ \t\n\f\r]*/?>'
)
_END_TAG_RE = re.compile(r"</([A-Za-z][A-Za-z0-9]*)[ \t\n\f\r]*>")
_ATTR_RE = re.compile(r'([^ \t\n\f\r"\'<>/=]+)(?:="([^"]*)")?')


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    """nh3 callback: police values nh3 does not check itself (the output pass decides URLs)."""
    if attr == "style":
        kept = [d for d in value.split(";") if d.strip() and not _BAD_CSS_RE.search(d)]
        return ";".join(kept) or None
    return value


def remote_url(value: str | None) -> str | None:
    """The plain ``http(s)://`` form of an absolute remote URL as a browser reads it, or None.

    Browsers drop ASCII tabs and newlines anywhere in a URL, trim C0 controls and
    spaces around it, read ``\\`` as ``/`` and accept any number of slashes
    after ``http:``: ``ht<TAB>tp:\\\\host\\x`` is ``http://host/x``. ``//host``
    becomes ``https://host``. ``http:/path`` is None: a browser resolves it
    against the page, so it names no host of its own.
    """
    if not value:
        return None
    url = re.sub(r"[\t\n\r]", "", value).strip("".join(map(chr, range(0x21))))
    url = url.replace("\\", "/")
    m = re.match(r"(?i)(https?:)?//+([^/?#\s].*)$", url)
    if not m:
        return None
    scheme = (m.group(1) or "https:").lower()
    return f"{scheme}//{m.group(2)}"


def _cid_key(cid: str) -> str:
    return cid.strip().strip("<>").strip().lower()


def _img_src(
    value: str, lookup: dict[str, str] | None, allow_remote_images: bool
) -> tuple[str, str] | None:
    """What an ``<img src>`` of nh3's output becomes: (attribute, value) or None (dropped)."""
    src = value.strip()
    if src.lower().startswith("cid:"):
        if lookup is None:  # without a map, cid: stays for a later pass
            return "src", src
        url = lookup.get(_cid_key(src[4:]))
        return ("src", url) if url else None
    url = remote_url(value)
    if url is None:
        return None
    return ("src" if allow_remote_images else "data-src"), url


def _inert_attributes(
    tag: str, attrs: str, lookup: dict[str, str] | None, allow_remote_images: bool
) -> str:
    """The attributes of one start tag of nh3's output, with nothing left that loads."""
    out: dict[str, str] = {}
    for name, raw in _ATTR_RE.findall(attrs):
        name = name.lower()
        value = html_lib.unescape(raw)
        if name in out or name.startswith("on"):
            continue
        if tag == "img" and name in ("src", "data-src"):
            if name == "src":
                got = _img_src(value, lookup, allow_remote_images)
            else:  # parked by an earlier pass: only ever a remote URL, never a cid:
                url = remote_url(value)
                got = (("src" if allow_remote_images else "data-src"), url) if url else None
            if got is not None and got[0] not in out:
                out[got[0]] = got[1]
            continue
        if name in _LOADING_ATTRS or name.startswith("data-"):
            continue
        if name == "style":
            value = ";".join(d for d in value.split(";") if d.strip() and not _BAD_CSS_RE.search(d))
            if not value:
                continue
        out[name] = value
    return "".join(f' {name}="{html_lib.escape(value, quote=True)}"' for name, value in out.items())


def _make_inert(cleaned: str, cid_map: dict[str, str] | None, allow_remote_images: bool) -> str:
    """Re-serialise nh3's output tag by tag, deciding every URL-bearing attribute on it.

    Works on the exact string the browser will get: text between tags is kept as
    nh3 escaped it; each tag is rebuilt from what was read, so what the browser
    parses is what was checked; a ``<`` that is not a tag of the allowed set
    becomes ``&lt;``.
    """
    lookup = None if cid_map is None else {_cid_key(k): v for k, v in cid_map.items()}
    out: list[str] = []
    pos = 0
    while True:
        lt = cleaned.find("<", pos)
        if lt < 0:
            out.append(cleaned[pos:])
            break
        out.append(cleaned[pos:lt])
        end = _END_TAG_RE.match(cleaned, lt)
        if end and end.group(1).lower() in _TAGS:
            out.append(f"</{end.group(1).lower()}>")
            pos = end.end()
            continue
        start = _START_TAG_RE.match(cleaned, lt)
        if start and start.group(1).lower() in _TAGS:
            tag = start.group(1).lower()
            attrs = _inert_attributes(tag, start.group(2), lookup, allow_remote_images)
            out.append(f"<{tag}{attrs}>")
            pos = start.end()
            continue
        out.append("&lt;")
        pos = lt + 1
    return "".join(out)


def parse_html(html: str) -> Any:
    """Parse ``html`` with lxml into a document tree, or None when it is unparsable."""
    import lxml.html

    text = _CONTROL_RE.sub("", _XML_DECL_RE.sub("", html or ""))
    if not text.strip():
        return None
    try:
        return lxml.html.document_fromstring(text)
    except Exception:  # lxml.etree.ParserError and friends on pathological input
        return None


def sanitize_html(
    html: str | None,
    cid_map: dict[str, str] | None = None,
    allow_remote_images: bool = False,
) -> str:
    """Return ``html`` reduced to a display-safe subset (see the module docstring).

    ``cid_map`` maps Content-IDs (with or without ``<>``, case-insensitive) to the
    URL where the domain serves that inline attachment. Never raises; returns ""
    for empty input.
    """
    if not html or not html.strip():
        return ""
    html = _CONTROL_RE.sub("", html)
    try:
        cleaned = nh3.clean(
            html,
            tags=_TAGS,
            clean_content_tags=_CLEAN_CONTENT,
            attributes=_ATTRS,
            attribute_filter=_attribute_filter,
            strip_comments=True,
            link_rel="noopener noreferrer",
            set_tag_attribute_values={"a": {"target": "_blank"}},
            url_schemes=_SCHEMES,
            filter_style_properties=set(ALLOWED_CSS),
        )
        return _make_inert(cleaned, cid_map, allow_remote_images).strip()
    except Exception:  # last resort: never hand unsanitised markup on
        return html_lib.escape(html_to_text(html))


def has_remote_images(html: str | None) -> bool:
    """True when ``html`` shows (``src``) or holds blocked (``data-src``) remote images."""
    if not html:
        return False
    return bool(re.search(r"<img\b[^>]*\b(?:data-)?src\s*=\s*[\"']?\s*(?:https?:)?//", html, re.I))


# ----------------------------------------------------------------------- HTML -> text

_SKIP = {"head", "script", "style", "title", "meta", "link", "noscript", "template", "object"}
_SKIP |= {"svg", "math", "iframe", "embed", "button", "select", "option", "textarea", "input"}
_PARAGRAPH = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table", "pre"}
_PARAGRAPH |= {"address", "figure", "fieldset"}
_LINE = {"div", "tr", "li", "dt", "dd", "section", "article", "header", "footer", "nav"}
_LINE |= {"aside", "main", "center", "form", "caption", "tbody", "thead", "tfoot", "figcaption"}
_LINE |= {"details", "summary", "body", "html"}
_HIDDEN_RE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|mso-hide\s*:\s*all", re.I)


class _TextWriter:
    """Accumulates inline text and block breaks, then renders plain text."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def text(self, s: str, pre: bool = False) -> None:
        if not s:
            return
        if pre:
            self.parts.append(s)
            return
        s = re.sub(r"[ \t\r\n\f\u00a0]+", " ", s)
        if (
            self.at_line_start()
            or s.startswith(" ")
            and self.parts
            and self.parts[-1].endswith(" ")
        ):
            s = s.lstrip(" ")
        if s:
            self.parts.append(s)

    def at_line_start(self) -> bool:
        for p in reversed(self.parts):
            if p:
                return p.endswith("\n")
        return True

    def newline(self) -> None:
        if not self.at_line_start():
            self.parts.append("\n")

    def blank_line(self) -> None:
        self.newline()
        joined = "".join(self.parts[-3:])
        if self.parts and not joined.endswith("\n\n"):
            self.parts.append("\n")

    def raw(self, s: str) -> None:
        self.parts.append(s)

    def result(self) -> str:
        out = "".join(self.parts)
        out = "\n".join(line.rstrip() for line in out.split("\n"))
        return re.sub(r"\n{3,}", "\n\n", out).strip("\n")


def _render(el, w: _TextWriter, pre: bool = False, list_kind: str | None = None) -> None:
    tag = el.tag if isinstance(el.tag, str) else ""
    tag = tag.lower().rsplit("}", 1)[-1]
    if not tag:  # comment or processing instruction
        if el.tail:
            w.text(el.tail, pre)
        return
    if tag in _SKIP or el.get("hidden") is not None or _HIDDEN_RE.search(el.get("style") or ""):
        if el.tail:
            w.text(el.tail, pre)
        return
    if tag == "br":
        w.raw("\n")
    elif tag == "hr":
        w.newline()
        w.raw("---\n")
    elif tag == "blockquote":
        inner = _TextWriter()
        if el.text:
            inner.text(el.text)
        for child in el:
            _render(child, inner)
        quoted = inner.result()
        w.newline()
        if quoted.strip():
            w.raw("\n".join(("> " + line) if line else ">" for line in quoted.split("\n")))
            w.raw("\n")
    elif tag == "img":
        pass  # images carry no text worth keeping (tracking pixels, logos)
    else:
        block = tag in _PARAGRAPH or tag in _LINE
        if tag in _PARAGRAPH:
            w.blank_line()
        elif block:
            w.newline()
        if tag == "li":
            w.raw("1. " if list_kind == "ol" else "- ")
        if tag in ("td", "th") and not w.at_line_start():
            w.raw(" ")
        is_pre = pre or tag == "pre"
        if el.text:
            w.text(el.text, is_pre)
        child_list = tag if tag in ("ul", "ol") else list_kind
        for child in el:
            _render(child, w, is_pre, child_list)
        if tag == "a":
            href = (el.get("href") or "").strip()
            label = (el.text_content() or "").strip()
            external = re.match(r"https?://", href, re.I)
            if external and label and href.rstrip("/") != label.rstrip("/") and href not in label:
                w.text(f" ({href})")
        if tag in _PARAGRAPH:
            w.blank_line()
        elif block:
            w.newline()
    if el.tail:
        w.text(el.tail, pre)


def html_to_text(html: str | None) -> str:
    """Readable plain text from an HTML body (never raises).

    Paragraph-like elements are separated by blank lines, ``<div>``/``<br>``/
    rows by line breaks, list items get ``- ``, ``<blockquote>`` content gets
    ``> `` prefixes, links keep their target as `` (url)``.
    """
    if not html or not html.strip():
        return ""
    try:
        doc = parse_html(html)
        if doc is None:
            raise ValueError("unparsable")
        w = _TextWriter()
        _render(doc, w)
        return w.result().replace("\u00a0", " ")
    except Exception:
        text = re.sub(r"(?is)<(script|style|head)\b.*?</\1\s*>", " ", html)
        text = re.sub(r"(?i)<br\s*/?>|</(p|div|tr|li|h\d)>", "\n", text)
        text = html_lib.unescape(re.sub(r"<[^>]+>", "", text))
        return re.sub(r"\n{3,}", "\n\n", text).strip()
