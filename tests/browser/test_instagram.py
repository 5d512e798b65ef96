"""Instagram in a real Chromium: a story reply shows the story as a link, never as a file."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
import requests

pytestmark = pytest.mark.browser

ACCOUNT = "17841400000000001"
SECRET = "instagram-app-secret"
STORY_URL = "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=180001&signature=abc"


def post_instagram(base_url: str, *items: dict) -> None:
    """A signed Instagram messaging webhook, as Meta sends it, to the live server."""
    raw = json.dumps(
        {"object": "instagram", "entry": [{"id": ACCOUNT, "time": 1, "messaging": list(items)}]}
    ).encode()
    sig = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    resp = requests.post(
        base_url + "/webhooks/instagram",
        data=raw,
        headers={"X-Hub-Signature-256": sig, "Content-Type": "application/json"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text


def from_customer(mid: str, **message) -> dict:
    return {
        "sender": {"id": "1780000000000001"},
        "recipient": {"id": ACCOUNT},
        "timestamp": int(time.time() * 1000),
        "message": {"mid": mid, **message},
    }


def test_story_reply_and_mention_are_links_named_in_the_agents_language(page, make):
    agent = make.user("agent", name="Claire Dubois", locale="fr")
    make.inbox(
        "instagram",
        members=[agent],
        account_id=ACCOUNT,
        access_token="IGAA-token",
        app_secret=SECRET,
        verify_token="verify-me",
    )
    post_instagram(
        page.url,
        from_customer(
            "m_story_1",
            text="Elle existe en bleu ?",
            reply_to={"story": {"url": STORY_URL, "id": "3400000000000000001"}},
        ),
        from_customer(
            "m_story_2",
            attachments=[{"type": "story_mention", "payload": {"url": STORY_URL + "&m=1"}}],
        ),
    )
    page.login(agent.email)
    # the mention, only a story link, is named in the list, not shown as "[story]"
    page.wait(lambda d: (page.text(".conv-row .snippet") or "").strip() == "Story")
    assert page.js("return !!document.querySelector('.conv-row .snippet svg')")  # its clip icon
    page.click(".conv-row")
    page.wait_text("#thread-log .msg.in", "Elle existe en bleu ?")
    links = page.all("#thread-log a.att-link")
    assert [a.text for a in links] == ["A répondu à votre story", "Vous a mentionné dans sa story"]
    assert links[0].get_attribute("href") == STORY_URL
    assert links[0].get_attribute("target") == "_blank"
    assert "noopener" in links[0].get_attribute("rel")
    banner = page.wait_css(".composer-banner")
    assert "Fenêtre Instagram de 24 heures" in banner.text
    chip = page.css(".thread-head .ch-instagram")
    assert chip.get_attribute("title") == "Instagram"
    assert chip.value_of_css_property("color") == "rgba(214, 41, 118, 1)"
    page.screenshot("instagram-story-reply")
    assert page.console_errors() == []
