"""Live latency: agent sockets in separate processes, webhooks at a steady rate.

Each client process connects its share of agents over WebSocket with
``auth={"token": ...}`` and stamps every ``message.created`` whose body is
``live-<seq>`` with ``time.monotonic()`` (one clock for every process of the
machine). The driving process posts signed Messenger webhooks at a fixed rate,
stamping each POST when it starts; latency is arrival minus that stamp, for
every message at every socket.

Two clients: ``raw`` (default) shakes hands with websocket-client, then reads
every socket of its process from one thread (epoll, frames parsed by hand, no
JSON decoding: it only looks for the marker), so a thousand sockets cost the load
generator little CPU on a 2-core machine; ``socketio`` is python-socketio's ``Client``, the reference client,
which costs about 1 ms of CPU per event received and becomes the bottleneck at
100 sockets here (its latency is then the generator's, not the server's).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import multiprocessing as mp
import re
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bench import payloads
from bench.common import cpu_seconds, percentile

PREFIX = "live-"
CLIENTS = ("raw", "socketio")
_MARK = re.compile(rb'^42\["message\.created",.*"body":\s*"live-(\d+)"')


def _raw_clients(url: str, tokens: list[str], conn) -> None:
    """Engine.IO over websocket-client: open, CONNECT with auth, answer pings, stamp events."""
    import websocket

    ws_url = url.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
    arrivals: list[tuple[int, int, float]] = []
    lock = threading.Lock()
    sockets, errors = [], []
    for idx, token in enumerate(tokens):
        try:
            ws = websocket.create_connection(ws_url, timeout=30, skip_utf8_validation=True)
            if not ws.recv().startswith("0"):  # Engine.IO OPEN
                raise RuntimeError("no Engine.IO open packet")
            ws.send("40" + json.dumps({"token": token}))  # Socket.IO CONNECT, default namespace
            while True:
                packet = ws.recv()
                if packet.startswith("44"):
                    raise RuntimeError(f"connection refused: {packet[2:]}")
                if packet.startswith("40"):
                    break
            ws.settimeout(None)
            sockets.append((idx, ws))
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            errors.append(f"{type(exc).__name__}: {exc}")

    closed: list[str] = []
    reader = threading.Thread(target=_read_all, args=(sockets, arrivals, closed, lock), daemon=True)
    reader.start()
    conn.send(("connected", len(sockets), errors[:3], ["websocket"] if sockets else []))
    cpu0 = time.process_time()
    conn.recv()  # "stop"
    with lock:
        got = list(arrivals)
        early = list(closed)
    conn.send(("arrivals", got, time.process_time() - cpu0, early))
    for _, ws in sockets:  # close frame, no wait for the answer (werkzeug takes seconds)
        with contextlib.suppress(Exception):
            ws.send_close()
        with contextlib.suppress(Exception):
            ws.shutdown()


_PONG = b"\x81\x81\x00\x00\x00\x00" + b"3"  # a client's frames are masked (here by zeros)


def _read_all(sockets, arrivals: list, closed: list, lock) -> None:
    """Read every socket from one thread (epoll): parse frames, answer pings, stamp events.

    One thread per process instead of one per socket: a broadcast wakes it once per
    batch of ready sockets, so the load generator takes little of the cores the
    server shares with it.
    """
    import selectors

    sel = selectors.DefaultSelector()
    buffers: dict[int, bytes] = {}
    for idx, ws in sockets:
        raw = ws.sock
        raw.setblocking(False)
        sel.register(raw, selectors.EVENT_READ, idx)
        buffers[idx] = b""
    while sel.get_map():
        for key, _ in sel.select():
            idx, raw = key.data, key.fileobj
            try:
                data = raw.recv(262144)
            except BlockingIOError:
                continue
            except OSError as exc:
                data, reason = b"", f"{type(exc).__name__}: {exc}"
            else:
                reason = "closed by the server"
            if not data:
                sel.unregister(raw)
                with lock:
                    closed.append(reason[:200])
                continue
            at = time.monotonic()
            buf = buffers[idx] + data
            while len(buf) >= 2:  # server frames: unmasked, whole messages
                size, start = buf[1] & 0x7F, 2
                if size == 126:
                    size, start = int.from_bytes(buf[2:4], "big"), 4
                elif size == 127:
                    size, start = int.from_bytes(buf[2:10], "big"), 10
                if len(buf) < start + size:
                    break
                opcode, payload = buf[0] & 0x0F, buf[start : start + size]
                buf = buf[start + size :]
                if opcode == 0x8:  # close
                    continue
                if payload == b"2":  # Engine.IO PING
                    with contextlib.suppress(OSError):
                        raw.send(_PONG)
                    continue
                found = _MARK.match(payload) if payload.startswith(b"42") else None
                if found:
                    with lock:
                        arrivals.append((int(found.group(1)), idx, at))
            buffers[idx] = buf


def _socketio_clients(url: str, tokens: list[str], conn) -> None:
    """python-socketio ``Client`` per agent (WebSocket transport)."""
    import socketio

    arrivals: list[tuple[int, int, float]] = []
    lock = threading.Lock()
    clients = []
    errors: list[str] = []

    def attach(client, idx: int) -> None:
        @client.on("message.created")
        def on_message(data):
            at = time.monotonic()
            body = (data.get("body") or "") if isinstance(data, dict) else ""
            if body.startswith(PREFIX):
                with lock:
                    arrivals.append((int(body[len(PREFIX) :]), idx, at))

    for idx, token in enumerate(tokens):
        client = socketio.Client(reconnection=False)
        attach(client, idx)
        try:
            client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=30)
            clients.append(client)
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            errors.append(f"{type(exc).__name__}: {exc}")
    transports = sorted({c.transport() for c in clients})
    conn.send(("connected", len(clients), errors[:3], transports))
    cpu0 = time.process_time()
    conn.recv()  # "stop"
    with lock:
        got = list(arrivals)
    conn.send(("arrivals", got, time.process_time() - cpu0, []))
    # all at once: a clean close can take seconds per socket (the close handshake)
    closers = [threading.Thread(target=_disconnect, args=(c,), daemon=True) for c in clients]
    for t in closers:
        t.start()
    for t in closers:
        t.join(10)


def _disconnect(client) -> None:
    with contextlib.suppress(Exception):  # best effort on the way out
        client.disconnect()


@dataclass
class LiveResult:
    """Deliveries of the timed messages to the sockets, with latencies in ms."""

    sockets: int = 0
    sent: int = 0
    failed_posts: int = 0
    expected: int = 0
    delivered: int = 0
    latencies: list[float] = field(default_factory=list)
    post_latencies: list[float] = field(default_factory=list)
    send_seconds: float = 0.0
    connect_seconds: float = 0.0
    client_cpu_seconds: float = 0.0  # spent by the socket-client processes while measuring
    server_cpu_seconds: float = 0.0
    closed_early: int = 0  # sockets the server closed during the measurement
    unseen_messages: int = 0  # stored (200) but reached no socket
    partly_seen_messages: int = 0  # reached some sockets only
    transports: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    by_message: dict[int, list[float]] = field(default_factory=dict)  # seq -> latencies (ms)

    def pct(self, p: float) -> float | None:
        """POST-to-socket latency percentile (ms)."""
        return percentile(self.latencies, p)


def run(
    url: str,
    tokens: list[str],
    rate: float,
    seconds: float,
    processes: int = 2,
    grace: float = 3.0,
    during=None,
    server_pid: int | None = None,
    client: str = "raw",
    on_connected=None,
    warmup: int = 3,
) -> LiveResult:
    """Connect ``len(tokens)`` sockets, post ``rate``/s webhooks for ``seconds``, measure.

    ``during``, if given, is called (with the result so far) while every socket
    is still connected, after the last delivery: the memory probe uses it.
    ``on_connected``, if given, is called once every client process has connected.
    ``warmup`` untimed messages go first (each from a new sender, as the timed ones):
    the first webhooks after a start compile their statements, once per process.
    """
    ctx = mp.get_context("spawn")
    result = LiveResult()
    pipes, procs = [], []
    per_seq: dict[int, int] = {}
    started = time.monotonic()
    for p in range(processes):
        share = tokens[p::processes]
        if not share:
            continue
        mine, theirs = ctx.Pipe()
        target = _raw_clients if client == "raw" else _socketio_clients
        proc = ctx.Process(target=target, args=(url, share, theirs), daemon=True)
        proc.start()
        pipes.append(mine)
        procs.append(proc)
    try:
        for pipe in pipes:
            if not pipe.poll(180):
                raise RuntimeError("socket clients did not connect within 180 s")
            _, n, errors, transports = pipe.recv()
            result.sockets += n
            result.errors += errors
            result.transports = sorted(set(result.transports) | set(transports))
        result.connect_seconds = time.monotonic() - started
        _warm_up(url, warmup)
        if on_connected is not None:
            on_connected(result)
        cpu0 = cpu_seconds(server_pid) if server_pid else 0.0
        sent_at = _post_steadily(url, rate, seconds, result)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            time.sleep(0.1)
        if server_pid:
            result.server_cpu_seconds = cpu_seconds(server_pid) - cpu0
        if during is not None:
            during(result)
        for pipe in pipes:
            pipe.send("stop")
        for pipe in pipes:
            if pipe.poll(60):
                _, arrivals, client_cpu, early = pipe.recv()
                result.client_cpu_seconds += client_cpu
                result.closed_early += len(early)
                result.errors += early[:3]
                for seq, _idx, at in arrivals:
                    if seq in sent_at:
                        result.latencies.append((at - sent_at[seq]) * 1000)
                        result.by_message.setdefault(seq, []).append(result.latencies[-1])
                        per_seq[seq] = per_seq.get(seq, 0) + 1
    finally:
        for proc in procs:
            proc.join(20)
            if proc.is_alive():
                proc.terminate()
    result.delivered = len(result.latencies)
    result.expected = (result.sent - result.failed_posts) * result.sockets
    ok_posts = result.sent - result.failed_posts
    result.unseen_messages = ok_posts - len(per_seq)
    result.partly_seen_messages = sum(1 for n in per_seq.values() if n < result.sockets)
    return result


def _warm_up(url: str, count: int) -> None:
    """Post ``count`` messages no socket client stamps (no ``live-`` body), then settle."""
    parts = urlsplit(url)
    now_ms = int(time.time() * 1000)
    for n in range(count):
        item = payloads.messenger_item(
            f"7{n:012d}", f"m_warm_{now_ms}_{n}", now_ms + n, f"warm {n}"
        )
        method, path, body, headers = payloads.messenger_request(payloads.messenger_body([item]))
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn.request(method, path, body=body, headers=headers)
            conn.getresponse().read()
        conn.close()
    if count:
        time.sleep(0.5)


def _post_steadily(url: str, rate: float, seconds: float, result: LiveResult) -> dict[int, float]:
    """Post ``live-<seq>`` messages at ``rate`` per second; returns each POST's start time."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    total = max(1, int(rate * seconds))
    sent_at: dict[int, float] = {}
    begin = time.monotonic()
    now_ms = int(time.time() * 1000)
    for seq in range(total):
        target = begin + seq / rate
        pause = target - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        item = payloads.messenger_item(
            f"6{seq % 50:012d}", f"m_live_{now_ms}_{seq:06d}", now_ms + seq, f"{PREFIX}{seq}"
        )
        method, path, body, headers = payloads.messenger_request(payloads.messenger_body([item]))
        t0 = time.monotonic()
        sent_at[seq] = t0
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        result.post_latencies.append((time.monotonic() - t0) * 1000)
        result.sent += 1
        result.failed_posts += 0 if ok else 1
    result.send_seconds = time.monotonic() - begin
    conn.close()
    return sent_at
