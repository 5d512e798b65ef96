"""Every CLI command of contract.md, as an operator would type it."""

from __future__ import annotations

import json

import sqlalchemy as sa

from app.extensions import db
from app.models import Conversation, Inbox, Message, User


def run(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    return result


def test_users_create_and_token(app, client):
    r = run(
        app,
        "users",
        "create",
        "lea@shop.example",
        "--name",
        "Lea",
        "--role",
        "lead",
        "--password",
        "s3cret-pass",
    )
    assert r.exit_code == 0, r.output
    assert db.session.scalar(sa.select(User).where(User.email == "lea@shop.example")).role == "lead"
    dup = run(
        app, "users", "create", "lea@shop.example", "--name", "Lea", "--password", "s3cret-pass"
    )
    assert dup.exit_code != 0 and "already exists" in dup.output
    r = run(app, "users", "token", "lea@shop.example")
    token = r.output.strip().splitlines()[-1]
    resp = client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200


def test_inboxes_add_all_channels_and_list_without_secrets(app, tmp_path):
    sa_file = tmp_path / "sa.json"
    sa_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "client_email": "x@y.iam",
                "private_key": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
                "private_key_id": "k1",
                "token_uri": "http://127.0.0.1:1/token",
            }
        )
    )
    cmds = [
        [
            "inboxes",
            "add",
            "messenger",
            "--name",
            "Page",
            "--page-id",
            "111",
            "--page-token",
            "EAAB-SECRET",
            "--app-secret",
            "APPSECRET",
            "--verify-token",
            "VERIFYSECRET",
            "--human-agent",
        ],
        [
            "inboxes",
            "add",
            "sms",
            "--name",
            "SMS",
            "--number",
            "+1 (415) 555-0100",
            "--account-sid",
            "AC" + "a" * 32,
            "--auth-token",
            "TWILIOSECRET",
            "--messaging-service-sid",
            "MG" + "b" * 32,
        ],
        [
            "inboxes",
            "add",
            "email",
            "--name",
            "Mail",
            "--address",
            "Support@Shop.example",
            "--smtp-host",
            "smtp.shop.example",
            "--smtp-port",
            "587",
            "--smtp-user",
            "u",
            "--smtp-password",
            "SMTPSECRET",
            "--imap-host",
            "imap.shop.example",
            "--imap-user",
            "u",
            "--imap-password",
            "IMAPSECRET",
        ],
        [
            "inboxes",
            "add",
            "gbm",
            "--name",
            "GBM",
            "--agent",
            "brands/b/agents/a",
            "--client-token",
            "CLIENTSECRET",
            "--service-account",
            str(sa_file),
        ],
    ]
    for cmd in cmds:
        r = run(app, *cmd)
        assert r.exit_code == 0, (cmd, r.output)
        assert "with id" in r.output
    email_out = run(app, "inboxes", "list").output
    rows = [json.loads(line) for line in email_out.strip().splitlines()]
    assert [r["channel"] for r in rows] == ["messenger", "sms", "email", "gbm"]
    assert rows[1]["identifiers"]["number"] == "+14155550100"
    for secret in (
        "EAAB-SECRET",
        "APPSECRET",
        "VERIFYSECRET",
        "TWILIOSECRET",
        "SMTPSECRET",
        "IMAPSECRET",
        "CLIENTSECRET",
        "PRIVATE KEY",
    ):
        assert secret not in email_out
    messenger = db.session.scalar(sa.select(Inbox).where(Inbox.channel == "messenger"))
    assert messenger.setting("human_agent") is True
    sms = db.session.scalar(sa.select(Inbox).where(Inbox.channel == "sms"))
    assert sms.alt_route_key == "MG" + "b" * 32


def test_inboxes_add_validates_options(app):
    r = run(
        app,
        "inboxes",
        "add",
        "sms",
        "--name",
        "SMS",
        "--number",
        "not-a-number",
        "--account-sid",
        "AC1",
        "--auth-token",
        "t",
    )
    assert r.exit_code != 0 and "not a valid phone number" in r.output
    r = run(
        app,
        "inboxes",
        "add",
        "email",
        "--name",
        "Mail",
        "--address",
        "nope",
        "--smtp-host",
        "h",
        "--smtp-port",
        "25",
    )
    assert r.exit_code != 0
    r = run(app, "inboxes", "add", "messenger", "--name", "P", "--page-id", "1")
    assert r.exit_code != 0 and "Missing option" in r.output


def test_members_add(app, make):
    make.user(email="ana@shop.example")
    inbox = make.inbox()
    r = run(app, "inboxes", "members", "add", str(inbox.id), "ana@shop.example")
    assert r.exit_code == 0, r.output
    assert run(app, "inboxes", "members", "add", "999", "ana@shop.example").exit_code != 0


def test_demo_seed(app):
    r = run(app, "demo", "seed", "--conversations", "40", "--messages-per-conversation", "3")
    assert r.exit_code == 0, r.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Conversation)) == 40
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 120
    assert "Seeded 40 conversations" in r.output


def test_bootstrap_creates_first_admin_once(app):
    r = run(app, "bootstrap")
    assert "admin@example.com" in r.output and "password:" in r.output
    assert run(app, "bootstrap").output == ""
