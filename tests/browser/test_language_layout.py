"""Any language, any keyboard, any script in names: the inbox switches, answers and fits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from selenium.webdriver.support.select import Select

from app.clock import now

pytestmark = pytest.mark.browser

# where the text of an element starts and ends, against the element's own box
TEXT_EDGES = """
const el = document.querySelector(arguments[0]);
const range = document.createRange();
range.selectNodeContents(el);
const text = range.getBoundingClientRect(), box = el.getBoundingClientRect();
return {start: text.left - box.left, end: box.right - text.right};
"""


# the status row as the agent sees it
ROW = """
const tabs = document.querySelector('.status-tabs'), more = document.querySelector('.status-more');
const shown = [...tabs.querySelectorAll('[data-status-tab]')];
const tops = shown.map((b) => b.getBoundingClientRect().top);
if (!more.hidden) tops.push(more.querySelector('button').getBoundingClientRect().top);
return {tops, height: document.querySelector('.status-row').offsetHeight, width: tabs.clientWidth,
        scroll: tabs.scrollWidth, shown: shown.map((b) => b.dataset.statusTab), more_shown: !more.hidden,
        more: [...more.querySelectorAll('[data-status-tab]')].map((b) => b.dataset.statusTab)};
"""


def _rename(inbox, name: str) -> None:
    from app.extensions import db

    inbox.name = name
    db.session.commit()


def _switch_language(page, code: str) -> None:
    page.click("#user-btn")
    Select(page.css("#lang-select")).select_by_value(code)
    page.wait(lambda d: page.js("return document.documentElement.lang") == code)
    page.wait_ready()


def test_language_switch_applies_at_once_and_keeps_the_open_conversation(page, make):
    agent = make.user("agent", name="Lena Park")
    inbox = make.inbox("messenger", members=[agent])
    make.inbound(inbox, contact="psid-l1", text="Can I change my delivery address?")
    page.login(agent.email)
    page.click(".conv-row", "delivery address")
    page.wait_css("#composer-text").send_keys("Yes, of course")
    assert page.text('[data-status-tab="open"]').split()[0] == "Open"

    _switch_language(page, "fr")
    assert page.text('[data-status-tab="open"]').split()[0] == "Ouvertes"
    assert page.wait_text("#thread-log .msg.in", "delivery address")
    assert "#c=" in page.driver.current_url
    # the reply being written is still there
    page.wait(
        lambda d: (
            page.js("return document.getElementById('composer-text').value") == "Yes, of course"
        )
    )
    assert page.js("return document.documentElement.dir") == "ltr"

    _switch_language(page, "ar")
    assert page.js("return document.documentElement.dir") == "rtl"
    assert page.text('[data-status-tab="open"]').split()[0] == "مفتوحة"
    assert page.wait_text("#thread-log .msg.in", "delivery address")
    page.screenshot("language-switch-ar-thread-open")


def _cursor(page):
    return page.js(
        "const li = document.querySelector('.conv-item.cursor'); return li && li.dataset.id"
    )


def _press(page, key: str, code: str, target: str = "document.body", shift: bool = False):
    page.js(
        f"{target}.dispatchEvent(new KeyboardEvent('keydown', "
        "{key: arguments[0], code: arguments[1], shiftKey: arguments[2], bubbles: true, cancelable: true}))",
        key,
        code,
        shift,
    )


def test_shortcuts_work_by_key_position_on_an_arabic_layout(page, make):
    agent = make.user("agent")
    inbox = make.inbox("messenger", members=[agent])
    for i in range(3):
        make.inbound(inbox, contact=f"psid-a{i}", text=f"Question {i}")
    page.login(agent.email)
    page.wait(lambda d: len(page.all(".conv-row")) == 3)
    ids = page.js("return [...document.querySelectorAll('.conv-item')].map((li) => li.dataset.id)")

    _press(page, "ت", "KeyJ")  # the Arabic layout's j key
    page.wait(lambda d: _cursor(page) == ids[0])
    _press(page, "ت", "KeyJ")
    page.wait(lambda d: _cursor(page) == ids[1])
    _press(page, "ن", "KeyK")
    page.wait(lambda d: _cursor(page) == ids[0])

    # typing Arabic in the search box is text, never a shortcut
    _press(page, "ت", "KeyJ", target="document.getElementById('search')")
    assert _cursor(page) == ids[0]

    # "/" (ظ on that layout) goes to the search box, "?" (shift) shows the help, with the
    # letters that layout types on each key (Chromium's keyboard map, here stubbed as Arabic)
    page.js(
        "Object.defineProperty(navigator, 'keyboard', {configurable: true, value: {getLayoutMap:"
        " async () => new Map([['KeyJ', 'ت'], ['KeyK', 'ن'], ['KeyR', 'ق'], ['KeyE', 'ث'], ['Slash', 'ظ']])}})"
    )
    page.js("document.activeElement.blur()")
    _press(page, "ظ", "Slash")
    page.wait(lambda d: d.switch_to.active_element.get_attribute("id") == "search")
    page.js("document.activeElement.blur()")
    _press(page, "؟", "Slash", shift=True)
    dialog = page.wait_css("dialog.modal")
    assert "Keyboard shortcuts" in dialog.text
    kbd = page.texts("dialog.modal kbd")
    assert "j" in kbd and "k" in kbd and "/" in kbd and "?" in kbd
    assert page.texts("dialog.modal kbd.layout-key")[:3] == ["ت", "ن", "ق"]
    page.screenshot("keyboard-shortcuts-arabic-layout")

    # a Latin layout still answers to the letter it types
    page.click("dialog.modal .modal-foot .btn.primary")
    _press(page, "j", "KeyJ")
    page.wait(lambda d: _cursor(page) == ids[1])


def test_right_to_left_names_stay_at_the_start_of_an_english_header(page, make):
    agent = make.user("agent")
    inbox = make.inbox("messenger", members=[agent])
    _rename(inbox, "متجر الرياض")
    make.inbound(inbox, contact="psid-r1", text="مرحبا", contact_name="سارة الأحمد")
    page.login(agent.email)
    page.click(".conv-row", "مرحبا")
    page.wait_text("#thread-head .thread-name", "سارة الأحمد")

    # the name keeps its own direction but sits where the English interface starts its lines
    assert page.attr("#thread-head .thread-name", "dir") == "auto"
    edges = page.js(TEXT_EDGES, "#thread-head .thread-name")
    assert edges["start"] < 2 < edges["end"], edges
    edges = page.js(TEXT_EDGES, ".conv-item .conv-name")
    assert edges["start"] < 2 < edges["end"], edges
    # the inbox's name is isolated from the line around it
    assert (
        page.js("return document.querySelector('#thread-head .thread-sub bdi').textContent")
        == "متجر الرياض"
    )
    page.screenshot("rtl-name-in-english-header")


def test_a_latin_name_stays_at_the_start_of_an_arabic_header(page, make):
    agent = make.user("agent", locale="ar")
    inbox = make.inbox("messenger", members=[agent])
    make.inbound(inbox, contact="psid-r2", text="Hello there", contact_name="Sarah Miller")
    page.login(agent.email)
    page.click(".conv-row", "Hello there")
    page.wait_text("#thread-head .thread-name", "Sarah Miller")
    edges = page.js(TEXT_EDGES, "#thread-head .thread-name")
    assert edges["end"] < 2 < edges["start"], edges


@pytest.mark.parametrize("lang", ["en", "ar", "fa", "fr", "pt"])
def test_status_tabs_and_chips_fit_at_1280(page, make, lang):
    agent = make.user("agent", locale=lang)
    first = make.inbox("messenger", members=[agent], settings={"response_due_hours": 1})
    _rename(first, "Facebook page of the shop")
    make.inbox("sms", members=[agent])
    make.inbound(
        first, contact="psid-f1", text="Where is my parcel?", at=now() - timedelta(days=18)
    )
    make.inbound(
        first, contact="psid-f2", text="Do you have it in blue?", at=now() - timedelta(hours=2)
    )
    page.login(agent.email)
    page.wait(lambda d: len(page.all(".conv-row")) == 2)

    # one row: the tabs shown and "More" side by side, nothing cut, every status reachable
    row = page.js(ROW)
    assert len(set(row["tops"])) == 1 and row["height"] < 45, row
    assert row["scroll"] <= row["width"] + 1, row
    assert len(row["shown"]) + len(row["more"]) == 6, row
    assert row["shown"][0] == "open" and (not row["more"] or row["more_shown"]), row
    if lang in ("ar", "fa"):  # short words: only the rarely used statuses wait under "More"
        assert set(row["more"]) <= {"inactive", "declined"}, row
    # every chip is shown whole: none is cut by the edge of its row
    cut = page.js(
        """
        const out = [];
        for (const chip of document.querySelectorAll('.conv-item .chip')) {
          const c = chip.getBoundingClientRect(), row = chip.closest('.chips').getBoundingClientRect();
          if (c.left < row.left - 0.5 || c.right > row.right + 0.5 || chip.scrollWidth > chip.clientWidth + 1) out.push(chip.innerText);
        }
        return out;
        """
    )
    assert not cut, cut
    assert page.js("return document.querySelectorAll('.conv-item .chip').length") >= 3
    page.screenshot(f"status-tabs-1280-{lang}")


def test_a_status_under_more_comes_onto_the_row_when_chosen(page, make):
    agent = make.user("agent", locale="fr")
    make.inbox("messenger", members=[agent])
    page.login(agent.email)
    row = page.js(ROW)
    assert row["more"], row  # French words are long: some statuses wait under "More"
    last = row["more"][-1]
    page.click("#status-more")
    page.click(f'#status-more-menu [data-status-tab="{last}"]')
    page.wait(lambda d: last in page.js(ROW)["shown"])
    row = page.js(ROW)
    assert page.attr(f'[data-status-tab="{last}"]', "aria-selected") == "true"
    assert len(set(row["tops"])) == 1 and row["scroll"] <= row["width"] + 1, row
    assert page.js("return document.getElementById('status-more-menu').hidden")
    page.screenshot("status-tabs-more-fr")
