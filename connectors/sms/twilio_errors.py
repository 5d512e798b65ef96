"""Twilio error codes and message statuses: classification into :class:`SendError` and
the status callback -> :class:`DeliveryState` map."""

from __future__ import annotations

from connectors.base import DeliveryState, ErrorKind, SendError

# Twilio error code -> (kind, message for the agent). Sources: twilio.com/docs/api/errors.
# 30003 (handset off / out of coverage) is not permanent in nature, but Twilio
# does not retry it and an automatic re-send hours later would surprise the
# customer, so it is PERMANENT with a message that tells the agent to try later.
TWILIO_ERRORS: dict[int, tuple[ErrorKind, str]] = {
    # opt-out
    21610: (
        ErrorKind.OPTED_OUT,
        "The customer has opted out (replied STOP). They must text START to receive messages again.",
    ),
    # the number can never receive
    21211: (ErrorKind.UNDELIVERABLE, "This is not a valid phone number."),
    21612: (ErrorKind.UNDELIVERABLE, "Twilio cannot route text messages to this number."),
    21614: (
        ErrorKind.UNDELIVERABLE,
        "This number is not a mobile number and cannot receive text messages.",
    ),
    21635: (ErrorKind.UNDELIVERABLE, "This number is a landline and cannot receive text messages."),
    30004: (ErrorKind.UNDELIVERABLE, "The recipient or their carrier blocked this message."),
    30005: (ErrorKind.UNDELIVERABLE, "This number is unknown or no longer in service."),
    30006: (
        ErrorKind.UNDELIVERABLE,
        "This number is a landline or its carrier cannot receive text messages.",
    ),
    # delivery failed, but the number is fine
    30003: (
        ErrorKind.PERMANENT,
        "The customer's phone is switched off or out of coverage, so it could not be delivered. "
        "Twilio does not retry: send it again later.",
    ),
    30007: (
        ErrorKind.PERMANENT,
        "The carrier filtered this message as spam. Rephrase it (avoid link shorteners and "
        "all caps) or check the sender's registration.",
    ),
    30008: (ErrorKind.PERMANENT, "The carrier reported an unknown error. Try sending it again."),
    30010: (ErrorKind.PERMANENT, "The message price is above the maximum price set for it."),
    30032: (
        ErrorKind.PERMANENT,
        "The toll-free sender number is not verified, so carriers block it.",
    ),
    30034: (
        ErrorKind.PERMANENT,
        "The sender number is not registered for US A2P 10DLC, so carriers block its messages.",
    ),
    # the request itself or the sender configuration is wrong
    21408: (
        ErrorKind.PERMANENT,
        "Sending to this country is not enabled in the Twilio account (geo permissions).",
    ),
    21602: (ErrorKind.PERMANENT, "The message is empty."),
    21606: (
        ErrorKind.PERMANENT,
        "The inbox's number cannot send text messages (not SMS-capable or not in this account).",
    ),
    21617: (ErrorKind.PERMANENT, "The message is longer than 1,600 characters."),
    # try again later
    20429: (ErrorKind.TRANSIENT, "Twilio is receiving too many requests; will retry."),
    21611: (ErrorKind.TRANSIENT, "Too many messages are queued for this number; will retry."),
    30001: (ErrorKind.TRANSIENT, "The messaging service queue is full; will retry."),
    30022: (ErrorKind.TRANSIENT, "The number's sending rate limit was exceeded; will retry."),
    30036: (
        ErrorKind.TRANSIENT,
        "The message waited too long in Twilio's queue and expired; will retry.",
    ),
    63017: (ErrorKind.TRANSIENT, "Twilio is rate limiting this account; will retry."),
    # credentials / account
    20003: (
        ErrorKind.AUTH_FAILED,
        "Twilio rejected the inbox credentials (Account SID / Auth Token). Reconnect the inbox.",
    ),
    20005: (ErrorKind.AUTH_FAILED, "The Twilio account is not active (suspended or closed)."),
    30002: (ErrorKind.AUTH_FAILED, "The Twilio account is suspended."),
}


def _code(code: int | str | None) -> int | None:
    """The error code as an int, or None when absent/blank/not a number."""
    if code is None or isinstance(code, bool):
        return None
    try:
        value = int(str(code).strip())
    except ValueError:
        return None
    return value or None


def classify(
    code: int | str | None,
    message: str = "",
    *,
    http_status: int | None = None,
    retry_after: float | None = None,
) -> SendError:
    """Classify a Twilio error code (and HTTP status) into a :class:`SendError`.

    Known codes get an agent-readable message; 5xx and 429 answers are always
    TRANSIENT; a 401 without a code is AUTH_FAILED; anything else is PERMANENT
    with Twilio's own message.
    """
    number = _code(code)
    code_str = str(number) if number is not None else None
    known = TWILIO_ERRORS.get(number) if number is not None else None
    if known:
        kind, text = known
    else:
        kind = ErrorKind.PERMANENT
        text = message.strip() or (f"Twilio error {code_str}" if code_str else "Twilio error")
    if http_status is not None and (http_status >= 500 or http_status == 429):
        kind = ErrorKind.TRANSIENT
        if not known:
            text = f"Twilio is unavailable (HTTP {http_status}); will retry."
    elif http_status == 401 and not known:
        kind = ErrorKind.AUTH_FAILED
        text = TWILIO_ERRORS[20003][1]
    return SendError(kind=kind, code=code_str, message=text, retry_after=retry_after)


STATUS_MAP: dict[str, DeliveryState] = {
    "accepted": DeliveryState.QUEUED,
    "scheduled": DeliveryState.QUEUED,
    "queued": DeliveryState.QUEUED,
    "sending": DeliveryState.QUEUED,
    "sent": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED,
    "partially_delivered": DeliveryState.SENT,
    "read": DeliveryState.READ,
    "undelivered": DeliveryState.FAILED,
    "failed": DeliveryState.FAILED,
    "canceled": DeliveryState.FAILED,
}
