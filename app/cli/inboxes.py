"""``flask inboxes ...``: connect, reconnect and list inboxes; who works in them."""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from app import channels
from app.channels import Channel, Field
from app.cli.common import fail
from app.extensions import db
from app.inbox import signals
from app.inbox.credentials import public_config, reconnect
from app.models import Inbox, InboxMember, User
from app.urls import public_base_url
from connectors.email.address import normalize_address

inboxes = AppGroup("inboxes", help="Connect and list inboxes.")
members = AppGroup("members", help="Who works in which inbox.")
inboxes.add_command(members)


# --------------------------------------------------------------------------- inboxes add
# One command per channel adapter, its options generated from the adapter's fields:
# a new channel (connector, adapter, registry line) needs no code here.

RESERVED_OPTIONS = ("name", "help")  # ``--name`` is the inbox's name; ``--help`` is click's


class JsonFile(click.Path):
    """A path to a JSON file; the value is its parsed content (a ``file`` field)."""

    name = "json_file"

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        """Read and parse the file; a clear error when it cannot be."""
        if not isinstance(value, (str, Path)):
            return value  # already parsed (a default, or called from Python)
        path = super().convert(value, param, ctx)
        try:
            return json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            self.fail(f"cannot read {str(path)!r} as JSON: {exc}", param, ctx)


def field_option(f: Field) -> click.Option:
    """The ``inboxes add`` option for one setting of a channel.

    ``bool`` is a flag (``--human-agent``, or ``--x/--no-x`` when it defaults to on),
    ``number`` an integer, ``choice`` one of its choices, ``file`` a JSON file read
    into the value; required fields are required options. Values are only typed here:
    :meth:`Channel.clean_config` validates them.
    """
    help_text = f"{f.label}. {f.help}" if f.help else f.label
    if f.type == "bool":
        decl = f"{f.option}/--no-{f.option[2:]}" if f.default else f.option
        return click.Option([decl, f.name], is_flag=True, default=bool(f.default), help=help_text)
    kwargs: dict = {"help": help_text, "required": f.required and f.default is None}
    if f.type == "number":
        kwargs["type"] = click.INT
    elif f.type == "choice":
        kwargs["type"] = click.Choice(f.choices)
    elif f.type == "file":
        kwargs["type"] = JsonFile()
        kwargs["metavar"] = "FILE"
    if f.default is not None:
        kwargs["default"] = f.default
        kwargs["show_default"] = True
    return click.Option([f.option, f.name], **kwargs)


def add_command(adapter: type[Channel]) -> click.Command:
    """``flask inboxes add <channel>``, built from the adapter's fields."""
    clash = [f.name for f in adapter.fields if f.name in RESERVED_OPTIONS]
    if clash:
        raise ValueError(f"{adapter.name}: a field cannot be called {', '.join(clash)}")
    summary = (inspect.getdoc(adapter) or "").split("\n")[0]
    params = [click.Option(["--name", "inbox_name"], required=True, help="The inbox's name.")]
    params += [field_option(f) for f in adapter.fields]

    @with_appcontext
    def callback(inbox_name: str, **values) -> None:
        add_inbox(adapter, inbox_name, values)

    return click.Command(
        adapter.name,
        callback=callback,
        params=params,
        help=f"{adapter.label}: {summary[:1].lower()}{summary[1:]}" if summary else adapter.label,
    )


class ChannelCommands(click.Group):
    """``inboxes add``: a subcommand per registered channel adapter."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._built: dict[type[Channel], click.Command] = {}

    def list_commands(self, ctx) -> list[str]:
        """Every registered channel, in registration order."""
        return [adapter.name for adapter in channels.all_channels()]

    def get_command(self, ctx, cmd_name: str) -> click.Command | None:
        """The channel's command (built once per adapter)."""
        try:
            adapter = channels.get(cmd_name)
        except KeyError:
            return None
        if adapter not in self._built:
            self._built[adapter] = add_command(adapter)
        return self._built[adapter]


inboxes_add = ChannelCommands("add", help="Connect an inbox of a channel.")
inboxes.add_command(inboxes_add)


def invalid(heading: str, problems: dict[str, str], labels: dict[str, str]) -> None:
    """Print one line per wrong setting (``--number: is not ...``) and exit non-zero.

    ``labels`` names each setting as the operator gave it (its option); ``config``
    holds the problems no single setting owns.
    """
    click.echo(f"Error: {heading}:", err=True)
    for name, why in problems.items():
        label = labels.get(name) or ("settings" if name == "config" else name)
        click.echo(f"  {label}: {why}", err=True)
    sys.exit(2)


def add_inbox(adapter: type[Channel], name: str, values: dict) -> Inbox:
    """Create an inbox of ``adapter``'s channel from option values; print its set-up."""
    problems: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        problems["inbox_name"] = "is required"
    try:
        adapter.connector()
    except KeyError:
        fail(f"the {adapter.name} connector is not installed")
    config: dict = {}
    try:
        config = adapter.clean_config({k: v for k, v in values.items() if v is not None})
    except channels.InvalidConfig as exc:
        problems.update(adapter.by_field(exc.fields))
    if problems:
        labels = {f.name: f.option for f in adapter.fields} | {"inbox_name": "--name"}
        invalid(f"the {adapter.name} inbox was not created", problems, labels)
    route_key, alt_route_key = adapter.route_keys(config)
    exists = db.session.scalar(
        sa.select(Inbox).where(Inbox.channel == adapter.name, Inbox.route_key == route_key)
    )
    if exists:
        fail(f"a {adapter.name} inbox for {route_key} already exists (id {exists.id})")
    inbox = Inbox(
        channel=adapter.name,
        name=name,
        config=config,
        route_key=route_key,
        alt_route_key=alt_route_key,
        settings=adapter.inbox_settings(config),
    )
    db.session.add(inbox)
    db.session.commit()
    print_setup(adapter, inbox)
    return inbox


def print_setup(adapter: type[Channel], inbox: Inbox) -> None:
    """``Created ... with id N``, then what to paste into the provider's console.

    A secret the operator typed is not echoed back; one Switchboard made (the
    inbound token in an inbound URL) is printed, as nothing else shows it here.
    """
    base = public_base_url(current_app.config)
    click.echo(f"Created {inbox.channel} inbox {inbox.name!r} with id {inbox.id}")
    items = adapter.setup(inbox, base)
    given = {f.option: inbox.config.get(f.name) for f in adapter.fields if f.secret}
    if any(item.value and inbox.inbound_token in str(item.value) for item in items):
        click.echo(f"Inbound token: {inbox.inbound_token}")
    for item in items:
        if item.value is None:
            continue
        value = item.value
        if item.secret:
            option = next((opt for opt, v in given.items() if v == item.value), None)
            if option:
                value = f"(the one you gave with {option})"
        click.echo(f"{item.label}: {value}")


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
    """New credentials for an inbox: clears "reconnect needed" and resumes paused replies.

    The new values are checked by the channel's adapter together with the stored
    ones; wrong ones are listed per setting and nothing changes.
    """
    inbox = db.session.get(Inbox, inbox_id)
    if inbox is None:
        fail(f"no inbox with id {inbox_id}")
    changes: dict = {}
    labels: dict[str, str] = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--set takes FIELD=VALUE, not {item!r}")
        changes[key.strip()] = value
        labels[key.strip()] = f"--set {key.strip()}"
    if page_token:
        changes["page_token"] = page_token
        labels["page_token"] = "--page-token"
    if not changes:
        fail("give the new credentials, e.g. --page-token")
    try:
        adapter = channels.get(inbox.channel)
        adapter.connector()
    except KeyError:
        fail(f"the {inbox.channel} channel is not installed")
    changes = reconnect_changes(adapter, inbox, changes, labels)
    route_key, alt_route_key = inbox.route_key, inbox.alt_route_key
    if {adapter.route_field, adapter.alt_route_field} & set(changes):
        route_key, alt_route_key = adapter.route_keys({**(inbox.config or {}), **changes})
        exists = db.session.scalar(
            sa.select(Inbox).where(
                Inbox.channel == inbox.channel, Inbox.route_key == route_key, Inbox.id != inbox.id
            )
        )
        if exists:
            fail(f"a {inbox.channel} inbox for {route_key} already exists (id {exists.id})")
    try:
        resumed = reconnect(db.session, inbox, changes)
    except ValueError as exc:
        fail(str(exc))
    inbox.route_key, inbox.alt_route_key = route_key, alt_route_key
    db.session.commit()
    click.echo(f"Reconnected {inbox.name!r} (id {inbox.id}); {resumed} paused replies resume")


def reconnect_changes(
    adapter: type[Channel], inbox: Inbox, changes: dict, labels: dict[str, str]
) -> dict:
    """``changes`` typed and normalised by the adapter, checked with the stored settings.

    Settings only the connector knows (Twilio's ``webhook_shared_key``) pass as given;
    the connector still checks them. Exits with per-setting errors when a value is wrong.
    """
    fields = {f.name for f in adapter.fields}
    unknown = sorted(set(changes) - fields - {f.name for f in adapter.connector().fields})
    if unknown:
        fail(f"{inbox.channel} inboxes have no setting {', '.join(unknown)}")
    stored = {k: v for k, v in (inbox.config or {}).items() if k in fields}
    try:
        cleaned = adapter.clean_config(stored | {k: v for k, v in changes.items() if k in fields})
    except channels.InvalidConfig as exc:
        named = {name: f"{name} (as stored)" for name in fields} | labels
        invalid(f"inbox {inbox.id} was not reconnected", adapter.by_field(exc.fields), named)
    return {k: cleaned.get(k) if k in fields else v for k, v in changes.items()}


@inboxes.command("list")
def inboxes_list() -> None:
    """One JSON object per inbox: id, channel, name, identifiers (never a secret)."""
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
