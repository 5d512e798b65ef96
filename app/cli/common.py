"""What the command groups share: failing with a message."""

from __future__ import annotations

import sys

import click


def fail(message: str) -> None:
    """Print an error and exit non-zero."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)
