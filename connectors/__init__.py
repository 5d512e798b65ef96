"""Channel connectors: wire format <-> normalised dataclasses (see ``base``).

Importing this package registers every channel's connector. A new channel is a
module here and one line in ``_CHANNEL_MODULES``; its app side is an adapter in
``app/channels``.
"""

from importlib import import_module

from connectors.base import channels, get, register  # noqa: F401

_CHANNEL_MODULES = ("messenger", "sms", "email", "gbm", "whatsapp", "instagram")

for _name in _CHANNEL_MODULES:
    import_module(f"connectors.{_name}")
