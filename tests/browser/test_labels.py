"""Labels in a real Chromium: an admin adds them, agents label from the header (and the
"l" key), filter the list by them, label in bulk, and a teammate sees it all live."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

pytestmark = pytest.mark.browser


def _row_labels(page, text: str) -> list[str]:
    """The label chips of the list row whose text holds ``text``."""
    return page.js(
        "const row = [...document.querySelectorAll('.conv-item')]"
        ".find((li) => li.innerText.includes(arguments[0]));"
        "return row ? [...row.querySelectorAll('.conv-labels .label-chip')].map((c) => c.dataset.label) : null",
        text,
    )


def _header_labels(page) -> list[str]:
    return page.js(
        "return [...document.querySelectorAll('#thread-head .thread-labels > .label-chips > .label-chip')]"
        ".map((c) => c.dataset.label)"
    )


def _visible_rows(page) -> list[str]:
    return page.texts(".conv-row .snippet")


def test_admin_adds_labels_on_the_labels_page(page, make):
    admin = make.user("admin", name="Ines Duarte")
    page.login(admin.email, ready=False)
    page.get("/admin/")
    page.click(".admin-nav a", "Labels")
    page.wait_text("#labels-table", "No labels yet.")

    page.click("#add-label")
    form = page.wait_css("dialog.modal form")
    form.find_element("name", "name").send_keys("Refund")
    swatches = page.all("dialog.modal .label-swatch")
    swatches[3].click()  # the fourth colour of the palette
    page.wait_text("dialog.modal .label-preview", "Refund")
    page.screenshot("labels-new-label-dialog")
    page.click("dialog.modal .modal-foot .btn.primary")
    page.wait_text("#labels-table .label-chip", "Refund")

    page.click("#add-label")
    page.wait_css("dialog.modal form").find_element("name", "name").send_keys("VIP")
    page.click("dialog.modal .modal-foot .btn.primary")
    page.wait_text("#labels-table", "VIP")

    # a name already taken (in any case) is refused with the reason
    page.click("#add-label")
    page.wait_css("dialog.modal form").find_element("name", "name").send_keys("refund")
    page.click("dialog.modal .modal-foot .btn.primary")
    page.wait_text(".toast.error", "There is already a label named Refund.")
    assert all("409" in e for e in page.console_errors())  # the refusal, and nothing else

    # rename one: the table follows
    page.click("#labels-table tr[data-label='VIP'] .btn", "Edit")
    name = page.wait_css("dialog.modal form").find_element("name", "name")
    name.clear()
    name.send_keys("VIP customer")
    page.click("dialog.modal .modal-foot .btn.primary")
    page.wait_text("#labels-table", "VIP customer")

    from app.extensions import db
    from app.inbox import labels

    db.session.expire_all()
    saved = {lb.name: lb.color for lb in labels.all_labels(db.session)}
    assert saved == {"Refund": labels.PALETTE[3], "VIP customer": saved["VIP customer"]}
    page.screenshot("labels-admin-page")
    assert page.console_errors() == []


def test_label_filter_and_bulk_label_travel_live_to_a_teammate(page, teammate, make, client):
    admin = make.user("admin")
    agent = make.user("agent", name="Lucas Martin")
    mate = make.user("agent", name="Sofia Costa")
    inbox = make.inbox("messenger", members=[agent, mate])
    make.inbound(inbox, contact="psid-l1", contact_name="Amira Haddad", text="Where is my refund?")
    make.inbound(inbox, contact="psid-l2", contact_name="Jonas Berg", text="Size exchange please")
    make.inbound(inbox, contact="psid-l3", contact_name="Mei Tanaka", text="Do you ship to Japan?")
    h = make.headers(admin)
    for name, color in (("refund", "#c2410c"), ("VIP", "#7c3aed"), ("shipping", "#0e7490")):
        assert (
            client.post(
                "/api/v1/labels", json={"name": name, "color": color}, headers=h
            ).status_code
            == 201
        )

    teammate.login(mate.email)
    teammate.wait(lambda d: len(teammate.all(".conv-row")) == 3)
    page.login(agent.email)
    page.wait(lambda d: len(page.all(".conv-row")) == 3)

    # label a conversation from its header: the picker opens with "l", typing narrows it
    page.click(".conv-row", "Where is my refund?")
    page.wait_text("#thread-log .msg.in", "Where is my refund?")
    ActionChains(page.driver).send_keys("l").perform()
    search = page.wait_css("#thread-head .label-menu .menu-search")
    assert page.driver.switch_to.active_element == search
    search.send_keys("ref")
    page.wait(lambda d: page.texts("#thread-head .label-option") == ["refund"])
    search.send_keys(Keys.ENTER)
    page.wait(lambda d: _header_labels(page) == ["refund"])
    # the picker stays open for another label, its search emptied, the label ticked
    page.wait(
        lambda d: (
            page.attr("#thread-head .label-option[data-label='refund']", "aria-checked") == "true"
        )
    )
    assert page.driver.switch_to.active_element == search and search.get_attribute("value") == ""
    page.click("#thread-head .label-option", "VIP")
    page.wait(lambda d: _header_labels(page) == ["refund", "VIP"])
    page.screenshot("labels-header-picker")
    ActionChains(page.driver).send_keys(Keys.ESCAPE).perform()
    page.wait_text("#thread-log .activity", "Lucas Martin added label VIP")
    assert _row_labels(page, "Where is my refund?") == ["refund", "VIP"]

    # the teammate's list shows the chips without reloading
    teammate.wait(lambda d: _row_labels(teammate, "Where is my refund?") == ["refund", "VIP"])

    # take one off from its chip
    page.click("#thread-head .label-chip[data-label='VIP'] .label-x")
    page.wait(lambda d: _header_labels(page) == ["refund"])
    teammate.wait(lambda d: _row_labels(teammate, "Where is my refund?") == ["refund"])

    # bulk: select the two others, Label… -> shipping
    for text in ("Size exchange please", "Do you ship to Japan?"):
        page.js(
            "[...document.querySelectorAll('.conv-item')].find((li) => li.innerText.includes(arguments[0]))"
            ".querySelector('.conv-check').click()",
            text,
        )
    page.wait_text("#bulk-bar .bulk-count", "2 selected")
    page.click("#bulk-bar .bulk-label")
    page.click("#bulk-bar .label-option", "shipping")
    page.wait_text(".toast.success", "Label shipping added to 2 conversations")
    page.wait(lambda d: _row_labels(page, "Size exchange please") == ["shipping"])
    assert _row_labels(page, "Do you ship to Japan?") == ["shipping"]
    assert page.attr("#bulk-bar .label-option[data-label='shipping']", "aria-checked") == "true"
    page.screenshot("labels-bulk-bar")
    ActionChains(page.driver).send_keys(Keys.ESCAPE).perform()
    teammate.wait(lambda d: _row_labels(teammate, "Do you ship to Japan?") == ["shipping"])
    teammate.wait(lambda d: _row_labels(teammate, "Size exchange please") == ["shipping"])
    teammate.screenshot("labels-teammate-list-live")
    page.click("#bulk-bar .bulk-clear")

    # filter the list: one label, then two (all of them), then clear
    page.click("#label-filter")
    page.click("#label-filter-menu .label-option", "shipping")
    page.wait(
        lambda d: sorted(_visible_rows(page)) == ["Do you ship to Japan?", "Size exchange please"]
    )
    assert page.texts("#label-filter-chips .label-chip") == ["shipping"]
    assert page.text("#label-filter-chips").split() == ["Labels:", "shipping"]
    page.click("#label-filter-menu .label-option", "refund")
    page.wait(lambda d: len(page.all(".conv-row")) == 0)
    page.click("#label-filter-menu .label-option", "shipping")
    page.wait(lambda d: _visible_rows(page) == ["Where is my refund?"])
    ActionChains(page.driver).send_keys(Keys.ESCAPE).perform()
    page.screenshot("labels-list-filtered")

    # a label put on another conversation live joins the filtered list
    teammate.click(".conv-row", "Do you ship to Japan?")
    teammate.wait_css("#thread-head .label-add")
    teammate.click("#thread-head .label-add")
    teammate.click("#thread-head .label-option", "refund")
    page.wait(
        lambda d: sorted(_visible_rows(page)) == ["Do you ship to Japan?", "Where is my refund?"]
    )

    # the filter is kept across a reload, like the other filters, and its chip clears it
    page.driver.refresh()
    page.wait_ready()
    page.wait(lambda d: len(page.all(".conv-row")) == 2)
    page.click("#label-filter-chips .label-chip[data-label='refund'] .label-x")
    page.wait(lambda d: len(page.all(".conv-row")) == 3)
    assert page.console_errors() == []
    assert teammate.console_errors() == []


def test_a_renamed_label_is_renamed_on_open_screens(page, make, client):
    lead = make.user("lead")
    agent = make.user("agent", name="Lucas Martin")
    inbox = make.inbox("messenger", members=[agent])
    msg = make.inbound(inbox, contact="psid-r1", text="Broken on arrival")
    h = make.headers(lead)
    bug = client.post("/api/v1/labels", json={"name": "bug"}, headers=h).get_json()
    client.post(
        f"/api/v1/conversations/{msg.conversation_id}/labels", json={"labels": ["bug"]}, headers=h
    )
    page.login(agent.email)
    page.click(".conv-row", "Broken on arrival")
    page.wait_text("#thread-log .msg.in", "Broken on arrival")
    page.wait(lambda d: _header_labels(page) == ["bug"])
    page.wait(lambda d: page.text(".conv-row .unread-badge") is None)  # read: nothing in flight

    client.patch(
        f"/api/v1/labels/{bug['id']}", json={"name": "Defect", "color": "#b91c1c"}, headers=h
    )
    page.wait(lambda d: _header_labels(page) == ["Defect"])
    assert _row_labels(page, "Broken on arrival") == ["Defect"]
    client.delete(f"/api/v1/labels/{bug['id']}", headers=h)
    page.wait(lambda d: _header_labels(page) == [])
    assert _row_labels(page, "Broken on arrival") == []
    # agents have no way to invent a label: the picker says who adds them
    page.click("#thread-head .label-add")
    page.wait_text("#thread-head .label-menu", "Team leads and admins add them")
    assert not page.all("#thread-head .label-create")
    assert page.console_errors() == []


def test_labels_on_a_phone_in_arabic(page, make, client):
    lead = make.user("lead")
    agent = make.user("agent", name="Omar Benali", locale="ar")
    inbox = make.inbox("messenger", members=[agent])
    msg = make.inbound(inbox, contact="psid-ar", text="مرحبا، هل يمكنني إرجاع المنتج؟")
    make.inbound(inbox, contact="psid-ar2", text="متى يصل الطلب؟")
    h = make.headers(lead)
    client.post("/api/v1/labels", json={"name": "استرداد", "color": "#c2410c"}, headers=h)
    client.post("/api/v1/labels", json={"name": "VIP", "color": "#7c3aed"}, headers=h)
    client.post(
        f"/api/v1/conversations/{msg.conversation_id}/labels",
        json={"labels": ["استرداد", "vip"]},
        headers=h,
    )
    page.resize(390, 844)
    page.login(agent.email)
    assert _row_labels(page, "إرجاع المنتج") == ["VIP", "استرداد"]  # by name
    # the filter is within reach at phone width, and speaks Arabic
    page.click("#label-filter")
    page.wait_text("#label-filter-menu .menu-title", "عرض المحادثات")
    page.click("#label-filter-menu .label-option", "استرداد")
    page.wait(lambda d: len(page.all(".conv-row")) == 1)
    page.screenshot("labels-phone-arabic-filter")
    ActionChains(page.driver).send_keys(Keys.ESCAPE).perform()
    page.click(".conv-row", "إرجاع المنتج")
    page.wait_css("#composer-text")
    assert _header_labels(page) == ["VIP", "استرداد"]
    page.wait_text("#thread-log .activity", "أضاف Lead")
    page.screenshot("labels-phone-arabic-thread")
    assert page.console_errors() == []


def test_a_lead_creates_a_label_from_the_picker(page, make):
    lead = make.user("lead", name="Nadia Karimi")
    inbox = make.inbox("messenger")
    make.inbound(inbox, contact="psid-c1", text="The zipper broke after a week")
    page.login(lead.email)
    page.click(".conv-row", "zipper broke")
    page.wait_text("#thread-log .msg.in", "zipper broke")
    page.click("#thread-head .label-add")
    search = page.wait_css("#thread-head .label-menu .menu-search")
    search.send_keys("Warranty claim")
    page.wait_text("#thread-head .label-create", "Create label “Warranty claim”")
    search.send_keys(Keys.ENTER)
    page.wait(lambda d: _header_labels(page) == ["Warranty claim"])
    page.wait_text("#thread-log .activity", "Nadia Karimi added label Warranty claim")
    # the new label is in the list for everyone, and the filter offers it
    from app.extensions import db
    from app.inbox import labels

    db.session.expire_all()
    assert [lb.name for lb in labels.all_labels(db.session)] == ["Warranty claim"]
    ActionChains(page.driver).send_keys(Keys.ESCAPE).perform()
    page.click("#label-filter")
    page.wait_text("#label-filter-menu .label-option", "Warranty claim")
    assert page.console_errors() == []
