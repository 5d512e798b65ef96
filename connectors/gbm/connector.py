"""The GBM connector: sending messages, events and surveys with a bearer token."""

from __future__ import annotations

import hmac
import logging
import threading
import uuid
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.oauth2 import service_account

from connectors.base import (
    Check,
    ConfigField,
    Connector,
    ErrorKind,
    InboundEvent,
    MediaHosts,
    OutboundMessage,
    SendResult,
    UnreadableBody,
    read_json,
    register,
)

from .auth import (
    _CREDENTIALS,
    _CREDENTIALS_LOCK,
    _cache_key,
    _CachedCredentials,
    _forget_credentials,
    _TokenRequest,
    load_service_account,
)
from .constants import (
    _ACTION_ALIASES,
    _AGENT_RE,
    DEFAULT_BASE_URL,
    EVENT_TYPES,
    MESSAGE_ID_NAMESPACE,
    SCOPES,
)
from .inbound import agent_of, check_signature, handshake, parse
from .outbound import (
    _attachment_content,
    _classify,
    _failed,
    _first_arg,
    _is_failed_precondition,
    _representative,
)

log = logging.getLogger("connectors.gbm")


# --------------------------------------------------------------------------- connector


@register
class GbmConnector(Connector):
    """Google Business Messages agent as an inbox (protocol archived; see module doc)."""

    channel: ClassVar[str] = "gbm"
    display_name: ClassVar[str] = "Google Business Messages"
    # customers' images: signed Cloud Storage URLs; image objects may name Google's image CDN
    media_hosts: ClassVar[MediaHosts] = MediaHosts(
        sources=("storage.googleapis.com", "*.googleusercontent.com")
    )
    fields: ClassVar[tuple[ConfigField, ...]] = (
        ConfigField("agent", help="The agent's resource name: brands/BRAND_ID/agents/AGENT_ID"),
        ConfigField(
            "client_token",
            secret=True,
            help="Client token from the webhook settings: handshake check and signature key",
        ),
        ConfigField(
            "service_account",
            secret=True,
            help="Service-account JSON (dict or JSON string) with the businessmessages scope",
        ),
        ConfigField(
            "partner_key",
            required=False,
            secret=True,
            help="Partner key that older agents' webhooks were signed with",
        ),
    )

    # module-level helpers, reachable from the class as well
    handshake = staticmethod(handshake)
    check_signature = staticmethod(check_signature)
    agent_of = staticmethod(agent_of)
    parse = staticmethod(parse)

    # -- description -----------------------------------------------------------
    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> list[str]:
        """Required fields, plus the agent name's shape and a usable service account."""
        problems = super().validate_config(config)
        agent = config.get("agent")
        if agent and not (isinstance(agent, str) and _AGENT_RE.match(agent)):
            problems.append("agent must look like brands/BRAND_ID/agents/AGENT_ID")
        if config.get("service_account"):
            try:
                load_service_account(config["service_account"])
            except ValueError as exc:
                problems.append(str(exc))
        return problems

    @classmethod
    def signature_keys(cls, config: dict[str, Any]) -> list[str]:
        """The keys an ``X-Goog-Signature`` may be made with for this inbox."""
        return [k for k in (config.get("client_token"), config.get("partner_key")) if k]

    # -- inbound helpers ---------------------------------------------------------
    def verify_handshake(self, payload: Any) -> str | None:
        """The secret to echo when ``payload`` is a handshake for this inbox's token."""
        found = handshake(payload)
        token = self.config.get("client_token")
        if not found or not isinstance(token, str) or not token:
            return None
        if not hmac.compare_digest(found[0].encode(), token.encode()):
            return None
        return found[1]

    def verify_signature(self, raw_body: bytes, header: str | None) -> bool:
        """:func:`check_signature` with this inbox's client token and partner key."""
        return check_signature(raw_body, header, self.signature_keys(self.config))

    # -- inbound: the webhook contract (see connectors.base.Connector) ------------
    @classmethod
    def webhook_handshake(cls, body: bytes, args: dict[str, str]) -> tuple[str, str] | None:
        """Google's handshake body: ``(clientToken, secret)``; the secret is echoed."""
        try:
            payload = read_json(body)
        except UnreadableBody:
            return None
        return handshake(payload)

    @classmethod
    def accepts_handshake(cls, config: dict[str, Any], token: str) -> bool:
        """The inbox's client token is the one presented (constant time)."""
        own = config.get("client_token")
        if not isinstance(own, str) or not own or not isinstance(token, str) or not token:
            return False
        return hmac.compare_digest(own.encode(), token.encode())

    @classmethod
    def webhook_route_keys(cls, body: bytes, args: dict[str, str], kind: str = "") -> list[str]:
        """The ``agent`` the event is for (:func:`agent_of`)."""
        return [agent_of(read_json(body))]

    def verify_webhook(self, body: bytes, url: str, headers: Any) -> bool:
        """``X-Goog-Signature`` with the client token (or partner key)."""
        return self.verify_signature(body, headers.get("X-Goog-Signature"))

    @classmethod
    def parse_webhook(
        cls, body: bytes, received_at: datetime, kind: str = ""
    ) -> list[InboundEvent]:
        """The events of a body that names an agent."""
        payload = read_json(body)
        agent_of(payload)
        return parse(payload)

    # -- outbound --------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The Business Messages API base (``options.base_urls["gbm"]``)."""
        return self.options.base_urls.get("gbm", DEFAULT_BASE_URL).rstrip("/")

    @staticmethod
    def message_id(reference: str, part: int = 0, *, fallback: bool = False) -> str:
        """The deterministic ``messageId`` for one part of our message ``reference``.

        Part 0 is the text; attachment *i* (sent as its own message) is part *i + 1*;
        ``fallback`` marks the plain-text resend after FAILED_PRECONDITION. A retry
        of the same reference reuses the same ids, so Google can spot the duplicate.
        """
        seed = reference if part == 0 else f"{reference}#{part}"
        if fallback:
            seed += "#fallback"
        return str(uuid.uuid5(MESSAGE_ID_NAMESPACE, seed))

    def send(self, message: OutboundMessage) -> SendResult:
        """Send text and attachments as one GBM message each; never raises.

        Text goes first, then each attachment by URL (images as ``image``, other
        files as a link in text). ``external_id`` is the first part's messageId;
        ``external_ids`` lists all of them.
        """
        missing_url = [a.filename for a in message.attachments if not a.url]
        if missing_url:
            return _failed(
                ErrorKind.PERMANENT,
                "attachment_url_required",
                "Google Business Messages sends attachments by public URL only",
            )
        parts = self._message_parts(message)
        if not parts:
            return _failed(ErrorKind.PERMANENT, "empty_message", "Nothing to send")
        sent: list[str] = []
        for number, content, fallback_text in parts:
            result = self._send_part(message, number, content, fallback_text)
            if result.error:
                return SendResult(error=result.error, external_ids=tuple(sent))
            sent.append(result.external_id or "")
        return SendResult(external_id=sent[0], external_ids=tuple(sent))

    def send_action(self, contact_id: str, action: str, **kwargs: Any) -> SendResult:
        """Send a GBM event or an agent read receipt.

        ``action``: ``REPRESENTATIVE_JOINED``, ``REPRESENTATIVE_LEFT``,
        ``TYPING_STARTED``, ``TYPING_STOPPED`` (``agent_name``, ``agent_avatar_url``,
        ``automated`` keywords fill the representative), or ``mark_read`` with
        ``message_id`` (the customer's message). ``typing_on`` / ``typing_off`` /
        ``mark_seen`` are accepted as aliases; other actions are no-ops.
        """
        name = _ACTION_ALIASES.get(action, action)
        if name.upper() in EVENT_TYPES:
            body = {
                "eventType": name.upper(),
                "representative": _representative(
                    kwargs.get("agent_name"),
                    kwargs.get("agent_avatar_url"),
                    bool(kwargs.get("automated")),
                ),
            }
            url = f"{self._conversation_url(contact_id)}/events"
            return self._call("POST", url, body, params={"eventId": str(uuid.uuid4())})
        if name == "mark_read":
            message_id = kwargs.get("message_id") or kwargs.get("external_id")
            if not message_id:
                return _failed(
                    ErrorKind.PERMANENT, "message_id_required", "mark_read needs message_id"
                )
            url = f"{self._conversation_url(contact_id)}/messages/{quote(str(message_id), safe='')}/receipt"
            return self._call("PATCH", url, {"receiptType": "READ"})
        log.debug("gbm: action %r not supported; ignored", action)
        return SendResult()

    # -- set-up ------------------------------------------------------------------
    def check_credentials(self) -> list[Check]:
        """The service account mints an access token for the businessmessages scope.

        Google closed Business Messages in 2024: agents cannot be looked up any more,
        so the agent is only checked for its shape (``validate_config``).
        """
        try:
            info = load_service_account(self.config.get("service_account"))
            self._access_token(info)
        except google.auth.exceptions.TransportError as exc:
            return [Check("service_account", False, f"Google's token endpoint: {exc}")]
        except google.auth.exceptions.RefreshError as exc:
            text = f"Google refused the service account: {_first_arg(exc)}"
            return [Check("service_account", False, text, "service_account")]
        except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            return [Check("service_account", False, f"Service account: {exc}", "service_account")]
        email = info.get("client_email")
        return [Check("service_account", True, f"The service account {email} got an access token.")]

    # -- internals -------------------------------------------------------------
    def _conversation_url(self, contact_id: str) -> str:
        """``{base}/v1/conversations/{id}`` with the id escaped as one path segment."""
        return f"{self.base_url}/v1/conversations/{quote(str(contact_id), safe='')}"

    def _message_parts(self, message: OutboundMessage) -> list[tuple[int, dict[str, Any], str]]:
        """``(part number, content, fallback text)`` per GBM message, in sending order.

        The text is part 0 and attachment *i* is part *i + 1*, whether or not
        there is text, so each part's messageId depends only on what it is.
        """
        parts: list[tuple[int, dict[str, Any], str]] = []
        if message.text:
            parts.append((0, {"text": message.text}, message.text))
        for number, attachment in enumerate(message.attachments, start=1):
            parts.append((number, *_attachment_content(attachment)))
        return parts

    def _send_part(
        self, message: OutboundMessage, index: int, content: dict[str, Any], fallback_text: str
    ) -> SendResult:
        url = f"{self._conversation_url(message.contact_id)}/messages"
        representative = _representative(
            message.agent_name, message.agent_avatar_url, message.automated
        )
        message_id = self.message_id(message.reference, index)
        body = {"messageId": message_id, "representative": representative}
        body.update(content)
        body["fallback"] = fallback_text
        result = self._call("POST", url, body)
        if _is_failed_precondition(result):
            # the device cannot render this content: send the fallback as plain text
            log.info("gbm: %s rejected with FAILED_PRECONDITION; sending the fallback", message_id)
            message_id = self.message_id(message.reference, index, fallback=True)
            body = {
                "messageId": message_id,
                "representative": representative,
                "text": fallback_text,
                "fallback": fallback_text,
            }
            result = self._call("POST", url, body)
        if result.error:
            return result
        return SendResult(external_id=message_id)

    def _call(
        self,
        method: str,
        url: str,
        body: dict[str, Any],
        params: dict[str, str] | None = None,
    ) -> SendResult:
        """One authorised API call, classified into a SendResult."""
        try:
            info = load_service_account(self.config.get("service_account"))
        except ValueError as exc:
            return _failed(ErrorKind.AUTH_FAILED, "service_account", f"{exc}: reconnect needed")
        try:
            token = self._access_token(info)
        except google.auth.exceptions.TransportError as exc:
            return _failed(ErrorKind.TRANSIENT, "token_unreachable", f"Token endpoint: {exc}")
        except google.auth.exceptions.RefreshError as exc:
            kind = ErrorKind.TRANSIENT if exc.retryable else ErrorKind.AUTH_FAILED
            return _failed(kind, "token_refresh", f"Service account rejected: {_first_arg(exc)}")
        except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            return _failed(ErrorKind.AUTH_FAILED, "service_account", f"Service account: {exc}")
        try:
            resp = self.http.request(
                method,
                url,
                json=body,
                params=params,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.options.timeout,
            )
        except requests.RequestException as exc:
            return _failed(ErrorKind.TRANSIENT, "network", f"{type(exc).__name__}: {exc}")
        if 200 <= resp.status_code < 300:
            return SendResult(external_id=body.get("messageId"))
        error = _classify(resp)
        if (
            resp.status_code == 409
            and error.code in ("ALREADY_EXISTS", "409")
            and body.get("messageId")
        ):
            # the same messageId was accepted before: a retry of a sent message
            return SendResult(external_id=body["messageId"])
        if error.kind is ErrorKind.AUTH_FAILED:
            _forget_credentials(info)
        return SendResult(error=error)

    def _access_token(self, info: dict[str, Any]) -> str:
        """A valid bearer token for ``info``, cached per service-account key."""
        key = _cache_key(info)
        with _CREDENTIALS_LOCK:
            entry = _CREDENTIALS.get(key)
            if entry is None:
                try:
                    creds = service_account.Credentials.from_service_account_info(
                        info, scopes=list(SCOPES)
                    )
                except Exception as exc:  # bad PEM, wrong key type ... all mean "reconnect"
                    raise ValueError(f"unusable private key ({type(exc).__name__})") from exc
                entry = _CachedCredentials(creds, threading.Lock())
                _CREDENTIALS[key] = entry
        with entry.lock:
            if not entry.credentials.valid:
                entry.credentials.refresh(_TokenRequest(self.http, self.options.timeout))
            return str(entry.credentials.token)
