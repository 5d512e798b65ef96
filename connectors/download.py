"""Attachment downloads that go only where the channel's media lives, and send failures.

:func:`download_url` fetches an inbound attachment from the provider's own
hosts (:class:`MediaHosts`), checking every redirect hop and connecting only to
public addresses checked once per lookup (no private, loopback or link-local
targets, no DNS rebinding), within the size cap. :func:`never_reached` tells a
connector whether a failed request may have reached the provider. The names
used by connectors are re-exported from :mod:`connectors.base`.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from connectors.filenames import clean_filename

if TYPE_CHECKING:
    from connectors.base import ConnectorOptions


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
