"""Socket.IO: authenticated connections, rooms per audience, presence.

Rooms: ``inbox:<id>`` holds the agents who are members of that inbox, ``all``
holds team leads and admins (who see every inbox), ``user:<id>`` holds one
user's connections. A committed domain event for an inbox goes to
``inbox:<id>`` and ``all`` (disjoint sets), so each user receives it once and
nobody receives an event from an inbox they cannot see.

Rooms follow access as it changes, not as it was at connect: when a user is
deactivated, changes role, joins or leaves an inbox or loses an API token
(:data:`app.inbox.signals.access_changed`), every process re-checks that user's
sockets (:mod:`app.realtime.access`): it closes those that may no longer
connect and moves the others to the rooms of the new access. Each heartbeat
re-checks its socket too, for a change no signal reported.

With ``REDIS_URL`` set, Socket.IO uses Redis as its message queue and any
process can emit to clients connected to any other; who views which
conversation is kept there too (:mod:`app.realtime.presence`).
"""

from __future__ import annotations

import logging
import threading
import time

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context, request
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, join_room

from app import channels
from app.clock import now
from app.extensions import db, socketio
from app.inbox import assignment, events, hooks, signals
from app.inbox.queries import can_see
from app.models import ApiToken, Conversation, InboxMember, LoginSession, User
from app.models.user import hash_token
from app.realtime import presence, serving
from app.realtime.access import LocalAccessBus, RedisAccessBus
from app.realtime.presence import LocalPresence, RedisPresence
from app.web.auth import user_for_token

log = logging.getLogger(__name__)


class _State:
    """Per-app connection registry: socket ids -> users; who is in which conversation."""

    def __init__(self, presence: LocalPresence | RedisPresence) -> None:
        self.sid_users: dict[str, int] = {}
        # socket id -> what it connected with: ("token", API token hash) or ("login", sign-in hash)
        self.sid_tokens: dict[str, tuple[str, str]] = {}
        self.presence = presence  # conversation -> {user: viewing|replying}, for every process
        self.typing_sent: dict[tuple[int, int], float] = {}
        self.bus: LocalAccessBus | RedisAccessBus | None = None
        # a socket's admission and rooms, and a re-check of them, happen one at a time: a change
        # committed while a socket is let in is applied after its rooms were joined, not before
        self.rooms_lock = threading.RLock()


def _state() -> _State:
    return current_app.extensions["switchboard_realtime"]


def rooms_for(audience: tuple[str, int]) -> list[str]:
    """Socket.IO rooms for an event audience."""
    kind, ident = audience
    if kind == "inbox":
        return [f"inbox:{ident}", "all"]
    if kind == "user":
        return [f"user:{ident}"]
    if kind == "all":
        return ["all"] + ([] if ident is None else [])
    return []


def emit_events(batch: list[events.Event]) -> None:
    """Send committed events to their rooms (through Redis when configured).

    Each socket gets the batch's events in one write where the server can
    (``serving.together``): one wake-up of each browser per batch, not one per event.
    """
    with serving.together(socketio.server):
        for ev in batch:
            rooms: list[str] = []
            for aud in ev.audience:
                if aud == ("all", 0):
                    rooms.append("everyone")
                else:
                    rooms.extend(rooms_for(aud))
            for room in dict.fromkeys(rooms):
                socketio.emit(ev.name, ev.payload, to=room)


def _authenticate(auth) -> tuple[User | None, tuple[str, str] | None]:
    """The connecting user, and what they came with: ``("token", hash)`` or ``("login", hash)``."""
    token = auth.get("token") if isinstance(auth, dict) else None
    if token:
        return user_for_token(token), ("token", hash_token(token))
    if current_user and current_user.is_authenticated and current_user.login_key:
        user = db.session.get(User, current_user.id)
        credential = ("login", hash_token(current_user.login_key))
        return (user if user is not None and user.active else None), credential
    return None, None


def _may_connect(user: User | None, credential: tuple[str, str] | None) -> bool:
    """The user is still active and still has the API token or the sign-in the socket used."""
    if user is None or not user.active or credential is None:
        return False
    kind, digest = credential
    if kind == "token":
        query = sa.select(ApiToken.id).where(
            ApiToken.user_id == user.id, ApiToken.token_hash == digest
        )
    else:  # signed out there, signed out everywhere, or the password changed
        query = sa.select(LoginSession.id).where(
            LoginSession.user_id == user.id, LoginSession.key_hash == digest
        )
    return db.session.scalar(query) is not None


def rooms_of(user: User) -> set[str]:
    """The rooms a user's sockets belong in: their own, everyone's, and their inboxes'."""
    rooms = {f"user:{user.id}", "everyone"}
    if user.is_lead:
        rooms.add("all")
    else:
        rooms.update(
            f"inbox:{inbox_id}"
            for inbox_id in db.session.scalars(
                sa.select(InboxMember.inbox_id).where(InboxMember.user_id == user.id)
            )
        )
    return rooms


def _sync_rooms(sid: str, wanted: set[str]) -> None:
    """Move one socket of this process into ``wanted`` and out of the audience rooms it left."""
    current = set(socketio.server.rooms(sid, namespace="/"))
    for room in current - wanted:
        if room == "all" or room.startswith("inbox:"):
            socketio.server.leave_room(sid, room, namespace="/")
    for room in wanted - current:
        socketio.server.enter_room(sid, room, namespace="/")


def _cut(sid: str) -> None:
    """Close one socket of this process (its disconnect handler tidies presence up)."""
    socketio.server.disconnect(sid, namespace="/")


def recheck_user(user_id: int, cut: bool = False) -> None:
    """Re-check every socket of ``user_id`` in this process; ``cut`` closes them all."""
    state = _state()
    with state.rooms_lock:
        sids = [sid for sid, uid in list(state.sid_users.items()) if uid == user_id]
        if not sids:
            return
        user = db.session.get(User, user_id)
        wanted = rooms_of(user) if user is not None and user.active else set()
        for sid in sids:
            if cut or not _may_connect(user, state.sid_tokens.get(sid)):
                log.info("closing socket %s of user %s: access revoked", sid, user_id)
                _cut(sid)
            else:
                _sync_rooms(sid, wanted)


def cut_user(user_id: int) -> None:
    """Close every socket of ``user_id`` in every process (e.g. their sessions were revoked).

    Needs the app context; a socket that connects afterwards is checked as usual.
    """
    _state().bus.publish(user_id, cut=True)


def _on_reply_posted(conv, *, by=None, **_kwargs) -> None:
    """``reply_posted`` received: its author has finished writing, so teammates stop seeing
    "replying" (they still see them viewing the conversation)."""
    if by is None or not has_app_context() or "switchboard_realtime" not in current_app.extensions:
        return
    try:
        replying = _state().presence.people(conv.id).get(by.id) == "replying"
    except Exception:  # noqa: BLE001 - presence must never stop a reply
        log.exception("presence of conversation %s could not be read", conv.id)
        return
    if replying:
        _set_presence(by.id, conv.id, "viewing")


def _on_access_changed(user_id, **_kwargs) -> None:
    """``access_changed`` received: re-check that user's sockets in every process."""
    if not has_app_context() or "switchboard_realtime" not in current_app.extensions:
        log.warning(
            "access of user %s changed outside the app: sockets re-check on heartbeat", user_id
        )
        return
    _state().bus.publish(int(user_id))


def _make_bus(app: Flask) -> LocalAccessBus | RedisAccessBus:
    def handle(user_id: int, cut: bool) -> None:
        with app.app_context():
            recheck_user(user_id, cut)

    url = app.config.get("REDIS_URL")
    if not url:
        return LocalAccessBus(handle)
    import redis

    return RedisAccessBus(
        redis.Redis.from_url(url),
        f"{app.config['SOCKETIO_CHANNEL']}:access",
        handle,
        socketio.start_background_task,
    )


def init_app(app: Flask) -> None:
    """Register the handlers, the event sink and the access-change receiver."""
    events.add_sink(emit_events)
    state = _State(presence.store_for(app.config))
    state.bus = _make_bus(app)
    app.extensions["switchboard_realtime"] = state
    signals.access_changed.connect(_on_access_changed)
    signals.reply_posted.connect(_on_reply_posted)

    @socketio.on("connect")
    def on_connect(auth=None):
        state = _state()
        state.bus.listen()  # hear access changes before reading this socket's rooms
        with state.rooms_lock:
            user, credential = _authenticate(auth)
            if user is None:
                raise ConnectionRefusedError("unauthorized")
            state.sid_users[request.sid] = user.id
            state.sid_tokens[request.sid] = credential
            for room in rooms_of(user):
                join_room(room)
        user.last_seen_at = now()
        _heartbeat(user)  # live presence: online for 90 s, extended by "heartbeat" events
        db.session.commit()
        return True

    @socketio.on("disconnect")
    def on_disconnect(*_args):
        _state().sid_tokens.pop(request.sid, None)
        user_id = _state().sid_users.pop(request.sid, None)
        if user_id is None:
            return
        if user_id not in _state().sid_users.values():
            _clear_presence(user_id)
            _offline(user_id)

    @socketio.on("heartbeat")
    def on_heartbeat(*_args):
        """The browser is still there (sent every 30 s): extend the user's live presence.

        Also re-checks the socket: closed if its user or token lost access since,
        moved to the rooms of the user's inboxes as they are now.
        """
        state = _state()
        with state.rooms_lock:
            user_id = state.sid_users.get(request.sid)
            if user_id is None:
                return None
            user = db.session.get(User, user_id)
            if not _may_connect(user, state.sid_tokens.get(request.sid)):
                _cut(request.sid)
                return None
            _sync_rooms(request.sid, rooms_of(user))
        _heartbeat(user)
        db.session.commit()
        _presence_change(user.id, lambda store: store.renew(user.id))
        return {"online_until": user.online_until.isoformat().replace("+00:00", "Z")}

    @socketio.on("presence")
    def on_presence(data):
        """The agent views (or is replying in) a conversation; ``null`` when they leave."""
        user_id = _state().sid_users.get(request.sid)
        if user_id is None or not isinstance(data, dict):
            return
        conv_id = data.get("conversation_id")
        conv_id = conv_id if isinstance(conv_id, int) else None
        if conv_id is not None and not _may_see(user_id, conv_id):
            return  # others would see them in a conversation they cannot open
        state = data.get("state") if data.get("state") in ("viewing", "replying") else "viewing"
        _set_presence(user_id, conv_id, state)

    @socketio.on("typing")
    def on_typing(data):
        """Forward the agent's typing to the channel (throttled), e.g. Messenger typing_on."""
        user_id = _state().sid_users.get(request.sid)
        if (
            user_id is None
            or not isinstance(data, dict)
            or not isinstance(data.get("conversation_id"), int)
            or not _may_see(user_id, data["conversation_id"])
        ):
            return
        _set_presence(user_id, data["conversation_id"], "replying")
        _queue_typing(user_id, data["conversation_id"])


def _may_see(user_id: int, conv_id: int) -> bool:
    """True when the conversation exists and the (active) user may see its inbox."""
    conv = db.session.get(Conversation, conv_id)
    user = db.session.get(User, user_id)
    return (
        conv is not None
        and user is not None
        and user.active
        and can_see(db.session, user, conv.inbox_id)
    )


def _heartbeat(user: User) -> None:
    """Extend presence; an agent coming online gets the unassigned queue of their inboxes."""
    try:
        assignment.heartbeat(db.session, user)
    except Exception:  # noqa: BLE001 - presence must never break the connection
        log.exception("presence heartbeat failed for user %s", user.id)
        db.session.rollback()


def _offline(user_id: int) -> None:
    """The user's last connection here closed: not online any more (for assignment)."""
    user = db.session.get(User, user_id)
    if user is not None:
        assignment.went_offline(db.session, user)
        db.session.commit()


TYPING_THROTTLE = 10.0


def _queue_typing(user_id: int, conv_id: int) -> None:
    key = (user_id, conv_id)
    t = time.monotonic()
    sent = _state().typing_sent
    if t - sent.get(key, 0) < TYPING_THROTTLE:
        return
    sent[key] = t
    # (on_typing checked that the user may see it: these come from the session's identity map)
    conv = db.session.get(Conversation, conv_id)
    user = db.session.get(User, user_id)
    action = channels.get(conv.inbox.channel).typing_action
    if action:
        hooks.queue_action(
            db.session, conv, action, agent_name=user.name, agent_avatar_url=user.avatar_url
        )
        db.session.commit()
    db.session.remove()


def _presence_payload(conv_id: int) -> dict:
    people = _state().presence.people(conv_id)
    names: dict[int, str] = {}
    if people:
        rows = db.session.execute(sa.select(User.id, User.name).where(User.id.in_(list(people))))
        names = {uid: name for uid, name in rows}
    return {
        "conversation_id": conv_id,
        "users": [
            {"id": uid, "name": names.get(uid, "?"), "state": st} for uid, st in people.items()
        ],
    }


def _set_presence(user_id: int, conv_id: int | None, state: str) -> None:
    _presence_change(user_id, lambda store: store.set(user_id, conv_id, state))


def _clear_presence(user_id: int) -> None:
    _presence_change(user_id, lambda store: store.clear(user_id))


def _presence_change(user_id: int, change) -> None:
    """Apply a change to presence and tell the inboxes; a store failure is logged, not raised.

    (With Redis unreachable the rest of the connection's work, e.g. going offline
    for assignment on disconnect, must still happen.)
    """
    try:
        changed = change(_state().presence)
    except Exception:  # noqa: BLE001 - presence must never break the connection
        log.exception("presence of user %s could not be updated", user_id)
        return
    _broadcast_presence(changed)


def _broadcast_presence(conv_ids: set[int]) -> None:
    for cid in conv_ids:
        conv = db.session.get(Conversation, cid)
        if conv is None:
            continue
        socketio.emit("presence.updated", _presence_payload(cid), to=f"inbox:{conv.inbox_id}")
        socketio.emit("presence.updated", _presence_payload(cid), to="all")


def viewers(conv_id: int) -> dict[int, str]:
    """Who is viewing or replying to a conversation (in every process)."""
    return _state().presence.people(conv_id)
