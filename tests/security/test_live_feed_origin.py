"""Finding B: cross-site WebSocket hijacking. Only the app's own origin may open the feed.

A page on another port of the same site gets the agent's session cookie sent
along (cookies do not tell ports apart); the Origin header is what tells it
apart. Scripts with a token and no Origin keep working.
"""

from __future__ import annotations

import re

import pytest
import requests
import socketio

from tests.processes import free_port
from tests.security.feed import Feed


def _session_cookie(url: str, email: str) -> str:
    """Log in through the form; the session cookie a browser would then send."""
    http = requests.Session()
    page = http.get(url + "/login", timeout=10).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = http.post(
        url + "/login",
        data={"email": email, "password": "correct horse battery", "csrf_token": csrf},
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 302, resp.text
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_a_page_on_another_port_cannot_read_an_agents_feed(live_server, make, transport):
    """A page at http://127.0.0.1:<other port> rides the agent's session cookie: refused."""
    ana = make.user(name="Ana")
    make.inbox(members=[ana])
    cookie = _session_cookie(live_server.url, ana.email)
    feed = Feed(origin=f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            feed.connect(live_server.url, headers={"Cookie": cookie}, transport=transport)
    finally:
        feed.close()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_a_token_client_sending_another_origin_is_refused(live_server, make, transport):
    ana = make.user(name="Ana")
    feed = Feed(origin="http://evil.example")
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            feed.connect(live_server.url, make.token(ana), transport=transport)
    finally:
        feed.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_the_apps_own_pages_connect_with_the_session(live_server, make, feeds, host, transport):
    ana = make.user(name="Ana")
    inbox = make.inbox(members=[ana])
    url = f"http://{host}:{live_server.port}"
    cookie = _session_cookie(url, ana.email)
    feed = feeds(url, origin=url, headers={"Cookie": cookie}, transport=transport)
    make.inbound(inbox, contact="c", text="for the agent's own tab")
    assert feed.wait_body("for the agent's own tab")


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_the_public_url_is_an_accepted_origin_behind_a_proxy(
    app, live_server, make, feeds, transport
):
    """A proxy that passes on neither the public Host nor the scheme: PUBLIC_URL says them."""
    app.config["PUBLIC_URL"] = "https://support.example.com"
    ana = make.user(name="Ana")
    feed = feeds(
        live_server.url, make.token(ana), origin="https://support.example.com", transport=transport
    )
    assert feed.sio.connected
    look_alike = Feed(origin="https://support.example.com.evil.example")
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            look_alike.connect(live_server.url, make.token(ana), transport=transport)
    finally:
        look_alike.close()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_the_forwarded_origin_of_a_proxy_is_accepted(live_server, make, feeds, transport):
    """nginx as the README configures it: the public Host, and X-Forwarded-Proto https."""
    ana = make.user(name="Ana")
    feed = feeds(
        live_server.url,
        make.token(ana),
        origin="https://inbox.example.org",
        host="inbox.example.org",
        headers={"X-Forwarded-Proto": "https"},
        transport=transport,
    )
    assert feed.sio.connected


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_a_script_without_an_origin_connects_with_its_token(live_server, make, feeds, transport):
    ana = make.user(name="Ana")
    inbox = make.inbox(members=[ana])
    feed = feeds(live_server.url, make.token(ana), origin="", transport=transport)
    make.inbound(inbox, contact="c", text="for the script")
    assert feed.wait_body("for the script")


def test_origins_compare_as_browsers_write_them():
    from app.realtime.origins import normalise, request_origins

    assert normalise("HTTP://LocalHost:80") == "http://localhost"
    assert normalise("https://support.example.com:443/") == "https://support.example.com"
    assert normalise("http://[::1]:5000") == "http://[::1]:5000"
    assert normalise("null") is None and normalise("http://x:99999") is None
    environ = {
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "10.0.0.5:8001",
        "HTTP_X_FORWARDED_PROTO": "https, http",
        "HTTP_X_FORWARDED_HOST": "inbox.example.org",
    }
    assert request_origins(environ) == {"http://10.0.0.5:8001", "https://inbox.example.org"}


def test_an_extra_origin_can_be_allowed(app, live_server, make, feeds):
    app.config["SOCKETIO_CORS_ORIGINS"] = ["https://wall.example.com"]
    feed = feeds(live_server.url, make.token(make.user()), origin="https://wall.example.com")
    assert feed.sio.connected
