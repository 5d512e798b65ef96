"""The channels Switchboard speaks, one adapter each (see :mod:`app.channels.base`).

A new channel is a connector in ``connectors/``, an adapter module here and one
line in :data:`ADAPTERS`.
"""

from __future__ import annotations

from app.channels.base import Channel, Field, InvalidConfig, Registry, SetupItem, WindowPolicy
from app.channels.email import Email
from app.channels.gbm import Gbm
from app.channels.instagram import Instagram
from app.channels.messenger import Messenger
from app.channels.sms import Sms
from app.channels.whatsapp import WhatsApp

__all__ = [
    "Channel",
    "Field",
    "InvalidConfig",
    "SetupItem",
    "WindowPolicy",
    "all_channels",
    "get",
    "register",
]

ADAPTERS: tuple[type[Channel], ...] = (Messenger, Sms, Email, Gbm, WhatsApp, Instagram)

_registry = Registry()
register = _registry.register
for _adapter in ADAPTERS:
    register(_adapter)


def get(name: str) -> type[Channel]:
    """The adapter of channel ``name``; KeyError when there is none."""
    return _registry.channels[name]


def all_channels() -> list[type[Channel]]:
    """Every known channel, in registration order."""
    return list(_registry.channels.values())
