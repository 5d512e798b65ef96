"""System lines in a thread: English in the body, template and values for the reader's language."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.inbox import activity, conversations
from app.models import Conversation, Message


def test_a_line_keeps_its_english_text_and_its_template(make):
    lead = make.user("lead", name="Nadia Karimi")
    inbox = make.inbox()
    conv = db.session.get(Conversation, make.inbound(inbox, contact="c1").conversation_id)
    conversations.set_status(db.session, conv, "closed", lead)
    db.session.commit()
    line = db.session.query(Message).filter_by(direction="activity").one()
    assert line.body == "Nadia Karimi closed this"
    assert line.meta["text"] == "{who} closed this"
    assert line.meta["values"] == {"who": "Nadia Karimi"}
    assert line.meta["event"] == "closed"


def test_every_template_fills_with_its_values():
    for template in activity.TEMPLATES:
        names = {part.split("}")[0] for part in template.split("{")[1:]}
        assert activity.line(template, **dict.fromkeys(names, "x")).text.count("{") == 0


def test_an_unknown_template_is_refused():
    with pytest.raises(ValueError):
        activity.line("{who} did something new")
