"""The public base URL (app/urls.py): PUBLIC_URL, the request's host, the URL last seen, HOST/PORT."""

from app import urls


def test_public_url_wins_over_the_request_host():
    config = {"PUBLIC_URL": "https://support.example.com/"}
    assert urls.public_base_url(config, "http://10.0.0.5:8000/") == "https://support.example.com"


def test_without_public_url_the_request_host_then_the_seen_url():
    assert urls.public_base_url({}, "http://inbox.local:5000/", "http://x") == (
        "http://inbox.local:5000"
    )
    assert (
        urls.public_base_url({"PUBLIC_URL": None}, None, "http://seen:5000") == "http://seen:5000"
    )


def test_nothing_known_falls_back_to_host_and_port(monkeypatch):
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "8080")
    assert urls.public_base_url({}) == "http://0.0.0.0:8080"
    assert urls.local_base_url() == "http://0.0.0.0:8080"


def test_the_first_url_seen_is_kept(app, client):
    app.extensions.pop(urls.SEEN_KEY, None)
    client.get("/healthz", base_url="http://first.example:5000")
    client.get("/healthz", base_url="http://second.example:5000")
    assert urls.seen_base_url(app.extensions) == "http://first.example:5000"


def test_attachment_paths_live_under_the_application_root():
    assert urls.attachment_path({"APPLICATION_ROOT": "/"}, 7) == "/api/v1/attachments/7"
    assert urls.attachment_path({}, 7) == "/api/v1/attachments/7"
    assert urls.attachment_path({"APPLICATION_ROOT": "/support/"}, 7) == (
        "/support/api/v1/attachments/7"
    )
