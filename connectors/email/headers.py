"""Safe, decoded access to a message's headers: RFC 2047 words, unfolding, address lists.

Every header is read defensively: a value the email package cannot parse is
decoded from its raw bytes instead (UTF-8, else windows-1252, then RFC 2047).
"""

from __future__ import annotations

import email.header
import re
from email.message import Message

from connectors.email.address import normalize_address
from connectors.email.charsets import _SURROGATE_RE, _fix_surrogates, decode_bytes

_MAX_PARSED_HEADER = 2000  # characters; longer header values skip the email package's parser
_MAX_ADDRESS = 254  # RFC 5321: longer is no mailbox (and no contact id)
_CONTROL_RE = re.compile(r"[\x00\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Starts only where a run of address characters starts, and never backtracks into it:
# searching 100 kB of such characters without an "@" took half a minute before.
_ADDR_RE = re.compile(
    r"(?<![A-Za-z0-9!#$%&'*+/=?^_`{|}~.-])[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]++@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)


def _decode_rfc2047(value: str) -> str:
    """Decode encoded-words manually (unknown charsets and bad encodings tolerated)."""
    value = _fix_surrogates(value)
    if "=?" not in value:
        return value
    try:
        chunks = email.header.decode_header(value)
    except Exception:
        return value
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, bytes):
            out.append(decode_bytes(chunk, charset, guess=False))
        else:
            out.append(chunk)
    return "".join(out)


def _unfold(value: str) -> str:
    return _CONTROL_RE.sub("", re.sub(r"\r?\n[ \t]*", " ", value or "")).strip()


class _Headers:
    """Safe, decoded access to one message's headers."""

    def __init__(self, msg: Message) -> None:
        self.msg = msg
        try:
            self.raw = [(str(k), str(v)) for k, v in msg.raw_items()]
        except Exception:
            try:
                self.raw = [(str(k), str(v)) for k, v in msg._headers]
            except Exception:
                self.raw = []
        self.by_name: dict[str, list[str]] = {}
        for k, v in self.raw:
            self.by_name.setdefault(k.strip().lower(), []).append(v)

    def raw_values(self, name: str) -> list[str]:
        return self.by_name.get(name.lower(), [])

    def parseable(self, name: str) -> bool:
        """False when a value of ``name`` is too long for the email package's parser.

        Its structured-header parser takes quadratic time: a 20 kB ``From`` of
        quotes or dots took seconds. Longer values use the tolerant decoding.
        """
        return all(len(v) <= _MAX_PARSED_HEADER for v in self.raw_values(name))

    def text(self, name: str) -> str | None:
        """The first value of ``name`` decoded to text, or None when absent."""
        raws = self.raw_values(name)
        if not raws:
            return None
        value: str | None = None
        try:
            parsed = self.msg.get(name) if self.parseable(name) else None
            value = str(parsed) if parsed is not None else None
        except Exception:
            value = None
        if value is None or "\ufffd" in value or _SURROGATE_RE.search(value):
            value = _decode_rfc2047(raws[0])
        return _unfold(value)

    def all_text(self, name: str) -> list[str]:
        return [_unfold(_decode_rfc2047(v)) for v in self.raw_values(name)]

    def decoded_mapping(self) -> dict[str, list[str]]:
        """Every header, decoded, keyed by lowercase name (for automated.detect)."""
        return {k: [_unfold(_decode_rfc2047(v)) for v in vs] for k, vs in self.by_name.items()}

    def addresses(self, name: str) -> list[tuple[str, str]]:
        """``(display name, lowercased address)`` pairs of every ``name`` header.

        The email package's parser is used when it reports no defect; otherwise
        (e.g. an unquoted ``alice@x <bob@x>`` display name) a tolerant splitter.
        Addresses over 254 characters (RFC 5321) are left out.
        """
        raws = self.raw_values(name)
        if not raws:
            return []
        out: list[tuple[str, str]] = []
        try:
            if not self.parseable(name):
                raise ValueError("header too long for the email package's parser")
            for header in self.msg.get_all(name) or []:
                if any(
                    type(d).__name__ in ("InvalidHeaderDefect", "ObsoleteHeaderDefect")
                    for d in getattr(header, "defects", ())
                ):
                    raise ValueError("defective address header")
                for addr in getattr(header, "addresses", ()):
                    spec = (addr.addr_spec or "").strip()
                    if "@" not in spec or " " in spec or not spec.isprintable():
                        raise ValueError("unusable address")  # NUL, raw bytes: the tolerant way
                    display = addr.display_name or ""
                    if "\ufffd" in display or _SURROGATE_RE.search(display):
                        raise ValueError("undecodable display name")
                    out.append((display, normalize_address(spec)))
        except Exception:
            out = []
            for raw in raws:
                out.extend(_split_addresses(_unfold(_decode_rfc2047(raw))))
        return [(display, addr) for display, addr in out if len(addr) <= _MAX_ADDRESS]


def _split_addresses(value: str) -> list[tuple[str, str]]:
    """A forgiving address-list splitter for headers the email package rejects."""
    chunks: list[str] = []
    buf, quoted, angle = "", False, 0
    for ch in value:
        if ch == '"' and not angle:
            quoted = not quoted
        elif ch == "<" and not quoted:
            angle += 1
        elif ch == ">" and not quoted and angle:
            angle -= 1
        if ch in ",;" and not quoted and not angle:
            chunks.append(buf)
            buf = ""
            continue
        buf += ch
    chunks.append(buf)
    out = []
    for chunk in chunks:
        chunk = chunk.strip()
        if ":" in chunk and "<" not in chunk.split(":", 1)[0] and '"' not in chunk.split(":", 1)[0]:
            chunk = chunk.split(":", 1)[1].strip()  # group syntax "Team: a@x"
        m = re.search(r"<\s*([^<>\s]+@[^<>\s]+)\s*>", chunk)
        if m:
            display = chunk[: m.start()].strip().strip('"').strip()
            out.append((display, normalize_address(m.group(1))))
            continue
        m = _ADDR_RE.search(chunk)
        if m:
            out.append(("", normalize_address(m.group(0))))
    return out
