"""Finding A: the live feed follows a user's access as it changes, not as it was at connect.

Driven over Socket.IO against the real server (``live_server``): a deactivated
user, a user removed from an inbox or demoted from lead, a revoked token.
"""

from __future__ import annotations

import requests

from tests.security.feed import both_saw


def _admin(make) -> dict:
    return make.headers(make.user("admin", name="Admin"))


def test_a_deactivated_agent_is_cut_off_within_seconds(live_server, make, feeds):
    ana, bo = make.user(name="Ana"), make.user(name="Bo")
    inbox = make.inbox(members=[ana, bo])
    admin = _admin(make)
    ana_feed = feeds(live_server.url, make.token(ana))
    bo_feed = feeds(live_server.url, make.token(bo))

    resp = requests.patch(
        f"{live_server.url}/api/v1/users/{ana.id}",
        json={"active": False},
        headers=admin,
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert ana_feed.disconnected.wait(5), "the deactivated agent's socket stayed open"

    make.inbound(inbox, contact="after", text="said after Ana left")
    seen, leaked = both_saw(bo_feed, ana_feed, "said after Ana left")
    assert seen and not leaked


def test_an_agent_removed_from_an_inbox_stops_receiving_it_and_keeps_the_others(
    live_server, make, feeds
):
    ana, bo = make.user(name="Ana"), make.user(name="Bo")
    sales, billing = make.inbox(members=[ana, bo]), make.inbox(members=[ana])
    admin = _admin(make)
    ana_feed = feeds(live_server.url, make.token(ana))
    bo_feed = feeds(live_server.url, make.token(bo))

    resp = requests.put(
        f"{live_server.url}/api/v1/inboxes/{sales.id}/members",
        json={"user_ids": [bo.id]},
        headers=admin,
        timeout=10,
    )
    assert resp.status_code == 200, resp.text

    make.inbound(sales, contact="s", text="sales secret")
    seen, leaked = both_saw(bo_feed, ana_feed, "sales secret")
    assert seen and not leaked
    make.inbound(billing, contact="b", text="billing question")
    assert ana_feed.wait_body("billing question")
    assert ana_feed.sio.connected


def test_an_agent_added_to_an_inbox_receives_it_without_reconnecting(live_server, make, feeds):
    ana = make.user(name="Ana")
    inbox = make.inbox(members=[])
    admin = _admin(make)
    ana_feed = feeds(live_server.url, make.token(ana))
    resp = requests.put(
        f"{live_server.url}/api/v1/inboxes/{inbox.id}/members",
        json={"user_ids": [ana.id]},
        headers=admin,
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    make.inbound(inbox, contact="n", text="welcome aboard")
    assert ana_feed.wait_body("welcome aboard")


def test_a_lead_made_agent_no_longer_sees_every_inbox(live_server, make, feeds):
    lee, bo = make.user("lead", name="Lee"), make.user(name="Bo")
    inbox = make.inbox(members=[bo])  # Lee is no member: only the lead role showed it
    admin = _admin(make)
    lee_feed = feeds(live_server.url, make.token(lee))
    bo_feed = feeds(live_server.url, make.token(bo))
    make.inbound(inbox, contact="x", text="before")
    assert lee_feed.wait_body("before")

    resp = requests.patch(
        f"{live_server.url}/api/v1/users/{lee.id}",
        json={"role": "agent"},
        headers=admin,
        timeout=10,
    )
    assert resp.status_code == 200, resp.text

    make.inbound(inbox, contact="x", text="after the demotion")
    seen, leaked = both_saw(bo_feed, lee_feed, "after the demotion")
    assert seen and not leaked


def test_the_heartbeat_cuts_a_user_deactivated_behind_the_apps_back(live_server, make, feeds):
    """Deactivated by another program (no signal reached this process): the next heartbeat ends it."""
    from app.extensions import db

    ana = make.user(name="Ana")
    make.inbox(members=[ana])
    ana_feed = feeds(live_server.url, make.token(ana))
    ana.active = False
    db.session.commit()
    ana_feed.sio.emit("heartbeat")
    assert ana_feed.disconnected.wait(5)


def test_a_socket_opened_with_a_token_is_cut_when_that_token_goes(live_server, make, feeds):
    """The token's revocation tells the live feed (access_changed); other sockets stay."""
    from app.extensions import db
    from app.inbox import signals
    from app.models import ApiToken
    from app.models.user import hash_token

    ana = make.user(name="Ana")
    inbox = make.inbox(members=[ana])
    stolen, kept = make.token(ana), make.token(ana)
    thief = feeds(live_server.url, stolen)
    ana_feed = feeds(live_server.url, kept)

    db.session.execute(ApiToken.__table__.delete().where(ApiToken.token_hash == hash_token(stolen)))
    db.session.commit()
    signals.access_changed.send(ana.id)

    assert thief.disconnected.wait(5)
    make.inbound(inbox, contact="t", text="for Ana only")
    seen, leaked = both_saw(ana_feed, thief, "for Ana only")
    assert seen and not leaked


def test_cut_user_ends_every_socket_of_a_user(live_server, make, feeds):
    from app import realtime

    ana = make.user(name="Ana")
    make.inbox(members=[ana])
    one, two = feeds(live_server.url, make.token(ana)), feeds(live_server.url, make.token(ana))
    realtime.cut_user(ana.id)
    assert one.disconnected.wait(5) and two.disconnected.wait(5)


def test_an_agent_added_to_an_inbox_from_the_command_line_receives_it(
    app, live_server, make, feeds
):
    ana = make.user(name="Ana")
    inbox = make.inbox(members=[])
    ana_feed = feeds(live_server.url, make.token(ana))
    result = app.test_cli_runner().invoke(
        args=["inboxes", "members", "add", str(inbox.id), ana.email]
    )
    assert result.exit_code == 0, result.output
    make.inbound(inbox, contact="n", text="from the command line")
    assert ana_feed.wait_body("from the command line")


def _signed_in_browser(live_server, email: str) -> requests.Session:
    """A browser's cookies after signing in through the form."""
    from tests.security.conftest import PASSWORD, csrf_from

    browser = requests.Session()
    page = browser.get(f"{live_server.url}/login", timeout=10).text
    resp = browser.post(
        f"{live_server.url}/login",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page)},
        timeout=10,
        allow_redirects=False,
    )
    assert resp.status_code == 302
    return browser


def _cookie_header(browser: requests.Session) -> dict:
    return {"Cookie": "; ".join(f"{c.name}={c.value}" for c in browser.cookies)}


def test_a_password_change_closes_the_feeds_of_every_browser_sign_in(live_server, make, feeds):
    ana = make.user(name="Ana")
    make.inbox(members=[ana])
    laptop = feeds(
        live_server.url, headers=_cookie_header(_signed_in_browser(live_server, ana.email))
    )
    phone = feeds(
        live_server.url, headers=_cookie_header(_signed_in_browser(live_server, ana.email))
    )
    resp = requests.patch(
        f"{live_server.url}/api/v1/users/{ana.id}",
        json={"password": "a brand new passphrase"},
        headers=_admin(make),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert laptop.disconnected.wait(5) and phone.disconnected.wait(5)


def test_signing_out_closes_that_browsers_feed_only(live_server, make, feeds):
    from tests.security.conftest import csrf_from

    ana = make.user(name="Ana")
    inbox = make.inbox(members=[ana])
    laptop_browser = _signed_in_browser(live_server, ana.email)
    laptop = feeds(live_server.url, headers=_cookie_header(laptop_browser))
    phone = feeds(
        live_server.url, headers=_cookie_header(_signed_in_browser(live_server, ana.email))
    )
    token = csrf_from(laptop_browser.get(f"{live_server.url}/", timeout=10).text)
    resp = laptop_browser.post(
        f"{live_server.url}/logout", data={"csrf_token": token}, timeout=10, allow_redirects=False
    )
    assert resp.status_code == 302
    assert laptop.disconnected.wait(5), "the signed-out browser's feed stayed open"
    make.inbound(inbox, contact="c", text="still for the phone")
    assert phone.wait_body("still for the phone")
