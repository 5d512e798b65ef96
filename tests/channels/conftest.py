"""Fixtures of the channel tests: the fake providers (see :mod:`tests.channels.harness`)."""

from tests.channels.harness import provider, smtp_sink  # noqa: F401 (pytest fixtures)
