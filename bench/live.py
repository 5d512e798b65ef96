"""Live latency: agent sockets in separate processes, webhooks at a steady rate.

Each client process connects its share of agents with python-socketio
(WebSocket transport, ``auth={"token": ...}``) and stamps every
``message.created`` whose body is ``live-<seq>`` with ``time.monotonic()``
(one clock for every process of the machine). The driving process posts signed
Messenger webhooks at a fixed rate, stamping each POST when it starts; latency
is arrival minus that stamp, for every message at every socket.
"""

from __future__ import annotations

import contextlib
import http.client
import multiprocessing as mp
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bench import payloads
from bench.common import percentile

PREFIX = "live-"


def _clients(url: str, tokens: list[str], conn) -> None:
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
                    arrivals.append((int(body[len(PREFIX):]), idx, at))

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
    conn.recv()  # "stop"
    with lock:
        got = list(arrivals)
    conn.send(("arrivals", got))
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
    transports: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def pct(self, p: float) -> float | None:
        """POST-to-socket latency percentile (ms)."""
        return percentile(self.latencies, p)


def run(url: str, tokens: list[str], rate: float, seconds: float, processes: int = 2,
        grace: float = 3.0, during=None) -> LiveResult:
    """Connect ``len(tokens)`` sockets, post ``rate``/s webhooks for ``seconds``, measure.

    ``during``, if given, is called (with the result so far) while every socket
    is still connected, after the last delivery: the memory probe uses it.
    """
    ctx = mp.get_context("spawn")
    result = LiveResult()
    pipes, procs = [], []
    started = time.monotonic()
    for p in range(processes):
        share = tokens[p::processes]
        if not share:
            continue
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(target=_clients, args=(url, share, theirs), daemon=True)
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
        sent_at = _post_steadily(url, rate, seconds, result)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            time.sleep(0.1)
        if during is not None:
            during(result)
        for pipe in pipes:
            pipe.send("stop")
        for pipe in pipes:
            if pipe.poll(60):
                _, arrivals = pipe.recv()
                for seq, _idx, at in arrivals:
                    if seq in sent_at:
                        result.latencies.append((at - sent_at[seq]) * 1000)
    finally:
        for proc in procs:
            proc.join(20)
            if proc.is_alive():
                proc.terminate()
    result.delivered = len(result.latencies)
    result.expected = (result.sent - result.failed_posts) * result.sockets
    return result


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
        item = payloads.messenger_item(f"6{seq % 50:012d}", f"m_live_{now_ms}_{seq:06d}",
                                       now_ms + seq, f"{PREFIX}{seq}")
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
