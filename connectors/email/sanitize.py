"""HTML from email: a safe subset for display, and plain text for search and replies.

:func:`sanitize_html` is the only way email HTML reaches a browser. It runs
``nh3`` (the Rust ``ammonia`` sanitiser) last, so whatever the lxml pre-pass
does, the output is ammonia-safe. Decisions:

- scripts, ``<style>`` blocks, forms and their controls, iframes, objects,
  embeds, SVG/MathML, ``<base>``/``<meta>``/``<link>`` and every ``on*``
  handler are removed; ``<style>`` *blocks* go (they can restyle the host page
  and fetch remote ``url()``), inline ``style`` attributes stay but are limited
  to layout/typography properties that cannot load anything
  (:data:`ALLOWED_CSS`), and any declaration mentioning ``url(``,
  ``expression`` or ``@import`` is dropped;
- URLs: only ``http``, ``https``, ``mailto`` and ``cid`` survive; links get
  ``rel="noopener noreferrer"`` and ``target="_blank"``;
- ``<img src="cid:...">`` is rewritten through ``cid_map`` (Content-ID without
  brackets -> URL the domain serves); an unknown cid loses its ``src``. With
  ``cid_map=None`` the ``cid:`` srcs are kept, so HTML sanitised at ingestion
  (before attachment URLs exist) can be passed through again with the map at
  display time: sanitising is idempotent;
- remote images (``http(s)`` srcs) are blocked by default: the URL moves to
  ``data-src`` so the UI can offer "load images"; :func:`has_remote_images`
  tells whether any are present.

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

_REMOTE_RE = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
_BAD_CSS_RE = re.compile(r"url\s*\(|expression|@import|javascript:|\\", re.IGNORECASE)
_XML_DECL_RE = re.compile(r"^\s*<\?xml[^>]*>", re.IGNORECASE)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]")


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    """nh3 callback: police values nh3 does not check itself."""
    if attr == "style":
        kept = [d for d in value.split(";") if d.strip() and not _BAD_CSS_RE.search(d)]
        return ";".join(kept) or None
    if attr == "data-src":  # blocked remote image: only ever an http(s) URL
        return value if re.match(r"^\s*https?://", value, re.IGNORECASE) else None
    if attr == "src" and tag != "img" and value.strip().lower().startswith("cid:"):
        return None
    return value


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


def _prepare(html: str, cid_map: dict[str, str] | None, allow_remote_images: bool) -> str:
    """lxml pre-pass: rewrite ``cid:`` srcs and park remote image URLs in ``data-src``."""
    import lxml.html

    doc = parse_html(html)
    if doc is None:
        return html
    lookup = {_cid_key(k): v for k, v in (cid_map or {}).items()}
    changed = False
    for img in doc.iter("img"):
        src = (img.get("src") or "").strip()
        if src.lower().startswith("cid:"):
            if cid_map is not None:  # without a map, cid: stays for a later pass
                url = lookup.get(_cid_key(src[4:]))
                if url:
                    img.set("src", url)
                else:
                    img.attrib.pop("src", None)
                changed = True
        elif _REMOTE_RE.match(src) and not allow_remote_images:
            img.attrib.pop("src", None)
            if src.startswith("//"):
                src = "https:" + src
            img.set("data-src", src)
            changed = True
        for attr in ("srcset", "lowsrc", "dynsrc", "background"):
            if attr in img.attrib:
                img.attrib.pop(attr)
                changed = True
    if not allow_remote_images:
        for el in doc.iter():
            if isinstance(el.tag, str) and el.get("background"):
                el.attrib.pop("background")
                changed = True
    if not changed:
        return html
    body = doc.find("body")
    root = body if body is not None else doc
    inner = (root.text and html_lib.escape(root.text)) or ""
    return inner + "".join(lxml.html.tostring(child, encoding="unicode") for child in root)


def _cid_key(cid: str) -> str:
    return cid.strip().strip("<>").strip().lower()


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
        prepared = _prepare(html, cid_map, allow_remote_images)
    except Exception:
        prepared = html
    try:
        return nh3.clean(
            prepared,
            tags=_TAGS,
            clean_content_tags=_CLEAN_CONTENT,
            attributes=_ATTRS,
            attribute_filter=_attribute_filter,
            strip_comments=True,
            link_rel="noopener noreferrer",
            set_tag_attribute_values={"a": {"target": "_blank"}},
            url_schemes=_SCHEMES,
            filter_style_properties=set(ALLOWED_CSS),
        ).strip()
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
