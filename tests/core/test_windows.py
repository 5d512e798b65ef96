"""Reply windows at their exact edges, and response due."""

from datetime import UTC, datetime, timedelta

import pytest

from app.inbox import windows

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("offset", "human_agent", "state"),
    [
        (timedelta(0), False, "open"),
        (timedelta(hours=24) - SECOND, False, "open"),
        (timedelta(hours=24), False, "closed"),
        (timedelta(hours=24), True, "human_agent"),
        (timedelta(days=7) - SECOND, True, "human_agent"),
        (timedelta(days=7), True, "closed"),
        (timedelta(days=3), False, "closed"),
    ],
)
def test_messenger_window_edges(offset, human_agent, state):
    w = windows.reply_window("messenger", T0, human_agent, T0 + offset)
    assert w.state == state


def test_messenger_open_window_reports_24h_expiry_and_final_expiry():
    w = windows.reply_window("messenger", T0, True, T0 + timedelta(hours=1))
    assert w.expires_at == T0 + timedelta(hours=24)
    assert w.final_expires_at == T0 + timedelta(days=7)
    assert w.seconds_left(T0 + timedelta(hours=1)) == 23 * 3600
    assert "24-hour" in w.rule


def test_human_agent_state_names_the_7_day_rule():
    w = windows.reply_window("messenger", T0, True, T0 + timedelta(days=2))
    assert w.expires_at == T0 + timedelta(days=7)
    assert "7-day human agent" in w.rule


def test_gbm_window_is_30_days():
    assert windows.reply_window("gbm", T0, False, T0 + timedelta(days=30) - SECOND).state == "open"
    assert windows.reply_window("gbm", T0, False, T0 + timedelta(days=30)).state == "closed"


@pytest.mark.parametrize("channel", ["sms", "email"])
def test_sms_and_email_have_no_window(channel):
    w = windows.reply_window(channel, T0, False, T0 + timedelta(days=400))
    assert w.state == "none" and w.expires_at is None
    assert w.to_dict(T0)["seconds_left"] == 0


def test_messenger_without_any_customer_message_is_closed():
    assert windows.reply_window("messenger", None, False, T0).state == "closed"


def test_response_due_edges():
    due = windows.response_due_at(T0, 24)
    assert due == T0 + timedelta(hours=24)
    assert windows.response_due(due, due - SECOND)["breached"] is False
    assert windows.response_due(due, due)["breached"] is True
    assert windows.response_due(None, T0) == {"due_at": None, "seconds_left": 0, "breached": False}
