"""Finding B: U+202E (and other bidi or invisible characters) stayed in attachment filenames.

``invoice<U+202E>fdp.exe`` is shown as ``invoiceexe.pdf``. A mail carrying such names
is posted to the inbound URL; the API's attachment objects and the download's
``Content-Disposition`` must carry clean NFC names.
"""

from __future__ import annotations

import unicodedata

import pytest

from tests.security.mail import OURS, conversations, messages, post, raw_mail

#: what the attacker names the file -> what an agent must see
NAMES = {
    "invoice\u202egnp.exe": "invoicegnp.exe",  # RIGHT-TO-LEFT OVERRIDE
    "\u2067report\u2069.pdf.exe": "report.pdf.exe",  # RLI ... PDI isolates
    "\u202bpay\u202c\u202a\u202d.doc": "pay.doc",  # embeddings, LRO, PDF
    "left\u200e\u200fmarks\u061c.txt": "leftmarks.txt",  # LRM, RLM, ARABIC LETTER MARK
    "zero\u200bwidth\ufeff\u00ad.csv": "zerowidth.csv",  # ZWSP, BOM, soft hyphen
    "line\u2028sep\u2029.txt": "linesep.txt",  # line and paragraph separators
    "re\u0301sume\u0301.pdf": "r\u00e9sum\u00e9.pdf",  # NFD -> NFC
    "tab\there.txt": "tabhere.txt",
    "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.pdf": (  # Persian needs its ZWNJ
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.pdf"
    ),
}


@pytest.fixture
def agent(make):
    return make.user("agent", name="Ana Agent")


def _visible(name: str) -> bool:
    return all(
        unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp") or c in "\u200c\u200d" for c in name
    )


def test_attachment_names_lose_bidi_and_invisible_characters(client, make, agent, tmp_path):
    inbox = make.inbox("email", members=[agent], address=OURS)
    files = tuple(
        (name, f"file {n}".encode(), "application/octet-stream") for n, name in enumerate(NAMES)
    )
    raw = raw_mail("Mallory <mallory@attacker.example>", "Your invoice", attachments=files)
    assert post(client, inbox.inbound_token, raw).status_code == 200
    auth = make.headers(agent)
    (conv,) = conversations(client, auth)
    (msg,) = messages(client, auth, conv["id"])
    got = [a["filename"] for a in msg["attachments"]]
    assert got == list(NAMES.values())
    for att in msg["attachments"]:
        name = att["filename"]
        assert _visible(name) and unicodedata.is_normalized("NFC", name), ascii(name)
        resp = client.get(att["url"], headers=auth)
        disposition = resp.headers["Content-Disposition"]
        resp.close()
        assert "%E2%80%AE" not in disposition.upper() and "\u202e" not in disposition
        assert "%E2%81%A7" not in disposition.upper()  # U+2067 percent-encoded
