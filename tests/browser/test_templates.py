"""The template picker in a real Chromium: a WhatsApp conversation whose window closed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from selenium.webdriver.common.keys import Keys

from app.clock import now
from tests.browser.conftest import run_worker
from tests.browser.providers import FakeWhatsApp
from tests.channels.whatsapp_fake import HEADER_TEMPLATES, TEMPLATES

pytestmark = pytest.mark.browser


@pytest.fixture
def fake_whatsapp(app):
    fake = FakeWhatsApp(TEMPLATES)
    app.config["WHATSAPP_GRAPH_URL"] = fake.url
    yield fake
    fake.stop()


def _window_closed(page, make, text: str):
    """Maria wrote ``text`` 30 hours ago; Ana opens the conversation. Returns the banner."""
    agent = make.user("agent", name="Ana Agent")
    inbox = make.inbox("whatsapp", members=[agent], phone_number_id="106540352242922")
    make.inbound(
        inbox,
        contact="+5511987654321",
        text=text,
        at=now() - timedelta(hours=30),
        contact_name="Maria Souza",
    )
    page.login(agent.email)
    page.click(".conv-row", text)
    return page.wait_text(".composer-banner", "WhatsApp 24-hour window")


def test_a_closed_whatsapp_window_offers_approved_templates_filled_from_the_contact(
    page, make, app, fake_whatsapp
):
    banner = _window_closed(page, make, "Obrigada, até logo!")
    assert "template" in banner.text
    assert page.css("#composer-text").get_attribute("disabled") is not None

    page.click(".template-btn")
    page.wait_css(".template-picker")
    options = page.texts("#tpl-choice option")
    assert options == ["order_update · en_US · UTILITY", "follow_up · pt_BR · MARKETING"]
    first = page.css('.template-picker input[data-param="1"]')
    assert first.get_attribute("value") == "Maria"  # the contact's name to start with
    assert page.text(".tpl-preview") == "Hi Maria, your order {{2}} is on its way."
    send = page.css(".template-picker .btn.primary")
    assert send.get_attribute("disabled") is not None  # {{2}} is still empty
    page.css('.template-picker input[data-param="2"]').send_keys("#1042")
    first.send_keys(Keys.BACKSPACE * 5, "Dona Maria")
    page.wait(
        lambda d: page.text(".tpl-preview") == "Hi Dona Maria, your order #1042 is on its way."
    )
    page.screenshot("whatsapp-template-picker")
    send.click()

    page.wait_text("#thread-log .msg.out", "Hi Dona Maria, your order #1042 is on its way.")
    page.wait(lambda d: page.attr("#thread-log .msg.out", "data-status") == "queued")
    assert page.all(".template-picker") == []
    assert "Template" in page.text("#thread-log .msg.out .msg-kind")
    page.screenshot("whatsapp-template-sent")
    run_worker(app)
    (sent,) = fake_whatsapp.sends()
    assert sent["type"] == "template" and sent["to"] == "5511987654321"
    assert sent["template"]["name"] == "order_update"
    assert [p["text"] for p in sent["template"]["components"][0]["parameters"]] == [
        "Dona Maria",
        "#1042",
    ]
    page.wait(lambda d: page.attr("#thread-log .msg.out", "data-status") == "sent")
    assert page.console_errors() == []


def test_a_header_parameter_gets_its_own_field_and_a_template_the_inbox_cannot_fill_is_greyed(
    page, make, app, fake_whatsapp
):
    fake_whatsapp.templates = HEADER_TEMPLATES
    _window_closed(page, make, "Chegou?")
    page.click(".template-btn")
    page.wait_css(".template-picker")
    disabled = [o.text for o in page.all("#tpl-choice option") if o.get_attribute("disabled")]
    assert disabled == [
        "new_collection · en_US · MARKETING",
        "discount · en_US · MARKETING",
        "track · en_US · UTILITY",
    ]
    header = page.css('.template-picker input[data-header-param="1"]')
    send = page.css(".template-picker .btn.primary")
    assert send.get_attribute("disabled") is not None  # the header's {{1}} is empty
    assert page.text(".tpl-preview-header") == "Order {{1}} shipped"
    header.send_keys("#1042")
    page.wait(lambda d: page.text(".tpl-preview-header") == "Order #1042 shipped")
    assert page.text(".tpl-preview") == "Hi Maria, it is on its way."
    page.screenshot("whatsapp-template-header-parameter")
    send.click()
    page.wait_text("#thread-log .msg.out", "Hi Maria, it is on its way.")
    run_worker(app)
    (sent,) = fake_whatsapp.sends()
    assert sent["template"]["components"][0] == {
        "type": "header",
        "parameters": [{"type": "text", "text": "#1042"}],
    }
    assert page.console_errors() == []
