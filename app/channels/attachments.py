"""What files a channel can carry in one reply: how many, how large, which types.

Each adapter states its rules (``Channel.attachments``, or per inbox through
``Channel.attachment_rules``); the composer reads them as data when a file is
chosen and the server checks them again when the reply is posted, before any
provider is called. A refusal is a :class:`Refusal`: a code, the file it is
about, and the numbers the agent needs to understand it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

MB = 1024 * 1024


class FileLike(Protocol):
    """What the rules look at: a stored attachment or an upload about to be stored."""

    filename: str | None
    content_type: str | None
    size: int | None


def bare_type(content_type: str | None) -> str:
    """``image/JPEG; x=1`` -> ``image/jpeg``; ``""`` when there is none."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def human_size(n: int) -> str:
    """A size as an agent reads it: ``25 MB``, ``300 kB``, ``12 B``."""
    if n >= MB:
        value = n / MB
        return f"{value:.0f} MB" if value >= 10 or value == int(value) else f"{value:.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} kB"
    return f"{n} B"


@dataclass(frozen=True)
class Refusal:
    """Why a set of files cannot go out on a channel.

    ``code`` is ``too_many``, ``file_too_large``, ``total_too_large`` or
    ``type_refused``; ``filename`` names the file it is about (none for a total).
    """

    code: str
    message: str
    filename: str | None = None
    limit: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The details a 409 ``attachment_refused`` or 422 carries."""
        out: dict[str, Any] = {"reason": self.code}
        if self.filename is not None:
            out["filename"] = self.filename
        if self.limit is not None:
            out["limit"] = self.limit
        return out


@dataclass(frozen=True)
class AttachmentRules:
    """A channel's limits for the files of one reply.

    ``types`` lists the MIME types it takes (``None``: any); ``types_label``
    says them in words ("JPEG or PNG images"). ``max_file_bytes`` caps each
    file, ``max_total_bytes`` all of them together (``None``: no cap).
    """

    max_files: int = 10
    max_file_bytes: int | None = None
    max_total_bytes: int | None = None
    types: tuple[str, ...] | None = None
    types_label: str = ""

    def accepts_type(self, content_type: str | None) -> bool:
        """True when the channel takes files of ``content_type``."""
        if self.types is None:
            return True
        return bare_type(content_type) in self.types

    def refusal(self, files: Sequence[FileLike], channel: str) -> Refusal | None:
        """Why ``files`` cannot go out together (None: they can); ``channel`` names it."""
        if len(files) > self.max_files:
            return Refusal(
                "too_many",
                f"{channel} sends at most {self.max_files} files in one message.",
                limit=self.max_files,
            )
        for f in files:
            refused = self.file_refusal(f, channel)
            if refused is not None:
                return refused
        total = sum(f.size or 0 for f in files)
        if self.max_total_bytes is not None and total > self.max_total_bytes:
            return Refusal(
                "total_too_large",
                f"These files add up to {human_size(total)}: {channel} takes at most "
                f"{human_size(self.max_total_bytes)} in one message.",
                limit=self.max_total_bytes,
            )
        return None

    def file_refusal(self, f: FileLike, channel: str) -> Refusal | None:
        """Why one file cannot go out on its own (None: it can)."""
        name = f.filename or "file"
        if not self.accepts_type(f.content_type):
            kind = bare_type(f.content_type) or "unknown type"
            takes = f": it takes only {self.types_label}" if self.types_label else ""
            return Refusal(
                "type_refused", f"{channel} cannot send {name} ({kind}){takes}.", filename=name
            )
        size = f.size or 0
        cap = min(
            (c for c in (self.max_file_bytes, self.max_total_bytes) if c is not None),
            default=None,
        )
        if cap is not None and size > cap:
            return Refusal(
                "file_too_large",
                f"{name} is {human_size(size)}: {channel} takes files up to {human_size(cap)}.",
                filename=name,
                limit=cap,
            )
        return None

    def to_dict(self) -> dict[str, Any]:
        """The rules as the browser reads them (the inbox and channel API objects)."""
        return {
            "max_files": self.max_files,
            "max_file_bytes": self.max_file_bytes,
            "max_total_bytes": self.max_total_bytes,
            "types": list(self.types) if self.types is not None else None,
            "types_label": self.types_label,
        }


def first_refusal(
    files: Sequence[FileLike], rules: Iterable[tuple[AttachmentRules, str]]
) -> Refusal | None:
    """None when one of ``rules`` (each with its channel's name) takes every file of ``files``,
    else the first channel's refusal."""
    first = None
    for rule, channel in rules:
        refused = rule.refusal(files, channel)
        if refused is None:
            return None
        first = first or refused
    return first
