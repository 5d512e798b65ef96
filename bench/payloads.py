"""Request bodies the load generators send: Messenger webhooks and raw email.

Pure functions of an index, so each load-generating process builds its own
share of the requests without anything being pickled across processes.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from bench.common import EMAIL_ADDRESS, PAGE_ID, sign

CUSTOMERS = 200


def messenger_item(psid: str, mid: str, ts_ms: int, text: str) -> dict:
    """One customer text message in Meta's shape."""
    return {
        "sender": {"id": psid},
        "recipient": {"id": PAGE_ID},
        "timestamp": ts_ms,
        "message": {"mid": mid, "text": text},
    }


def messenger_body(items: list[dict], per_entry: int = 25) -> bytes:
    """A webhook body, items split over several entries as Meta batches them."""
    entries = [
        {"id": PAGE_ID, "time": int(time.time() * 1000), "messaging": items[i : i + per_entry]}
        for i in range(0, len(items), per_entry)
    ]
    return json.dumps({"object": "page", "entry": entries}).encode()


def messenger_request(raw: bytes) -> tuple[str, str, bytes, dict]:
    """A signed ``POST /webhooks/messenger``."""
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(raw)}
    return "POST", "/webhooks/messenger", raw, headers


def single(run: str, i: int) -> tuple[str, str, bytes, dict]:
    """Message ``i`` of a single-message run, from one of 200 customers."""
    now_ms = int(time.time() * 1000)
    item = messenger_item(
        f"7{run}{i % CUSTOMERS:011d}", f"m_{run}_{i:08d}", now_ms, f"Hello, where is order {i:06d}?"
    )
    return messenger_request(messenger_body([item]))


def batch(run: str, b: int, size: int = 100) -> tuple[str, str, bytes, dict]:
    """Batch ``b``: ``size`` messages from rotating customers, in entries of 25."""
    now_ms = int(time.time() * 1000)
    items = [
        messenger_item(
            f"8{run}{(b * size + k) % CUSTOMERS:011d}",
            f"m_{run}_b{b:05d}_{k:04d}",
            now_ms + k,
            f"Batch message {k} of {b}",
        )
        for k in range(size)
    ]
    return messenger_request(messenger_body(items))


# --------------------------------------------------------------------------- email

NEW_SHARE = 0.6
REPLY_GAP = 200
_SUBJECTS = [
    "Order {n} not delivered",
    "Question about invoice {n}",
    "Return for order {n}",
    "Commande {n} : adresse",
    "Pedido {n} atrasado",
]
_BODIES = [
    "Hello,\n\nmy order {n} has not arrived yet. Could you check where it is?\n\nThanks,\n{name}",
    "Bonjour,\n\nje voudrais changer l'adresse de livraison de la commande {n}.\n\n{name}",
    "Olá,\n\no pedido {n} ainda não chegou. Podem verificar?\n\nObrigado,\n{name}",
]


def email_plan(total: int, seed: int = 7) -> list[int | None]:
    """For each message index, the index of the earlier message it replies to (None: new).

    60% new threads, 40% replies to a message at least ``REPLY_GAP`` positions
    earlier, so the parent is stored before the reply arrives even with several
    concurrent senders (a reply that overtakes its parent starts a thread of its own).
    """
    rng = random.Random(seed)
    eligible = range(REPLY_GAP, total)
    replies = set(rng.sample(eligible, min(len(eligible), round(total * (1 - NEW_SHARE)))))
    return [rng.randrange(0, i - REPLY_GAP + 1) if i in replies else None for i in range(total)]


def _msgid(run: str, i: int) -> str:
    return f"<bench-{run}-{i:06d}@customer.example>"


def _root(plan: list[int | None], i: int) -> int:
    while plan[i] is not None:
        i = plan[i]
    return i


def email_raw(run: str, i: int, plan: list[int | None]) -> bytes:
    """Message ``i``: a new mail, or a reply (In-Reply-To, References, quoted text)."""
    root = _root(plan, i)
    n = 10_000 + root
    name = f"Customer {root:05d}"
    sender = f"customer{root:05d}@customer.example"
    sent = datetime(2026, 1, 5, 9, 0, tzinfo=UTC) + timedelta(seconds=i)
    subject = _SUBJECTS[root % len(_SUBJECTS)].format(n=n)
    headers = [
        f"From: {name} <{sender}>",
        f"To: Support <{EMAIL_ADDRESS}>",
        f"Date: {format_datetime(sent)}",
        f"Message-ID: {_msgid(run, i)}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    parent = plan[i]
    if parent is None:
        headers.append(f"Subject: {subject}")
        text = _BODIES[root % len(_BODIES)].format(n=n, name=name)
    else:
        chain, p = [], parent
        while p is not None:
            chain.append(_msgid(run, p))
            p = plan[p]
        headers += [
            f"Subject: Re: {subject}",
            f"In-Reply-To: {_msgid(run, parent)}",
            f"References: {' '.join(reversed(chain))}",
        ]
        quoted = "\n".join(
            "> " + line for line in _BODIES[root % len(_BODIES)].format(n=n, name=name).splitlines()
        )
        text = (
            f"Any news about this? It is now message {i}.\n\n{name}\n\n"
            f"On Mon, 5 Jan 2026 at 09:00, {name} <{sender}> wrote:\n{quoted}\n"
        )
    return ("\r\n".join(headers) + "\r\n\r\n" + text.replace("\n", "\r\n")).encode()


def email_request(token: str, run: str, i: int, plan: list[int | None]):
    """``POST /webhooks/email/inbound/<token>`` with message ``i`` as ``message/rfc822``."""
    return (
        "POST",
        f"/webhooks/email/inbound/{token}",
        email_raw(run, i, plan),
        {"Content-Type": "message/rfc822"},
    )
