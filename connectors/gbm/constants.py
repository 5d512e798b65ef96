"""GBM endpoints, scopes, headers, event names and the patterns used to read payloads."""

from __future__ import annotations

import re
import uuid

from connectors.base import (
    DeliveryState,
)

DEFAULT_BASE_URL = "https://businessmessages.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/businessmessages",)
SIGNATURE_HEADER = "X-Goog-Signature"

#: Namespace for the deterministic ``messageId``s derived from our references.
MESSAGE_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "switchboard:gbm:message")

#: ``send_action`` names GBM understands, plus the generic names other channels use.
EVENT_TYPES = ("REPRESENTATIVE_JOINED", "REPRESENTATIVE_LEFT", "TYPING_STARTED", "TYPING_STOPPED")
_ACTION_ALIASES = {
    "typing_on": "TYPING_STARTED",
    "typing_off": "TYPING_STOPPED",
    "mark_seen": "mark_read",
}

_PAYLOAD_FIELDS = (
    "message",
    "receipts",
    "userStatus",
    "surveyResponse",
    "suggestionResponse",
    "authenticationResponse",
)
_AGENT_RE = re.compile(r"^brands/[^/\s]+/agents/[^/\s]+$")
_MESSAGE_NAME_RE = re.compile(r"(?:^|/)conversations/([^/]+)/messages/([^/]+)$")
_SURVEY_NAME_RE = re.compile(r"(?:^|/)surveys/([^/]+)$")
_RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)
_RECEIPT_STATES = {"DELIVERED": DeliveryState.DELIVERED, "READ": DeliveryState.READ}
