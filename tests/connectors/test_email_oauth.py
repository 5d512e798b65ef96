"""The OAuth wire code: authorize URL, PKCE, code exchange, refresh, error classification."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from connectors.email import oauth

MS = oauth.PROVIDERS["microsoft"].configured(tenant="contoso.example")
TOKEN = "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token"
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_pkce_challenge_is_the_s256_of_the_verifier():
    verifier, challenge = oauth.new_pkce()
    assert 43 <= len(verifier) <= 128
    digest = hashlib.sha256(verifier.encode()).digest()
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_authorize_url_names_the_tenant_scopes_and_challenge():
    url = oauth.authorize_url(MS, "cid", "https://sb.example/cb", "st", "ch", login_hint="a@b.c")
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.path == "/contoso.example/oauth2/v2.0/authorize"
    assert query["scope"].split()[:3] == [
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
        "offline_access",
    ]
    assert query["code_challenge"] == "ch" and query["code_challenge_method"] == "S256"
    assert query["login_hint"] == "a@b.c" and query["response_mode"] == "query"
    common = oauth.authorize_url(oauth.PROVIDERS["microsoft"], "cid", "r", "s", "c")
    assert "/common/oauth2/v2.0/authorize" in common


@responses.activate
def test_refresh_keeps_the_rotated_token_or_the_old_one():
    responses.post(TOKEN, json={"access_token": "a2", "refresh_token": "r2", "expires_in": 600})
    tokens = oauth.refresh(requests.Session(), MS, "cid", "sec", "r1", AT)
    assert (tokens.access_token, tokens.refresh_token) == ("a2", "r2")
    assert (tokens.expires_at - AT).total_seconds() == 600
    sent = parse_qs(responses.calls[0].request.body)
    assert sent["grant_type"] == ["refresh_token"] and sent["refresh_token"] == ["r1"]
    responses.post(TOKEN, json={"access_token": "a3", "expires_in": 600})
    assert oauth.refresh(requests.Session(), MS, "cid", "sec", "r2", AT).refresh_token == "r2"


@responses.activate
def test_exchange_reads_the_account_from_the_id_token():
    claims = base64.urlsafe_b64encode(json.dumps({"email": "Sales@Shop.example"}).encode())
    responses.post(
        TOKEN,
        json={"access_token": "a", "refresh_token": "r", "id_token": f"x.{claims.decode()}.s"},
    )
    tokens = oauth.exchange_code(requests.Session(), MS, "cid", "sec", "code", "ver", "r", AT)
    assert tokens.account == "sales@shop.example"
    assert parse_qs(responses.calls[0].request.body)["code_verifier"] == ["ver"]


@pytest.mark.parametrize(
    ("status", "body", "reconnect", "words"),
    [
        (
            400,
            {
                "error": "invalid_grant",
                "error_description": "AADSTS700082: expired.\r\nTrace ID: 1",
            },
            True,
            "AADSTS700082: expired.",
        ),
        (
            401,
            {
                "error": "invalid_client",
                "error_description": "AADSTS7000222: The provided client secret keys are expired.",
            },
            True,
            "AADSTS7000222",
        ),
        (
            400,
            {"error": "interaction_required", "error_description": "AADSTS50076: MFA"},
            True,
            "AADSTS50076",
        ),
        (503, {"error": "temporarily_unavailable"}, False, "temporarily_unavailable"),
        (502, "<html>bad gateway</html>", False, "HTTP 502"),
    ],
)
@responses.activate
def test_errors_say_whether_only_a_new_sign_in_helps(status, body, reconnect, words):
    if isinstance(body, dict):
        responses.post(TOKEN, json=body, status=status)
    else:
        responses.post(TOKEN, body=body, status=status)
    with pytest.raises(oauth.OAuthError) as caught:
        oauth.refresh(requests.Session(), MS, "cid", "sec", "r1")
    assert caught.value.reconnect is reconnect
    assert words in str(caught.value) and "Trace ID" not in str(caught.value)


def test_an_exchange_without_a_refresh_token_is_refused():
    with responses.RequestsMock() as mock:
        mock.post(TOKEN, json={"access_token": "a", "expires_in": 60})
        with pytest.raises(oauth.OAuthError, match="no refresh token"):
            oauth.exchange_code(requests.Session(), MS, "cid", "sec", "c", "v", "r")


def test_xoauth2_initial_response():
    assert oauth.xoauth2("a@b.c", "tok") == "user=a@b.c\x01auth=Bearer tok\x01\x01"
