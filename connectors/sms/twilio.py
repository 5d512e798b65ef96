"""Twilio Programmable Messaging: webhook signatures, inbound/status parsing, sending.

Wire protocol: ``/work/shared/docs/channels.md`` section 3. Inbound and status
webhooks are form-encoded POSTs signed with ``X-Twilio-Signature``; sending is
a form POST to the Messages API with HTTP basic auth.

Signatures (what ``twilio`` 9.13 ``twilio.request_validator`` supports):

* legacy: base64 HMAC-SHA1 keyed with the account Auth Token over the URL plus
  the sorted form fields (repeated keys: each distinct value, sorted);
* SharedKey (new in 2026 SDKs): the request also carries
  ``X-Twilio-Webhooks-Signature-Settings: key=<sharedKeyId>,algorithm=HMAC_SHA256``
  and is signed with the SharedKey secret. ``get_signature_algorithm`` reads
  the header (absent/empty: ``HMAC_SHA1``); the validator accepts ``HMAC_SHA1``
  and ``HMAC_SHA256`` only and fails (with a log warning) on anything else;
* both: the URL is tried with and without its default port (``:443``/``:80``),
  comparison is constant-time, and a JSON body is checked through the
  ``bodySHA256`` query parameter when ``params`` is the raw body string.
"""

from __future__ import annotations

import email.utils
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import requests
from twilio.request_validator import (
    HMAC_SHA1,
    HMAC_SHA256,
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from connectors.base import (
    AttachmentRef,
    ConfigField,
    DeliveryState,
    ErrorKind,
    InboundEvent,
    InboundMessage,
    MediaHosts,
    OptIn,
    OptOut,
    OutboundMessage,
    SendError,
    SendResult,
    StatusUpdate,
    never_reached,
    retry_after,
    routing_key,
)

from . import consent, phone
from .provider import SmsProvider, register_provider
from .twilio_errors import STATUS_MAP, _code, classify
from .twilio_errors import TWILIO_ERRORS as TWILIO_ERRORS

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.twilio.com"
SUPPORTED_ALGORITHMS = (HMAC_SHA1, HMAC_SHA256)
# Looking for an unanswered attempt: Twilio's clock may differ from ours by this much.
CLOCK_SKEW = timedelta(minutes=2)
LOOKUP_PAGE_SIZE = 50
# An earlier attempt Twilio accepted but that then failed for good: sending again is safe.
_DEAD_STATUSES = frozenset({"failed", "undelivered", "canceled"})

# --------------------------------------------------------------------------- signatures


class _Params(dict[str, list[str]]):
    """Form fields as name -> values, with the ``getall`` the validator looks for."""

    def getall(self, name: str) -> list[str]:
        """Every value sent for ``name`` (the validator sorts distinct values)."""
        return self[name]


def _text(value: Any) -> str:
    """A form value as text (None as empty)."""
    return "" if value is None else str(value)


def _multi_params(params: Any) -> _Params:
    """Normalise a dict, a Werkzeug/Django multi-dict or (name, value) pairs to ``_Params``."""
    result = _Params()
    if params is None:
        return result
    getlist = getattr(params, "getlist", None) or getattr(params, "getall", None)
    if callable(getlist) and isinstance(params, Mapping):
        for name in params:
            result[str(name)] = [_text(v) for v in getlist(name)]
        return result
    if isinstance(params, Mapping):
        for name, value in params.items():
            values = value if isinstance(value, list | tuple) else [value]
            result[str(name)] = [_text(v) for v in values]
        return result
    for name, value in params:  # iterable of pairs, in wire order
        result.setdefault(str(name), []).append(_text(value))
    return result


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Header ``name`` from a case-insensitive (Werkzeug) or plain mapping."""
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in headers.items():
        if key.lower() == lowered:
            return val
    return None


def validate_signature(
    url: str,
    params: Any,
    signature: str | None,
    auth_token: str | None,
    *,
    signature_settings: str | None = None,
    shared_key: str | None = None,
) -> bool:
    """True when ``signature`` (``X-Twilio-Signature``) signs ``url`` + ``params``.

    ``params`` is the form (dict, Werkzeug ``MultiDict``, Django ``QueryDict``,
    or (name, value) pairs; repeated keys are kept), or the raw body string of
    a JSON webhook whose URL carries ``bodySHA256``. ``url`` must be the exact
    public URL Twilio called, query string included. ``signature_settings`` is
    the ``X-Twilio-Webhooks-Signature-Settings`` header: when present, the
    request is checked with its algorithm and the SharedKey secret
    (``shared_key``), falling back to the Auth Token. Fails closed: no
    signature, no URL, no secret or an unknown algorithm gives False.
    """
    if not signature or not signature.strip() or not url:
        return False
    algorithm = get_signature_algorithm(signature_settings).upper()
    if algorithm not in SUPPORTED_ALGORITHMS:
        log.warning("Twilio webhook signed with unsupported algorithm %r", algorithm)
        return False
    secrets = [shared_key, auth_token] if signature_settings else [auth_token]
    try:
        body = params if isinstance(params, str) else _multi_params(params)
        for secret in dict.fromkeys(s for s in secrets if s):
            if RequestValidator(secret).validate(url, body, signature.strip(), algorithm):
                return True
    except (TypeError, ValueError, AttributeError):  # malformed input: not authentic
        return False
    return False


def validate_request(
    url: str,
    params: Any,
    headers: Mapping[str, str] | None,
    auth_token: str | None,
    shared_key: str | None = None,
) -> bool:
    """:func:`validate_signature` reading both signature headers from ``headers``."""
    return validate_signature(
        url,
        params,
        header(headers, SIGNATURE_HEADER),
        auth_token,
        signature_settings=header(headers, SIGNATURE_SETTINGS_HEADER),
        shared_key=shared_key,
    )


# --------------------------------------------------------------------------- inbound


def _field(form: Mapping[str, str], *names: str) -> str:
    """The first non-empty value among ``names`` (stripped), or ``""``."""
    for name in names:
        value = form.get(name)
        if value is not None and str(value).strip():
            return str(value).strip()
    return ""


def _int(value: str | None) -> int | None:
    """``value`` as an int, or None."""
    try:
        return int(str(value).strip()) if value not in (None, "") else None
    except ValueError:
        return None


def _utc(moment: datetime) -> datetime:
    """``moment`` as aware UTC (naive values are taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _media_kind(content_type: str | None) -> str:
    """AttachmentRef kind for a MIME type."""
    major = (content_type or "").split("/", 1)[0].lower()
    return major if major in ("image", "video", "audio") else "file"


def routing_keys(form: Mapping[str, str]) -> tuple[str | None, str]:
    """(MessagingServiceSid or None, To in E.164) to find the inbox of an inbound webhook.

    Route by the Messaging Service when the inbox has one, else by the number.
    A value that cannot name an inbox (:func:`~connectors.base.routing_key`: too
    long, control characters such as NUL) gives None / ``""``; never raises.
    """
    service = routing_key(_field(form, "MessagingServiceSid"))
    return service, routing_key(phone.address(_field(form, "To"))) or ""


def status_routing_keys(form: Mapping[str, str]) -> tuple[str | None, str]:
    """(MessagingServiceSid or None, From in E.164) of a status callback; never raises."""
    return routing_key(form.get("MessagingServiceSid")), routing_key(form.get("From")) or ""


def status_message_id(form: Mapping[str, str]) -> str | None:
    """The ``MessageSid`` (or ``SmsSid``) a status callback is about, as a routing key."""
    return routing_key(form.get("MessageSid")) or routing_key(form.get("SmsSid"))


def _attachments(form: Mapping[str, str]) -> tuple[AttachmentRef, ...]:
    """The MMS media items (``MediaUrlN`` / ``MediaContentTypeN``)."""
    count = _int(form.get("NumMedia")) or 0
    items = []
    for index in range(max(0, min(count, 100))):
        url = _field(form, f"MediaUrl{index}")
        if not url:
            continue
        ctype = _field(form, f"MediaContentType{index}") or None
        media_sid = url.rstrip("/").rsplit("/", 1)[-1]
        items.append(
            AttachmentRef(
                kind=_media_kind(ctype),
                url=url,
                content_type=ctype,
                extra={"index": index, "media_sid": media_sid},
            )
        )
    return tuple(items)


def parse_inbound(form: Mapping[str, str], received_at: datetime) -> list[InboundEvent]:
    """Turn an inbound SMS/MMS webhook into events.

    Always an :class:`InboundMessage` (STOP/START messages are kept in the
    thread too), followed by an :class:`OptOut` or :class:`OptIn` when the
    message is a consent keyword or Twilio's ``OptOutType`` says so. Twilio
    sends no timestamp, so ``sent_at`` is ``received_at``. Raises ValueError
    when the webhook has no message id (or one that is not a short printable string).
    """
    external_id = routing_key(_field(form, "MessageSid", "SmsMessageSid", "SmsSid"))
    if not external_id:
        raise ValueError("Twilio inbound webhook without a usable MessageSid")
    at = _utc(received_at)
    from_country = _field(form, "FromCountry") or None
    inbox_key = phone.address(_field(form, "To"))
    contact_id = phone.address(_field(form, "From"), from_country)
    body = form.get("Body") or ""
    context: dict[str, Any] = {
        "provider": "twilio",
        "account_sid": _field(form, "AccountSid") or None,
        "messaging_service_sid": _field(form, "MessagingServiceSid") or None,
        "from_country": from_country,
        "from_state": _field(form, "FromState") or None,
        "from_city": _field(form, "FromCity") or None,
        "num_segments": _int(form.get("NumSegments")),
        "num_media": _int(form.get("NumMedia")),
    }
    message = InboundMessage(
        inbox_key=inbox_key,
        external_id=external_id,
        contact_id=contact_id,
        sent_at=at,
        text=body,
        attachments=_attachments(form),
        context={k: v for k, v in context.items() if v is not None},
        raw={str(k): form.get(k) for k in form},
    )
    events: list[InboundEvent] = [message]
    decision, word = _consent(body, _field(form, "OptOutType"))
    if decision is consent.Consent.OPT_OUT:
        events.append(OptOut(inbox_key=inbox_key, contact_id=contact_id, keyword=word, at=at))
    elif decision is consent.Consent.OPT_IN:
        events.append(OptIn(inbox_key=inbox_key, contact_id=contact_id, keyword=word, at=at))
    return events


def _consent(body: str, opt_out_type: str) -> tuple[consent.Consent | None, str]:
    """The consent decision and keyword: Twilio's ``OptOutType`` first, else our lists."""
    word = consent.keyword(body)
    kind = opt_out_type.upper()
    if kind in ("STOP", "START", "HELP"):  # Advanced Opt-Out decided (custom keywords too)
        decision = {
            "STOP": consent.Consent.OPT_OUT,
            "START": consent.Consent.OPT_IN,
            "HELP": consent.Consent.HELP,
        }[kind]
        custom = body.strip().upper() if len(body.split()) == 1 else ""
        return decision, word or custom or kind
    return consent.classify(body), word or ""


# --------------------------------------------------------------------------- status


def parse_status(form: Mapping[str, str]) -> StatusUpdate:
    """Turn a status callback into a :class:`StatusUpdate`.

    ``inbox_key`` is our number (``From``), ``contact_id`` the customer
    (``To``). A failed/undelivered/canceled status carries a classified
    ``error`` (from ``ErrorCode``). Raises ValueError when ``MessageSid`` is
    missing or the status is not an outbound one (``received``, unknown).
    """
    external_id = routing_key(_field(form, "MessageSid", "SmsSid"))
    if not external_id:
        raise ValueError("Twilio status callback without a usable MessageSid")
    raw_status = _field(form, "MessageStatus", "SmsStatus").lower()
    status = STATUS_MAP.get(raw_status)
    if status is None:
        raise ValueError(f"not an outbound message status: {raw_status!r}")
    error = None
    if status is DeliveryState.FAILED:
        code = _field(form, "ErrorCode")
        if _code(code) is not None:
            error = classify(code, _field(form, "ErrorMessage"))
        elif raw_status == "canceled":
            error = SendError(ErrorKind.PERMANENT, None, "The message was canceled before sending.")
        else:
            error = SendError(
                ErrorKind.PERMANENT, None, f"Twilio reported the message {raw_status}."
            )
    return StatusUpdate(
        inbox_key=phone.address(_field(form, "From")),
        status=status,
        external_id=external_id,
        contact_id=routing_key(phone.address(_field(form, "To"))),
        error=error,
    )


# --------------------------------------------------------------------------- provider


def _json(resp: requests.Response) -> dict[str, Any]:
    """The response body as a JSON object, or ``{}``."""
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _twilio_time(value: Any) -> datetime | None:
    """A Message resource date (RFC 2822, ``Wed, 18 Aug 2010 20:01:40 +0000``) in UTC."""
    if not value or not isinstance(value, str):
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return _utc(when)


def _result(resp: requests.Response) -> SendResult:
    """Turn a Messages API response into a :class:`SendResult`."""
    body = _json(resp)
    if 200 <= resp.status_code < 300:
        sid = body.get("sid")
        if not sid:
            return SendResult(
                error=SendError(ErrorKind.PERMANENT, None, "Twilio answered without a message id.")
            )
        extra = {k: body.get(k) for k in ("status", "num_segments") if body.get(k) is not None}
        return SendResult(external_id=str(sid), external_ids=(str(sid),), extra=extra)
    message = str(body.get("message") or resp.reason or f"HTTP {resp.status_code}")
    error = classify(
        body.get("code"),
        message,
        http_status=resp.status_code,
        retry_after=retry_after(resp.headers.get("Retry-After")),
    )
    return SendResult(error=error, extra={"http_status": resp.status_code})


@register_provider
class TwilioProvider(SmsProvider):
    """Twilio Programmable Messaging for one inbox (a number or a Messaging Service)."""

    name: ClassVar[str] = "twilio"
    display_name: ClassVar[str] = "Twilio"
    checks_before_resending: ClassVar[bool] = True  # see :meth:`find_earlier_send`
    # MediaUrl is on api.twilio.com (with the account's credentials); it redirects to a
    # short-lived URL on mms.twiliocdn.com, or on s3-external-1.amazonaws.com for media
    # stored before HTTP auth was enforced on the account. The redirect gets no credentials.
    media_hosts: ClassVar[MediaHosts] = MediaHosts(
        sources=("api.twilio.com",),
        redirects=("*.twiliocdn.com", "s3-external-1.amazonaws.com"),
    )
    fields: ClassVar[tuple[ConfigField, ...]] = (
        ConfigField("account_sid", help="Twilio Account SID (AC...)"),
        ConfigField("auth_token", secret=True, help="Twilio Auth Token"),
        ConfigField(
            "messaging_service_sid",
            required=False,
            help="Messaging Service SID (MG...): send through the service instead of the number",
        ),
        ConfigField(
            "webhook_shared_key",
            required=False,
            secret=True,
            help="SharedKey secret, when Twilio signs webhooks with HMAC-SHA256",
        ),
    )

    @classmethod
    def routing_keys(cls, form: Mapping[str, str]) -> tuple[str | None, str]:
        """See :func:`routing_keys`."""
        return routing_keys(form)

    @classmethod
    def status_routing_keys(cls, form: Mapping[str, str]) -> tuple[str | None, str]:
        """See :func:`status_routing_keys`."""
        return status_routing_keys(form)

    @classmethod
    def status_message_id(cls, form: Mapping[str, str]) -> str | None:
        """See :func:`status_message_id`."""
        return status_message_id(form)

    @classmethod
    def parse_inbound(cls, form: Mapping[str, str], received_at: datetime) -> list[InboundEvent]:
        """See :func:`parse_inbound`."""
        return parse_inbound(form, received_at)

    @classmethod
    def parse_status(cls, form: Mapping[str, str]) -> StatusUpdate:
        """See :func:`parse_status`."""
        return parse_status(form)

    def verify(self, url: str, params: Any, headers: Mapping[str, str]) -> bool:
        """Check ``X-Twilio-Signature`` (and the SharedKey scheme) for this inbox."""
        return validate_request(
            url,
            params,
            headers,
            self.config.get("auth_token"),
            shared_key=self.config.get("webhook_shared_key"),
        )

    @property
    def messages_url(self) -> str:
        """The Messages API URL of this inbox's account."""
        base = self.options.base_urls.get("twilio", DEFAULT_BASE_URL).rstrip("/")
        return f"{base}/2010-04-01/Accounts/{self.config.get('account_sid')}/Messages.json"

    def form_fields(self, message: OutboundMessage) -> list[tuple[str, str]]:
        """The Messages API form fields for ``message``, in order (``MediaUrl`` repeated)."""
        data: list[tuple[str, str]] = [("To", message.contact_id)]
        if message.text:
            data.append(("Body", message.text))
        service = (self.config.get("messaging_service_sid") or "").strip()
        if service:
            data.append(("MessagingServiceSid", service))
        else:
            data.append(("From", phone.address(self.config.get("number"))))
        callback = message.options.get("status_callback")
        if callback:
            data.append(("StatusCallback", str(callback)))
        data.extend(("MediaUrl", a.url) for a in message.attachments if a.url)
        return data

    def send(self, message: OutboundMessage) -> SendResult:
        """POST the message to the Messages API; errors come back classified.

        After an attempt that got no answer (``options["maybe_sent_since"]``) the
        Messages list is checked first (:meth:`find_earlier_send`): a message
        Twilio accepted then is the answer, and nothing is sent again. A POST that
        went out without an answer is UNKNOWN; one that never reached Twilio is
        TRANSIENT.
        """
        missing = [a.filename for a in message.attachments if not a.url]
        if missing:
            return SendResult(
                error=SendError(
                    ErrorKind.PERMANENT,
                    None,
                    "MMS attachments must be reachable at a public URL: " + ", ".join(missing),
                )
            )
        since = message.options.get("maybe_sent_since")
        if since:
            earlier = self.find_earlier_send(message, datetime.fromisoformat(str(since)))
            if earlier is not None:
                return earlier
        try:
            resp = self.http.post(
                self.messages_url,
                data=self.form_fields(message),
                auth=self.download_auth(),
                headers={"Accept": "application/json"},
                timeout=self.options.timeout,
            )
        except requests.RequestException as exc:
            name = type(exc).__name__
            if never_reached(exc):
                text = f"Could not reach Twilio ({name}); will retry."
                return SendResult(error=SendError(ErrorKind.TRANSIENT, None, text))
            log.warning("twilio: Messages POST sent but not answered: %s", name)
            text = f"Twilio did not answer ({name}): the message may or may not have been accepted."
            return SendResult(error=SendError(ErrorKind.UNKNOWN, "no_answer", text))
        return _result(resp)

    def find_earlier_send(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        """What became of an attempt made at ``since`` that got no answer; None: not sent.

        Twilio takes no idempotency key for messages, so the Messages list is read
        (``To``, and ``From`` or the Messaging Service) for an outbound message
        with the same body created since then. Found: its SID, as if the POST had
        answered. None found, or only ones that failed for good: None, safe to
        send. Other messages to the number but none with this body: UNKNOWN, the
        agent decides. The list cannot be read: TRANSIENT, ask again later.
        """
        service = (self.config.get("messaging_service_sid") or "").strip()
        params = {"To": message.contact_id, "PageSize": str(LOOKUP_PAGE_SIZE)}
        if not service:
            params["From"] = phone.address(self.config.get("number"))
        try:
            resp = self.http.get(
                self.messages_url,
                params=params,
                auth=self.download_auth(),
                headers={"Accept": "application/json"},
                timeout=self.options.timeout,
            )
        except requests.RequestException as exc:
            name = type(exc).__name__
            text = f"Could not ask Twilio whether the message went out ({name}); will retry."
            return SendResult(error=SendError(ErrorKind.TRANSIENT, None, text))
        body = _json(resp)
        if not 200 <= resp.status_code < 300:
            message_text = str(body.get("message") or f"HTTP {resp.status_code}")
            error = classify(
                body.get("code"),
                message_text,
                http_status=resp.status_code,
                retry_after=retry_after(resp.headers.get("Retry-After")),
            )
            if error.kind in (ErrorKind.TRANSIENT, ErrorKind.AUTH_FAILED):
                return SendResult(error=error)
            text = f"Could not ask Twilio whether the message went out: {message_text}"
            return SendResult(error=SendError(ErrorKind.UNKNOWN, "lookup_failed", text))
        earliest = _utc(since) - CLOCK_SKEW
        later = []
        for item in body.get("messages") or ():
            if not isinstance(item, dict) or not str(item.get("direction") or "").startswith(
                "outbound"
            ):
                continue
            if service and item.get("messaging_service_sid") != service:
                continue
            created = _twilio_time(item.get("date_created"))
            if created is not None and created >= earliest and item.get("sid"):
                later.append((created, item))
        same = sorted(
            (pair for pair in later if (pair[1].get("body") or "") == (message.text or "")),
            key=lambda pair: pair[0],
        )
        alive = [item for _, item in same if str(item.get("status")) not in _DEAD_STATUSES]
        if alive:
            sid = str(alive[0]["sid"])
            log.info("twilio: the unanswered attempt went out as %s; not sending again", sid)
            extra = {"status": alive[0].get("status"), "found_after_no_answer": True}
            return SendResult(external_id=sid, external_ids=(sid,), extra=extra)
        if later and not same:
            text = (
                "Twilio did not answer, and other messages went to this number since: this "
                "reply may or may not have been sent."
            )
            return SendResult(error=SendError(ErrorKind.UNKNOWN, "unconfirmed", text))
        return None

    def download_auth(self) -> tuple[str, str]:
        """(Account SID, Auth Token): Twilio media URLs need the account's basic auth."""
        return (str(self.config.get("account_sid") or ""), str(self.config.get("auth_token") or ""))
