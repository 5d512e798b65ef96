"""Reply windows (the platform's rule) and response due (the business's target).

Each channel's rule is its adapter's (:mod:`app.channels`). Windows are counted from the
customer's own send time as the platform reports it, never from when the webhook reached us.
Both are kept on the conversation as timer columns (:func:`refresh_timers`), which the
lists sort by and the timer jobs scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app import channels
from app.channels import WindowPolicy
from app.clock import aware, iso
from app.models import Conversation, Inbox


def policy(channel: str) -> WindowPolicy | None:
    """The channel's reply-window rule (its adapter's), None where the platform has none."""
    return channels.get(channel).window


def policies() -> dict[str, WindowPolicy]:
    """Every channel that has a reply window, with its rule."""
    return {c.name: c.window for c in channels.all_channels() if c.window is not None}


@dataclass(frozen=True)
class WindowState:
    """Where a conversation stands against its channel's reply window."""

    state: str  # open | human_agent | closed | none
    expires_at: datetime | None  # end of the current state
    final_expires_at: datetime | None  # after this nothing can be sent
    rule: str

    def seconds_left(self, now: datetime) -> int:
        """Whole seconds until ``expires_at`` (0 when passed or none)."""
        if self.expires_at is None:
            return 0
        return max(0, int((self.expires_at - now).total_seconds()))

    def to_dict(self, now: datetime) -> dict:
        """The API's ``reply_window`` object."""
        return {
            "state": self.state,
            "expires_at": iso(self.expires_at),
            "seconds_left": self.seconds_left(now),
            "final_expires_at": iso(self.final_expires_at),
            "rule": self.rule,
        }


def final_expiry(
    channel: str, last_inbound_at: datetime | None, human_agent: bool
) -> datetime | None:
    """When replies become impossible; stored on the conversation for sorting and jobs."""
    rule = policy(channel)
    if rule is None or last_inbound_at is None:
        return None
    span = rule.human_agent if (human_agent and rule.human_agent) else rule.standard
    return aware(last_inbound_at) + span


def standard_expiry(channel: str, last_inbound_at: datetime | None) -> datetime | None:
    """When the channel's standard window ends (before any human agent extension)."""
    rule = policy(channel)
    if rule is None or last_inbound_at is None:
        return None
    return aware(last_inbound_at) + rule.standard


def reply_window(
    channel: str, last_inbound_at: datetime | None, human_agent: bool, now: datetime
) -> WindowState:
    """The window state at ``now``; exact edges: at 24 h the standard window is closed."""
    rule = policy(channel)
    if rule is None:
        return WindowState("none", None, None, "No reply window on this channel")
    if last_inbound_at is None:
        return WindowState("closed", None, None, "The customer has not written yet")
    start = aware(last_inbound_at)
    standard_end = start + rule.standard
    if now < standard_end:
        final = final_expiry(channel, start, human_agent)
        return WindowState("open", standard_end, final, rule.standard_label)
    if human_agent and rule.human_agent:
        human_end = start + rule.human_agent
        if now < human_end:
            return WindowState("human_agent", human_end, human_end, rule.human_label)
        return WindowState("closed", human_end, human_end, rule.human_label + " has ended")
    return WindowState("closed", standard_end, standard_end, rule.standard_label + " has ended")


def closed_by_platform(context: dict | None, last_inbound_at: datetime | None) -> bool:
    """True when the platform refused a send as outside its window (Messenger 10/2018278)
    after the customer's last message: our clock said open, the platform's said closed.

    The worker records that refusal in the conversation's context; the customer's next
    message opens a new window and ends it.
    """
    reported = (context or {}).get("window_closed_by_platform_at")
    if not reported:
        return False
    try:
        reported_at = aware(datetime.fromisoformat(str(reported).replace("Z", "+00:00")))
    except ValueError:
        return False
    return last_inbound_at is None or reported_at > aware(last_inbound_at)


def platform_closed_state(channel: str) -> WindowState:
    """The window state shown after the platform refused a send as outside its window."""
    rule = policy(channel)
    label = rule.standard_label if rule else "reply window"
    return WindowState("closed", None, None, f"{label} (closed, as the platform reported)")


def response_due_at(waiting_since: datetime | None, due_hours: float) -> datetime | None:
    """The business's answer target: ``due_hours`` after the oldest unanswered message."""
    if waiting_since is None:
        return None
    return aware(waiting_since) + timedelta(hours=float(due_hours))


def response_due(due_at: datetime | None, now: datetime) -> dict:
    """The API's ``response_due`` object."""
    if due_at is None:
        return {"due_at": None, "seconds_left": 0, "breached": False}
    due_at = aware(due_at)
    return {
        "due_at": iso(due_at),
        "seconds_left": max(0, int((due_at - now).total_seconds())),
        "breached": now >= due_at,
    }


def refresh_timers(conv: Conversation, inbox: Inbox) -> None:
    """Recompute the precomputed timer columns from the conversation's facts."""
    conv.window_expires_at = final_expiry(
        inbox.channel, conv.last_inbound_at, bool(inbox.setting("human_agent"))
    )
    conv.window_open_until = standard_expiry(inbox.channel, conv.last_inbound_at)
    conv.response_due_at = response_due_at(conv.waiting_since, inbox.setting("response_due_hours"))
