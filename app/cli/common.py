"""What the command groups share: failing with a message, the local base URL."""

from __future__ import annotations

import os
import sys

import click


def local_base_url() -> str:
    """Where ``python wsgi.py`` serves (HOST and PORT as it reads them)."""
    return f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"


def fail(message: str) -> None:
    """Print an error and exit non-zero."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)
