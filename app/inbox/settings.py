"""Validating and applying inbox settings (``PATCH /api/v1/inboxes/<id>``)."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.inbox import events, windows
from app.inbox.assignment import MODES
from app.models import Conversation, Inbox

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class InvalidSetting(ValueError):
    """A setting value the inbox cannot use."""


def _hours(value, field: str) -> dict:
    if not isinstance(value, dict) or not all(
        _HHMM.match(str(value.get(k, ""))) for k in ("start", "end")
    ):
        raise InvalidSetting(f'{field} must look like {{"start": "21:00", "end": "08:00"}}')
    return {"start": value["start"], "end": value["end"]}


def _tz(value, field: str) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidSetting(f"{field} must be a time zone name like Europe/Paris") from exc
    return str(value)


def _business_hours(value) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidSetting("business_hours must be an object")
    out = {
        "timezone": _tz(value.get("timezone", "UTC"), "business_hours.timezone"),
        "days": {},
        "holidays": [],
    }
    for day, spans in (value.get("days") or {}).items():
        if day not in DAYS or not isinstance(spans, list):
            raise InvalidSetting(
                f"business_hours.days keys are {', '.join(DAYS)} with lists of spans"
            )
        out["days"][day] = []
        for span in spans:
            if not (
                isinstance(span, list) and len(span) == 2 and all(_HHMM.match(str(s)) for s in span)
            ):
                raise InvalidSetting('each business-hours span looks like ["09:00", "17:00"]')
            out["days"][day].append([span[0], span[1]])
    for holiday in value.get("holidays") or []:
        if not re.match(r"^\d{4}-\d{2}-\d{2}$", str(holiday)):
            raise InvalidSetting("holidays are dates like 2026-12-25")
        out["holidays"].append(str(holiday))
    return out


def _positive(value, field: str, maximum: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= maximum:
        raise InvalidSetting(f"{field} must be a number between 0 and {maximum}")
    return value


def update(session: Session, inbox: Inbox, data: dict) -> None:
    """Validate every given key, then apply them all (or none)."""
    new = dict(inbox.settings or {})
    for key, value in data.items():
        if key == "name":
            if not isinstance(value, str) or not value.strip():
                raise InvalidSetting("name must be text")
            inbox.name = value.strip()[:120]
            continue
        if key == "assignment":
            if value not in MODES:
                raise InvalidSetting(f"assignment must be one of {', '.join(MODES)}")
        elif key == "response_due_hours":
            value = _positive(value, key, 24 * 30)
        elif key == "reopen_days":
            value = _positive(value, key, 365)
        elif key == "human_agent":
            if not isinstance(value, bool):
                raise InvalidSetting("human_agent must be true or false")
        elif key == "quiet_hours":
            value = None if value is None else _hours(value, key)
        elif key == "timezone":
            value = _tz(value, key)
        elif key == "business_hours":
            value = _business_hours(value)
        elif key in ("greeting", "away_message"):
            if value is not None and not isinstance(value, str):
                raise InvalidSetting(f"{key} must be text or null")
            value = (value or "").strip() or None
        elif key == "window_warnings_minutes":
            if not isinstance(value, list) or not all(isinstance(v, int) and v > 0 for v in value):
                raise InvalidSetting("window_warnings_minutes must be a list of minutes")
        elif key in ("auto_close_pending_days", "away_interval_hours", "follow_up_hours"):
            value = None if value is None else _positive(value, key, 365 * 24)
        elif key in ("follow_up_message",):
            value = (value or "").strip() or None if isinstance(value, str | None) else None
        elif key in (
            "return_to_queue_when_away",
            "follow_up_auto",
            "follow_up_reminders",
            "agents_assign_others",
            "reply_assigns",
        ):
            if not isinstance(value, bool):
                raise InvalidSetting(f"{key} must be true or false")
        elif key == "sender_new_conversations":
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 1000:
                raise InvalidSetting(f"{key} must be a whole number from 0 (no cap) to 1000")
        elif key == "sender_window_minutes":
            value = _positive(value, key, 7 * 24 * 60)
        elif key == "auto_reply_interval_minutes":
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not 0 <= value <= 30 * 24 * 60
            ):
                raise InvalidSetting(f"{key} must be a number of minutes (0 switches it off)")
        elif key == "silence_alert_hours":
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not 0 <= value <= 30 * 24
            ):
                raise InvalidSetting(f"{key} must be a number of hours (0 switches it off)")
        elif key == "inactive_days":
            value = None if value is None else _positive(value, key, 3650)
        elif key in ("response_warning_minutes", "away_skip_minutes"):
            if value is not None and (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not 0 <= value <= 7 * 24 * 60
            ):
                raise InvalidSetting(f"{key} must be a number of minutes (0 switches it off)")
        else:
            raise InvalidSetting(f"unknown setting {key}")
        new[key] = value
    inbox.settings = new
    if {"human_agent", "response_due_hours"} & set(data):
        _refresh_open_conversations(session, inbox)
    events.publish(session, "inbox.updated", {"id": inbox.id}, ("inbox", inbox.id))


def _refresh_open_conversations(session: Session, inbox: Inbox) -> None:
    """Timer columns depend on inbox settings: recompute them for live conversations."""
    convs = session.scalars(
        sa.select(Conversation).where(
            Conversation.inbox_id == inbox.id, Conversation.status != "closed"
        )
    )
    for conv in convs:
        windows.refresh_timers(conv, inbox)
