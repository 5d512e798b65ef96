"""Google Business Messages (GBM): webhook handshake, signatures, parsing and sending.

**Google shut Business Messages down on 2024-07-31** (new conversations stopped on
2024-07-15). There is no live GBM API any more. This connector implements the
protocol as Google published it, so that Switchboard can replay archived webhook
deliveries and talk to compatible endpoints (fakes, proxies, successors speaking
the same wire format). Do not build new features on it.

Wire format, in short (see ``docs/channels.md`` section 2):

* Handshake: Google POSTs ``{"clientToken": ..., "secret": ...}``; the webhook
  checks the token and answers 200 with the secret as a plain-text body.
* Signature: ``X-Goog-Signature`` = base64(HMAC-SHA512(key, raw body)); the key is
  the webhook's client token (current docs) or the partner key (older samples).
* Events: one ``UserMessage`` per request (or base64 in a Pub/Sub envelope's
  ``message.data``), carrying exactly one of ``message``, ``receipts``,
  ``userStatus``, ``surveyResponse``, ``suggestionResponse``,
  ``authenticationResponse``. ``conversationId`` is the contact; ``agent`` routes
  to the inbox.
* Sending: ``POST {base}/v1/conversations/{id}/messages`` with a client-chosen
  ``messageId`` and an OAuth2 bearer token minted from a service account.

This module is pure: it never imports ``app`` and never touches the database.

Modules: ``inbound`` (handshake, signatures, parsing), ``auth`` (service-account
tokens), ``outbound`` (message bodies, error classification), ``connector`` (the
registered connector class) and ``constants``.
"""

from .auth import clear_token_cache, load_service_account
from .connector import GbmConnector
from .constants import DEFAULT_BASE_URL, EVENT_TYPES, MESSAGE_ID_NAMESPACE, SCOPES, SIGNATURE_HEADER
from .inbound import agent_of, check_signature, handshake, parse, parse_timestamp, sign, unwrap

__all__ = [
    "DEFAULT_BASE_URL",
    "EVENT_TYPES",
    "GbmConnector",
    "MESSAGE_ID_NAMESPACE",
    "SCOPES",
    "SIGNATURE_HEADER",
    "agent_of",
    "check_signature",
    "clear_token_cache",
    "handshake",
    "load_service_account",
    "parse",
    "parse_timestamp",
    "sign",
    "unwrap",
]
