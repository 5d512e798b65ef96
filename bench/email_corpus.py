"""A deterministic mail corpus, the shape of a support mailbox, and what threading it should do.

2,000 messages by default: 60 % start a thread; 40 % are replies of three kinds, as mail
clients write them:

- ``original``: the customer answers their own first mail (``In-Reply-To`` it);
- ``ack``: the customer answers our acknowledgement of their first mail: ``In-Reply-To``
  the acknowledgement, ``References`` the first mail then the acknowledgement, and
  ``Re: [#<ref>] subject`` (the acknowledgement itself was sent by the inbox, not here);
- ``reply``: the customer answers one of their own replies (the whole chain in
  ``References``).

Realistic MIME: plain text, ``multipart/alternative`` (HTML and plain), quoted text under
an attribution line, names and subjects in non-ASCII (encoded words), bodies in UTF-8
quoted-printable or 8-bit, a signature; about 1.2 KB median. Each reply comes at least
``gap`` messages after its parent, so several concurrent senders never send a reply
before the message it answers. Pure functions of the index: every load process builds
its own share.

    python -m bench.email_corpus            # sizes and kinds of the default corpus
    python -m bench.email_corpus imap --url sqlite:///copy.db   # through the IMAP poller
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.utils import format_datetime
from functools import lru_cache
from quopri import encodestring

ADDRESS = "support@bench.example"  # the inbox (bench.common.EMAIL_ADDRESS)
TOTAL = 2000
NEW_SHARE = 0.6
KINDS = (("original", 0.4), ("ack", 0.4), ("reply", 0.2))  # shares of the replies
GAP = 200

_FIRST = ["Amina", "Lucas", "Sofía", "Omar", "Chloé", "João", "Yuki", "Dariush", "Leïla", "Noah"]
_LAST = ["Haddad", "Martin", "Silva", "Nakamura", "Müller", "Rossi", "Karimi", "Dubois", "Øster"]
_SUBJECTS = [
    "Order {n} not delivered",
    "Question about invoice {n}",
    "Return for order {n}",
    "Commande {n} : adresse de livraison",
    "Pedido {n} atrasado — ajuda",
    "Bestellung {n}: Größe tauschen",
    "Refund for order {n} still pending",
    "Damaged item in order {n}",
]
_OPENINGS = [
    "Hello,\n\nmy order {n} has not arrived yet. The tracking page says it left the "
    "warehouse eight days ago and nothing has moved since. Could you check where it is "
    "and tell me when I can expect it? I need it before the end of the month.",
    "Bonjour,\n\nje voudrais changer l'adresse de livraison de la commande {n}. "
    "J'ai déménagé la semaine dernière et la nouvelle adresse est 12 rue des Écoles, "
    "75005 Paris. Merci de me confirmer que c'est possible avant l'expédition.",
    "Olá,\n\no pedido {n} ainda não chegou e já passaram duas semanas. Podem verificar "
    "com a transportadora? Se não for possível entregar, prefiro o reembolso.",
    "Hi there,\n\nthe invoice for order {n} shows the wrong company name and VAT number. "
    "Our accounting team cannot book it like this. Could you send a corrected invoice "
    "to this address? The correct name is in my account settings.",
    "Guten Tag,\n\nich möchte die Größe bei Bestellung {n} tauschen (M statt L). "
    "Das Paket ist noch ungeöffnet. Wie gehe ich vor, und wer trägt die Versandkosten?",
]
_REPLIES = [
    "Thanks for the quick answer. I checked again this morning and it still has not "
    "arrived. Is there anything else you need from me?",
    "Merci pour votre réponse. Pouvez-vous me dire quand le colis sera réexpédié ?",
    "Obrigado. Enviei as fotos em anexo ontem, receberam?",
    "One more detail: the parcel number on the label ends in 4471, if that helps.",
    "Danke! Ich warte dann auf das Rücksendeetikett.",
]
_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0",
    "Microsoft Outlook 16.0",
    "Apple Mail (2.3774.300.61.1.2)",
    "K-9 Mail for Android",
]
_SIGNATURES = [
    "--\n{name}\nSent from my phone",
    "Best regards,\n{name}",
    "{name}",
    "Cordialement,\n{name}",
]


@dataclass(frozen=True)
class Mail:
    """One message of the corpus: its position, what it answers (None: a new thread)."""

    index: int
    parent: int | None
    kind: str  # "new", "original", "ack" or "reply"
    root: int


@lru_cache(maxsize=8)
def plan(total: int = TOTAL, seed: int = 7, gap: int = GAP) -> tuple[Mail, ...]:
    """Which message answers which: ``NEW_SHARE`` new threads, the rest replies by ``KINDS``.

    A reply of kind ``original``/``ack`` answers a thread's first message (or its
    acknowledgement); ``reply`` answers an earlier reply of the same thread. Every
    parent is at least ``gap`` positions earlier.
    """
    rng = random.Random(seed)
    n_replies = round(total * (1 - NEW_SHARE))
    counts = [round(n_replies * share) for _kind, share in KINDS]
    counts[-1] = n_replies - sum(counts[:-1])
    slots = sorted(rng.sample(range(gap, total), n_replies))
    kinds = [kind for (kind, _s), c in zip(KINDS, counts, strict=True) for _ in range(c)]
    rng.shuffle(kinds)
    # "reply" needs an earlier reply of the thread: give those the later slots
    kinds.sort(key=lambda k: k == "reply")
    later = sorted(slots[-counts[-1] :]) if counts[-1] else []
    first = slots[: len(slots) - len(later)]
    rng.shuffle(first)
    kind_at = dict(zip(first, kinds, strict=False)) | dict.fromkeys(later, "reply")
    mails: list[Mail] = []
    replies_of: dict[int, list[int]] = {}  # root -> its replies so far
    for i in range(total):
        kind = kind_at.get(i, "new")
        if kind == "new":
            mails.append(Mail(i, None, "new", i))
            continue
        if kind == "reply":
            choices = [m for m in mails[: i - gap + 1] if m.kind in ("original", "ack")]
            if not choices:
                kind = "original"
            else:
                parent = rng.choice(choices)
                mails.append(Mail(i, parent.index, "reply", parent.root))
                replies_of.setdefault(parent.root, []).append(i)
                continue
        roots = [m.index for m in mails[: i - gap + 1] if m.kind == "new"]
        root = rng.choice(roots)
        mails.append(Mail(i, root, kind, root))
        replies_of.setdefault(root, []).append(i)
    return tuple(mails)


def message_id(run: str, i: int) -> str:
    """Message ``i``'s id, bare (as stored): ``corpus-<run>-<i>@<domain>``."""
    return f"corpus-{run}-{i:06d}@mail.customer.example"


def ack_id(run: str, root: int) -> str:
    """The Message-ID of our acknowledgement of thread ``root`` (bare)."""
    return f"ack-{run}-{root:06d}@bench.example"


def _person(root: int) -> tuple[str, str]:
    rng = random.Random(root)
    name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    return name, f"customer{root:05d}@customer.example"


def _wrap(text: str, width: int = 72) -> str:
    out = []
    for para in text.split("\n"):
        line = ""
        for word in para.split(" "):
            if line and len(line) + 1 + len(word) > width:
                out.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        out.append(line)
    return "\n".join(out)


def _header(value: str) -> str:
    """A header value, as an RFC 2047 encoded word when it is not ASCII."""
    if value.isascii():
        return value
    return Header(value, "utf-8").encode()


def _text_part(text: str, rng: random.Random) -> tuple[list[str], bytes]:
    """Headers and encoded body of a ``text/plain`` part."""
    data = text.replace("\n", "\r\n").encode()
    if text.isascii():
        return [
            "Content-Type: text/plain; charset=us-ascii",
            "Content-Transfer-Encoding: 7bit",
        ], data
    if rng.random() < 0.5:
        return [
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
        ], encodestring(data)
    return ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"], data


def _html(text: str) -> str:
    paras = "".join(
        "<p>" + p.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br>") + "</p>"
        for p in text.split("\n\n")
        if p.strip()
    )
    return (
        f'<html><head><meta charset="utf-8"></head><body><div dir="ltr">{paras}</div></body></html>'
    )


def raw(run: str, i: int, total: int = TOTAL, seed: int = 7) -> bytes:
    """Message ``i`` of the corpus as RFC 822 bytes."""
    mail = plan(total, seed)[i]
    rng = random.Random(seed * 100_003 + i)
    root = mail.root
    name, sender = _person(root)
    n = 40_000 + root
    subject = _SUBJECTS[root % len(_SUBJECTS)].format(n=n)
    sent = datetime(2026, 3, 2, 8, 0, tzinfo=UTC) + timedelta(seconds=30 * i)
    signature = rng.choice(_SIGNATURES).format(name=name)
    hop = format_datetime(sent + timedelta(seconds=2))
    headers = [
        f"Received: from mx{root % 7}.customer.example (mx{root % 7}.customer.example "
        f"[203.0.113.{root % 250 + 1}])\r\n\tby mail.bench.example (Postfix) with ESMTPS id "
        f"4B{i:07X}\r\n\tfor <{ADDRESS}>; {hop}",
        f"Received: from [192.168.{root % 200}.{i % 250 + 2}] (unknown [198.51.100.{i % 250 + 1}])"
        f"\r\n\tby mx{root % 7}.customer.example (Postfix) with ESMTPSA id 9F{i:06X}; "
        f"{format_datetime(sent)}",
        f"User-Agent: {_AGENTS[root % len(_AGENTS)]}",
        f"From: {_header(name)} <{sender}>",
        f"To: Support <{ADDRESS}>",
        f"Date: {format_datetime(sent)}",
        f"Message-ID: <{message_id(run, i)}>",
        "MIME-Version: 1.0",
    ]
    if mail.parent is None:
        headers.append(f"Subject: {_header(subject)}")
        text = _wrap(_OPENINGS[root % len(_OPENINGS)].format(n=n)) + "\n\n" + signature + "\n"
    else:
        chain = _chain(run, mail, total, seed)
        in_reply_to = chain[-1]
        headers += [
            f"Subject: {_header('Re: ' + subject)}",
            f"In-Reply-To: <{in_reply_to}>",
            "References: " + "\r\n ".join(f"<{ref}>" for ref in chain),
        ]
        quoted_from = "Support" if mail.kind == "ack" else name
        quoted = (
            f"Thank you for writing to us: we have your message about order {n} and will "
            "answer within one business day."
            if mail.kind == "ack"
            else _OPENINGS[root % len(_OPENINGS)].format(n=n)
        )
        quote = "\n".join("> " + line for line in _wrap(quoted, 70).splitlines())
        text = (
            _wrap(rng.choice(_REPLIES))
            + "\n\n"
            + signature
            + f"\n\nOn {format_datetime(sent - timedelta(hours=2))}, {quoted_from} wrote:\n"
            + quote
            + "\n"
        )
    part_headers, body = _text_part(text, rng)
    if rng.random() < 0.4:  # HTML with a plain alternative, as most webmail sends it
        boundary = f"----=_Part_{i}_{rng.randrange(10**9)}"
        html = _html(text).encode()
        headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
        lines = [
            f"--{boundary}".encode(),
            *(h.encode() for h in part_headers),
            b"",
            body,
            f"--{boundary}".encode(),
            b"Content-Type: text/html; charset=utf-8",
            b"Content-Transfer-Encoding: quoted-printable",
            b"",
            encodestring(html),
            f"--{boundary}--".encode(),
            b"",
        ]
        payload = b"\r\n".join(lines)
    else:
        headers += part_headers
        payload = body
    return "\r\n".join(headers).encode() + b"\r\n\r\n" + payload


def _chain(run: str, mail: Mail, total: int, seed: int) -> list[str]:
    """``References`` of a reply: the ids from the thread's first message to its parent."""
    mails = plan(total, seed)
    ids: list[str] = []
    m: Mail | None = mail
    while m is not None and m.parent is not None:
        parent = mails[m.parent]
        if m.kind == "ack":
            ids.append(ack_id(run, m.root))
        ids.append(message_id(run, parent.index))
        m = parent
    return list(reversed(ids))


def corpus(run: str, total: int = TOTAL, seed: int = 7) -> list[bytes]:
    """Every message of the corpus, in sending order."""
    return [raw(run, i, total, seed) for i in range(total)]


def request(token: str, run: str, i: int, total: int = TOTAL):
    """``POST /webhooks/email/inbound/<token>`` with message ``i`` as ``message/rfc822``."""
    body = raw(run, i, total)
    return "POST", f"/webhooks/email/inbound/{token}", body, {"Content-Type": "message/rfc822"}


def imap_row(python: str, root, env: dict, url: str, total: int = TOTAL) -> dict:
    """:func:`imap` in a process of its own (the bench's environment); its JSON."""
    import json
    import subprocess

    done = subprocess.run(
        [python, "-m", "bench.email_corpus", "imap", "--url", url, "--total", str(total)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout)[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def expected(total: int = TOTAL, seed: int = 7) -> dict[str, int]:
    """New threads and replies of each kind in the corpus."""
    out: dict[str, int] = {}
    for mail in plan(total, seed):
        out[mail.kind] = out.get(mail.kind, 0) + 1
    return out


def threading_check(url: str, run: str, total: int = TOTAL, seed: int = 7) -> dict:
    """Read the database at ``url``: replies stored in their thread's conversation, by kind.

    A reply is threaded when its conversation is the one holding its thread's first
    message. Also counts the messages stored and the conversations they are in.
    """
    import sqlalchemy as sa

    mails = plan(total, seed)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT provider_id, conversation_id FROM messages "
                    "WHERE direction = 'inbound' AND provider_id LIKE :like"
                ),
                {"like": f"corpus-{run}-%"},
            ).all()
    finally:
        engine.dispose()
    conv = {pid: cid for pid, cid in rows}
    out = {"stored": len(conv), "conversations": len(set(conv.values())), "replies": 0}
    out |= {f"threaded_{kind}": 0 for kind, _s in KINDS}
    for mail in mails:
        if mail.parent is None:
            continue
        out["replies"] += 1
        mine = conv.get(message_id(run, mail.index))
        if mine is not None and mine == conv.get(message_id(run, mail.root)):
            out[f"threaded_{mail.kind}"] += 1
    out["threaded"] = sum(out[f"threaded_{kind}"] for kind, _s in KINDS)
    return out


def imap(url: str, run: str, total: int = TOTAL) -> dict:
    """The corpus through the IMAP poller: delivered to a private Dovecot, polled, timed.

    Runs in this process against the database at ``url`` (a fresh bench copy with the
    bench mailbox), as the ``imap_poll`` job does: batches of 100, each stored with
    the advanced cursor in one transaction. Needs ``/usr/sbin/dovecot``.
    """
    import time

    import sqlalchemy as sa

    from app import create_app
    from app.extensions import db
    from app.models import Inbox
    from app.runtime.jobs import mail as mail_job
    from tests.connectors.imap_server import DovecotServer

    server = DovecotServer.start_new()
    try:
        for i in range(total):
            server.deliver(raw(run, i, total))
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INTAKE_DRAINER": False})
        with app.app_context():
            inbox = db.session.scalars(sa.select(Inbox).where(Inbox.channel == "email")).one()
            inbox.config = {**inbox.config, **server.config, "address": ADDRESS}
            db.session.commit()
            inbox_id = inbox.id
            db.session.remove()
            cpu0, started = time.process_time(), time.perf_counter()
            polled = mail_job.poll_inbox(inbox_id, force=True, max_batches=10_000)
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu0
            db.session.remove()
            db.engine.dispose()
    finally:
        server.close()
    out = {
        "messages": total,
        "fetched": polled.fetched,
        "error": polled.error,
        "seconds": round(wall, 2),
        "per_s": round(polled.stored / wall, 1) if wall else None,
        "cpu_ms_per_msg": round(cpu * 1000 / max(1, polled.fetched), 2),
        "batches": polled.batches,
    }
    return out | threading_check(url, run, total)


def main(argv: list[str] | None = None) -> None:
    import argparse
    import json

    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("what", nargs="?", default="sizes", choices=("sizes", "imap"))
    p.add_argument("--url", help="imap: the database (a fresh bench copy)")
    p.add_argument("--run", default="imap")
    p.add_argument("--total", type=int, default=TOTAL)
    args = p.parse_args(argv)
    if args.what == "imap":
        print(json.dumps(imap(args.url, args.run, args.total)))
        return
    sizes = [len(raw("demo", i)) for i in range(TOTAL)]
    print(f"{TOTAL} messages: {expected()}")
    print(
        f"size median {statistics.median(sizes):.0f} B, "
        f"p10 {sorted(sizes)[TOTAL // 10]} B, p90 {sorted(sizes)[TOTAL * 9 // 10]} B"
    )


if __name__ == "__main__":
    main()
