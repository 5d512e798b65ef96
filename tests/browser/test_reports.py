"""The Reports page in a real Chromium, over conversations whose times are known to the minute."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from app.clock import now

pytestmark = pytest.mark.browser

PARIS = ZoneInfo("Europe/Paris")
#: Minutes each of nine Messenger customers waited for a first human reply (the tenth: never).
WAITS = [12, 3, 6, 9, 12, 12, 13, 14, 15]


def _at(dt: datetime):
    """Stop the clock at ``dt`` (aware) for what follows in the ``with`` block."""
    return time_machine.travel(dt, tick=False)


def _customers(make, inbox, agent, first, waits, count):
    """``count`` customers writing an hour apart from ``first``; the first ``len(waits)``
    get a human reply after that many minutes, the others none."""
    from app.inbox import replies
    from app.models import Conversation

    session = make.db.session
    for n in range(count):
        wrote = first + timedelta(hours=n)
        with _at(wrote):
            msg = make.inbound(
                inbox, contact=f"psid-{inbox.id}-{n}", text=f"Question {n}", at=wrote
            )
        if n < len(waits):
            with _at(wrote + timedelta(minutes=waits[n])):
                conv = session.get(Conversation, msg.conversation_id)
                replies.post_message(session, conv, agent, "Thanks, we are on it.")
                session.commit()


def _seed(app, make):
    """A Messenger Page answering 9 of 10 customers within 15 minutes, one missed window,
    and a Google inbox answering in 5 minutes, two days ago in Paris."""
    from app.inbox import replies
    from app.models import Conversation
    from app.runtime.jobs import timers

    session = make.db.session
    lead = make.user("lead", name="Nadia Karimi")
    agent = make.user("agent", name="Lucas Martin")
    page_inbox = make.inbox("messenger", members=[agent])
    google = make.inbox("gbm", members=[agent])
    page_inbox.name, google.name = "Acme Page", "Acme on Google"
    session.commit()
    day = (now().astimezone(PARIS) - timedelta(days=2)).date()
    ten = datetime(day.year, day.month, day.day, 10, 0, tzinfo=PARIS)

    _customers(make, page_inbox, agent, ten, WAITS, 10)
    with _at(ten + timedelta(hours=1)):
        gmsg = make.inbound(google, contact="conversations/g-r1", text="Open on Sunday?", at=now())
    with _at(ten + timedelta(hours=1, minutes=5)):
        replies.post_message(session, session.get(Conversation, gmsg.conversation_id), agent, "Yes")
        session.commit()
    # the tenth customer wrote at 19:00 and nobody answered: the 24-hour window closes
    closes = ten + timedelta(hours=9, days=1)
    with _at(closes + timedelta(seconds=30)), app.app_context():
        timers.watch_windows(closes - timedelta(hours=1))
    session.expire_all()
    return lead, agent, day


def _open(page, day, lang_path=""):
    span = (
        f"from={(day - timedelta(days=1)).isoformat()}&to={(day + timedelta(days=1)).isoformat()}"
    )
    page.get(f"/reports?{span}&tz=Europe/Paris{lang_path}")
    page.wait(lambda d: page.js("return document.body.dataset.report || ''").startswith("?from="))
    page.wait_css("#report-stats .stat")


def test_reports_show_response_times_missed_windows_and_the_badge(page, make, app):
    lead, agent, day = _seed(app, make)
    page.login(lead.email, ready=False)
    page.get("/")
    assert page.text('.topnav a[href="/reports"]') == "Reports"
    _open(page, day)

    first = page.text('[data-metric="first-response"]')
    # the median of the ten waits (Google's 5 minutes too), as the 10:00 -> 10:12 one
    assert "\n12m\n" in first
    assert "10 answered" in first
    assert page.text('[data-metric="missed"] .stat-value') == "1"
    assert page.text('[data-metric="new"] .stat-value') == "11"
    # the previous period had nothing: said in words, not by a colour
    assert "Nothing to compare with" in page.text('[data-metric="new"] .stat-change')

    agent_row = page.text(f'#report-agents tr[data-user="{agent.id}"]')
    assert "Lucas Martin" in agent_row and "10" in agent_row  # ten replies
    assert (
        page.js("return [...document.querySelectorAll('#report-agents th[scope=row]')].length") >= 1
    )

    badges = page.texts(".badge-row")
    meta = next(b for b in badges if "Acme Page" in b)
    assert "Very responsive: yes, 90% within 15m" in meta
    assert "9 of 10 customers answered in the last 7 days" in meta
    google = next(b for b in badges if "Acme on Google" in b)
    assert "Estimated response time: 5m" in google

    # the charts have accessible names, and their figures are readable as tables
    heat = page.css("#chart-heat svg")
    labelled = page.js(
        "const s = arguments[0]; return s.getAttribute('role') + ' ' + "
        "s.getAttribute('aria-labelledby').split(' ').map((i) => document.getElementById(i)"
        ".textContent).join(' | ')",
        heat,
    )
    assert labelled.startswith("img When customers write | New conversations by weekday and hour")
    weekday = datetime(day.year, day.month, day.day).strftime("%a")
    heat_rows = page.js(
        "return [...document.querySelectorAll('#chart-heat details tbody tr')]"
        ".map((r) => [...r.cells].map((c) => c.textContent))"
    )
    row = next(r for r in heat_rows if r[0] == weekday)
    assert row[11] == "1" and row[20] == "1"  # 10:00 and 19:00 in Paris (column 0: the day)
    dist = page.js(
        "return [...document.querySelectorAll('#chart-dist details tbody tr')]"
        ".map((r) => [...r.cells].map((c) => c.textContent))"
    )
    # up to 5 minutes: 3 and Google's 5; 5 to 15 minutes: the other eight; nothing longer
    assert [r[1] for r in dist] == ["2", "8", "0", "0", "0", "0"]
    # the CSV links carry the filters
    href = page.attr("#csv-agents", "href")
    assert (
        "format=csv" in href and "tz=Europe%2FParis" in href and f"to={day + timedelta(1)}" in href
    )
    page.screenshot("reports-overview")
    page.js("document.getElementById('badges-title').scrollIntoView()")
    page.screenshot("reports-badges")

    # a filter changes the URL and the figures: the Google inbox alone
    page.js(
        "const s = document.querySelector('select[name=channel]'); s.value = 'gbm';"
        "s.dispatchEvent(new Event('change', {bubbles: true}))"
    )
    page.wait(lambda d: "channel=gbm" in d.current_url)
    page.wait(lambda d: page.text('[data-metric="new"] .stat-value') == "1")
    assert "\n5m\n" in page.text('[data-metric="first-response"]')
    assert [b for b in page.texts(".badge-row") if "Acme Page" in b] == []
    assert page.console_errors() == []


def test_reports_in_arabic_run_right_to_left(page, make, app):
    lead, _agent, day = _seed(app, make)
    lead.locale = "ar"
    make.db.session.commit()
    page.login(lead.email, ready=False)
    _open(page, day, "&lang=ar")
    assert page.js("return document.documentElement.dir") == "rtl"
    assert page.text("h1") == "التقارير"
    assert (
        page.js("return document.querySelector('#chart-volume svg').getAttribute('direction')")
        == "rtl"
    )
    # time runs from right to left: the first day's point is to the right of the last one
    xs = page.js(
        "return [...document.querySelectorAll('#chart-volume .s-new circle')]"
        ".map((c) => +c.getAttribute('cx'))"
    )
    assert xs[0] > xs[-1]
    page.screenshot("reports-ar")
    assert page.console_errors() == []


def test_a_page_answering_eight_of_ten_is_not_very_responsive(page, make):
    """Opened without filters: the last 30 days in the browser's time zone."""
    lead, agent = make.user("lead"), make.user("agent")
    inbox = make.inbox("messenger", members=[agent])
    first = (now() - timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    _customers(make, inbox, agent, first, [5] * 8, 10)
    page.login(lead.email, ready=False)
    page.get("/reports")
    page.wait_css(".badge-row")
    today = page.js("return new Date().toLocaleDateString('en-CA')")
    assert page.js("return document.querySelector('input[name=to]').value") == today
    start = (datetime.fromisoformat(today) - timedelta(days=29)).date().isoformat()
    assert page.js("return document.querySelector('input[name=from]').value") == start
    row = page.css(f'.badge-row[data-inbox="{inbox.id}"]')
    assert "Very responsive: not yet, 80% within 15m (needs 90%)" in row.text
    assert "8 of 10 customers answered" in row.text
    assert "bad" in page.attr(f'.badge-row[data-inbox="{inbox.id}"] .badge-verdict', "class")
    assert page.console_errors() == []


def test_reports_follow_what_happens_today(page, make):
    """A period that includes today updates by itself as customers write (no reload)."""
    from tests.browser.conftest import post_messenger

    lead, agent = make.user("lead", name="Nadia Karimi"), make.user("agent")
    inbox = make.inbox("messenger", members=[agent])
    page.login(lead.email, ready=False)
    page.get("/reports")
    page.wait_css("#report-stats .stat")
    page.wait(lambda d: page.js("return document.body.dataset.live") == "on")
    assert page.text('[data-metric="new"] .stat-value') == "0"
    post_messenger(page.url, inbox, "psid-today", "Is the shop open?", "m_report_live")
    page.wait(lambda d: page.text('[data-metric="new"] .stat-value') == "1", timeout=25)
    assert page.console_errors() == []
