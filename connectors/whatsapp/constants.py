"""WhatsApp Cloud API limits, media rules and Graph error code sets."""

from __future__ import annotations

DEFAULT_GRAPH_URL = "https://graph.facebook.com"
DEFAULT_GRAPH_VERSION = "v25.0"
MAX_TEXT_LENGTH = 4096  # a text message's body
MAX_CAPTION_LENGTH = 1024  # a media message's caption
MEDIA_PREFIX = "whatsapp-media:"  # an inbound attachment's URL: its media id, fetched later
WEBHOOK_OBJECT = "whatsapp_business_account"

# Meta's media limits for sending (Cloud API "Supported media types").
MB = 1024 * 1024
MEDIA_LIMITS: dict[str, tuple[int, tuple[str, ...]]] = {
    "image": (5 * MB, ("image/jpeg", "image/png")),
    "video": (16 * MB, ("video/mp4", "video/3gpp")),
    "audio": (
        16 * MB,
        ("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"),
    ),
    "sticker": (500 * 1024, ("image/webp",)),
    "document": (
        100 * MB,
        (
            "text/plain",
            "application/pdf",
            "application/vnd.ms-powerpoint",
            "application/msword",
            "application/vnd.ms-excel",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
    ),
}

# Graph / Cloud API error codes -> how the domain reacts.
WINDOW_CODES = frozenset({131047})  # re-engagement: more than 24 hours since the customer wrote
UNDELIVERABLE_CODES = frozenset({131026})  # not on WhatsApp, old app, terms not accepted
BLOCKED_CODES = frozenset({368, 131031})  # the business account is restricted or locked
AUTH_CODES = frozenset({102, 190, 200, 10})  # token expired/invalid, permission missing
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131048, 131056})
TRANSIENT_CODES = RATE_LIMIT_CODES | frozenset({1, 2, 131000, 131016})
UNSUPPORTED_CODES = frozenset({131051})
