"""``inboxes add <channel>`` and ``inboxes reconnect``, driven by the channel adapters.

The options come from each adapter's fields, so these tests walk every registered
channel: a field added to an adapter is an option without CLI code, and a wrong
value is named by its option with nothing stored.
"""

from __future__ import annotations

import json

import click
import pytest
import sqlalchemy as sa

from app import channels
from app.channels import Channel, Field
from app.cli.inboxes import JsonFile, add_command, inboxes_add
from app.extensions import db
from app.models import Inbox

ALL = channels.all_channels()


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def inbox_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Inbox))


def service_account(tmp_path, **overrides) -> str:
    info = {
        "type": "service_account",
        "client_email": "x@y.iam",
        "private_key": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
        "private_key_id": "k1",
        "token_uri": "http://127.0.0.1:1/token",
    } | overrides
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(info))
    return str(path)


# --------------------------------------------------------------------------- options


def test_there_is_an_add_command_per_channel(app):
    assert inboxes_add.list_commands(None) == [c.name for c in ALL]
    out = run(app, "inboxes", "add", "--help").output
    for adapter in ALL:
        assert adapter.name in out


@pytest.mark.parametrize("adapter", ALL, ids=lambda c: c.name)
def test_every_field_is_an_option_of_its_add_command(app, adapter):
    command = inboxes_add.get_command(None, adapter.name)
    params = {p.name: p for p in command.params}
    help_text = run(app, "inboxes", "add", adapter.name, "--help").output
    assert "--name" in params["inbox_name"].opts and params["inbox_name"].required
    for f in adapter.fields:
        option = params.get(f.name)
        assert option is not None, f"{adapter.name}: no option for {f.name}"
        assert f.option in option.opts and f.option in help_text
        if f.type == "bool":
            assert option.is_flag and not option.required
            continue
        assert option.required == (f.required and f.default is None), f.name
        if f.default is not None:
            assert option.default == f.default and option.show_default
        if f.type == "number":
            assert option.type is click.INT
        elif f.type == "choice":
            assert list(option.type.choices) == list(f.choices)
        elif f.type == "file":
            assert isinstance(option.type, JsonFile)


def test_options_follow_the_field_types_without_cli_code():
    class Pigeon(Channel):
        """One loft."""

        name = "pigeon"
        label = "Carrier pigeon"
        fields = (
            Field("loft", "Loft"),
            Field("birds", "Birds", "number", required=False, default=3),
            Field("ring", "Ring", "choice", choices=("red", "blue")),
            Field("homing", "Homing", "bool", required=False, default=True),
            Field("tame", "Tame", "bool", required=False),
            Field("papers", "Papers", "file"),
        )

    params = {p.name: p for p in add_command(Pigeon).params}
    assert params["loft"].opts == ["--loft"] and params["loft"].required
    assert params["birds"].type is click.INT and params["birds"].default == 3
    assert not params["birds"].required
    assert params["ring"].required and list(params["ring"].type.choices) == ["red", "blue"]
    assert params["homing"].opts == ["--homing"] and params["homing"].secondary_opts == [
        "--no-homing"
    ]
    assert params["homing"].default is True
    assert params["tame"].is_flag and params["tame"].default is False
    assert isinstance(params["papers"].type, JsonFile)

    class Clash(Channel):
        name = "clash"
        fields = (Field("name", "Name"),)

    with pytest.raises(ValueError, match="cannot be called name"):
        add_command(Clash)


# --------------------------------------------------------------------------- invalid values


@pytest.mark.parametrize("adapter", ALL, ids=lambda c: c.name)
def test_blank_required_values_are_named_by_option_and_nothing_is_stored(app, adapter, tmp_path):
    args = ["inboxes", "add", adapter.name, "--name", " "]
    blank = []
    for f in adapter.fields:
        if not f.required or f.default is not None or f.type == "bool":
            continue
        if f.type == "file":
            args += [f.option, service_account(tmp_path)]
        elif f.type == "number":
            args += [f.option, "1"]
        elif f.type == "choice":
            args += [f.option, f.choices[0]]
        else:
            args += [f.option, "   "]
            blank.append(f.option)
    r = run(app, *args)
    assert r.exit_code == 2, r.output
    assert f"Error: the {adapter.name} inbox was not created:" in r.output
    assert "  --name: is required" in r.output
    for option in blank:
        assert f"  {option}: is required" in r.output
    assert inbox_count() == 0


MESSENGER = [
    "--name",
    "Page",
    "--page-id",
    "111",
    "--page-token",
    "EAAB",
    "--app-secret",
    "s",
    "--verify-token",
    "v",
]
SMS = ["--name", "SMS", "--number", "+14155550100", "--account-sid", "AC1", "--auth-token", "t"]
EMAIL = ["--name", "Mail", "--address", "a@shop.example", "--smtp-host", "h", "--smtp-port", "25"]
GBM = ["--name", "G", "--agent", "brands/b/agents/a", "--client-token", "ct"]
WHATSAPP = [
    "--name",
    "WA",
    "--phone-number-id",
    "106540352242922",
    "--waba-id",
    "102290129340398",
    "--access-token",
    "EAAJB",
    "--app-secret",
    "s",
    "--verify-token",
    "v",
]
INSTAGRAM = [
    *("--name", "DMs", "--account-id", "17841400000000001", "--access-token", "IGAA"),
    *("--app-secret", "s", "--verify-token", "v"),
]


def _with(args: list[str], option: str, value: str) -> list[str]:
    """``args`` with ``option`` set to ``value`` (replaced or appended)."""
    out = list(args)
    if option in out:
        out[out.index(option) + 1] = value
    else:
        out += [option, value]
    return out


INVALID = [
    ("messenger", _with(MESSENGER, "--page-id", " "), "--page-id: is required"),
    (
        "sms",
        _with(SMS, "--number", "not-a-number"),
        "--number: is not a valid phone number (use E.164, e.g. +14155550100)",
    ),
    ("sms", _with(SMS, "--account-sid", "XX1"), "--account-sid: starts with AC"),
    (
        "sms",
        _with(SMS, "--messaging-service-sid", "XX1"),
        "--messaging-service-sid: starts with MG",
    ),
    ("email", _with(EMAIL, "--address", "nope"), "--address: must be an email address"),
    ("email", _with(EMAIL, "--smtp-port", "70000"), "--smtp-port: must be between 1 and 65535"),
    (
        "email",
        _with(EMAIL, "--smtp-user", "u"),
        "--smtp-password: give both the SMTP user and password, or neither",
    ),
    (
        "email",
        _with(EMAIL, "--imap-host", "imap.shop.example"),
        "--imap-password: IMAP needs a user and a password",
    ),
    ("gbm", GBM, "--service-account: lacks client_email"),
    (
        "whatsapp",
        _with(WHATSAPP, "--phone-number-id", "+1 555 078 3881"),
        "--phone-number-id: must be Meta's numeric id (digits only)",
    ),
    (
        "instagram",
        _with(INSTAGRAM, "--account-id", "@shop.porto"),
        "--account-id: must be the account's numeric id, not its @username",
    ),
]


@pytest.mark.parametrize(("channel", "args", "line"), INVALID, ids=[i[2] for i in INVALID])
def test_a_wrong_value_is_named_by_its_option_and_nothing_is_stored(
    app, tmp_path, channel, args, line
):
    if channel == "gbm":
        args = [*args, "--service-account", service_account(tmp_path, client_email=None)]
    r = run(app, "inboxes", "add", channel, *args)
    assert r.exit_code == 2, r.output
    assert f"  {line}" in r.output
    assert inbox_count() == 0


def test_every_channel_has_a_wrong_value_case():
    assert {c.name for c in ALL} <= {channel for channel, _, _ in INVALID}


def test_a_service_account_that_is_not_a_json_object(app, tmp_path):
    listed = tmp_path / "list.json"
    listed.write_text("[1]")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    r = run(app, "inboxes", "add", "gbm", *GBM, "--service-account", str(listed))
    assert r.exit_code == 2 and "--service-account: must be a JSON object" in r.output
    r = run(app, "inboxes", "add", "gbm", *GBM, "--service-account", str(broken))
    assert r.exit_code == 2 and "'--service-account'" in r.output and "as JSON" in r.output
    r = run(app, "inboxes", "add", "gbm", *GBM, "--service-account", str(tmp_path / "none"))
    assert r.exit_code == 2 and "does not exist" in r.output
    assert inbox_count() == 0


def test_a_second_inbox_for_the_same_route_is_refused(app):
    assert run(app, "inboxes", "add", "sms", *SMS).exit_code == 0
    again = _with(SMS, "--number", "+1 (415) 555-0100")
    r = run(app, "inboxes", "add", "sms", *again)
    assert r.exit_code == 2 and "already exists (id" in r.output
    assert inbox_count() == 1


# --------------------------------------------------------------------------- what is printed


def test_the_set_up_is_printed_without_echoing_typed_secrets(app, tmp_path):
    app.config["PUBLIC_URL"] = "https://support.shop.example"
    r = run(app, "inboxes", "add", "messenger", *MESSENGER, "--human-agent")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("Created messenger inbox 'Page' with id ")
    assert "Callback URL: https://support.shop.example/webhooks/messenger" in lines
    assert "Verify token: (the one you gave with --verify-token)" in lines
    inbox = db.session.scalar(sa.select(Inbox).where(Inbox.channel == "messenger"))
    assert inbox.config["human_agent"] is True and inbox.setting("human_agent") is True

    typed = "typed pass!"  # not a token's alphabet: it cannot turn up in a random one
    r = run(
        app, "inboxes", "add", "email", *_with(EMAIL, "--smtp-user", "u"), "--smtp-password", typed
    )
    assert r.exit_code == 0, r.output
    inbox = db.session.scalar(sa.select(Inbox).where(Inbox.channel == "email"))
    lines = r.output.splitlines()
    assert lines[0] == f"Created email inbox 'Mail' with id {inbox.id}"
    assert f"Inbound token: {inbox.inbound_token}" in lines
    url = f"https://support.shop.example/webhooks/email/inbound/{inbox.inbound_token}"
    assert any(line.endswith(f": {url}") for line in lines)
    assert typed not in r.output

    r = run(app, "inboxes", "add", "gbm", *GBM, "--service-account", service_account(tmp_path))
    assert r.exit_code == 0, r.output
    assert "Webhook URL: https://support.shop.example/webhooks/gbm" in r.output
    assert "Client token: (the one you gave with --client-token)" in r.output
    assert "PRIVATE KEY" not in r.output and "Inbound token" not in r.output


def test_email_settings_are_typed_and_defaulted_as_before(app):
    r = run(
        app,
        "inboxes",
        "add",
        "email",
        *_with(EMAIL, "--address", "Support@Shop.example"),
        "--imap-host",
        "imap.shop.example",
        "--imap-user",
        "u",
        "--imap-password",
        "p",
    )
    assert r.exit_code == 0, r.output
    inbox = db.session.scalar(sa.select(Inbox))
    assert inbox.route_key == "support@shop.example"
    assert inbox.config == {
        "address": "support@shop.example",
        "smtp_host": "h",
        "smtp_port": 25,
        "smtp_security": "starttls",
        "imap_host": "imap.shop.example",
        "imap_port": 993,
        "imap_user": "u",
        "imap_password": "p",
        "imap_folder": "INBOX",
    }


# --------------------------------------------------------------------------- reconnect


def test_reconnect_types_new_values_and_names_wrong_ones(app, make):
    inbox = make.inbox("email", smtp_user="u", smtp_password="old")
    before = dict(inbox.config)
    db.session.commit()
    inbox_id = str(inbox.id)

    r = run(app, "inboxes", "reconnect", inbox_id, "--set", "smtp_port=abc")
    assert r.exit_code == 2
    assert f"Error: inbox {inbox_id} was not reconnected:" in r.output
    assert "  --set smtp_port: must be a whole number" in r.output
    r = run(app, "inboxes", "reconnect", inbox_id, "--set", "smtp_password=")
    assert "  --set smtp_password: give both the SMTP user and password" in r.output
    r = run(app, "inboxes", "reconnect", inbox_id, "--page-token", "x")
    assert r.exit_code == 2 and "email inboxes have no setting page_token" in r.output
    db.session.expire_all()
    assert db.session.get(Inbox, inbox.id).config == before

    r = run(
        app,
        "inboxes",
        "reconnect",
        inbox_id,
        "--set",
        "smtp_port=587",
        "--set",
        "smtp_password=new",
    )
    assert r.exit_code == 0, r.output
    db.session.expire_all()
    config = db.session.get(Inbox, inbox.id).config
    assert config["smtp_port"] == 587 and config["smtp_password"] == "new"


def test_reconnect_moves_the_route_when_the_number_changes(app, make):
    inbox = make.inbox("sms")
    other = make.inbox("sms")
    db.session.commit()
    taken = other.route_key

    r = run(app, "inboxes", "reconnect", str(inbox.id), "--set", f"number={taken}")
    assert r.exit_code == 2 and "already exists" in r.output
    r = run(
        app,
        "inboxes",
        "reconnect",
        str(inbox.id),
        "--set",
        "number=+1 (415) 555-0199",
        "--set",
        "messaging_service_sid=MG" + "c" * 32,
        "--set",
        "webhook_shared_key=k",
    )
    assert r.exit_code == 0, r.output
    db.session.expire_all()
    moved = db.session.get(Inbox, inbox.id)
    assert moved.route_key == "+14155550199" and moved.config["number"] == "+14155550199"
    assert moved.alt_route_key == "MG" + "c" * 32
    assert moved.config["webhook_shared_key"] == "k"
