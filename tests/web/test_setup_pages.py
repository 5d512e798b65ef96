"""The admin pages that connect and repair inboxes: who may open them, and no secret in them."""

from __future__ import annotations

import pytest

from tests.web.test_channels_web import _sign_in


@pytest.mark.parametrize("role", ["agent", "lead"])
def test_only_admins_open_the_add_inbox_page(client, make, role):
    _sign_in(client, make.user(role))
    assert client.get("/admin/inboxes/new").status_code == 403


def test_leads_keep_the_settings_view_without_credentials(client, make):
    inbox = make.inbox("messenger")
    _sign_in(client, make.user("lead"))
    html = client.get(f"/admin/inboxes/{inbox.id}").get_data(as_text=True)
    assert 'id="inbox-settings"' in html
    for absent in ('id="inbox-admin"', 'id="reconnect"', 'id="disconnect"', "inbox-data"):
        assert absent not in html


def test_the_admin_inbox_page_has_the_repair_form_and_never_a_secret(client, make):
    from app.extensions import db

    inbox = make.inbox("messenger", page_token="EAAG-secret-token", app_secret="app-secret-xyz")
    inbox.needs_reconnect = True
    db.session.commit()
    _sign_in(client, make.user("admin"))
    html = client.get(f"/admin/inboxes/{inbox.id}").get_data(as_text=True)
    assert 'id="reconnect"' in html and 'id="disconnect"' in html and 'id="check-now"' in html
    assert "EAAG-secret-token" not in html and "app-secret-xyz" not in html
    listing = client.get("/admin/inboxes").get_data(as_text=True)
    assert f'href="/admin/inboxes/{inbox.id}#reconnect" data-reconnect-link' in listing
    assert 'id="add-inbox-btn"' in listing
    page = client.get("/admin/inboxes/new").get_data(as_text=True)
    assert 'id="channel-picker"' in page
