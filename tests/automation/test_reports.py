"""Reports from facts recorded as things happen: times known to the second (time_machine)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.inbox import conversations, report_cache
from app.models import Conversation, ReportWait
from app.runtime.jobs import timers
from tests.automation.helpers import conv_of, reply

PARIS_HOURS = {
    "timezone": "Europe/Paris",
    "days": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
}


def _get(client, make, user, path, **args):
    resp = client.get(path, query_string=args, headers=make.headers(user))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp


def _report(client, make, user, name: str, start: str, end: str | None = None, tz="UTC"):
    """One report's JSON over the local dates ``start`` to ``end`` (default: one day)."""
    args = {"from": start, "to": end or start, "tz": tz}
    return _get(client, make, user, f"/api/v1/reports/{name}", **args).get_json()


def test_first_response_twelve_minutes_in_the_inbox_time_zone(client, make, session, clock):
    """Customer at 10:00 Paris, first human reply at 10:12: 12 minutes, on that local day."""
    lead, agent = make.user("lead", name="Lea"), make.user(name="Ana")
    inbox = make.inbox("messenger", members=[agent], settings={"business_hours": PARIS_HOURS})
    clock.to(datetime(2026, 6, 10, 8, 0, tzinfo=UTC))  # 10:00 in Paris (summer time)
    conv = conv_of(session, make.inbound(inbox, contact="9001", text="Where is my parcel?"))
    clock.shift(minutes=12)
    reply(session, conv, agent)
    clock.shift(minutes=30)
    assert conversations.set_status(session, conv, "closed", agent)
    session.commit()

    report = _report(client, make, lead, "overview", "2026-06-10", tz="Europe/Paris")
    assert report["first_response_s"] == {"median": 720, "p90": 720, "count": 1}
    assert report["resolution_s"]["median"] == 42 * 60
    assert report["conversations"] == {"new": 1, "closed": 1, "reopened": 0}
    assert report["messages"] == {"inbound": 1, "outbound": 1}
    assert report["by_day"] == [
        {
            "date": "2026-06-10",
            "new": 1,
            "closed": 1,
            "reopened": 0,
            "inbound": 1,
            "outbound": 1,
            "first_response_median_s": 720,
        }
    ]
    assert report["by_hour"][2][10] == 1  # Wednesday, 10:00 local
    assert sum(map(sum, report["by_hour"])) == 1
    by = report["breakdown"]["first_response_s"]
    assert by["channel"] == [{"channel": "messenger", "median": 720, "p90": 720, "count": 1}]
    assert [(r["user"]["name"], r["median"]) for r in by["agent"]] == [("Ana", 720)]
    agents = _report(client, make, lead, "agents", "2026-06-10", tz="Europe/Paris")["agents"]
    ana = next(a for a in agents if a["user"]["id"] == agent.id)
    assert (ana["assigned"], ana["closed"], ana["replies"]) == (1, 1, 1)
    assert ana["first_response_s"]["median"] == 720
    # the day before in Paris has nothing
    empty = _report(client, make, lead, "overview", "2026-06-09", tz="Europe/Paris")
    assert empty["first_response_s"]["count"] == 0
    assert empty["conversations"]["new"] == 0


def test_time_outside_business_hours_does_not_count(client, make, session, clock):
    """Friday 17:50 Paris to Monday 09:05: 10 minutes on Friday plus 5 on Monday."""
    lead, agent = make.user("lead"), make.user()
    inbox = make.inbox("sms", members=[agent], settings={"business_hours": PARIS_HOURS})
    clock.to(datetime(2026, 3, 27, 16, 50, tzinfo=UTC))  # Friday 17:50 (winter time, +1)
    conv = conv_of(session, make.inbound(inbox, contact="+33612345678"))
    # the clocks go forward on Sunday 29 March: Monday 09:05 Paris is 07:05 UTC
    clock.to(datetime(2026, 3, 30, 7, 5, tzinfo=UTC))
    reply(session, conv, agent)
    report = _report(client, make, lead, "overview", "2026-03-27", "2026-03-30", tz="Europe/Paris")
    assert report["first_response_s"]["median"] == 15 * 60
    days = {d["date"]: d for d in report["by_day"]}
    assert days["2026-03-27"]["new"] == 1 and days["2026-03-30"]["first_response_median_s"] == 900
    assert days["2026-03-29"]["new"] == 0


def test_days_follow_the_time_zone_across_a_daylight_saving_change(client, make, session, clock):
    """23:30 local on the night the clocks go back is still that local day, in New York too."""
    lead, agent = make.user("lead"), make.user()
    inbox = make.inbox("sms", members=[agent])
    # 1 November 2026, New York falls back at 02:00; 23:30 local (EST, -5) is 04:30 UTC on the 2nd
    clock.to(datetime(2026, 11, 2, 4, 30, tzinfo=UTC))
    conv = conv_of(session, make.inbound(inbox, contact="+14155550100"))
    clock.shift(minutes=3)
    reply(session, conv, agent)
    report = _report(
        client, make, lead, "overview", "2026-10-31", "2026-11-02", tz="America/New_York"
    )
    days = {d["date"]: d for d in report["by_day"]}
    assert days["2026-11-01"]["new"] == 1 and days["2026-11-02"]["new"] == 0
    assert days["2026-11-01"]["first_response_median_s"] == 180
    assert report["by_hour"][6][23] == 1  # Sunday, 23:00 local
    utc = _report(client, make, lead, "overview", "2026-11-02")
    assert utc["conversations"]["new"] == 1


def test_a_period_starting_on_the_day_the_clocks_go_back_counts_its_first_hours(
    client, make, session, clock
):
    """00:30 in New York on the day the clocks go back (04:30 UTC, before the change at
    06:00 UTC) belongs to that day, when the report starts on it."""
    lead = make.user("lead")
    inbox = make.inbox("sms")
    clock.to(datetime(2026, 11, 1, 4, 30, tzinfo=UTC))
    make.inbound(inbox, contact="+14155550100")
    report = _report(client, make, lead, "overview", "2026-11-01", tz="America/New_York")
    assert report["conversations"]["new"] == 1
    assert report["by_day"][0]["new"] == 1 and report["messages"]["inbound"] == 1
    assert report["by_hour"][6][0] == 1  # Sunday, midnight to one


def test_a_window_closed_unanswered_is_one_missed_window(app, client, make, session, clock):
    lead, agent = make.user("lead"), make.user()
    inbox = make.inbox("messenger", members=[agent])
    start = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    clock.to(start)
    conv_of(session, make.inbound(inbox, contact="9003"))
    answered = conv_of(session, make.inbound(inbox, contact="9004"))
    clock.shift(minutes=5)
    reply(session, answered, agent)
    clock.to(start + timedelta(hours=24, seconds=30))
    with app.app_context():
        timers.watch_windows(start + timedelta(hours=23))
        timers.watch_windows(start + timedelta(hours=23))  # run twice: counted once
        timers.watch_response_due(start + timedelta(hours=23))
    report = _report(client, make, lead, "overview", "2026-05-05")
    assert report["reply_windows_missed"] == 1  # counted on the day the window closed
    assert report["response_breaches"] == 1  # the 24-hour target passed too
    before = _report(client, make, lead, "overview", "2026-05-04")
    assert before["reply_windows_missed"] == 0 and before["response_met"] == 1
    assert before["response_met_rate"] == 1.0


def _page(make, session, clock, answered_in_time: int, inbox=None):
    agent = make.user()
    inbox = inbox or make.inbox("messenger", members=[agent])
    start = datetime(2026, 7, 6, 9, 0, tzinfo=UTC)
    convs = []
    for n in range(10):
        clock.to(start + timedelta(hours=n))
        convs.append(conv_of(session, make.inbound(inbox, contact=f"77{n:02d}")))
    for n, conv in enumerate(convs[:answered_in_time]):
        clock.to(start + timedelta(hours=n, minutes=10))
        reply(session, conv, agent)
    clock.to(start + timedelta(days=1))
    return inbox


def _badge(client, make, lead, inbox):
    rows = _get(client, make, lead, "/api/v1/reports/badges").get_json()["inboxes"]
    return next(r for r in rows if r["inbox"]["id"] == inbox.id)


def test_a_page_answering_nine_of_ten_within_fifteen_minutes_is_very_responsive(
    client, make, session, clock
):
    lead = make.user("lead")
    badge = _badge(client, make, lead, _page(make, session, clock, 9))
    assert badge["very_responsive"] is True
    assert (badge["customers"], badge["answered"], badge["response_rate"]) == (10, 9, 0.9)
    assert badge["median_response_s"] == 600 and badge["within_rate"] == 0.9


def test_a_page_answering_eight_of_ten_is_not(client, make, session, clock):
    lead = make.user("lead")
    badge = _badge(client, make, lead, _page(make, session, clock, 8))
    assert badge["very_responsive"] is False
    assert badge["response_rate"] == 0.8


def test_google_estimate_counts_business_hours_only_weighted_by_recency(
    client, make, session, clock
):
    lead, agent = make.user("lead"), make.user()
    inbox = make.inbox("gbm", members=[agent], settings={"business_hours": PARIS_HOURS})
    clock.to(datetime(2026, 3, 27, 16, 50, tzinfo=UTC))  # Friday 17:50, answered Monday 09:05
    conv = conv_of(session, make.inbound(inbox, contact="conversations/g1"))
    clock.to(datetime(2026, 3, 30, 7, 5, tzinfo=UTC))
    reply(session, conv, agent)
    badge = _badge(client, make, lead, inbox)
    assert badge["kind"] == "estimate" and badge["estimated_response_s"] == 900
    assert "very_responsive" not in badge
    sms = make.inbox("sms")
    rows = _get(client, make, lead, "/api/v1/reports/badges").get_json()["inboxes"]
    assert sms.id not in [r["inbox"]["id"] for r in rows]  # SMS has no platform badge


def test_agents_are_refused_and_csv_opens_in_a_spreadsheet(client, make, session, clock):
    lead, agent = make.user("lead", name="Léa"), make.user(name="Ana")
    inbox = make.inbox("messenger", members=[agent])
    clock.to(datetime(2026, 6, 10, 8, 0, tzinfo=UTC))
    conv = conv_of(session, make.inbound(inbox, contact="9009"))
    clock.shift(minutes=12)
    reply(session, conv, agent)
    for path in ("overview", "agents", "badges"):
        assert client.get(f"/api/v1/reports/{path}", headers=make.headers(agent)).status_code == 403
    args = {"from": "2026-06-09", "to": "2026-06-10", "tz": "UTC", "format": "csv"}
    resp = _get(client, make, lead, "/api/v1/reports/overview", **args)
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in resp.headers["Content-Disposition"]
    raw = resp.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][0] == "date" and [r[0] for r in rows[1:]] == ["2026-06-09", "2026-06-10"]
    assert rows[2][rows[0].index("first_response_median_s")] == "720"
    agents = list(
        csv.reader(
            io.StringIO(
                _get(client, make, lead, "/api/v1/reports/agents", **args)
                .get_data()
                .decode("utf-8-sig")
            )
        )
    )
    assert [r for r in agents if r[1] == "Ana"][0][1:2] + [
        agents[[r[1] for r in agents].index("Ana")][5]
    ] == ["Ana", "720"]
    bad = client.get(
        "/api/v1/reports/overview", query_string={"tz": "Mars/Olympus"}, headers=make.headers(lead)
    )
    assert bad.status_code == 422


def test_reopened_by_the_customer_counts_and_resolution_runs_from_the_reopening(
    client, make, session, clock
):
    lead, agent = make.user("lead"), make.user()
    inbox = make.inbox("messenger", members=[agent])
    clock.to(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    conv = conv_of(session, make.inbound(inbox, contact="9100"))
    clock.shift(minutes=4)
    reply(session, conv, agent)
    clock.shift(minutes=6)
    assert conversations.set_status(session, conv, "closed", agent)
    session.commit()
    clock.to(datetime(2026, 6, 2, 9, 0, tzinfo=UTC))  # writes again: the conversation reopens
    again = conv_of(session, make.inbound(inbox, contact="9100", text="One more thing"))
    assert again.id == conv.id and again.status == "open"
    clock.shift(minutes=20)
    reply(session, again, agent)  # a later reply: not a first response
    clock.shift(minutes=10)
    assert conversations.set_status(session, again, "closed", agent)
    session.commit()
    report = _report(client, make, lead, "overview", "2026-06-01", "2026-06-02")
    assert report["conversations"] == {"new": 1, "closed": 2, "reopened": 1}
    assert report["first_response_s"] == {"median": 240, "p90": 240, "count": 1}
    assert report["resolution_s"]["count"] == 2
    assert sorted(d["closed"] for d in report["by_day"]) == [1, 1]
    assert report["resolution_s"]["p90"] == 30 * 60  # from the reopening, not the start
    assert report["response_met"] == 2 and report["response_met_rate"] == 1.0
    week = _report(client, make, lead, "overview", "2026-06-02")
    assert week["previous"]["conversations"]["new"] == 1 and week["conversations"]["new"] == 0
    assert week["change"]["closed"] == 0.0


def test_the_previous_period_counts_its_local_days_exactly(client, make, session, clock):
    """New York, 3 days from March 6 (the report's previous period, its clocks going forward
    on March 8): a customer at 23:30 the evening before and at 00:30 the morning after are
    outside it, those at 00:30 on its first day, in the middle of it and at 23:30 on its
    last day (summer time by then) are inside."""
    lead = make.user("lead")
    inbox = make.inbox("messenger")
    new_york = ZoneInfo("America/New_York")
    times = {
        "before": datetime(2026, 3, 5, 23, 30),
        "first": datetime(2026, 3, 6, 0, 30),
        "middle": datetime(2026, 3, 7, 12, 0),
        "last": datetime(2026, 3, 8, 23, 30),
        "after": datetime(2026, 3, 9, 0, 30),
    }
    for n, local in enumerate(times.values()):
        clock.to(local.replace(tzinfo=new_york).astimezone(UTC))
        make.inbound(inbox, contact=f"93{n:02d}", text="Hello")
    session.commit()
    report = _report(client, make, lead, "overview", "2026-03-09", "2026-03-11", "America/New_York")
    assert report["previous"]["from"] == "2026-03-06" and report["previous"]["to"] == "2026-03-08"
    assert report["previous"]["conversations"]["new"] == 3
    assert report["previous"]["messages"]["inbound"] == 3
    assert report["conversations"]["new"] == 1 and report["messages"]["inbound"] == 1
    assert report["change"]["new"] == round((1 - 3) / 3, 4)


def test_a_reply_held_by_a_paused_inbox_answers_when_it_goes_out(
    app, client, make, session, clock, graph
):
    """Written at 10:05 while the Page needs reconnecting, out at 10:40: 40 minutes."""
    from app.inbox import credentials
    from tests.automation.helpers import deliver

    lead, agent = make.user("lead"), make.user(name="Ana")
    inbox = make.inbox("messenger", members=[agent])
    clock.to(datetime(2026, 6, 10, 10, 0, tzinfo=UTC))
    conv = conv_of(session, make.inbound(inbox, contact="9010", text="Hello?"))
    inbox.needs_reconnect = True
    session.commit()
    clock.shift(minutes=5)
    reply(session, conv, agent, "On it.")
    held = _report(client, make, lead, "overview", "2026-06-10")
    assert held["first_response_s"]["count"] == 0  # the customer has no answer yet
    assert held["response_met"] == 0
    clock.shift(minutes=35)
    credentials.reconnect(session, inbox, {"page_token": "EAAG-fresh"})
    session.commit()
    deliver(app)
    assert graph.texts() == ["On it."]
    sent = _report(client, make, lead, "overview", "2026-06-10")
    assert sent["first_response_s"] == {"median": 40 * 60, "p90": 40 * 60, "count": 1}
    assert sent["response_met"] == 1  # answered once, when it went out
    args = {"from": "2026-06-10", "to": "2026-06-10", "tz": "UTC", "agent": agent.id}
    own = _get(client, make, lead, "/api/v1/reports/overview", **args).get_json()
    assert own["response_met"] == 1 and own["response_met_rate"] == 1.0


def test_ended_days_follow_history_deleted_or_recorded_late(
    client, make, session, clock, monkeypatch
):
    """Days that have ended are read once and kept between reports, checked against the
    database at most once a minute (here at every report): a conversation deleted since
    (its facts go with it), answers that lost their agent and an answer recorded late
    for such a day all show."""
    monkeypatch.setattr(report_cache.Kept, "CHECK_SECONDS", 0.0)
    lead, ana, ben = make.user("lead"), make.user(name="Ana"), make.user(name="Ben")
    inbox = make.inbox("sms", members=[ana, ben])
    convs = []
    for n, (agent, minutes) in enumerate(((ana, 10), (ana, 20), (ben, 30))):
        clock.to(datetime(2026, 6, 10, 9 + n, 0, tzinfo=UTC))
        conv = conv_of(session, make.inbound(inbox, contact=f"+3361234567{n}"))
        clock.shift(minutes=minutes)
        reply(session, conv, agent)
        convs.append(conv)
    session.commit()
    clock.to(datetime(2026, 6, 12, 8, 0, tzinfo=UTC))  # the 10th has ended

    def firsts():
        report = _report(client, make, lead, "overview", "2026-06-10")
        rows = report["breakdown"]["first_response_s"]["agent"]
        new = (report["conversations"]["new"], sum(map(sum, report["by_hour"])))
        agents = {(r["user"] or {}).get("name"): r["count"] for r in rows}
        return report["first_response_s"], agents, new

    assert firsts() == ({"median": 1200, "p90": 1800, "count": 3}, {"Ana": 2, "Ben": 1}, (3, 3))
    session.execute(sa.delete(Conversation).where(Conversation.id == convs[1].id))
    session.commit()
    # the counts outlive the conversation, its times go with it
    assert firsts() == ({"median": 1200, "p90": 1800, "count": 2}, {"Ana": 1, "Ben": 1}, (3, 3))
    # what deleting Ben's account does to his answers (ON DELETE SET NULL)
    session.execute(
        sa.update(ReportWait).where(ReportWait.agent_id == ben.id).values(agent_id=None)
    )
    session.commit()
    assert firsts()[1] == {"Ana": 1, None: 1}
    clock.to(datetime(2026, 6, 10, 15, 0, tzinfo=UTC))  # recorded late, as a seed would
    conv = conv_of(session, make.inbound(inbox, contact="+33612345679"))
    clock.shift(minutes=5)
    reply(session, conv, ana)
    session.commit()
    clock.to(datetime(2026, 6, 12, 8, 0, tzinfo=UTC))
    assert firsts() == ({"median": 600, "p90": 1800, "count": 3}, {"Ana": 2, None: 1}, (4, 4))
