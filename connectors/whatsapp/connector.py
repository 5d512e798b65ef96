"""The WhatsApp connector: sends, mark-as-read, templates, media and live checks over Graph."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests

from connectors.base import (
    AttachmentRef,
    AttachmentTooLarge,
    Check,
    ConfigField,
    Connector,
    Downloaded,
    ErrorKind,
    InboundEvent,
    MediaHosts,
    OutboundAttachment,
    OutboundMessage,
    SendError,
    SendResult,
    download_url,
    never_reached,
    register,
)
from connectors.messenger.hub import MetaWebhooks

from . import outbound as out
from .constants import DEFAULT_GRAPH_URL, DEFAULT_GRAPH_VERSION, MEDIA_PREFIX
from .errors import classify
from .inbound import contact_id, parse, phone_number_ids, read_object

logger = logging.getLogger("connectors.whatsapp")

TEMPLATE_FIELDS = "id,name,language,category,status,components"
MAX_TEMPLATE_PAGES = 5


class _Bearer(requests.auth.AuthBase):
    """``Authorization: Bearer <token>`` (media URLs want the token too)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


@register
class WhatsAppConnector(MetaWebhooks, Connector):
    """One WhatsApp business phone number of a WhatsApp Business Account (Cloud API)."""

    channel = "whatsapp"
    display_name = "WhatsApp"
    # media URLs: https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=...
    media_hosts = MediaHosts(
        sources=("lookaside.fbsbx.com", "*.fbsbx.com"), redirects=("*.fbcdn.net",)
    )
    fields = (
        ConfigField("phone_number_id", help="The business number's id (routes webhooks)."),
        ConfigField("waba_id", help="The WhatsApp Business Account id (templates)."),
        ConfigField("access_token", secret=True, help="A system user token."),
        ConfigField("app_secret", secret=True, help="Meta app secret: webhook signatures."),
        ConfigField("verify_token", secret=True, help="The webhook Verify Token set in Meta."),
    )

    # -- identity ----------------------------------------------------------------
    @classmethod
    def normalize_contact_id(cls, contact: str) -> str:
        """A customer's number in E.164 (``+<wa_id>``)."""
        base = super().normalize_contact_id(contact)
        return contact_id(base) or base

    # -- inbound: the webhook contract -------------------------------------------
    @classmethod
    def webhook_route_keys(cls, body: bytes, args: dict[str, str], kind: str = "") -> list[str]:
        """The business numbers (``value.metadata.phone_number_id``) the body is for."""
        return phone_number_ids(read_object(body))

    @classmethod
    def parse_webhook(
        cls, body: bytes, received_at: datetime, kind: str = ""
    ) -> list[InboundEvent]:
        """Every message and status of the body (the caller keeps its own number's)."""
        return parse(read_object(body))

    # -- outbound ----------------------------------------------------------------
    def send(self, message: OutboundMessage) -> SendResult:
        """A template, or text (split at 4,096 characters) then each file.

        Files are uploaded (``POST /{phone-number-id}/media``) when their bytes are at
        hand, else sent by link. Parts an earlier attempt sent are not sent again.
        """
        refused = self._refusal(message)
        if refused is not None:
            return SendResult(error=refused)
        head = out.envelope(message.contact_id, message.reference)
        template = message.options.get("template")
        parts: list[Any] = (
            [out.template_body(template)]
            if template
            else [*out.text_bodies(message.text), *message.attachments]
        )
        ids = [str(i) for i in message.options.get("sent_parts") or ()][: len(parts)]
        for part in parts[len(ids) :]:
            if isinstance(part, OutboundAttachment):
                media_id, error = self._upload(part) if part.content is not None else (None, None)
                if error is not None:
                    return self._partial(error, ids, len(parts))
                part = out.media_body(part, media_id)
            data, error = self._call(
                "POST", f"{self._number()}/messages", json_body={**head, **part}
            )
            messages = (data or {}).get("messages") if error is None else None
            wamid = messages[0].get("id") if isinstance(messages, list) and messages else None
            if error is None and not wamid:
                error = SendError(ErrorKind.PERMANENT, "no_message_id", "Meta sent no message id")
            if error is not None:
                return self._partial(error, ids, len(parts))
            ids.append(str(wamid))
        return SendResult(external_id=ids[0], external_ids=tuple(ids))

    @staticmethod
    def _partial(error: SendError, ids: list[str], total: int) -> SendResult:
        extra = {"sent_external_ids": list(ids), "parts_sent": len(ids), "parts_total": total}
        return SendResult(error=error, extra=extra)

    def send_action(self, contact_id: str, action: str, **kwargs: Any) -> SendResult:
        """``mark_read``: blue ticks on the customer's message ``message_id`` (and before)."""
        message_id = kwargs.get("message_id")
        if action != "mark_read" or not message_id:
            return SendResult()
        _, error = self._call(
            "POST", f"{self._number()}/messages", json_body=out.read_body(str(message_id))
        )
        return SendResult(error=error)

    def download(self, attachment: AttachmentRef) -> Downloaded:
        """A customer's file: ``GET /{media-id}`` for its URL, then the URL with the token."""
        url = attachment.url or ""
        if not url.startswith(MEDIA_PREFIX):
            return super().download(attachment)
        media_id = url[len(MEDIA_PREFIX) :]
        data, error = self._call("GET", quote(media_id, safe=""))
        if error is not None or not isinstance((data or {}).get("url"), str):
            why = error.message if error is not None else "no URL in Meta's answer"
            raise RuntimeError(f"WhatsApp media {media_id} could not be looked up: {why}")
        size = _int((data or {}).get("file_size"))
        if size is not None and size > self.options.max_attachment_bytes:
            raise AttachmentTooLarge(f"{size} bytes (limit {self.options.max_attachment_bytes})")
        got = download_url(
            self.http,
            data["url"],
            self.options,
            auth=_Bearer(self._token()),
            hosts=self.download_hosts(),
        )
        return Downloaded(got.content, data.get("mime_type") or got.content_type, got.filename)

    # -- templates -----------------------------------------------------------------
    def fetch_templates(self) -> tuple[list[dict[str, Any]] | None, SendError | None]:
        """The account's templates (``GET /{waba-id}/message_templates``), every status."""
        waba = quote(str(self.config.get("waba_id") or ""), safe="")
        found: list[dict[str, Any]] = []
        params: dict[str, str] = {"fields": TEMPLATE_FIELDS, "limit": "100"}
        for _ in range(MAX_TEMPLATE_PAGES):
            data, error = self._call("GET", f"{waba}/message_templates", params=params)
            if error is not None:
                return None, error
            found += [t for t in map(out.template_summary, (data or {}).get("data") or ()) if t]
            after = (((data or {}).get("paging") or {}).get("cursors") or {}).get("after")
            if not after or not ((data or {}).get("paging") or {}).get("next"):
                break
            params = {**params, "after": str(after)}
        return found, None

    # -- set-up ------------------------------------------------------------------
    def check_credentials(self) -> list[Check]:
        """The token reads the phone number (``GET /{phone-number-id}``); the WABA's
        subscribed apps where the token may read them."""
        if not self._token():
            return [Check("access_token", False, "The inbox has no access token.", "access_token")]
        data, error = self._call(
            "GET", self._number(), params={"fields": "display_phone_number,verified_name"}
        )
        if error is not None:
            if error.kind is ErrorKind.AUTH_FAILED:
                return [
                    Check(
                        "access_token",
                        False,
                        f"Meta refused the token: {error.message}",
                        "access_token",
                    )
                ]
            if error.kind in (ErrorKind.TRANSIENT, ErrorKind.UNKNOWN):
                return [Check("phone_number", False, f"Meta could not be reached: {error.message}")]
            text = f"The phone number id could not be read: {error.message}"
            return [Check("phone_number", False, text, "phone_number_id")]
        shown = (data or {}).get("display_phone_number") or self._number()
        name = (data or {}).get("verified_name")
        checks = [
            Check("access_token", True, "Meta accepted the access token."),
            Check(
                "phone_number",
                True,
                f"The phone number {shown}" + (f" ({name})" if name else "") + " is readable.",
            ),
        ]
        return checks + [self._subscription_check()]

    def _subscription_check(self) -> Check:
        """Whether an app is subscribed to the WABA's webhooks (a warning when unreadable)."""
        waba = quote(str(self.config.get("waba_id") or ""), safe="")
        data, error = self._call("GET", f"{waba}/subscribed_apps")
        if error is not None:
            text = f"Could not read the account's subscribed apps ({error.message})."
            return Check("subscription", True, text, "waba_id", warning=True)
        if not (data or {}).get("data"):
            text = "No app is subscribed to this WhatsApp Business Account's webhooks yet."
            return Check("subscription", True, text, "waba_id", warning=True)
        return Check("subscription", True, "The account's webhooks are subscribed.")

    def provision(self, urls: dict[str, str]) -> list[Check]:
        """Subscribe the app to the account's webhooks: ``POST /{waba-id}/subscribed_apps``."""
        waba = quote(str(self.config.get("waba_id") or ""), safe="")
        data, error = self._call("POST", f"{waba}/subscribed_apps")
        if error is None and (data or {}).get("success") is not False:
            return [Check("subscription", True, "The app is subscribed to the account's webhooks.")]
        why = error.message if error is not None else "Meta said no"
        text = f"Meta refused to subscribe the app to the account ({why})."
        return [Check("subscription", True, text, "waba_id", warning=True)]

    # -- helpers -----------------------------------------------------------------
    def _refusal(self, message: OutboundMessage) -> SendError | None:
        """Why ``message`` must not go out at all (checked before any HTTP call)."""
        if not message.contact_id:
            return SendError(ErrorKind.PERMANENT, "no_recipient", "The message has no recipient")
        template = message.options.get("template")
        if template is not None and not (isinstance(template, dict) and template.get("name")):
            return SendError(ErrorKind.PERMANENT, "bad_template", "The template has no name")
        if not template and not out.text_bodies(message.text) and not message.attachments:
            return SendError(ErrorKind.PERMANENT, "empty", "The message has no text or file")
        if any(a.content is None and not a.url for a in message.attachments):
            text = "A file has neither bytes nor a link to send"
            return SendError(ErrorKind.PERMANENT, "attachment_without_url", text)
        if not self._token():
            return SendError(ErrorKind.AUTH_FAILED, "no_token", "The inbox has no access token")
        return None

    def _token(self) -> str:
        return str(self.config.get("access_token") or "")

    def _number(self) -> str:
        return quote(str(self.config.get("phone_number_id") or ""), safe="")

    def _url(self, path: str) -> str:
        """``{base}/{version}/{path}``: ``WHATSAPP_GRAPH_URL`` and the Graph version."""
        base = self.options.base_urls.get("whatsapp_graph", DEFAULT_GRAPH_URL).rstrip("/")
        version = str(self.options.extra.get("messenger_graph_version", DEFAULT_GRAPH_VERSION))
        return f"{base}/{version.strip('/')}/{path}"

    def _upload(self, attachment: OutboundAttachment) -> tuple[str | None, SendError | None]:
        """Upload a file's bytes; its media id to send it by."""
        files = {
            "file": (attachment.filename, attachment.content, attachment.content_type),
        }
        form = {"messaging_product": "whatsapp", "type": attachment.content_type}
        data, error = self._call("POST", f"{self._number()}/media", data=form, files=files)
        media_id = (data or {}).get("id") if error is None else None
        if error is None and not media_id:
            error = SendError(ErrorKind.PERMANENT, "no_media_id", "Meta sent no media id")
        return (str(media_id) if media_id else None), error

    def _call(
        self,
        method: str,
        path: str,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any] | None, SendError | None]:
        """One Graph request with the token: (JSON, None), or (JSON or None, error)."""
        try:
            resp = self.http.request(
                method,
                self._url(path),
                params=params,
                json=json_body,
                headers={"Authorization": f"Bearer {self._token()}"},
                timeout=self.options.timeout,
                **kwargs,
            )
        except requests.RequestException as exc:
            name = type(exc).__name__
            if never_reached(exc):
                logger.warning("whatsapp: Graph %s %s not reached: %s", method, path, name)
                text = f"Could not reach the WhatsApp Cloud API ({name})"
                return None, SendError(ErrorKind.TRANSIENT, "network", text)
            text = (
                f"WhatsApp did not answer ({name}): the message may or may not have been "
                "delivered. Check with the customer before sending it again."
            )
            return None, SendError(ErrorKind.UNKNOWN, "no_answer", text)
        try:
            data = resp.json()
        except ValueError:
            data = None
        if 200 <= resp.status_code < 300 and isinstance(data, dict) and "error" not in data:
            return data, None
        if 200 <= resp.status_code < 300 and data is None:
            return None, SendError(
                ErrorKind.PERMANENT, "bad_response", "Meta answered without JSON"
            )
        return (data if isinstance(data, dict) else None), classify(
            resp.status_code, data, resp.headers
        )


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
