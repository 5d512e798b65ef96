"""Channel connectors: wire format <-> normalised dataclasses (see ``base``).

Importing this package registers every channel. A new channel is one module
here plus one line in ``_CHANNEL_MODULES``, and its webhook route.
"""

from importlib import import_module

from connectors.base import channels, get, register  # noqa: F401

_CHANNEL_MODULES = ("messenger", "sms", "email", "gbm")

for _name in _CHANNEL_MODULES:
    try:
        import_module(f"connectors.{_name}")
    except ModuleNotFoundError as exc:  # a channel still being written
        if exc.name != f"connectors.{_name}":
            raise
