"""What an attacker needs: raw MIME, the inbound URL to post it to, and the API to read back."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

OURS = "support@shop.example"
_ids = itertools.count(1)


def raw_mail(
    frm: str,
    subject: str = "Order late",
    body: str = "Where is my order?",
    *,
    html: str | None = None,
    attachments: tuple[tuple[str, bytes, str], ...] = (),
    to: str = OURS,
    mid: str | None = None,
    date: datetime | None = None,
) -> bytes:
    """One message as a mail client writes it (UTF-8 headers allowed, RFC 6532).

    ``attachments`` are ``(filename, bytes, content type)``; the filename goes out
    RFC 2231-encoded, as clients send non-ASCII names.
    """
    msg = EmailMessage(policy=policy.SMTPUTF8)
    msg["From"] = frm
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime.now(UTC) - timedelta(minutes=1))
    msg["Message-ID"] = f"<{mid or f'sec{next(_ids)}@attacker.example'}>"
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, data, ctype in attachments:
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def post(client, token: str, raw: bytes):
    """POST raw MIME to the inbox's inbound URL, as a Postfix pipe does."""
    return client.post(f"/webhooks/email/inbound/{token}", data=raw, content_type="message/rfc822")


def conversations(client, auth: dict, q: str | None = None) -> list[dict]:
    """Every conversation the agent sees (all statuses), following the list's cursor."""
    out: list[dict] = []
    params = {"status": "all", "limit": 100, **({"q": q} if q else {})}
    while True:
        resp = client.get("/api/v1/conversations", query_string=params, headers=auth)
        assert resp.status_code == 200, resp.get_json()
        page = resp.get_json()
        out += page["items"]
        if not page.get("next_cursor"):
            return out
        params["cursor"] = page["next_cursor"]


def messages(client, auth: dict, conv_id: int) -> list[dict]:
    resp = client.get(f"/api/v1/conversations/{conv_id}/messages", headers=auth)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["items"]
