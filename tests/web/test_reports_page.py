"""The Reports page: for leads and admins only, linked from the top bar for them alone."""

from __future__ import annotations

import re

import pytest


def _login(client, user) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post(
        "/login",
        data={"email": user.email, "password": "correct horse battery", "csrf_token": token},
    )


def test_agents_neither_see_the_link_nor_open_the_page(client, make):
    _login(client, make.user())
    assert 'href="/reports"' not in client.get("/").get_data(as_text=True)
    assert client.get("/reports").status_code == 403


@pytest.mark.parametrize("role", ["lead", "admin"])
def test_leads_and_admins_get_the_page_and_the_link(client, make, role):
    _login(client, make.user(role))
    html = client.get("/").get_data(as_text=True)
    assert re.search(r'<a href="/reports"\s*>Reports</a>', html)
    page = client.get("/reports?from=2026-06-01&to=2026-06-30&tz=Europe/Paris")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert re.search(r'<a href="/reports"\s*aria-current="page">Reports</a>', body)
    for part in ('id="report-filters"', 'id="report-agents"', 'id="report-badges"', "reports.js"):
        assert part in body


def test_the_page_is_translated(client, make):
    from flask_babel import refresh

    _login(client, make.user("lead", locale="fr"))
    refresh()  # the test's app context outlives requests: forget the sign-in page's language
    body = client.get("/reports").get_data(as_text=True)
    assert "<h1>Rapports</h1>" in body and "Badges des plateformes" in body
