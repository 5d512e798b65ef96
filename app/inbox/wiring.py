"""Who reacts to what: the domain's signal receivers, connected in one place.

``create_app`` calls :func:`connect` (connecting twice changes nothing). The
receivers of a signal run in the order they are connected here, in the
sender's session and transaction, so that order is part of the behaviour:

- ``conversation_created``: reports (a new conversation), then assignment (automatic
  assignment).
- ``customer_wrote``: reports (the customers' waits start, reopenings), then automation
  (flags, back to the queue, greeting, away message), then notifications (a new
  conversation nobody has: its inbox's members).
- ``agent_replied``: automation (breaches answered, follow-up timer), then reports
  (the waits it answers end).
- ``reply_posted``: assignment (the replier takes an unassigned conversation).
- ``note_added``: notifications (the teammates a note mentions).
- ``status_changed``: reports (closed with its resolution time, reopened), then the
  channel hooks (GBM: representative left), then assignment (closing frees the
  assignee's capacity: the queue is handed out).
- ``assigned``: reports, then notifications (tell the assignee), then the channel hooks
  (GBM: representative joined).
- ``reply_window_missed`` / ``response_breached``: reports (marked on the wait).
- ``inbox_failing`` / ``inbox_recovered``: notifications (tell the admins, once per
  incident).
"""

from __future__ import annotations

from app.inbox import (
    assignment,
    automation,
    hooks,
    mentions,
    notifications,
    report_facts,
    signals,
)


def connect() -> None:
    """Connect every domain receiver to its signal, in the order they run."""
    report_facts.connect()  # messages counted per slot as sessions store them
    signals.conversation_created.connect(report_facts.on_conversation_created)
    signals.conversation_created.connect(assignment.on_conversation_created)
    signals.customer_wrote.connect(report_facts.on_customer_wrote)
    signals.customer_wrote.connect(automation.on_customer_wrote)
    signals.customer_wrote.connect(notifications.on_customer_wrote)
    signals.agent_replied.connect(automation.on_agent_replied)
    signals.agent_replied.connect(report_facts.on_agent_replied)
    signals.reply_held.connect(report_facts.on_reply_held)
    signals.reply_posted.connect(assignment.on_reply_posted)
    signals.note_added.connect(mentions.on_note_added)
    signals.status_changed.connect(report_facts.on_status_changed)
    signals.status_changed.connect(hooks.on_status_changed)
    signals.status_changed.connect(assignment.on_status_changed)
    signals.assigned.connect(report_facts.on_assigned)
    signals.assigned.connect(notifications.on_assigned)
    signals.assigned.connect(hooks.on_assigned)
    signals.inbox_failing.connect(notifications.on_inbox_failing)
    signals.inbox_recovered.connect(notifications.on_inbox_recovered)
    signals.reply_window_missed.connect(report_facts.on_reply_window_missed)
    signals.response_breached.connect(report_facts.on_response_breached)
