"""Mail waiting in the intake is threaded as one batch: replies of every kind find their thread.

A burst of mail (a busy raw-MIME URL, or bodies a stopped process left) is taken from
the intake together: one transaction, the Message-IDs the batch answers looked up
together, and each message after the one it answers even when it arrived first.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.models import Conversation, Message, WebhookIntake
from app.runtime import intake

ADDRESS = "support@shop.example"


@pytest.fixture
def mailbox(make):
    return make.inbox("email", address=ADDRESS)


def mail(
    mid: str,
    sender: str,
    subject: str,
    text: str,
    in_reply_to: str | None = None,
    references: tuple[str, ...] = (),
    html: bool = False,
) -> bytes:
    """A customer's mail as their client writes it (plain, or HTML with a plain alternative)."""
    headers = [
        f"From: {sender}",
        f"To: Support <{ADDRESS}>",
        "Date: Mon, 02 Mar 2026 08:00:00 +0000",
        f"Message-ID: <{mid}>",
        f"Subject: {subject}",
        "MIME-Version: 1.0",
    ]
    if in_reply_to:
        headers.append(f"In-Reply-To: <{in_reply_to}>")
    if references:
        headers.append("References: " + " ".join(f"<{r}>" for r in references))
    if not html:
        headers += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
        return ("\r\n".join(headers) + "\r\n\r\n" + text + "\r\n").encode()
    headers.append('Content-Type: multipart/alternative; boundary="b1"')
    body = (
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{text}\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"<p>{text}</p>\r\n--b1--\r\n"
    )
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


ANA = "Ana Lima <ana@customer.example>"
JOSE = "=?utf-8?q?Jos=C3=A9_Pereira?= <jose@customer.example>"


def conversation_of(session, mid: str) -> int | None:
    return session.scalar(sa.select(Message.conversation_id).where(Message.provider_id == mid))


def drain(session) -> intake.DrainResult:
    result = intake.drain_all()
    session.expire_all()
    return result


def test_three_kinds_of_reply_in_one_batch_join_their_threads(session, mailbox, count_queries):
    """In one batch: two new threads; a reply to the customer's first mail; a reply to our
    acknowledgement (its id unknown here, the first mail in References); a reply to that
    reply; and a reply that arrived before the mail it answers."""
    bodies = [
        mail("a1@customer.example", ANA, "Order 1001 late", "Where is my order?"),
        mail(
            "j2@customer.example",
            JOSE,
            "Fatura 2002",
            "A fatura está errada.",
            in_reply_to="j1@customer.example",  # arrives before the mail it answers
            references=("j1@customer.example",),
        ),
        mail("j1@customer.example", JOSE, "Fatura 2002", "Preciso de uma fatura nova.", html=True),
        mail(
            "a2@customer.example",
            ANA,
            "Re: Order 1001 late",
            "Any news?\n\n> Where is my order?",
            in_reply_to="a1@customer.example",
            references=("a1@customer.example",),
        ),
        mail(
            "a3@customer.example",
            ANA,
            "Re: Order 1001 late",
            "Thanks for confirming.",
            in_reply_to="ack-1@shop.example",
            references=("a1@customer.example", "ack-1@shop.example"),
            html=True,
        ),
        mail(
            "a4@customer.example",
            ANA,
            "Re: Order 1001 late",
            "One more thing.",
            in_reply_to="a3@customer.example",
            references=("a1@customer.example", "ack-1@shop.example", "a3@customer.example"),
        ),
    ]
    for body in bodies:
        intake.store("email", body, [mailbox.id])
    with count_queries() as q:
        result = drain(session)
    assert result.rows == 6 and len(result.created) == 6
    ana = conversation_of(session, "a1@customer.example")
    jose = conversation_of(session, "j1@customer.example")
    assert ana != jose
    for mid in ("a2@customer.example", "a3@customer.example", "a4@customer.example"):
        assert conversation_of(session, mid) == ana, mid
    assert conversation_of(session, "j2@customer.example") == jose
    assert session.scalar(sa.select(sa.func.count()).select_from(Conversation)) == 2
    lookups = [s for s in q.statements if "provider_id IN" in s and "JOIN conversations" in s]
    assert len(lookups) == 1  # the Message-IDs the batch answers, looked up together
    assert intake.pending_count() == 0


def test_replies_in_a_later_batch_find_threads_stored_before(session, mailbox):
    intake.store("email", mail("n1@customer.example", ANA, "Broken zip", "It broke."), [mailbox.id])
    drain(session)
    later = [
        mail(
            "n2@customer.example",
            ANA,
            "Re: Broken zip",
            "Photo attached.",
            in_reply_to="n1@customer.example",
            references=("n1@customer.example",),
        ),
        mail(
            "n3@customer.example",
            ANA,
            "Re: Broken zip",
            "Any update?",
            in_reply_to="ack-9@shop.example",
            references=("n1@customer.example", "ack-9@shop.example"),
        ),
        # another customer quoting Ana's id starts a thread of their own
        mail(
            "x1@customer.example",
            JOSE,
            "Re: Broken zip",
            "Me too.",
            in_reply_to="n1@customer.example",
            references=("n1@customer.example",),
        ),
    ]
    for body in later:
        intake.store("email", body, [mailbox.id])
    drain(session)
    first = conversation_of(session, "n1@customer.example")
    assert conversation_of(session, "n2@customer.example") == first
    assert conversation_of(session, "n3@customer.example") == first
    assert conversation_of(session, "x1@customer.example") not in (None, first)
    assert session.scalar(sa.select(sa.func.count()).select_from(WebhookIntake)) == 0
