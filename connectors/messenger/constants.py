"""Messenger limits, tags, webhook event names and Graph error code sets."""

from __future__ import annotations

import re

DEFAULT_GRAPH_URL = "https://graph.facebook.com"
DEFAULT_GRAPH_VERSION = "v25.0"
MAX_TEXT_LENGTH = 2000  # Send API text limit, counted here in UTF-16 code units (conservative)
MAX_METADATA_LENGTH = 1000
OWN_REFERENCE_PREFIX = "sb:"  # our OutboundMessage.reference values, echoed back as metadata
USER_REF_PREFIX = "user_ref:"  # contact ids of Chat Plugin users known only by user_ref

# Instagram stories arrive as links (Meta forbids storing their media; they expire in a day)
STORY_KIND = "story"
STORY_REPLY = "Replied to your story"
STORY_MENTION = "Mentioned you in their story"

HUMAN_AGENT_TAG = "HUMAN_AGENT"
# Meta answers these with error 100 from 2026-04-27; we refuse them before any call.
RETIRED_TAGS = frozenset({"CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE"})
SENDER_ACTIONS = frozenset({"typing_on", "typing_off", "mark_seen"})
PROFILE_FIELDS = "first_name,last_name,name,profile_pic"

# Events that are facts about the conversation rather than messages. Each becomes a
# ConversationContext whose ``data`` holds the event object under the same key.
CONTEXT_EVENTS = (
    "referral",
    "optin",
    "reaction",
    "message_edit",
    "account_linking",
    "pass_thread_control",
    "take_thread_control",
    "request_thread_control",
    "message_request",
)

# Graph error codes -> how the domain reacts (docs/channels.md section 1.7).
_WINDOW_CODES = frozenset({10})
# 2018278 (with code 10, or 100 on Instagram): "sent outside of the allowed window"
_WINDOW_SUBCODES = frozenset({2018278})
_UNDELIVERABLE_CODES = frozenset({551})
# 190/102: token invalid. 200/230: permission missing or revoked; the fix is the same as
# for a dead token (an admin re-grants the Page connection), and PERMANENT would make
# every later message fail one by one without anyone being told to reconnect.
_AUTH_CODES = frozenset({102, 190, 200, 230})
# 4/17/32/613/80006: rate limits; 1200: temporary send failure; 1/2: unknown/unexpected.
_TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 613, 1200, 80006})
_RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80006})

_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
