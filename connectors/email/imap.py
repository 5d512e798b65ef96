"""IMAP polling with a UID cursor: nothing missed, nothing re-read, nothing marked seen.

The cursor is a plain dict the domain stores per inbox::

    {"folder": "INBOX", "uidvalidity": 1700000000, "last_uid": 4711}

:meth:`ImapPoller.fetch_new` selects the folder read-only (``EXAMINE``),
searches ``UID last_uid+1:*``, drops UIDs ``<= last_uid`` (a ``n:*`` range
always returns the newest message, even an old one), and fetches the rest in
ascending UID order with ``BODY.PEEK[]`` so ``\\Seen`` is never set. It returns
the raw RFC 822 bytes and the advanced cursor; store the mail, then the cursor.

Decisions:

- **First run** (cursor None, or another folder): everything already in the
  folder is fetched, oldest first, ``limit`` at a time. Call again while a call
  returns ``limit`` messages (``has_more`` on the poller says so too).
- **UIDVALIDITY changed** (folder recreated, server migrated): the old UIDs mean
  nothing, so fetching restarts from the lowest UID. Mail seen before comes
  again; the domain dedupes on Message-ID, so this is safe.
- **Outages**: the cursor only moves when mail was returned, so mail that
  arrived while the server (or we) were down is fetched on the next run.
- **Security** (``imap_security``): ``ssl`` (implicit TLS, the default on port
  993), ``starttls`` (required), ``none``; when unset on another port, STARTTLS
  is used if the server offers it, plain otherwise.

- **Sign-in** (``auth``): ``password`` (default) logs in with ``imap_password``;
  ``oauth`` authenticates with SASL ``XOAUTH2`` and ``oauth_access_token`` (the
  app refreshes it first; ``oauth_error`` says it could not, see :mod:`.oauth`).

Errors (connection, TLS, login, missing folder, protocol) raise
:class:`ImapError` with a message an admin can act on; ``auth_failed`` tells
credential problems apart.
"""

from __future__ import annotations

import contextlib
import email.message
import imaplib
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from imap_tools import MailBox, MailBoxUnencrypted
from imap_tools.errors import MailboxLoginError, UnexpectedCommandStatusError
from imap_tools.message import MailMessage
from imap_tools.utils import encode_folder

from connectors.base import ConnectorOptions
from connectors.email.oauth import xoauth2

__all__ = ["FetchedMail", "ImapError", "ImapPoller"]


class ImapError(Exception):
    """The mailbox could not be read; ``str(err)`` is readable by an admin."""

    def __init__(self, message: str, auth_failed: bool = False, folder: bool = False) -> None:
        super().__init__(message)
        self.auth_failed = auth_failed
        self.folder = folder  # the login worked; the folder is missing or cannot be opened


@dataclass(frozen=True)
class FetchedMail:
    """One message as stored on the server."""

    uid: int
    raw: bytes


class _RawMessage(MailMessage):
    """imap-tools message that keeps the raw bytes and skips its own parsing."""

    def __init__(self, fetch_data: list) -> None:
        raw, uid_data, flag_data = self._get_message_data_parts(fetch_data)
        self._raw_uid_data = uid_data
        self._raw_flag_data = flag_data
        self.raw = raw
        self.obj = email.message.Message()


class ImapPoller:
    """Fetch new mail from one inbox's IMAP folder (see the module docstring)."""

    def __init__(self, config: dict[str, Any], options: ConnectorOptions | None = None) -> None:
        self.config = config
        self.options = options or ConnectorOptions()
        self.host = config.get("imap_host") or ""
        self.port = int(config.get("imap_port") or 993)
        self.user = config.get("imap_user") or config.get("address") or ""
        self.password = config.get("imap_password") or ""
        # "oauth": SASL XOAUTH2 with the access token the app refreshed (see .oauth)
        self.oauth = config.get("auth") == "oauth"
        self.folder = config.get("imap_folder") or "INBOX"
        security = (config.get("imap_security") or "").lower()
        self.security = security or ("ssl" if self.port == 993 else "auto")
        self.timeout = float(self.options.timeout[1])
        self.has_more = False

    # -- connection ------------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context()

    def _open(self):
        if not self.host:
            raise ImapError("No IMAP host is configured for this inbox.")
        if self.oauth and (config_error := self.config.get("oauth_error")):
            transient = self.config.get("oauth_error_kind") == "transient"
            raise ImapError(str(config_error), auth_failed=not transient)
        where = f"{self.host}:{self.port}"
        try:
            if self.security == "ssl":
                box = MailBox(
                    self.host, self.port, timeout=self.timeout, ssl_context=self._ssl_context()
                )
            else:
                box = MailBoxUnencrypted(self.host, self.port, timeout=self.timeout)
                caps = {c.upper() for c in getattr(box.client, "capabilities", ())}
                if self.security == "starttls" or (self.security == "auto" and "STARTTLS" in caps):
                    if "STARTTLS" not in caps:
                        _close(box)
                        raise ImapError(
                            f"The IMAP server {where} does not offer STARTTLS; "
                            "choose imap_security=ssl or none.",
                            auth_failed=True,
                        )
                    box.client.starttls(self._ssl_context())
        except ImapError:
            raise
        except ssl.SSLCertVerificationError as exc:
            raise ImapError(
                f"The IMAP server {where} presented an untrusted certificate: {exc}",
                auth_failed=True,
            ) from exc
        except ssl.SSLError as exc:
            raise ImapError(f"TLS with the IMAP server {where} failed: {exc}") from exc
        except socket.gaierror as exc:
            raise ImapError(f"The IMAP host {self.host!r} was not found: {exc}") from exc
        except TimeoutError as exc:
            raise ImapError(f"Connecting to the IMAP server {where} timed out.") from exc
        except (OSError, imaplib.IMAP4.error) as exc:
            raise ImapError(f"Cannot connect to the IMAP server {where}: {exc}") from exc
        if self.oauth:
            return self._login_oauth(box, where)
        try:
            box.login(self.user, self.password, initial_folder=None)
        except MailboxLoginError as exc:
            _close(box)
            said = _server_text(exc)
            raise ImapError(
                f"The IMAP server {where} refused the login for {self.user!r}"
                + (f": {said}" if said else "."),
                auth_failed=True,
            ) from exc
        except (OSError, imaplib.IMAP4.error, UnexpectedCommandStatusError) as exc:
            _close(box)
            raise ImapError(f"Logging in to the IMAP server {where} failed: {exc}") from exc
        return box

    def _login_oauth(self, box, where: str):
        """``AUTHENTICATE XOAUTH2``; a refused token answers an empty line, then NO."""
        token = self.config.get("oauth_access_token") or ""
        sent: list[bool] = []

        def respond(_challenge: bytes) -> bytes:
            if sent:  # the server's error challenge (base64 JSON): end the exchange
                return b""
            sent.append(True)
            return xoauth2(self.user, token).encode()

        try:
            typ, data = box.client.authenticate("XOAUTH2", respond)
        except imaplib.IMAP4.error as exc:
            _close(box)
            raise ImapError(
                f"The IMAP server {where} refused the sign-in token for {self.user!r}: {exc}",
                auth_failed=True,
            ) from exc
        except OSError as exc:
            _close(box)
            raise ImapError(f"Logging in to the IMAP server {where} failed: {exc}") from exc
        box.login_result = (typ, data)
        return box

    def check(self) -> dict[str, int]:
        """Connect, log in and read the folder status (for "test connection" buttons)."""
        box = self._open()
        try:
            uidvalidity, exists = self._select(box)
            return {"uidvalidity": uidvalidity, "exists": exists}
        finally:
            _close(box)

    def _select(self, box) -> tuple[int, int]:
        try:
            typ, data = box.client.select(encode_folder(self.folder), readonly=True)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise ImapError(
                f"Opening the folder {self.folder!r} failed: {exc}", folder=True
            ) from exc
        if typ != "OK":
            said = b" ".join(d for d in data or [] if isinstance(d, bytes)).decode(
                "utf-8", "replace"
            )
            raise ImapError(
                f"The folder {self.folder!r} does not exist or cannot be opened"
                + (f": {said}" if said else "."),
                folder=True,
            )
        exists = int((data or [b"0"])[0] or 0)
        _, values = box.client.response("UIDVALIDITY")
        values = [v for v in values or [] if v]
        if not values:
            raise ImapError(f"The IMAP server gave no UIDVALIDITY for {self.folder!r}.")
        return int(values[-1]), exists

    # -- polling ---------------------------------------------------------------
    def fetch_new(
        self, cursor: dict[str, Any] | None, limit: int = 200
    ) -> tuple[list[FetchedMail], dict[str, Any]]:
        """Mail after ``cursor`` (oldest first, at most ``limit``) and the new cursor."""
        limit = max(int(limit), 1)
        box = self._open()
        try:
            uidvalidity, exists = self._select(box)
            last_uid = 0
            if (
                cursor
                and cursor.get("folder") == self.folder
                and int(cursor.get("uidvalidity") or 0) == uidvalidity
            ):
                last_uid = int(cursor.get("last_uid") or 0)
            new_cursor = {"folder": self.folder, "uidvalidity": uidvalidity, "last_uid": last_uid}
            if exists == 0:
                self.has_more = False
                return [], new_cursor
            try:
                found = box.uids(f"UID {last_uid + 1}:*", charset=None)
            except (OSError, imaplib.IMAP4.error, UnexpectedCommandStatusError) as exc:
                raise ImapError(f"Searching {self.folder!r} failed: {exc}") from exc
            uids = sorted(int(u) for u in found if u.isdigit() and int(u) > last_uid)
            self.has_more = len(uids) > limit
            batch = uids[:limit]
            mails: list[FetchedMail] = []
            if batch:
                box.email_message_class = _RawMessage
                try:
                    for item in box.fetch(
                        uid_list=[str(u) for u in batch], mark_seen=False, bulk=50
                    ):
                        if item.uid and item.raw:
                            mails.append(FetchedMail(uid=int(item.uid), raw=bytes(item.raw)))
                except (OSError, imaplib.IMAP4.error, UnexpectedCommandStatusError) as exc:
                    raise ImapError(f"Fetching mail from {self.folder!r} failed: {exc}") from exc
            mails.sort(key=lambda m: m.uid)
            if mails:
                new_cursor["last_uid"] = max(m.uid for m in mails)
            return mails, new_cursor
        finally:
            _close(box)


def _server_text(exc: UnexpectedCommandStatusError) -> str:
    """What the server said with a refused command (``[AUTHENTICATIONFAILED] ...``)."""
    data = exc.command_result[1] if len(exc.command_result) > 1 else None
    items = data if isinstance(data, list | tuple) else [data]
    parts = [i.decode("utf-8", "replace") if isinstance(i, bytes) else str(i) for i in items if i]
    return " ".join(parts).strip()


def _close(box) -> None:
    try:
        box.logout()
    except Exception:
        with contextlib.suppress(Exception):
            box.client.shutdown()
