"""Command line: ``flask --app wsgi users|inboxes|demo|worker|bootstrap``."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import AppGroup

from app.extensions import db
from app.inbox import signals
from app.models import ApiToken, Inbox, InboxMember, User
from app.models.user import ROLES, password_problem
from connectors.email.address import normalize_address

users = AppGroup("users", help="Manage the people who work in the inbox.")
inboxes = AppGroup("inboxes", help="Connect and list inboxes.")
members = AppGroup("members", help="Who works in which inbox.")
demo = AppGroup("demo", help="Demo and benchmark data.")
inboxes.add_command(members)


def local_base_url() -> str:
    """Where ``python wsgi.py`` serves (HOST and PORT as it reads them)."""
    import os

    return f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"


def fail(message: str) -> None:
    """Print an error and exit non-zero."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


# --------------------------------------------------------------------------- users


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


# --------------------------------------------------------------------------- inboxes


def _create_inbox(
    channel: str,
    name: str,
    config: dict,
    route_key: str | None,
    alt_route_key: str | None = None,
    settings: dict | None = None,
) -> Inbox:
    from app.inbox.connections import connector_class

    try:
        cls = connector_class(channel)
    except KeyError:
        fail(f"the {channel} connector is not installed")
    problems = cls.validate_config(config)
    if problems:
        fail("; ".join(problems))
    exists = db.session.scalar(
        sa.select(Inbox).where(Inbox.channel == channel, Inbox.route_key == route_key)
    )
    if exists:
        fail(f"a {channel} inbox for {route_key} already exists (id {exists.id})")
    inbox = Inbox(
        channel=channel,
        name=name,
        config=config,
        route_key=route_key,
        alt_route_key=alt_route_key,
        settings=settings or {},
    )
    db.session.add(inbox)
    db.session.commit()
    return inbox


def _print_inbox(inbox: Inbox, extra: dict | None = None) -> None:
    from flask import current_app

    base = current_app.config.get("PUBLIC_URL") or local_base_url()
    click.echo(f"Created {inbox.channel} inbox {inbox.name!r} with id {inbox.id}")
    for key, value in (extra or {}).items():
        click.echo(f"{key}: {value.format(base=base, inbox=inbox)}")


@inboxes.group("add")
def inboxes_add() -> None:
    """Connect an inbox of a channel."""


@inboxes_add.command("messenger")
@click.option("--name", required=True)
@click.option("--page-id", required=True)
@click.option("--page-token", required=True)
@click.option("--app-secret", required=True)
@click.option("--verify-token", required=True)
@click.option("--app-id", default=None, help="Your Meta app id (recognises your own echoes).")
@click.option("--human-agent", is_flag=True, help="The Page is approved for the HUMAN_AGENT tag.")
def add_messenger(name, page_id, page_token, app_secret, verify_token, app_id, human_agent) -> None:
    """A Facebook Page."""
    config = {
        "page_id": page_id,
        "page_token": page_token,
        "app_secret": app_secret,
        "verify_token": verify_token,
        "human_agent": human_agent,
    }
    if app_id:
        config["app_id"] = app_id
    inbox = _create_inbox("messenger", name, config, page_id, settings={"human_agent": human_agent})
    _print_inbox(
        inbox, {"Callback URL": "{base}/webhooks/messenger", "Verify token": "(the one you gave)"}
    )


@inboxes_add.command("sms")
@click.option("--name", required=True)
@click.option("--provider", type=click.Choice(["twilio"]), default="twilio", show_default=True)
@click.option("--number", required=True, help="The phone number in E.164, e.g. +14155550100.")
@click.option("--account-sid", required=True)
@click.option("--auth-token", required=True)
@click.option("--messaging-service-sid", default=None)
def add_sms(name, provider, number, account_sid, auth_token, messaging_service_sid) -> None:
    """A phone number (or Messaging Service)."""
    from connectors.sms import phone

    e164 = phone.normalise(number)
    if not e164:
        fail(f"{number} is not a valid phone number (use E.164, e.g. +14155550100)")
    if not account_sid.startswith("AC"):
        fail("--account-sid starts with AC")
    if messaging_service_sid and not messaging_service_sid.startswith("MG"):
        fail("--messaging-service-sid starts with MG")
    config = {
        "provider": provider,
        "number": e164,
        "account_sid": account_sid,
        "auth_token": auth_token,
    }
    if messaging_service_sid:
        config["messaging_service_sid"] = messaging_service_sid
    inbox = _create_inbox("sms", name, config, e164, messaging_service_sid)
    _print_inbox(
        inbox,
        {
            "Incoming message webhook (POST)": "{base}/webhooks/sms/twilio",
            "Status callback": "{base}/webhooks/sms/twilio/status",
        },
    )


@inboxes_add.command("email")
@click.option("--name", required=True)
@click.option("--address", required=True)
@click.option("--smtp-host", required=True)
@click.option("--smtp-port", required=True, type=int)
@click.option("--smtp-user", default=None)
@click.option("--smtp-password", default=None)
@click.option(
    "--smtp-security",
    type=click.Choice(["none", "starttls", "ssl"]),
    default="starttls",
    show_default=True,
)
@click.option("--imap-host", default=None)
@click.option("--imap-port", type=int, default=None)
@click.option("--imap-user", default=None)
@click.option("--imap-password", default=None)
@click.option("--imap-folder", default="INBOX", show_default=True)
@click.option("--imap-security", type=click.Choice(["none", "starttls", "ssl"]), default=None)
def add_email(
    name,
    address,
    smtp_host,
    smtp_port,
    smtp_user,
    smtp_password,
    smtp_security,
    imap_host,
    imap_port,
    imap_user,
    imap_password,
    imap_folder,
    imap_security,
) -> None:
    """A mailbox: SMTP for replies, IMAP polling and/or the raw-MIME inbound URL."""
    address = normalize_address(address)
    if "@" not in address:
        fail("--address must be an email address")
    if bool(smtp_user) != bool(smtp_password):
        fail("give both --smtp-user and --smtp-password, or neither")
    if imap_host and not (imap_user and imap_password):
        fail("IMAP needs --imap-user and --imap-password")
    config = {
        "address": address,
        "smtp_host": smtp_host,
        "smtp_port": smtp_port,
        "smtp_security": smtp_security,
    }
    optional = {
        "smtp_user": smtp_user,
        "smtp_password": smtp_password,
        "imap_host": imap_host,
        "imap_port": imap_port or (993 if imap_host else None),
        "imap_user": imap_user,
        "imap_password": imap_password,
        "imap_folder": imap_folder if imap_host else None,
        "imap_security": imap_security,
    }
    config.update({k: v for k, v in optional.items() if v})
    inbox = _create_inbox("email", name, config, address)
    _print_inbox(
        inbox,
        {
            "Inbound token": "{inbox.inbound_token}",
            "Raw MIME inbound URL": "{base}/webhooks/email/inbound/{inbox.inbound_token}",
        },
    )


@inboxes_add.command("gbm")
@click.option("--name", required=True)
@click.option("--agent", required=True, help="brands/BRAND/agents/AGENT")
@click.option("--client-token", required=True)
@click.option("--service-account", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--partner-key", default=None, help="Older samples signed with a partner key.")
def add_gbm(name, agent, client_token, service_account, partner_key) -> None:
    """A Google Business Messages agent (the platform closed on 2024-07-31)."""
    try:
        info = json.loads(Path(service_account).read_text())
    except (OSError, ValueError) as exc:
        fail(f"cannot read the service-account JSON: {exc}")
    config = {"agent": agent, "client_token": client_token, "service_account": info}
    if partner_key:
        config["partner_key"] = partner_key
    inbox = _create_inbox("gbm", name, config, agent)
    _print_inbox(inbox, {"Webhook URL": "{base}/webhooks/gbm"})


@inboxes.command("reconnect")
@click.argument("inbox_id", type=int)
@click.option("--page-token", default=None, help="Messenger: a new Page access token.")
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Any connector field, e.g. --set auth_token=...",
)
def inboxes_reconnect(inbox_id: int, page_token: str | None, settings: tuple[str, ...]) -> None:
    """New credentials for an inbox: clears "reconnect needed" and resumes paused replies."""
    from app.inbox.connections import reconnect

    inbox = db.session.get(Inbox, inbox_id)
    if inbox is None:
        fail(f"no inbox with id {inbox_id}")
    changes: dict = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--set takes FIELD=VALUE, not {item!r}")
        changes[key.strip()] = value
    if page_token:
        changes["page_token"] = page_token
    if not changes:
        fail("give the new credentials, e.g. --page-token")
    try:
        resumed = reconnect(db.session, inbox, changes)
    except ValueError as exc:
        fail(str(exc))
    db.session.commit()
    click.echo(f"Reconnected {inbox.name!r} (id {inbox.id}); {resumed} paused replies resume")


@inboxes.command("list")
def inboxes_list() -> None:
    """One JSON object per inbox: id, channel, name, identifiers (never a secret)."""
    from app.inbox.connections import public_config

    for inbox in db.session.scalars(sa.select(Inbox).order_by(Inbox.id)):
        click.echo(
            json.dumps(
                {
                    "id": inbox.id,
                    "channel": inbox.channel,
                    "name": inbox.name,
                    "identifiers": public_config(inbox),
                }
            )
        )


@members.command("add")
@click.argument("inbox_id", type=int)
@click.argument("email")
def members_add(inbox_id: int, email: str) -> None:
    """Let a user work in an inbox."""
    inbox = db.session.get(Inbox, inbox_id)
    if inbox is None:
        fail(f"no inbox with id {inbox_id}")
    user = db.session.scalar(sa.select(User).where(User.email == normalize_address(email)))
    if user is None:
        fail(f"no user with email {email}")
    if db.session.get(InboxMember, {"inbox_id": inbox.id, "user_id": user.id}) is None:
        db.session.add(InboxMember(inbox_id=inbox.id, user_id=user.id))
        db.session.commit()
        signals.access_changed.send(user.id)  # open sockets join the inbox (through Redis)
    click.echo(f"{user.name} works in {inbox.name}")


# --------------------------------------------------------------------------- demo, worker


@demo.command("seed")
@click.option("--conversations", "n_conv", type=int, default=50, show_default=True)
@click.option("--messages-per-conversation", "n_msg", type=int, default=6, show_default=True)
def demo_seed(n_conv: int, n_msg: int) -> None:
    """Bulk-load realistic synthetic conversations (fast: bulk inserts)."""
    import time

    from app.inbox import seed

    started = time.perf_counter()
    totals = seed.seed(db.session, n_conv, n_msg)
    took = time.perf_counter() - started
    click.echo(
        f"Seeded {totals['conversations']} conversations and {totals['messages']} messages "
        f"in {took:.1f} s"
    )


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


@click.command("worker")
@click.option("--once", is_flag=True, help="Process what is due and exit.")
def worker(once: bool) -> None:
    """The background process: delivery worker and scheduler (scale-out layout)."""
    from flask import current_app

    from app.inbox.worker import WorkerThread, run_once
    from app.jobs import start_scheduler

    app = current_app._get_current_object()
    if once:
        from app.inbox import intake

        threaded = intake.drain_all().rows
        click.echo(f"processed {run_once(limit=500)}; webhook bodies threaded {threaded}")
        return
    start_scheduler(app)
    thread = WorkerThread(app)
    thread.start()
    click.echo("Switchboard worker running (Ctrl+C to stop)")
    try:
        while thread.is_alive():
            thread.join(1.0)
    except KeyboardInterrupt:
        thread.stop()


@click.group("intake")
def intake_cli() -> None:
    """The webhook intake: bodies stored, waiting to be threaded into the inbox."""


@intake_cli.command("status")
def intake_status() -> None:
    """How many webhook bodies wait, and the failed ones with their errors."""
    from app.inbox import intake

    click.echo(f"waiting: {intake.pending_count()}")
    for row in intake.rows("failed"):
        click.echo(
            f"failed #{row.id} {row.channel} received {row.received_at:%Y-%m-%d %H:%M:%S}Z "
            f"after {row.attempts} attempts: {row.error}"
        )


@intake_cli.command("retry")
def intake_retry() -> None:
    """Queue the failed bodies again and thread what is due now."""
    from app.inbox import intake

    n = intake.retry_failed()
    done = intake.drain_all()
    click.echo(f"requeued {n}; threaded {done.rows}, failed again {done.failed}")


def register(app: Flask) -> None:
    """Attach the command groups to ``app``."""
    for command in (users, inboxes, demo, worker, bootstrap, intake_cli):
        app.cli.add_command(command)
