"""The connector interface: normalised events in, normalised sends out.

A connector translates one channel's wire format into the dataclasses below and
turns an :class:`OutboundMessage` into the provider's HTTP call. Connectors never
import ``app`` and never touch the database, so each one can be tested with
recorded payloads and a fake provider alone.

Inbound flow: the web layer authenticates a webhook with the connector's
verification helpers, the connector parses the body into a list of events, and
``app.inbox.ingest`` stores them. Outbound flow: ``app.inbox.delivery`` builds an
:class:`OutboundMessage`, and the worker calls :meth:`Connector.send`.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import json
import math
import re
import socket
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from connectors.filenames import clean_filename

DEFAULT_TIMEOUT = (5, 20)  # connect, read seconds: every outbound call has a timeout
MAX_JSON_DEPTH = 64  # real webhook bodies nest about 10 deep
MAX_ROUTING_KEY = 255  # the inbox route columns' length


# --------------------------------------------------------------------------- reading bodies


class UnreadableBody(ValueError):
    """A webhook body (or its routing value) that is not what the channel sends.

    The web layer answers 400 when nobody signed it; a signed one is kept for an
    admin to look at, never parsed again by itself.
    """


def _reject_constant(name: str) -> Any:
    raise UnreadableBody(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnreadableBody(f"number {text[:20]}... does not fit a float")
    return value


def read_json(raw: bytes | str) -> Any:
    """The JSON value of a webhook body; raises :class:`UnreadableBody` for anything else.

    Stricter than ``json.loads``, so that what it returns can be stored and
    serialised again: UTF-8 only; no ``NaN``/``Infinity``; no number that overflows
    a float or has more digits than Python converts (4,300); nesting at most
    :data:`MAX_JSON_DEPTH` deep (100,000 nested ``[`` raised ``RecursionError``).
    Text the databases refuse, ``\\u0000`` and lone surrogates (half an emoji cut
    by a client), becomes U+FFFD.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else str(raw)
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except UnreadableBody:
        raise
    except (ValueError, TypeError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise UnreadableBody(f"not JSON: {type(exc).__name__}") from None
    if _too_deep(value, MAX_JSON_DEPTH):
        raise UnreadableBody(f"JSON nested deeper than {MAX_JSON_DEPTH}")
    if _ESCAPED_TROUBLE.search(text):
        value = _scrub(value)
    return value


# A NUL or a surrogate can only reach a parsed string through a \u escape.
_ESCAPED_TROUBLE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_TROUBLE = re.compile("[\x00\ud800-\udfff]")  # pairs were joined by json: these are alone


def _clean(text: str) -> str:
    return _TROUBLE.sub("\ufffd", text)


def _scrub(value: Any) -> Any:
    """``value`` with :data:`_TROUBLE` replaced in every string and key (in place)."""
    if isinstance(value, str):
        return _clean(value)
    stack = [value]
    while stack:
        item = stack.pop()
        pairs = list(item.items()) if isinstance(item, dict) else list(enumerate(item))
        if isinstance(item, dict):
            item.clear()
        for key, child in pairs:
            if isinstance(child, str):
                child = _clean(child)
            elif isinstance(child, dict | list):
                stack.append(child)
            item[_clean(key) if isinstance(key, str) else key] = child
    return value


def _too_deep(value: Any, limit: int) -> bool:
    """True when containers nest more than ``limit`` deep (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def routing_key(value: Any, max_length: int = MAX_ROUTING_KEY) -> str | None:
    """``value`` when it can name an inbox (a Page id, an agent, a number), else None.

    Routing values go into SQL before a request is authenticated, so only a
    non-empty string of at most ``max_length`` characters without control
    characters passes (PostgreSQL refuses NUL and compares text with numbers only
    by error). Surrounding whitespace is stripped.
    """
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > max_length or not value.isprintable():
        return None
    return value


# --------------------------------------------------------------------------- inbound


@dataclass(frozen=True)
class AttachmentRef:
    """An attachment as the provider hands it over.

    Either ``content`` holds the bytes already (email), or ``url`` must be
    downloaded later with :meth:`Connector.download` (Messenger, Twilio, GBM URLs
    expire, so the worker fetches them promptly).
    """

    kind: str = "file"  # image | video | audio | file | location | fallback | sticker
    url: str | None = None
    content: bytes | None = None
    content_type: str | None = None
    filename: str | None = None
    content_id: str | None = None  # email inline images (cid:)
    title: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. location coordinates


@dataclass(frozen=True)
class InboundMessage:
    """A message the customer sent.

    ``inbox_key`` routes it to an inbox (Page id, phone number, GBM agent, ...);
    ``external_id`` is the provider's unique message id and the dedupe key;
    ``sent_at`` is the time the customer sent it, as the platform reports it
    (timezone-aware UTC); reply windows are counted from it.
    """

    inbox_key: str
    external_id: str
    contact_id: str  # PSID, E.164 number, email address, GBM conversation id
    sent_at: datetime
    text: str = ""
    html: str | None = None
    contact_name: str | None = None
    subject: str | None = None
    attachments: tuple[AttachmentRef, ...] = ()
    kind: str = "message"  # message | postback | quick_reply | suggestion
    reply_to_external_id: str | None = None
    thread_refs: tuple[str, ...] = ()  # email: In-Reply-To + References message ids
    automated: bool = False  # auto-replies, bounces, lists: never answered automatically
    context: dict[str, Any] = field(default_factory=dict)  # referral, locale, quick reply ...
    raw: dict[str, Any] | None = None


@dataclass(frozen=True)
class EchoedOutbound:
    """A message the business side sent, reported back by the platform.

    Either our own send (``metadata`` carries our reference) or one made outside
    Switchboard, e.g. in the Page's own inbox.
    """

    inbox_key: str
    external_id: str
    contact_id: str
    sent_at: datetime
    text: str = ""
    attachments: tuple[AttachmentRef, ...] = ()
    metadata: str | None = None
    app_id: str | None = None


class DeliveryState(str, enum.Enum):
    """Provider delivery states, in the order they may advance."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery or read receipt.

    Names one message by ``external_id``, or every outbound message to the
    contact sent at or before ``watermark`` (Messenger watermarks).
    """

    inbox_key: str
    status: DeliveryState
    external_id: str | None = None
    contact_id: str | None = None
    watermark: datetime | None = None
    error: SendError | None = None


@dataclass(frozen=True)
class OptOut:
    """The customer withdrew consent (SMS STOP and friends)."""

    inbox_key: str
    contact_id: str
    keyword: str
    at: datetime | None = None


@dataclass(frozen=True)
class OptIn:
    """The customer gave consent again (SMS START / UNSTOP)."""

    inbox_key: str
    contact_id: str
    keyword: str
    at: datetime | None = None


@dataclass(frozen=True)
class Typing:
    """The customer started or stopped typing."""

    inbox_key: str
    contact_id: str
    is_typing: bool


@dataclass(frozen=True)
class ConversationContext:
    """Facts about the conversation that are not messages.

    ``requested_live_agent`` (GBM), ``referral`` (Messenger ads/links),
    ``rating`` (GBM survey), ``locale``, ``entry_point`` ... go into ``data``.
    """

    inbox_key: str
    contact_id: str
    data: dict[str, Any]
    external_id: str | None = None  # dedupe key where the provider gives one
    contact_name: str | None = None
    at: datetime | None = None


InboundEvent = (
    InboundMessage | EchoedOutbound | StatusUpdate | OptOut | OptIn | Typing | ConversationContext
)


# --------------------------------------------------------------------------- outbound


class ErrorKind(str, enum.Enum):
    """How the domain should react to a failed send."""

    TRANSIENT = "transient"  # retry with backoff
    WINDOW_CLOSED = "window_closed"  # platform window is over
    OPTED_OUT = "opted_out"  # recipient withdrew consent
    UNDELIVERABLE = "undeliverable"  # recipient can never receive (blocked, landline, gone)
    AUTH_FAILED = "auth_failed"  # inbox credentials invalid: reconnect needed
    PERMANENT = "permanent"  # the request itself is wrong; do not retry
    # No answer after the request went out (read timeout, dropped connection): the provider
    # may have accepted it. Never sent again blindly (see Connector.checks_before_resending).
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SendError:
    """Why a send failed, classified; ``message`` is shown to the agent."""

    kind: ErrorKind
    code: str | None = None
    message: str = ""
    retry_after: float | None = None  # seconds, when the provider says


@dataclass(frozen=True)
class OutboundAttachment:
    """A file to send: a public URL (Messenger, Twilio, GBM) or bytes (email)."""

    filename: str
    content_type: str
    url: str | None = None
    content: bytes | None = None


@dataclass(frozen=True)
class OutboundMessage:
    """One message to deliver to a contact.

    ``reference`` is our stable id for the message (used as Messenger
    ``metadata``, GBM ``messageId``, email ``Message-ID`` seed) and is the same
    on every retry. ``options`` carries channel details the domain decided on,
    e.g. ``{"tag": "HUMAN_AGENT"}`` or email threading headers, and what earlier
    attempts left behind: ``sent_parts`` (provider ids of the parts that went
    out) and ``maybe_sent_since`` (ISO time of an attempt that got no answer).
    """

    contact_id: str
    text: str
    reference: str
    attachments: tuple[OutboundAttachment, ...] = ()
    agent_name: str | None = None
    agent_avatar_url: str | None = None
    subject: str | None = None
    automated: bool = False  # greeting / away: email marks it Auto-Submitted
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    """What the provider answered: ``external_id`` on success, else ``error``.

    ``external_ids`` lists every provider id when one message went out in
    several parts (Messenger text over 2,000 characters).
    """

    external_id: str | None = None
    error: SendError | None = None
    external_ids: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the provider accepted the message."""
        return self.error is None


@dataclass(frozen=True)
class ContactProfile:
    """Display details fetched from the provider (Messenger profile, ...)."""

    name: str | None = None
    avatar_url: str | None = None
    locale: str | None = None
    timezone: str | None = None


@dataclass(frozen=True)
class Downloaded:
    """An attachment's bytes after download."""

    content: bytes
    content_type: str | None = None
    filename: str | None = None


class AttachmentTooLarge(Exception):
    """The attachment exceeds the connector's size cap."""


class DownloadRefused(Exception):
    """The attachment URL, or a redirect on the way, points where we never download from.

    Not a network error: trying again gives the same answer, so it is not retried.
    """


@dataclass(frozen=True)
class MediaHosts:
    """Where a channel's attachments may be downloaded from, always over HTTPS.

    ``sources`` are the hosts an attachment URL may name (credentials from
    :meth:`Connector.download_auth` go only to the URL's own host);
    ``redirects`` are further hosts reachable only through a redirect from
    one of them. ``"*.example.com"`` names every subdomain of example.com.
    """

    sources: tuple[str, ...] = ()
    redirects: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConnectorOptions:
    """Process-wide settings a connector may need (from ``config.py``)."""

    base_urls: dict[str, str] = field(
        default_factory=dict
    )  # e.g. {"graph": "...", "twilio": "..."}
    public_url: str | None = None  # external base URL of this Switchboard
    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    max_attachment_bytes: int = 25 * 1024 * 1024
    # More hosts attachments may come from, trusted as named (a media proxy, a test fake):
    # "host", "*.domain", "host:port"; "http://host" allows plain HTTP for that one.
    attachment_hosts: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigField:
    """One inbox setting a channel needs; ``secret`` ones are never shown."""

    name: str
    required: bool = True
    secret: bool = False
    help: str = ""


class Connector:
    """Base class for a channel connector.

    A subclass sets ``channel`` and ``fields``, and implements ``send``; the
    rest is optional. It is built per inbox from the inbox's ``config`` (a plain
    dict, secrets included) and process-wide ``options``.
    """

    channel: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    fields: ClassVar[tuple[ConfigField, ...]] = ()
    media_hosts: ClassVar[MediaHosts] = MediaHosts()  # where inbound attachments are fetched

    def __init__(
        self,
        config: dict[str, Any],
        options: ConnectorOptions | None = None,
        http: requests.Session | None = None,
    ) -> None:
        self.config = config
        self.options = options or ConnectorOptions()
        self.http = http or requests.Session()

    # -- description -----------------------------------------------------------
    @classmethod
    def secret_fields(cls) -> set[str]:
        """Names of config fields that must never be returned or logged."""
        return {f.name for f in cls.fields if f.secret}

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> list[str]:
        """Return human-readable problems with ``config`` (empty when valid)."""
        return [
            f"{f.name} is required" for f in cls.fields if f.required and not config.get(f.name)
        ]

    @classmethod
    def normalize_contact_id(cls, contact_id: str) -> str:
        """The one spelling a contact's id is stored and looked up by (NFC, trimmed).

        A channel whose ids have more spellings (email addresses: case) extends it.
        """
        return unicodedata.normalize("NFC", str(contact_id or "").strip())

    @classmethod
    def identifiers(cls, config: dict[str, Any]) -> dict[str, Any]:
        """The non-secret values that route webhooks to this inbox."""
        return {
            f.name: config.get(f.name) for f in cls.fields if not f.secret and config.get(f.name)
        }

    # -- inbound: the webhook contract -----------------------------------------
    # The web layer asks these in order: webhook_handshake (a subscription check
    # to answer at once), webhook_route_keys (which inboxes the request names),
    # verify_webhook (per routed inbox, over the raw bytes and the URL called);
    # it stores the raw body, and the intake later calls parse_webhook. A body
    # that cannot be read raises UnreadableBody; nothing here touches a database.
    @classmethod
    def webhook_handshake(cls, body: bytes, args: dict[str, str]) -> tuple[str, str] | None:
        """``(token presented, answer to echo)`` when the request is the provider's
        subscription handshake; None for anything else (channels without one)."""
        return None

    @classmethod
    def accepts_handshake(cls, config: dict[str, Any], token: str) -> bool:
        """True when an inbox with ``config`` owns the handshake's ``token`` (constant time)."""
        return False

    @classmethod
    def webhook_route_keys(cls, body: bytes, args: dict[str, str]) -> list[str]:
        """The route keys (Page ids, agents, numbers ...) the request names, most specific
        first, each a :func:`routing_key` string; raises :class:`UnreadableBody` when the
        body cannot name an inbox."""
        raise UnreadableBody(f"{cls.channel or 'this channel'} takes no routed webhooks")

    def verify_webhook(self, body: bytes, url: str, headers: Any) -> bool:
        """True when the request is authentic for this inbox's config; fails closed."""
        return False

    @classmethod
    def parse_webhook(cls, body: bytes, received_at: datetime) -> list[InboundEvent]:
        """The events of a stored, verified body; raises :class:`UnreadableBody`."""
        raise UnreadableBody(f"{cls.channel or 'this channel'} stores no webhook bodies")

    # -- outbound --------------------------------------------------------------
    def send(self, message: OutboundMessage) -> SendResult:
        """Deliver ``message``; never raises for provider errors, returns them.

        A request that got no answer once it was sent is :attr:`ErrorKind.UNKNOWN`
        (see :func:`never_reached`), never TRANSIENT: sending it again could
        deliver the message twice.
        """
        raise NotImplementedError

    def checks_before_resending(self) -> bool:
        """True when :meth:`send` honours ``options["maybe_sent_since"]``.

        Such a connector first asks the provider whether the unanswered attempt
        went out, answers with it when it did, and sends only when it did not.
        Without this, an UNKNOWN send is left to the agent to decide.
        """
        return False

    def send_action(self, contact_id: str, action: str, **kwargs: Any) -> SendResult:
        """Send a non-message signal (``typing_on``, ``mark_seen``, GBM events).

        Channels without such signals return success and do nothing.
        """
        return SendResult()

    def fetch_profile(self, contact_id: str) -> ContactProfile | None:
        """Fetch the contact's display profile, or None when unsupported/failed."""
        return None

    def download(self, attachment: AttachmentRef) -> Downloaded:
        """Fetch an attachment's bytes from the channel's media hosts, within the size cap.

        Raises :class:`DownloadRefused` when the URL (or a redirect) leads anywhere
        else, :class:`AttachmentTooLarge` past ``options.max_attachment_bytes``.
        """
        if attachment.content is not None:
            return Downloaded(attachment.content, attachment.content_type, attachment.filename)
        if not attachment.url:
            raise ValueError("attachment has neither content nor url")
        return download_url(
            self.http,
            attachment.url,
            self.options,
            auth=self.download_auth(),
            hosts=self.download_hosts(),
        )

    def download_hosts(self) -> MediaHosts:
        """Where this connector's attachments may come from (``media_hosts``)."""
        return self.media_hosts

    def download_auth(self) -> Any:
        """Credentials for attachment downloads (Twilio media needs the account's)."""
        return None


def never_reached(exc: requests.RequestException) -> bool:
    """True when a failed request certainly never reached the provider.

    A refused or timed-out connection or a failed name lookup sent nothing: safe
    to send again. A read timeout, a connection dropped after the request went
    out, a TLS or protocol error on the way: the provider may have accepted it.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return True
    if isinstance(exc, requests.Timeout | requests.exceptions.SSLError):
        return False
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, urllib3.exceptions.MaxRetryError):
            reason = reason.reason
        return isinstance(reason, NewConnectionError | ConnectTimeoutError)
    return False


# --------------------------------------------------------------------------- downloads

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def download_url(
    http: requests.Session,
    url: str,
    options: ConnectorOptions,
    auth: Any = None,
    hosts: MediaHosts | None = None,
) -> Downloaded:
    """GET an attachment from the provider's own hosts, following redirects hop by hop.

    Every hop is checked before it is requested: HTTPS on the default port to a
    host of ``hosts`` (a redirect may also go to ``hosts.redirects``), or a host
    named in ``options.attachment_hosts``. The provider's hosts are then connected
    to through :func:`public_addresses`: the name is resolved once, every
    address must be public, and the connection goes to a checked address, so a
    name that resolves (or re-resolves) to a private, loopback or link-local
    address is refused. ``auth`` goes only to the first URL's own host.
    Raises :class:`DownloadRefused` or :class:`AttachmentTooLarge`.
    """
    hosts = hosts or MediaHosts()
    extras = [e for e in map(_ExtraHost.parse, options.attachment_hosts) if e is not None]
    agent = http.headers.get("User-Agent") or requests.utils.default_user_agent()
    origin = None
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        target = _check_url(current, hosts, extras, redirected=hop > 0)
        origin = origin or target.origin
        session = http if target.trusted else _checked_session()
        headers = {} if target.trusted else {"User-Agent": agent}
        with session.get(
            current,
            auth=auth if target.origin == origin else None,
            headers=headers,
            timeout=options.timeout,
            stream=True,
            allow_redirects=False,
        ) as resp:
            location = resp.headers.get("Location")
            if resp.status_code in _REDIRECTS and location:
                current = urljoin(current, location)
                continue
            resp.raise_for_status()
            return _read_capped(resp, options.max_attachment_bytes)
    raise DownloadRefused(f"Refused to download: more than {MAX_REDIRECTS} redirects")


def fetch_capped(
    http: requests.Session, url: str, options: ConnectorOptions, auth: Any = None
) -> Downloaded:
    """GET a URL the app built itself (its own files), within the size cap.

    Never for a URL that came from outside: those go through :func:`download_url`.
    """
    with http.get(url, auth=auth, timeout=options.timeout, stream=True) as resp:
        resp.raise_for_status()
        return _read_capped(resp, options.max_attachment_bytes)


def _read_capped(resp: requests.Response, cap: int) -> Downloaded:
    """The body of a streamed response, refusing more than ``cap`` bytes."""
    declared = resp.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise AttachmentTooLarge(f"{declared} bytes exceeds the {cap} byte limit")
    chunks, size = [], 0
    for chunk in resp.iter_content(64 * 1024):
        size += len(chunk)
        if size > cap:
            raise AttachmentTooLarge(f"more than {cap} bytes")
        chunks.append(chunk)
    filename = None
    disposition = resp.headers.get("Content-Disposition", "")
    if "filename=" in disposition:
        filename = clean_filename(disposition.split("filename=", 1)[1].strip('"; ')) or None
    ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip() or None
    return Downloaded(b"".join(chunks), ctype, filename)


@dataclass(frozen=True)
class _Target:
    """A URL that passed :func:`_check_url`."""

    origin: tuple[str, str, int]  # scheme, host, port
    trusted: bool  # named in ``attachment_hosts``: fetched as is, addresses not checked


@dataclass(frozen=True)
class _ExtraHost:
    """One ``attachment_hosts`` entry."""

    pattern: str
    port: int | None
    http: bool

    @classmethod
    def parse(cls, entry: str) -> _ExtraHost | None:
        """``[http://|https://]host[:port]``; None for an empty entry."""
        text = str(entry or "").strip().lower().rstrip("/")
        scheme, sep, rest = text.partition("://")
        if not sep:
            scheme, rest = "https", text
        host, _, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
        if not host:
            return None
        return cls(host.strip("[]"), int(port) if port.isdigit() else None, scheme == "http")

    def allows(self, scheme: str, host: str, port: int) -> bool:
        """True for a URL this entry names."""
        if scheme == "http" and not self.http:
            return False
        return _host_matches(host, self.pattern) and port == (self.port or _DEFAULT_PORTS[scheme])


def _host_matches(host: str, pattern: str) -> bool:
    """``host`` is ``pattern``, or a subdomain of it for ``*.domain``."""
    pattern = pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _check_url(url: str, hosts: MediaHosts, extras: list[_ExtraHost], redirected: bool) -> _Target:
    """Where ``url`` leads, or :class:`DownloadRefused` when we must not go there."""
    shown = url[:200] if isinstance(url, str) else repr(url)[:200]
    if not isinstance(url, str) or any(c.isspace() or ord(c) < 32 or c == "\\" for c in url):
        raise DownloadRefused(f"Refused to download a malformed URL: {shown!r}")
    try:  # what requests will connect to, and what the standard library reads: they must agree
        parsed = urllib3.util.parse_url(url)
        split = urlsplit(url)
        split_port = split.port
    except (ValueError, urllib3.exceptions.LocationParseError):
        raise DownloadRefused(f"Refused to download a malformed URL: {shown!r}") from None
    scheme = (parsed.scheme or "").lower()
    host = (parsed.host or "").lower().strip("[]").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        raise DownloadRefused(f"Refused to download {shown!r}: only HTTPS URLs are fetched")
    if parsed.auth or "@" in split.netloc:
        raise DownloadRefused(f"Refused to download from {host}: the URL carries credentials")
    if (split.hostname or "").rstrip(".") != host or split_port != parsed.port:
        raise DownloadRefused(f"Refused to download a malformed URL: {shown!r}")
    port = parsed.port or _DEFAULT_PORTS[scheme]
    if any(extra.allows(scheme, host, port) for extra in extras):
        return _Target((scheme, host, port), trusted=True)
    if scheme != "https":
        raise DownloadRefused(f"Refused to download from {host}: only HTTPS is allowed")
    names = hosts.sources + (hosts.redirects if redirected else ())
    if not any(_host_matches(host, pattern) for pattern in names):
        raise DownloadRefused(f"Refused to download from {host}: not one of the channel's hosts")
    if port != 443:
        raise DownloadRefused(f"Refused to download from {host}:{port}: not the HTTPS port")
    return _Target((scheme, host, port), trusted=False)


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address (not private, loopback, link-local ...)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def public_addresses(host: str, port: int) -> list[tuple]:
    """Resolve ``host`` once: its ``getaddrinfo`` answers, all of them public.

    One private, loopback or link-local answer refuses the name
    (:class:`DownloadRefused`): it could be the one a client picks.
    """
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for answer in answers:
        address = answer[4][0]
        if not is_public_address(address):
            raise DownloadRefused(
                f"Refused to download from {host}: it resolves to {address}, "
                "a private, loopback or link-local address"
            )
    if not answers:
        raise DownloadRefused(f"Refused to download from {host}: it does not resolve")
    return answers


class _CheckedConnectionMixin:
    """Connects only to addresses :func:`public_addresses` checked, from one lookup.

    urllib3 would resolve the name again inside ``create_connection``; here the
    checked address itself is connected to, so DNS cannot answer differently in
    between (rebinding). TLS still verifies the certificate for the host name.
    """

    def _new_conn(self):  # urllib3's hook for opening the socket
        answers = public_addresses(self._dns_host, self.port)
        error: Exception | None = None
        for answer in answers:
            try:
                return urllib3_connection.create_connection(
                    (answer[4][0], self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                error = ConnectTimeoutError(self, f"Connection to {self.host} timed out.")
                error.__cause__ = exc
            except OSError as exc:
                error = NewConnectionError(self, f"Failed to establish a new connection: {exc}")
                error.__cause__ = exc
        raise error


class _CheckedHTTPConnection(_CheckedConnectionMixin, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_CheckedConnectionMixin, HTTPSConnection):
    pass


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class _CheckedAdapter(HTTPAdapter):
    """An HTTP adapter whose connections go only to checked public addresses."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _CheckedHTTPPool,
            "https": _CheckedHTTPSPool,
        }


_checked: requests.Session | None = None
_checked_lock = threading.Lock()


def _checked_session() -> requests.Session:
    """The process's session for provider media: checked addresses, no proxy from the env."""
    global _checked
    with _checked_lock:
        if _checked is None:
            session = requests.Session()
            session.trust_env = False  # a proxy would make the address check meaningless
            session.mount("http://", _CheckedAdapter())
            session.mount("https://", _CheckedAdapter())
            _checked = session
        return _checked


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, type[Connector]] = {}


def register(cls: type[Connector]) -> type[Connector]:
    """Class decorator: make ``cls`` the connector for ``cls.channel``."""
    if not cls.channel:
        raise ValueError("connector class needs a channel name")
    _REGISTRY[cls.channel] = cls
    return cls


def get(channel: str) -> type[Connector]:
    """The connector class for ``channel``; KeyError when none is registered."""
    return _REGISTRY[channel]


def channels() -> list[str]:
    """Registered channel names."""
    return sorted(_REGISTRY)


def replace(obj: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` re-exported for connectors' convenience."""
    return dataclasses.replace(obj, **changes)
