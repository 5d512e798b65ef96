"""WhatsApp Cloud API: webhook verification, message and status parsing, sends and templates.

Inbound: the ``GET`` handshake and ``X-Hub-Signature-256`` are Meta's, as for Messenger;
a body is routed by each change's ``value.metadata.phone_number_id`` and parsed into
normalised events (:func:`parse`): every message type, a type we do not know shown as
unsupported, statuses with Meta's error on failure. A message's time is Meta's own
``timestamp``; the 24-hour window counts from it. Media arrive as ids, fetched later by
the worker (``GET /{media-id}`` then the URL, with the token).

Outbound: :class:`WhatsAppConnector` posts to ``/{phone-number-id}/messages`` (text,
media by upload or link, templates, mark-as-read) and reads templates from
``/{waba-id}/message_templates``; errors are classified in :mod:`.errors`.

Pure: no database, no ``app`` import.
"""

from .connector import WhatsAppConnector
from .constants import MEDIA_LIMITS, MEDIA_PREFIX
from .errors import classify, classify_error
from .inbound import contact_id, parse, phone_number_ids
from .outbound import parameter_count, render, template_body

__all__ = [
    "MEDIA_LIMITS",
    "MEDIA_PREFIX",
    "WhatsAppConnector",
    "classify",
    "classify_error",
    "contact_id",
    "parameter_count",
    "parse",
    "phone_number_ids",
    "render",
    "template_body",
]
