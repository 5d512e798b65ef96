"""Facebook Messenger: webhook verification, event parsing and the Send API.

Inbound: the web layer answers the ``GET`` handshake with :func:`verify_token_matches`,
authenticates each ``POST`` with :func:`check_signature` over the raw body, routes it
with :func:`page_ids` and turns it into normalised events with :func:`parse`. A body
batches several Pages (``entry[]``) and several events per Page (``messaging[]``, or
``standby[]`` when another app owns the thread); every item is parsed, and a malformed
one is logged and skipped, never raised.

Outbound: :class:`MessengerConnector` posts to ``/{version}/me/messages`` with the Page
token (an ``Authorization: Bearer`` header, never in the URL, so it stays out of proxy and
server logs) and its ``appsecret_proof``, splits long text, sends attachments by URL and
classifies Graph errors into :class:`~connectors.base.ErrorKind`.

Identity: a contact is its PSID. Chat Plugin users that only have a ``user_ref`` become
``"user_ref:<ref>"`` so they cannot collide with a PSID and can still be answered.

Pure: no database, no ``app`` import; tested with recorded payloads and a fake Graph.

Modules: ``inbound`` (handshake, signatures, parsing), ``outbound`` (text splitting, tags,
recipients), ``errors`` (Graph error classification), ``connector`` (the registered
connector class) and ``constants``.
"""

from .connector import MessengerConnector
from .constants import (
    CONTEXT_EVENTS,
    DEFAULT_GRAPH_URL,
    DEFAULT_GRAPH_VERSION,
    HUMAN_AGENT_TAG,
    MAX_METADATA_LENGTH,
    MAX_TEXT_LENGTH,
    OWN_REFERENCE_PREFIX,
    PROFILE_FIELDS,
    RETIRED_TAGS,
    SENDER_ACTIONS,
    USER_REF_PREFIX,
)
from .errors import classify_graph_error
from .inbound import (
    appsecret_proof,
    check_signature,
    is_own_echo,
    page_ids,
    parse,
    verify_token_matches,
)
from .outbound import split_text

__all__ = [
    "CONTEXT_EVENTS",
    "DEFAULT_GRAPH_URL",
    "DEFAULT_GRAPH_VERSION",
    "HUMAN_AGENT_TAG",
    "MAX_METADATA_LENGTH",
    "MAX_TEXT_LENGTH",
    "MessengerConnector",
    "OWN_REFERENCE_PREFIX",
    "PROFILE_FIELDS",
    "RETIRED_TAGS",
    "SENDER_ACTIONS",
    "USER_REF_PREFIX",
    "appsecret_proof",
    "check_signature",
    "classify_graph_error",
    "is_own_echo",
    "page_ids",
    "parse",
    "split_text",
    "verify_token_matches",
]
