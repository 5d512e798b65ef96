"""Instagram messaging (Instagram API with Instagram Login): webhooks and the Send API.

Instagram's messaging webhooks and Send API are Messenger's: the same envelope
(``object: instagram``, ``entry[].messaging[]``), the same ``X-Hub-Signature-256``,
the same ``POST /me/messages`` bodies, tags and Graph errors. So the parsing, the
signature check, the sending and the error map are :mod:`connectors.messenger`'s;
what differs lives here: the host (``graph.instagram.com``), the account's settings,
the live checks and the webhook subscription (``/me/subscribed_apps``), the profile
fields (``username``), and echoes, which carry no metadata (our own sends are known by
the message id the Send API returned).

Instagram's own events are read by the shared parser: ``reply_to.story`` (a reply to the
business's story) and ``story_mention`` attachments become ``story`` links (Meta forbids
keeping story media), ``messaging_seen`` receipts name a message (``read.mid``).
"""

from .connector import SUBSCRIBED_FIELDS, InstagramConnector

__all__ = ["SUBSCRIBED_FIELDS", "InstagramConnector"]
