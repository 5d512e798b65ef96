"""The contact panel in a real Chromium: editing a contact, and merging two contacts while a
teammate's browser follows live."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Page

pytestmark = pytest.mark.browser


def _open_panel(page: Page, row_text: str) -> None:
    page.click(".conv-row", row_text)
    page.wait_css("#composer-text")
    page.click(".panel-toggle")
    page.wait_css("#contact-pane .contact-details")


def test_edit_a_contact_from_the_panel(page, make):
    agent = make.user("agent", name="Lucas Martin")
    sms = make.inbox("sms", members=[agent])
    make.inbound(sms, contact="+5511987654321", text="Meu pedido chegou quebrado")

    page.login(agent.email)
    _open_panel(page, "Meu pedido chegou quebrado")
    assert "+5511987654321" in page.text("#contact-pane .ident-list")
    page.click("#contact-pane .edit-contact")
    form = page.wait_css("#contact-pane form.contact-form")
    form.find_element("name", "name").send_keys("Ana Souza")
    form.find_element("name", "email").send_keys("Ana.Souza@Example.com")
    form.find_element("name", "phone").send_keys("12345")
    form.find_element("name", "notes").send_keys("Sends photos of damaged parcels.")
    page.click("#contact-pane .attr-add")
    rows = page.all("#contact-pane .attr-row")
    rows[-1].find_element("css selector", ".attr-key").send_keys("plan")
    rows[-1].find_element("css selector", ".attr-value").send_keys("Pro")
    page.click("#contact-pane form.contact-form button[type=submit]")

    # the wrong number is named next to its field, nothing is lost
    page.wait_text('#contact-pane .field[data-field="phone"] .field-error', "country code")
    page.screenshot("contact-edit-invalid-phone")
    phone = page.css('#contact-pane input[name="phone"]')
    phone.clear()
    phone.send_keys("+55 11 98765-4321")
    page.click("#contact-pane form.contact-form button[type=submit]")

    page.wait_text("#contact-pane .contact-details", "ana.souza@example.com")
    details = page.text("#contact-pane .contact-details")
    assert "+5511987654321" in details
    assert "plan" in details and "Pro" in details
    assert "Sends photos of damaged parcels." in details
    page.wait_text("#contact-pane .contact-card h2", "Ana Souza")
    # the list and the thread header call the customer by the new name
    page.wait_text(".conv-row .conv-name", "Ana Souza")
    page.wait_text("#thread-head .thread-name", "Ana Souza")
    page.screenshot("contact-edited")
    # the refused save is the only failed request
    assert [e for e in page.console_errors() if "status of 422" not in e] == []


def test_merge_two_contacts_from_the_panel_and_a_teammate_sees_it_live(page, teammate, make):
    agent = make.user("agent", name="Lucas Martin")
    mate = make.user("agent", name="Sofia Costa")
    messenger = make.inbox("messenger", members=[agent, mate])
    mail = make.inbox("email", members=[agent, mate])
    first = make.inbound(
        messenger, contact="psid-ana", text="Where is my parcel?", contact_name="Ana Souza"
    )
    second = make.inbound(
        mail, contact="ana.souza@example.com", text="Tracking number please", subject="Parcel"
    )

    # the teammate is looking at the email conversation and its contact
    teammate.login(mate.email)
    _open_panel(teammate, "Tracking number please")
    teammate.wait_text("#contact-pane .contact-card h2", "ana.souza@example.com")

    page.login(agent.email)
    _open_panel(page, "Where is my parcel?")
    page.click("#contact-pane .merge-with")
    search = page.wait_css("dialog .merge-search")
    search.send_keys("ana.souza@")
    page.click("dialog .merge-pick", "ana.souza@example.com")
    preview = page.wait_text("dialog .merge-preview", "Tracking number please")
    assert "ana.souza@example.com" in preview.text
    page.screenshot("contact-merge-preview")
    page.click("dialog .modal-foot .btn.primary", "Merge")

    # both conversations and both identities under the survivor
    page.wait(lambda d: len(page.all("#contact-pane .other-convs li")) == 2)
    idents = page.text("#contact-pane .ident-list")
    assert "psid-ana" in idents and "ana.souza@example.com" in idents
    assert "null" not in page.text("#contact-pane")
    page.screenshot("contact-merged")

    # the teammate's browser follows without a reload: the email conversation is Ana Souza's
    teammate.js("window.__sameDocument = true")
    teammate.wait_text("#contact-pane .contact-card h2", "Ana Souza")
    teammate.wait(lambda d: len(teammate.all("#contact-pane .other-convs li")) == 2)
    rows = teammate.texts(".conv-row")
    assert all("ana.souza@example.com" not in r for r in rows)
    assert sum("Ana Souza" in r for r in rows) == 2
    teammate.wait_text("#thread-log .activity", "Lucas Martin merged the contact")
    assert teammate.js("return window.__sameDocument") is True
    teammate.screenshot("contact-merged-teammate")
    assert {first.conversation_id, second.conversation_id}
    assert page.console_errors() == [] and teammate.console_errors() == []


def test_start_an_email_conversation_then_erase_the_contact(page, make):
    admin = make.user("admin", name="Rita Admin")
    messenger = make.inbox("messenger", members=[admin])
    mail = make.inbox("email", members=[admin])
    make.inbound(messenger, contact="psid-joao", text="Olá, preciso da fatura", contact_name="João")

    page.login(admin.email)
    _open_panel(page, "preciso da fatura")
    page.click("#contact-pane .edit-contact")
    form = page.wait_css("#contact-pane form.contact-form")
    form.find_element("name", "email").send_keys("joao@example.com")
    page.click("#contact-pane form.contact-form button[type=submit]")
    page.wait_text("#contact-pane .contact-details", "joao@example.com")

    # write first by email, from the panel
    page.click("#contact-pane .new-conv")
    select = page.wait_css("dialog .reach-select")
    assert mail.name in select.text and messenger.name not in select.text
    page.css("dialog .reach-subject").send_keys("Sua fatura")
    page.css("dialog .reach-body").send_keys("Segue a fatura em anexo.")
    page.screenshot("contact-new-conversation")
    page.click("dialog .modal-foot .btn.primary", "Send")
    page.wait_text("#thread-log .msg", "Segue a fatura em anexo.")
    page.wait_text("#thread-head", mail.name)
    page.wait(lambda d: len(page.all("#contact-pane .other-convs li")) == 2)

    # erase, confirmed by typing the word
    page.click("#contact-pane .erase-contact")
    page.wait_css("dialog .erase-confirm").send_keys("ERASE")
    page.click("dialog .modal-foot .btn.danger", "Erase")
    page.wait_text("#contact-pane .contact-card h2", "Erased contact")
    page.wait(lambda d: "psid-joao" not in (page.text("#contact-pane") or ""))
    page.wait(lambda d: not page.all(".conv-row"))  # both conversations closed, out of Open
    page.screenshot("contact-erased")
    assert [e for e in page.console_errors() if "favicon" not in e] == []
