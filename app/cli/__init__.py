"""Command line: ``flask --app wsgi users|inboxes|demo|worker|intake|bootstrap``.

One module per command group; :func:`register` attaches them all.
"""

from __future__ import annotations

from flask import Flask

from app.cli.demo import demo
from app.cli.inboxes import inboxes
from app.cli.intake import intake_cli
from app.cli.users import bootstrap, users
from app.cli.worker import worker


def register(app: Flask) -> None:
    """Attach the command groups to ``app``."""
    for command in (users, inboxes, demo, worker, bootstrap, intake_cli):
        app.cli.add_command(command)
