"""Who is viewing or replying to which conversation, for every web process.

One web process keeps it in memory. Several processes (``REDIS_URL``) keep it
in Redis, shared: an agent connected to process A and one connected to process B
who open the same conversation see each other (a collision warning that only
saw the agents of its own process would miss the one that matters). Entries in
Redis live ``TTL`` seconds, renewed by the browser's heartbeat (every 30 s), so
the viewers of a process that died without saying goodbye disappear by
themselves.
"""

from __future__ import annotations

import threading
import time

VIEWING, REPLYING = "viewing", "replying"
TTL = 90  # seconds; the browser's heartbeat comes every 30


class LocalPresence:
    """Presence in this process's memory (the embedded default, tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._convs: dict[int, dict[int, str]] = {}  # conversation -> {user: state}

    def set(self, user_id: int, conv_id: int | None, state: str) -> set[int]:
        """The user is now in ``conv_id`` (None: in none); the conversations that changed."""
        changed: set[int] = set()
        with self._lock:
            for cid, people in self._convs.items():
                if cid != conv_id and people.pop(user_id, None):
                    changed.add(cid)
            if conv_id is not None and self._convs.setdefault(conv_id, {}).get(user_id) != state:
                self._convs[conv_id][user_id] = state
                changed.add(conv_id)
        return changed

    def clear(self, user_id: int) -> set[int]:
        """The user left (closed their last connection); the conversations that changed."""
        return self.set(user_id, None, VIEWING)

    def renew(self, user_id: int) -> set[int]:
        """The user's browser is still there (nothing expires in memory): nothing changed."""
        return set()

    def people(self, conv_id: int) -> dict[int, str]:
        """{user id: state} of a conversation."""
        with self._lock:
            return dict(self._convs.get(conv_id, {}))


class RedisPresence:
    """Presence shared by every process: a hash per conversation, a key per user.

    ``<prefix>:conv:<id>`` maps user id -> ``state|expires`` (unix seconds);
    ``<prefix>:user:<id>`` holds the conversation the user is in.
    """

    def __init__(self, client, prefix: str) -> None:
        self.r = client
        self.prefix = prefix

    def _conv(self, conv_id) -> str:
        return f"{self.prefix}:conv:{conv_id}"

    def _user(self, user_id: int) -> str:
        return f"{self.prefix}:user:{user_id}"

    def set(self, user_id: int, conv_id: int | None, state: str) -> set[int]:
        """The user is now in ``conv_id`` (None: in none); the conversations that changed."""
        changed: set[int] = set()
        before = self.r.get(self._user(user_id))
        before = int(before) if before else None
        pipe = self.r.pipeline()
        if before is not None and before != conv_id:
            pipe.hdel(self._conv(before), user_id)
            changed.add(before)
        if conv_id is None:
            pipe.delete(self._user(user_id))
        else:
            entry = self.r.hget(self._conv(conv_id), user_id)
            if entry is None or entry.decode().split("|")[0] != state:
                changed.add(conv_id)
            self._put(pipe, user_id, conv_id, state)
        pipe.execute()
        return changed

    def clear(self, user_id: int) -> set[int]:
        """The user left (closed their last connection here); the conversations that changed."""
        return self.set(user_id, None, VIEWING)

    def renew(self, user_id: int) -> set[int]:
        """The user's browser is still there: keep their entry another ``TTL`` (nothing changed)."""
        conv_id = self.r.get(self._user(user_id))
        if not conv_id:
            return set()
        entry = self.r.hget(self._conv(int(conv_id)), user_id)
        state = entry.decode().split("|")[0] if entry else VIEWING
        pipe = self.r.pipeline()
        self._put(pipe, user_id, int(conv_id), state)
        pipe.execute()
        return set()

    def _put(self, pipe, user_id: int, conv_id: int, state: str) -> None:
        pipe.hset(self._conv(conv_id), user_id, f"{state}|{int(time.time()) + TTL}")
        pipe.expire(self._conv(conv_id), TTL)
        pipe.set(self._user(user_id), conv_id, ex=TTL)

    def people(self, conv_id: int) -> dict[int, str]:
        """{user id: state} of a conversation, without entries past their time."""
        t = time.time()
        out: dict[int, str] = {}
        for user_id, entry in self.r.hgetall(self._conv(conv_id)).items():
            state, _, until = entry.decode().partition("|")
            if until.isdigit() and int(until) >= t:
                out[int(user_id)] = state
        return out


def store_for(config) -> LocalPresence | RedisPresence:
    """Redis when the app shares its events through Redis, else memory."""
    url = config.get("REDIS_URL")
    if not url:
        return LocalPresence()
    import redis

    return RedisPresence(redis.Redis.from_url(url), f"{config['SOCKETIO_CHANNEL']}:presence")
