"""Finding A: remote images escaped the block in stored email HTML.

``http:/path``, ``http:\\\\host\\x``, ``ht<TAB>tp://`` and a parser differential
(``<svg></iframe><style>'<img src=...>``: lxml sees text, html5ever an image) kept a
live ``src``. Stored HTML must load nothing until the agent asks for images, whatever
parser reads it: checked here with two Python parsers on what the API returns, and in
Chromium, the way the inbox shows a mail (a sandboxed ``srcdoc`` frame), against local
servers that count every request they get.
"""

from __future__ import annotations

import threading
import time
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import lxml.html
import pytest
import requests

from tests.security.mail import OURS, conversations, messages, post, raw_mail

GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
LOADING = ("src", "srcset", "lowsrc", "dynsrc", "background", "poster", "data")


def payloads(origin: str) -> str:
    """Every way we know to make a stored mail fetch ``origin/probe/...`` by itself."""
    host = origin.split("://", 1)[1]
    return "\n".join(
        [
            "<p>Hello, see the pictures below.</p>",
            '<img src="http:/probe/one-slash">',  # resolved against the page showing it
            '<img src="/probe/relative"><img src="probe/relative-path">',
            f'<img src="http:\\\\{host}\\probe\\backslashes">',
            f'<img src="ht\ttp://{host}/probe/tab">',
            f'<img src="h&#x09;ttp://{host}/probe/tab-entity">',
            f'<img src=" \x01{origin}/probe/leading-control">',
            f'<svg></iframe><style>\'<img src="{origin}/probe/svg-differential"> </style>',
            f'<math><mi></style><img src="{origin}/probe/math-differential"></mi></math>',
            f'<img srcset="{origin}/probe/srcset 1x" src="cid:nothing@here">',
            f'<table background="{origin}/probe/background"><tr><td>t</td></tr></table>',
            f'<p style="background-image:url({origin}/probe/css)">css</p>',
            f'<p style="background:image-set(&quot;{origin}/probe/image-set&quot; 1x)">set</p>',
            f'<video poster="{origin}/probe/poster"></video>',
            f'<img src="{origin}/probe/plain">',  # an ordinary remote image: on request only
        ]
    )


class _Attrs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.found += [(tag, name, value or "") for name, value in attrs]


def live_urls(html: str) -> list[str]:
    """Attributes or CSS that would load something, as two different parsers read ``html``."""
    bad = []
    parser = _Attrs()
    parser.feed(html)
    for tag, name, value in parser.found:
        if name in LOADING or (name == "style" and "url(" in value.lower()):
            bad.append(f"html.parser: <{tag} {name}={value!r}>")
    for el in lxml.html.fragment_fromstring(html, create_parent="div").iter():
        for name, value in el.attrib.items():
            if name in LOADING or (name == "style" and "url(" in value.lower()):
                bad.append(f"lxml: <{el.tag} {name}={value!r}>")
    return bad


@pytest.fixture
def agent(make):
    return make.user("agent", name="Ana Agent")


@pytest.fixture
def inbox(make, agent):
    return make.inbox("email", members=[agent], address=OURS)


def test_stored_html_keeps_no_live_url(client, make, agent, inbox):
    raw = raw_mail(
        "Mallory <mallory@attacker.example>",
        "Pictures",
        html=payloads("http://tracker.example"),
    )
    assert post(client, inbox.inbound_token, raw).status_code == 200
    auth = make.headers(agent)
    (conv,) = conversations(client, auth)
    (msg,) = messages(client, auth, conv["id"])
    html = msg["html"]
    assert live_urls(html) == []
    # the remote ones wait for the agent, written the way every browser reads them
    for name in ("backslashes", "tab", "tab-entity", "leading-control", "svg-differential"):
        assert f'data-src="http://tracker.example/probe/{name}"' in html, name
    assert 'data-src="http://tracker.example/probe/plain"' in html
    for name in ("one-slash", "relative", "srcset", "background", "css", "image-set", "poster"):
        assert f"/probe/{name}" not in html, name


# --------------------------------------------------------------------------- in Chromium


class Counter:
    """A local HTTP server that answers every GET with a pixel and remembers the path."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 - http.server API
                outer.hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.send_header("Content-Length", str(len(GIF)))
                self.end_headers()
                self.wfile.write(GIF)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def counter():
    server = Counter()
    yield server
    server.stop()


@pytest.fixture
def app_hits(app):
    """Paths under ``/probe/`` the live app itself was asked for (same origin as the inbox)."""
    hits: list[str] = []
    inner = app.wsgi_app

    def counting(environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/probe/"):
            hits.append(environ["PATH_INFO"])
        return inner(environ, start_response)

    app.wsgi_app = counting
    yield hits
    app.wsgi_app = inner


def _frame_settled(page) -> bool:
    return page.js(
        "const f = document.querySelector('#thread-log iframe.mail-frame');"
        "if (!f || !f.contentDocument || f.contentDocument.readyState !== 'complete') return false;"
        "return [...f.contentDocument.images].every((i) => i.complete);"
    )


@pytest.mark.browser
def test_chromium_fetches_nothing_until_the_agent_asks(
    page,
    make,
    agent,
    inbox,
    live_server,
    counter,
    app_hits,
):
    html = payloads(live_server.url) + "\n" + payloads(counter.url)
    raw = raw_mail("Mallory <mallory@attacker.example>", "Pictures for you", html=html)
    resp = requests.post(
        f"{live_server.url}/webhooks/email/inbound/{inbox.inbound_token}",
        data=raw,
        headers={"Content-Type": "message/rfc822"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text

    page.login(agent.email)
    page.click(".conv-row", "Mallory")
    page.wait(lambda d: _frame_settled(page), message="the mail frame never finished loading")
    time.sleep(0.5)  # anything still in flight would land now
    assert app_hits == [] and counter.hits == []
    live = page.js(
        "const d = document.querySelector('#thread-log iframe.mail-frame').contentDocument;"
        "return [...d.querySelectorAll('[src],[srcset],[background],[poster]')]"
        ".map((e) => e.outerHTML);"
    )
    assert live == []
    assert "Remote images are blocked" in page.text("#thread-log .mail-tools")

    # the control: when the agent asks, the ordinary remote image does load (the counter works)
    page.click("#thread-log .mail-tools button", "Show images")
    page.wait(lambda d: "/probe/plain" in counter.hits, message="the counter saw nothing")
    assert not {"/probe/one-slash", "/probe/relative", "/probe/relative-path"} & set(app_hits)
