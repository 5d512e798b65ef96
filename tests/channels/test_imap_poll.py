"""The IMAP poller against a private Dovecot: a mail the database refuses never stalls the
mailbox. It is kept once as an unreadable stand-in with its original, and the mail after it
is polled as usual (before, the batch was rolled back with the cursor, and every poll
fetched the same batch and failed the same way)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Conversation, Message
from app.runtime.jobs import mail as mail_job

from ..connectors.imap_server import dovecot as dovecot  # noqa: F401  (pytest fixture)
from ..connectors.test_email_imap import mail

pytestmark = pytest.mark.slow  # starts Dovecot processes


def bodies() -> list[str]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(Message.body).where(Message.direction == "inbound").order_by(Message.id)
        )
    )


@pytest.fixture
def refuses_mail_2(monkeypatch):
    """The database refuses whatever mail 2 holds (as PostgreSQL refuses a value no column
    can take): any attempt to store it fails with ``DataError``; its stand-in is fine."""
    real = mail_job.ingest_raw

    def ingest_raw(session, inbox, raws, *args, **kwargs):
        if any(b"<msg-2@" in raw for raw in raws):
            raise sa.exc.DataError("INSERT INTO messages ...", {}, ValueError("value too long"))
        return real(session, inbox, raws, *args, **kwargs)

    monkeypatch.setattr(mail_job, "ingest_raw", ingest_raw)


def test_a_mail_the_database_refuses_does_not_stall_the_mailbox(make, dovecot, refuses_mail_2):  # noqa: F811
    box = make.inbox("email", **dovecot.config)
    for n in (1, 2, 3):
        dovecot.append(mail(n))

    result = mail_job.poll_inbox(box.id, force=True)

    assert result.error is None and result.fetched == 3
    got = bodies()
    assert len(got) == 3
    assert got[0] == "Body 1 – ünïcödé" and got[2] == "Body 3 – ünïcödé"
    assert got[1].startswith("This email could not be read")
    kept = db.session.scalars(sa.select(Message).where(Message.body == got[1])).one()
    assert [a.kind for a in kept.attachments] == ["original"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Conversation)) == 3

    dovecot.append(mail(4))
    again = mail_job.poll_inbox(box.id, force=True)
    assert again.error is None and again.fetched == 1  # the cursor moved past all three
    assert bodies()[3:] == ["Body 4 – ünïcödé"]


def test_a_database_outage_leaves_the_cursor_for_the_next_poll(make, dovecot, monkeypatch):  # noqa: F811
    box = make.inbox("email", **dovecot.config)
    dovecot.append(mail(1))

    def down(*_args, **_kwargs):
        raise sa.exc.OperationalError("INSERT ...", {}, ConnectionError("server closed"))

    monkeypatch.setattr(mail_job, "ingest_raw", down)
    failed = mail_job.poll_inbox(box.id, force=True)
    assert failed.error and "Storing new mail failed" in failed.error and bodies() == []

    monkeypatch.undo()
    assert mail_job.poll_inbox(box.id, force=True).fetched == 1  # fetched again, not skipped
    assert bodies() == ["Body 1 – ünïcödé"]
