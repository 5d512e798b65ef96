"""Automated-mail, loop and bounce detection (connectors.email.automated / bounces)."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest

from connectors.base import ErrorKind
from connectors.email.automated import detect, header_values, is_loop
from connectors.email.bounces import BounceInfo, BounceRecipient, parse_bounce


@pytest.mark.parametrize(
    ("headers", "sender", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, "a@x.com", "auto-submitted:auto-replied"),
        ({"auto-submitted": "Auto-Generated; foo"}, "a@x.com", "auto-submitted:auto-generated"),
        ({"Auto-Submitted": "auto-notified"}, "a@x.com", "auto-submitted:auto-notified"),
        ({"Auto-Submitted": "no"}, "a@x.com", None),
        ({"X-Autoreply": "yes"}, "a@x.com", "x-autoreply"),
        ({"X-Autoreply": "no"}, "a@x.com", None),
        ({"X-Autorespond": "Vacation"}, "a@x.com", "x-autorespond"),
        ({"X-Auto-Response-Suppress": "All"}, "a@x.com", "x-auto-response-suppress"),
        ({"Precedence": "bulk"}, "a@x.com", "precedence:bulk"),
        ({"Precedence": "JUNK"}, "a@x.com", "precedence:junk"),
        ({"Precedence": "list"}, "a@x.com", "precedence:list"),
        ({"Precedence": "auto_reply"}, "a@x.com", "precedence:auto_reply"),
        ({"Precedence": "first-class"}, "a@x.com", None),
        ({"List-Id": "<x.lists.example>"}, "a@x.com", "list-id"),
        ({"List-Unsubscribe": "<https://u.example>"}, "a@x.com", "list-unsubscribe"),
        ({"List-Post": "<mailto:l@x>"}, "a@x.com", "list-post"),
        ({"Return-Path": "<>"}, "a@x.com", "null-return-path"),
        ({"Return-Path": "<a@x.com>"}, "a@x.com", None),
        ({}, "MAILER-DAEMON@mx.example", "sender:mailer-daemon"),
        ({}, "postmaster@x.com", "sender:postmaster"),
        ({}, "noreply@x.com", "sender:noreply"),
        ({}, "no-reply@x.com", "sender:noreply"),
        ({}, "no_reply@x.com", "sender:noreply"),
        ({}, "donotreply@x.com", "sender:noreply"),
        ({}, "do-not-reply@x.com", "sender:noreply"),
        ({}, "noreply-alerts@x.com", "sender:noreply"),
        ({}, "nora@x.com", None),
        (
            {"Content-Type": "multipart/report; report-type=delivery-status"},
            "a@x.com",
            "multipart/report",
        ),
        ({"Subject": "Automatic reply"}, "a@x.com", None),
        ({}, None, None),
    ],
)
def test_detect(headers, sender, reason):
    assert detect(headers, sender) == reason


def test_detect_reads_email_messages_and_lists():
    msg = BytesParser(policy=policy.default).parsebytes(
        b"From: a@x.com\nAuto-Submitted: auto-generated\n\nbody"
    )
    assert detect(msg, "a@x.com") == "auto-submitted:auto-generated"
    assert detect({"precedence": ["bulk"]}, "a@x.com") == "precedence:bulk"
    assert header_values({"X-Loop": ["a", "b"]}, "x-loop") == ["a", "b"]
    assert header_values(None, "x") == []


def test_detect_return_path_override():
    assert detect({}, "a@x.com", return_path="") == "null-return-path"
    assert detect({"Return-Path": "<>"}, "a@x.com", return_path="a@x.com") is None


def test_is_loop():
    headers = {"X-Loop": ["other@x.com", "Support@Shop.Example"]}
    assert is_loop(headers, "support@shop.example")
    assert is_loop(headers, "<support@shop.example>")
    assert not is_loop(headers, "sales@shop.example")
    assert not is_loop({}, "support@shop.example")
    assert not is_loop(headers, None)


def _msg(raw: bytes):
    return BytesParser(policy=policy.default).parsebytes(raw)


def test_dsn_with_several_recipients_reports_the_failed_one():
    raw = b"""From: MAILER-DAEMON@x
Content-Type: multipart/report; report-type=delivery-status; boundary=b

--b
Content-Type: text/plain

report
--b
Content-Type: message/delivery-status

Reporting-MTA: dns; x

Final-Recipient: rfc822; ok@example.com
Action: delivered
Status: 2.0.0

Final-Recipient: rfc822; bad@example.com
Action: failed
Status: 5.2.2
Diagnostic-Code: smtp; 552 5.2.2 Mailbox full

--b
Content-Type: text/rfc822-headers

Message-ID: <sb.t1.r1@shop.example>

--b--
"""
    info = parse_bounce(_msg(raw), "mailer-daemon@x", "", "", True)
    assert info.original_message_id == "sb.t1.r1@shop.example"
    assert [r.address for r in info.recipients] == ["ok@example.com", "bad@example.com"]
    assert info.recipient == "bad@example.com" and info.status == "5.2.2"
    assert not info.delivered and not info.transient
    error = info.to_send_error()
    assert error.kind is ErrorKind.UNDELIVERABLE and error.code == "5.2.2"
    assert error.message == "smtp; 552 5.2.2 Mailbox full"


def test_positive_dsn_is_delivered():
    info = BounceInfo("m@x", (BounceRecipient("a@x", action="delivered", status="2.0.0"),))
    assert info.delivered and not info.transient


def test_read_receipt_is_not_a_bounce():
    raw = (
        b"Content-Type: multipart/report; report-type=disposition-notification; boundary=b\n\n"
        b"--b\nContent-Type: text/plain\n\nread\n--b--\n"
    )
    assert parse_bounce(_msg(raw), "a@x.com", "Read: hi", "read", False) is None


def test_exim_style_bounce_with_x_failed_recipients():
    raw = b"""From: Mail Delivery System <Mailer-Daemon@mx.example>
X-Failed-Recipients: lost@example.com
Subject: Mail delivery failed: returning message to sender
Content-Type: text/plain

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  lost@example.com
    host mx.example.com [192.0.2.1]
    SMTP error from remote mail server after RCPT TO:<lost@example.com>:
    550 5.1.1 No such user

------ This is a copy of the message, including all the headers. ------

Message-ID: <sb.t7.r3@shop.example>
Subject: Re: order
"""
    msg = _msg(raw)
    text = msg.get_content()
    info = parse_bounce(msg, "mailer-daemon@mx.example", str(msg["subject"]), text, False)
    assert info is not None and not info.standard
    assert info.recipient == "lost@example.com"
    assert info.original_message_id == "sb.t7.r3@shop.example"
    assert info.status == "5.1.1" and not info.transient


def test_ordinary_mail_is_not_a_bounce():
    raw = b"From: a@x.com\nSubject: Delivery failed?\nContent-Type: text/plain\n\nmy parcel\n"
    msg = _msg(raw)
    assert parse_bounce(msg, "a@x.com", "Delivery failed?", "my parcel", False) is None
