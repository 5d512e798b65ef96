"""``flask users ...`` and ``flask bootstrap``: the people who work in the inbox."""

from __future__ import annotations

import json
import secrets

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from app.cli.common import fail
from app.extensions import db
from app.models import ApiToken, User
from app.models.user import ROLES, password_problem
from app.urls import local_base_url
from connectors.email.address import normalize_address

users = AppGroup("users", help="Manage the people who work in the inbox.")


@users.command("create")
@click.argument("email")
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(ROLES), default="agent", show_default=True)
@click.option("--password", required=True)
@click.option("--capacity", type=int, default=20, show_default=True)
def users_create(email: str, name: str, role: str, password: str, capacity: int) -> None:
    """Create a user who can log in."""
    email = normalize_address(email)
    if "@" not in email:
        fail("EMAIL must be an email address")
    problem = password_problem(password, email)
    if problem:
        fail(problem)
    if db.session.scalar(sa.select(User).where(User.email == email)):
        fail(f"a user with email {email} already exists")
    user = User(email=email, name=name, role=role, capacity=capacity)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    click.echo(f"Created {role} {name} <{email}> (id {user.id})")


@users.command("token")
@click.argument("email")
@click.option("--name", default="cli", help="A label for the token.")
def users_token(email: str, name: str) -> None:
    """Create an API token; it is printed once, as the last line."""
    user = db.session.scalar(sa.select(User).where(User.email == normalize_address(email)))
    if user is None:
        fail(f"no user with email {email}")
    row, clear = ApiToken.issue(user, name)
    db.session.add(row)
    db.session.commit()
    click.echo(f"API token for {user.email} (keep it secret, it is shown once):")
    click.echo(clear)


@users.command("list")
def users_list() -> None:
    """One JSON object per user."""
    for user in db.session.scalars(sa.select(User).order_by(User.id)):
        click.echo(json.dumps(user.to_dict()))


def bootstrap_admin() -> None:
    """Create the first admin when there is no user, printing how to log in."""
    if db.session.scalar(sa.select(sa.func.count()).select_from(User)):
        return
    password = secrets.token_urlsafe(12)
    user = User(email="admin@example.com", name="Admin", role="admin")
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    click.echo("")
    click.echo(f"  First admin created. Log in at {local_base_url()}/login with")
    click.echo("    email:    admin@example.com")
    click.echo(f"    password: {password}")
    click.echo("  (change it under Users once you are in)")
    click.echo("")


@click.command("bootstrap")
def bootstrap() -> None:
    """First-run set-up for ``make run``: the first admin if none exists."""
    bootstrap_admin()
