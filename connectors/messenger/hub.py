"""Meta's webhook handshake and signature, shared by every channel on Meta's webhooks.

Messenger, Instagram and WhatsApp subscribe the same way: a ``GET`` with
``hub.mode=subscribe``, the verify token the business chose and a challenge to echo;
then ``POST`` bodies signed with ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body
with the app secret). A connector takes these from :class:`MetaWebhooks`.
"""

from __future__ import annotations

from typing import Any

from .inbound import check_signature, verify_token_matches


class MetaWebhooks:
    """The webhook contract's handshake and signature check, as Meta defines them."""

    @classmethod
    def webhook_handshake(cls, body: bytes, args: dict[str, str]) -> tuple[str, str] | None:
        """Meta's ``GET`` subscription check: ``(hub.verify_token, hub.challenge)``."""
        given = args.get("hub.verify_token")
        if args.get("hub.mode") == "subscribe" and given:
            return given, args.get("hub.challenge", "")
        return None

    @classmethod
    def accepts_handshake(cls, config: dict[str, Any], token: str) -> bool:
        """The inbox's verify token is the one presented (constant time)."""
        return verify_token_matches(token, config.get("verify_token") or "")

    def verify_webhook(self, body: bytes, url: str, headers: Any) -> bool:
        """``X-Hub-Signature-256`` over the raw body with the inbox's app secret; fails
        closed (no secret, no header or another signature: refused)."""
        secret = (getattr(self, "config", None) or {}).get("app_secret") or ""
        return check_signature(body, headers.get("X-Hub-Signature-256"), secret)
