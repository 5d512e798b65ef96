"""``flask inboxes ...``: connect, reconnect and list inboxes; who works in them."""

from __future__ import annotations

import json
from pathlib import Path

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from app.cli.common import fail, local_base_url
from app.extensions import db
from app.inbox import signals
from app.models import Inbox, InboxMember, User
from connectors.email.address import normalize_address

inboxes = AppGroup("inboxes", help="Connect and list inboxes.")
members = AppGroup("members", help="Who works in which inbox.")
inboxes.add_command(members)


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
