"""Who answers a conversation: manual, round-robin and least-loaded assignment.

Eligible agents are inbox members who are online (availability ``online`` and a
live browser heartbeat, ``users.online_until``), active, and below their
capacity (open assigned conversations). When the conversation's language is
known, the eligible agents who speak it (their profile's ``languages``) are
preferred, and anyone eligible is chosen only when none of them is. Round robin
picks the least recently assigned; least loaded the fewest open, ties to the
least recently assigned. With nobody eligible the conversation waits in the
unassigned queue; :func:`drain_queue` hands the queue out oldest first when an
agent comes online or frees capacity (and every 30 s from the ``drain_queue`` job).

By hand, leads and admins assign anyone who can see the inbox; agents take a
conversation themselves and hand it to a teammate, unless the inbox restricts
them to taking it (``agents_assign_others``). Replying to an unassigned
conversation gives it to the replier (``reply_assigns``, on by default).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import aware, now
from app.inbox import activity, events, signals
from app.inbox.activity import Line, add_activity
from app.inbox.language import speaks
from app.inbox.notifications import is_online
from app.inbox.queries import can_see
from app.models import Conversation, Inbox, InboxMember, User

MODES = ("manual", "round_robin", "least_loaded")


def open_load(session: Session, user_ids: list[int]) -> dict[int, int]:
    """Open (not closed) conversations assigned to each user, in one query."""
    if not user_ids:
        return {}
    rows = session.execute(
        sa.select(Conversation.assignee_id, sa.func.count())
        .where(Conversation.assignee_id.in_(user_ids), Conversation.status != "closed")
        .group_by(Conversation.assignee_id)
    )
    load = dict.fromkeys(user_ids, 0)
    load.update({uid: n for uid, n in rows})
    return load


def eligible_agents(session: Session, inbox_id: int) -> list[tuple[User, int]]:
    """Members who are online (live presence), active and below capacity, with their load."""
    members = list(
        session.scalars(
            sa.select(User)
            .join(InboxMember, InboxMember.user_id == User.id)
            .where(InboxMember.inbox_id == inbox_id, User.active.is_(True))
            .where(User.availability == "online", User.online_until > now())
        )
    )
    load = open_load(session, [u.id for u in members])
    return [(u, load[u.id]) for u in members if load[u.id] < (u.capacity or 0)]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _choose(
    mode: str, candidates: list[tuple[User, int]], language: str | None = None
) -> tuple[User, int] | None:
    """Round robin: least recently assigned; least loaded: fewest open, then least recent.

    Among those who speak ``language`` when any of them is a candidate.
    """
    if not candidates:
        return None
    speakers = [c for c in candidates if speaks(c[0], language)]
    candidates = speakers or candidates

    def last_assigned(user: User):
        return aware(user.last_assigned_at) or _EPOCH

    if mode == "least_loaded":
        return min(candidates, key=lambda c: (c[1], last_assigned(c[0]), c[0].id))
    return min(candidates, key=lambda c: (last_assigned(c[0]), c[0].id))


def auto_mode(inbox: Inbox) -> str | None:
    """The inbox's automatic mode (``round_robin``/``least_loaded``), None when manual."""
    mode = inbox.setting("assignment")
    return mode if mode in ("round_robin", "least_loaded") else None


def pick_agent(session: Session, conv: Conversation, mode: str | None = None) -> User | None:
    """The agent the inbox's mode picks, or None (the conversation waits in the queue)."""
    mode = mode or auto_mode(conv.inbox)
    if mode is None:
        return None
    chosen = _choose(mode, eligible_agents(session, conv.inbox_id), conv.language)
    return chosen[0] if chosen else None


def _assignment_stamp(session: Session) -> datetime:
    """Now, but strictly after every earlier assignment: round robin stays a strict
    rotation even when several assignments share one clock tick."""
    at = now()
    latest = aware(session.scalar(sa.select(sa.func.max(User.last_assigned_at))))
    if latest is not None and latest >= at:
        return latest + timedelta(microseconds=1)
    return at


def assign(
    session: Session,
    conv: Conversation,
    assignee: User | None,
    by: User | None = None,
    reason: Line | None = None,
) -> bool:
    """Set (or clear) the assignee; writes an activity line, publishes.

    ``reason`` replaces the activity text (returned to the queue ...). Sends
    :data:`~app.inbox.signals.assigned` (the assignee is notified, the channel told).
    The previous assignee's freed capacity is offered to the unassigned queue at once.
    """
    if (conv.assignee_id or None) == (assignee.id if assignee else None):
        return False
    previous_id = conv.assignee_id
    conv.assignee_id = assignee.id if assignee else None
    conv.assignee = assignee
    conv.assigned_at = now() if assignee else None
    if assignee:
        assignee.last_assigned_at = _assignment_stamp(session)
        if by is None:
            said = activity.line(activity.AUTO_ASSIGNED, name=assignee.name)
        elif by.id == assignee.id:
            said = activity.line(activity.TOOK, who=by.name)
        else:
            said = activity.line(activity.ASSIGNED, who=by.name, name=assignee.name)
        add_activity(session, conv, reason or said, event="assigned", assignee_id=assignee.id)
    else:
        said = (
            activity.line(activity.UNASSIGNED, who=by.name)
            if by
            else activity.line(activity.AUTO_UNASSIGNED)
        )
        add_activity(session, conv, reason or said, event="unassigned")
    signals.assigned.send(conv, session=session, assignee=assignee, by=by)
    session.flush()
    events.changed(session, "conversation.updated", conv, ("inbox", conv.inbox_id))
    events.publish(session, "counts.updated", {"inbox_id": conv.inbox_id}, ("inbox", conv.inbox_id))
    if previous_id is not None and conv.status != "closed":
        capacity_freed(session, previous_id)
    return True


def auto_assign(session: Session, conv: Conversation, mode: str | None = None) -> User | None:
    """Assign a conversation by the inbox's mode (or ``mode``); None leaves it in the queue."""
    if conv.assignee_id is not None:
        return None
    agent = pick_agent(session, conv, mode)
    if agent is not None:
        assign(session, conv, agent)
    return agent


def on_conversation_created(conv: Conversation, *, session: Session, **_) -> None:
    """Receiver of ``signals.conversation_created``: assign by the inbox's mode."""
    auto_assign(session, conv)


# --------------------------------------------------------------------------- by hand


class AssignRefused(Exception):
    """The user may not make this assignment (answered with 403)."""


def check_may_assign(actor: User, conv: Conversation, target: User | None) -> None:
    """Raise :class:`AssignRefused` unless ``actor`` may give ``conv`` to ``target`` (or nobody).

    ``target`` must be able to see the inbox (checked by the caller). Leads and admins
    assign anyone; an agent takes it, gives back their own, or hands it to a teammate
    where the inbox lets agents assign others.
    """
    if actor.is_lead:
        return
    if target is None:
        if conv.assignee_id != actor.id:
            raise AssignRefused("Agents can unassign only conversations assigned to them.")
        return
    if target.id != actor.id and not conv.inbox.setting("agents_assign_others"):
        raise AssignRefused("In this inbox agents can assign conversations only to themselves.")


def on_reply_posted(conv: Conversation, *, session: Session, by: User | None, **_) -> None:
    """Receiver of ``signals.reply_posted``: an unassigned conversation goes to the agent who
    replies, where the inbox says so (``reply_assigns``) and they may see it."""
    if by is None or conv.assignee_id is not None or not conv.inbox.setting("reply_assigns"):
        return
    if by.active and can_see(session, by, conv.inbox_id):
        assign(session, conv, by, by=by)


# --------------------------------------------------------------------------- the queue


def queue_query(inbox_id: int):
    """Unassigned open conversations of an inbox, the longest waiting first."""
    waited = sa.func.coalesce(Conversation.waiting_since, Conversation.created_at)
    return (
        sa.select(Conversation)
        .where(
            Conversation.inbox_id == inbox_id,
            Conversation.status == "open",
            Conversation.assignee_id.is_(None),
        )
        .order_by(waited, Conversation.id)
    )


def drain_queue(session: Session, inbox_ids: list[int] | None = None, limit: int = 500) -> int:
    """Assign queued conversations of auto-assigning inboxes, oldest first; returns how many.

    Candidates are computed once per inbox and updated in memory as conversations
    are handed out, so a long queue costs a few queries, not a few per conversation.
    """
    q = sa.select(Inbox).where(Inbox.active.is_(True))
    if inbox_ids is not None:
        if not inbox_ids:
            return 0
        q = q.where(Inbox.id.in_(inbox_ids))
    assigned = 0
    for inbox in session.scalars(q.order_by(Inbox.id)):
        mode = auto_mode(inbox)
        if mode is None or assigned >= limit:
            continue
        candidates = eligible_agents(session, inbox.id)
        if not candidates:
            continue
        room = sum(max(0, (u.capacity or 0) - load) for u, load in candidates)
        waiting = list(session.scalars(queue_query(inbox.id).limit(min(room, limit - assigned))))
        loads = {u.id: load for u, load in candidates}
        for conv in waiting:
            live = [(u, loads[u.id]) for u, _ in candidates if loads[u.id] < (u.capacity or 0)]
            chosen = _choose(mode, live, conv.language)
            if chosen is None:
                break
            assign(session, conv, chosen[0])
            loads[chosen[0].id] += 1
            assigned += 1
    return assigned


def capacity_freed(session: Session, user_id: int | None) -> int:
    """An agent came online or has room again: drain the queues of their inboxes now."""
    if user_id is None:
        return 0
    inbox_ids = list(
        session.scalars(sa.select(InboxMember.inbox_id).where(InboxMember.user_id == user_id))
    )
    return drain_queue(session, inbox_ids) if inbox_ids else 0


def distribute(session: Session, convs: list[Conversation], by: User | None = None) -> list[int]:
    """Bulk "auto": hand ``convs`` out by each inbox's mode (round robin for manual inboxes).

    Returns the ids left unassigned because nobody was eligible.
    """
    left = []
    for conv in convs:
        if conv.assignee_id is not None:
            continue
        if auto_assign(session, conv, auto_mode(conv.inbox) or "round_robin") is None:
            left.append(conv.id)
    return left


def on_status_changed(conv: Conversation, *, session: Session, **_) -> None:
    """Receiver of ``signals.status_changed``: closing an assigned conversation frees capacity."""
    if conv.status == "closed" and conv.assignee_id is not None:
        capacity_freed(session, conv.assignee_id)


# --------------------------------------------------------------------------- presence

PRESENCE_SECONDS = 90  # a browser heartbeat every 30 s keeps an agent online


def heartbeat(session: Session, user: User, seconds: float = PRESENCE_SECONDS) -> bool:
    """Extend the user's live presence; True when they just came online (queue drained)."""
    at = now()
    was_online = is_online(user, at)
    user.online_until = at + timedelta(seconds=seconds)
    user.last_seen_at = at
    if not was_online and is_online(user, at):
        session.flush()
        capacity_freed(session, user.id)
        return True
    return False


def went_offline(session: Session, user: User) -> None:
    """The user's last live connection closed: not online from now on."""
    user.online_until = now()
