"""The Messenger connector: sending, sender actions, profiles and attachment downloads over the Graph API."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from connectors.base import (
    Check,
    ConfigField,
    Connector,
    ContactProfile,
    ErrorKind,
    InboundEvent,
    MediaHosts,
    OutboundMessage,
    SendError,
    SendResult,
    never_reached,
    register,
)

from .constants import (
    DEFAULT_GRAPH_URL,
    DEFAULT_GRAPH_VERSION,
    HUMAN_AGENT_TAG,
    MAX_METADATA_LENGTH,
    PROFILE_FIELDS,
    RETIRED_TAGS,
    SENDER_ACTIONS,
    USER_REF_PREFIX,
)
from .errors import classify_graph_error
from .hub import MetaWebhooks
from .inbound import (
    _object,
    appsecret_proof,
    check_signature,
    id_text,
    is_own_echo,
    page_ids,
    parse,
    verify_token_matches,
)
from .outbound import _attachment_body, _recipient, _tag, split_text

logger = logging.getLogger("connectors.messenger")


@register
class MessengerConnector(MetaWebhooks, Connector):
    """One Facebook Page: sends through the Graph Send API with the Page token."""

    channel = "messenger"
    display_name = "Facebook Messenger"
    # attachment URLs: scontent.xx.fbcdn.net, video.xx.fbcdn.net, cdn.fbsbx.com, lookaside.fbsbx.com
    media_hosts = MediaHosts(sources=("*.fbcdn.net", "*.fbsbx.com"))
    fields = (
        ConfigField("page_id", help="The Facebook Page id (routes webhooks to this inbox)."),
        ConfigField("page_token", secret=True, help="Page access token with pages_messaging."),
        ConfigField(
            "app_secret", secret=True, help="Meta app secret: signatures, appsecret_proof."
        ),
        ConfigField("verify_token", secret=True, help="The webhook Verify Token set in Meta."),
        ConfigField(
            "human_agent",
            required=False,
            help="true when the app has the HUMAN_AGENT tag: 7-day window for human replies.",
        ),
        ConfigField(
            "app_id", required=False, help="Our Meta app id, to recognise echoes of our own sends."
        ),
    )

    # What a Meta messaging product built on the Send API changes (Instagram subclasses)
    token_field: ClassVar[str] = "page_token"  # the setting holding the access token
    graph_key: ClassVar[str] = "messenger_graph"  # ConnectorOptions.base_urls key
    default_graph_url: ClassVar[str] = DEFAULT_GRAPH_URL
    product: ClassVar[str] = "Messenger"  # how texts name the platform
    app_place: ClassVar[str] = "Facebook"  # where an agent can look at the conversation
    token_label: ClassVar[str] = "Page token"
    sends_proof: ClassVar[bool] = True  # appsecret_proof with every call
    sends_metadata: ClassVar[bool] = True  # our reference echoed back in message.metadata
    profile_fields: ClassVar[str] = PROFILE_FIELDS

    # Module functions, reachable from the class too.
    verify_token_matches = staticmethod(verify_token_matches)
    check_signature = staticmethod(check_signature)
    page_ids = staticmethod(page_ids)
    parse = staticmethod(parse)
    is_own_echo = staticmethod(is_own_echo)

    # -- inbound: the webhook contract (see connectors.base.Connector) ------------
    @classmethod
    def webhook_route_keys(cls, body: bytes, args: dict[str, str], kind: str = "") -> list[str]:
        """The Page ids (``entry[].id``) of a body that is a JSON object."""
        return page_ids(_object(body))

    @classmethod
    def parse_webhook(
        cls, body: bytes, received_at: datetime, kind: str = ""
    ) -> list[InboundEvent]:
        """Every event of the batch (the caller keeps those of its verified Pages)."""
        return parse(_object(body))

    # -- outbound --------------------------------------------------------------
    def send(self, message: OutboundMessage) -> SendResult:
        """Send text (split past 2,000 characters) then each attachment by URL.

        Every part must succeed; on failure the result carries the error and, in
        ``extra``, the ids of the parts already sent (``sent_external_ids``). The
        parts an earlier attempt sent (``options["sent_parts"]``) are not sent again.
        Graph has no look-up of a message by our metadata, so a send that got no
        answer is returned as UNKNOWN for the agent to decide.
        """
        refused = self._refusal(message)
        if refused is not None:
            return SendResult(error=refused)
        envelope: dict[str, Any] = {"recipient": _recipient(message.contact_id)}
        tag = _tag(message)
        if tag:
            envelope.update(messaging_type="MESSAGE_TAG", tag=tag)
        else:
            envelope["messaging_type"] = "RESPONSE"
        metadata = (message.reference or "")[:MAX_METADATA_LENGTH] if self.sends_metadata else ""
        bodies: list[dict[str, Any]] = [{"text": part} for part in split_text(message.text)]
        bodies += [{"attachment": _attachment_body(a)} for a in message.attachments]
        ids = [str(mid) for mid in message.options.get("sent_parts") or ()][: len(bodies)]
        for body in bodies[len(ids) :]:
            if metadata:
                body["metadata"] = metadata
            data, error = self._call("POST", "me/messages", json_body={**envelope, "message": body})
            mid = id_text(data.get("message_id")) if data else None
            if error is None and not mid:
                error = SendError(ErrorKind.PERMANENT, "no_message_id", "Graph sent no message_id")
            if error is not None:
                extra = {"sent_external_ids": list(ids), "parts_sent": len(ids)}
                return SendResult(error=error, extra={**extra, "parts_total": len(bodies)})
            ids.append(mid)
        return SendResult(external_id=ids[0], external_ids=tuple(ids))

    def send_action(self, contact_id: str, action: str, **kwargs: Any) -> SendResult:
        """Send ``typing_on``, ``typing_off`` or ``mark_seen`` (recipient + action only)."""
        if action not in SENDER_ACTIONS:
            message = f"{self.product} has no sender action {action!r}"
            return SendResult(error=SendError(ErrorKind.PERMANENT, "unsupported_action", message))
        problem = self._credentials_problem()
        if problem is not None:
            return SendResult(error=problem)
        body = {"recipient": _recipient(contact_id), "sender_action": action}
        _, error = self._call("POST", "me/messages", json_body=body)
        return SendResult(error=error)

    def fetch_profile(self, contact_id: str) -> ContactProfile | None:
        """The contact's name and picture from the Graph user profile; None on any error."""
        if not contact_id or contact_id.startswith(USER_REF_PREFIX):
            return None
        if self._credentials_problem() is not None:
            return None
        data, error = self._call(
            "GET", quote(contact_id, safe=""), params={"fields": self.profile_fields}
        )
        if error is not None or not data:
            return None
        first, last = data.get("first_name"), data.get("last_name")
        name = data.get("name") or " ".join(p for p in (first, last) if isinstance(p, str) and p)
        name = name or data.get("username")
        timezone = data.get("timezone")
        return ContactProfile(
            name=name if isinstance(name, str) and name else None,
            avatar_url=data.get("profile_pic")
            if isinstance(data.get("profile_pic"), str)
            else None,
            locale=data.get("locale") if isinstance(data.get("locale"), str) else None,
            timezone=None if timezone is None else str(timezone),
        )

    # -- set-up ------------------------------------------------------------------
    def check_credentials(self) -> list[Check]:
        """The Page token: valid (``GET /me``), for the configured Page, with ``pages_messaging``.

        The permission is read with ``GET /debug_token`` (``data.scopes``): with the app
        token ``app_id|app_secret`` when the app id is known, else the Page token
        inspecting itself. Permissions that cannot be read are a warning, not a failure.
        """
        if self._credentials_problem() is not None:
            return [Check("page_token", False, "The inbox has no Page token.", "page_token")]
        page_id = str(self.config.get("page_id") or "")
        data, error = self._call("GET", "me", params={"fields": "id,name"})
        if error is not None:
            return [_refused("page_token", "The Page token was refused by Meta", error)]
        got, name = id_text((data or {}).get("id")), str((data or {}).get("name") or "")
        if got != page_id:
            text = (
                f"The token belongs to {name or 'another Page'} ({got}), not to the Page {page_id}."
            )
            return [Check("page_id", False, text, "page_id")]
        checks = [Check("page_token", True, f"The Page token is valid for {name or got} ({got}).")]
        return checks + self._permission_checks()

    def _permission_checks(self) -> list[Check]:
        """``pages_messaging`` granted (and the app id the token was made for)."""
        token, app_id = str(self.config.get("page_token") or ""), self.config.get("app_id")
        if app_id:
            params = {"input_token": token, "access_token": f"{app_id}|{self.config['app_secret']}"}
            data, error = self._call("GET", "debug_token", params=params, page_auth=False)
        else:
            data, error = self._call("GET", "debug_token", params={"input_token": token})
        info = (data or {}).get("data") if error is None else None
        if not isinstance(info, dict):
            why = error.message if error is not None else "Meta answered without token data"
            text = f"Could not read the token's permissions ({why}); check pages_messaging."
            return [Check("permissions", True, text, "page_token", warning=True)]
        if info.get("is_valid") is False:
            text = (info.get("error") or {}).get("message") or "Meta says the token is not valid."
            return [
                Check("permissions", False, f"The Page token is not valid: {text}", "page_token")
            ]
        scopes = [str(s) for s in info.get("scopes") or ()]
        if "pages_messaging" not in scopes:
            has = ", ".join(scopes) or "none"
            text = f"The Page token lacks the pages_messaging permission (it has: {has})."
            return [Check("permissions", False, text, "page_token")]
        checks = [Check("permissions", True, "The token has the pages_messaging permission.")]
        made_for = id_text(info.get("app_id"))
        if app_id and made_for and made_for != str(app_id):
            text = (
                f"The token was made for the app {made_for}, not {app_id}: echoes may be misread."
            )
            checks.append(Check("app_id", True, text, "app_id", warning=True))
        return checks

    def provision(self, urls: dict[str, str]) -> list[Check]:
        """Subscribe the Page to the app's webhook fields: ``POST /{page-id}/subscribed_apps``."""
        fields = urls.get("subscribed_fields") or ""
        page_id = quote(str(self.config.get("page_id") or ""), safe="")
        data, error = self._call(
            "POST", f"{page_id}/subscribed_apps", params={"subscribed_fields": fields}
        )
        if error is None and (data or {}).get("success") is not False:
            return [Check("subscription", True, f"The Page is subscribed to the app ({fields}).")]
        text = (
            "Meta refused to subscribe the Page to the app (the token needs pages_manage_metadata)"
        )
        return [_refused("subscription", text, error, field="page_token")]

    # -- helpers ---------------------------------------------------------------
    def _refusal(self, message: OutboundMessage) -> SendError | None:
        """Why ``message`` must not go out at all (checked before any HTTP call)."""
        raw_tag = message.options.get("tag")
        tag = str(raw_tag).strip().upper() if raw_tag else ""
        if tag in RETIRED_TAGS:
            text = f"The {tag} message tag was retired by Meta on 2026-04-27; use HUMAN_AGENT"
            return SendError(ErrorKind.PERMANENT, "retired_tag", text)
        if tag and tag != HUMAN_AGENT_TAG:
            return SendError(ErrorKind.PERMANENT, "unsupported_tag", f"Unsupported tag {tag}")
        if not message.contact_id:
            return SendError(ErrorKind.PERMANENT, "no_recipient", "The message has no recipient")
        if not split_text(message.text) and not message.attachments:
            return SendError(ErrorKind.PERMANENT, "empty", "The message has no text or attachment")
        if any(not a.url for a in message.attachments):
            text = f"{self.product} attachments are sent by URL; an attachment has none"
            return SendError(ErrorKind.PERMANENT, "attachment_without_url", text)
        return self._credentials_problem()

    def _credentials_problem(self) -> SendError | None:
        """AUTH_FAILED when the inbox has no token to send with."""
        if not self.config.get(self.token_field):
            text = f"The inbox has no {self.token_label}"
            return SendError(ErrorKind.AUTH_FAILED, "no_token", text)
        return None

    def _url(self, path: str) -> str:
        """``{base}/{version}/{path}``, base and version from the process options."""
        base = self.options.base_urls.get(self.graph_key, self.default_graph_url).rstrip("/")
        version = str(self.options.extra.get("messenger_graph_version", DEFAULT_GRAPH_VERSION))
        return f"{base}/{version.strip('/')}/{path}"

    def _auth(self) -> tuple[dict[str, str], dict[str, str]]:
        """(headers, query): the token as a Bearer header; ``appsecret_proof`` in the query.

        The proof is an HMAC of the token: it does not reveal the token, and Graph
        reads it from the query string.
        """
        token = str(self.config.get(self.token_field) or "")
        params = {}
        secret = self.config.get("app_secret")
        if secret and self.sends_proof:
            params["appsecret_proof"] = appsecret_proof(token, str(secret))
        return {"Authorization": f"Bearer {token}"}, params

    def _call(
        self,
        method: str,
        path: str,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        page_auth: bool = True,
    ) -> tuple[dict[str, Any] | None, SendError | None]:
        """One Graph request: (JSON body, None) on success, (body or None, error) otherwise.

        ``page_auth`` False sends no Page token (the caller's ``params`` authenticate).
        Exception texts are not passed on: they contain the URL and its proof.
        """
        headers, auth_params = self._auth() if page_auth else ({}, {})
        try:
            resp = self.http.request(
                method,
                self._url(path),
                params={**(params or {}), **auth_params},
                headers=headers,
                json=json_body,
                timeout=self.options.timeout,
            )
        except requests.RequestException as exc:
            name, endpoint = type(exc).__name__, path.split("/")[-1]
            if never_reached(exc):
                logger.warning(
                    "%s: Graph %s %s not reached: %s", self.channel, method, endpoint, name
                )
                if isinstance(exc, requests.Timeout):
                    return None, SendError(
                        ErrorKind.TRANSIENT, "timeout", "The Graph API timed out"
                    )
                text = f"Could not reach the Graph API ({name})"
                return None, SendError(ErrorKind.TRANSIENT, "network", text)
            logger.warning(
                "%s: Graph %s %s sent but not answered: %s", self.channel, method, endpoint, name
            )
            text = (
                f"{self.product} did not answer ({name}): the reply may or may not have been "
                f"delivered. Check the conversation on {self.app_place} before sending it again."
            )
            return None, SendError(ErrorKind.UNKNOWN, "no_answer", text)
        try:
            data = resp.json()
        except ValueError:
            data = None
        if 200 <= resp.status_code < 300 and isinstance(data, dict) and "error" not in data:
            return data, None
        if 200 <= resp.status_code < 300 and data is None:
            error = SendError(ErrorKind.PERMANENT, "bad_response", "Graph answered without JSON")
            return None, error
        return (data if isinstance(data, dict) else None), classify_graph_error(
            resp.status_code, data, resp.headers
        )


def _refused(name: str, text: str, error: SendError | None, field: str | None = None) -> Check:
    """A failed check from a Graph error: unreachable Meta, a wrong app secret, or ``text``."""
    message = error.message if error is not None else "no answer"
    if error is not None and error.kind in (ErrorKind.TRANSIENT, ErrorKind.UNKNOWN):
        return Check(name, False, f"Meta could not be reached: {message}")
    if "appsecret_proof" in message:
        return Check(name, False, f"Meta refused the app secret: {message}", "app_secret")
    return Check(name, False, f"{text}: {message}", field or name)
