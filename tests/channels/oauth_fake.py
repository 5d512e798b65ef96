"""Fakes for mailboxes signed in with OAuth: an authorization server and an XOAUTH2 SMTP server.

:class:`FakeAuthServer` plays Microsoft's and Google's sign-in at made-up URLs
(``https://login.fake.test``, ``https://google.fake.test``), through ``responses``:
:meth:`~FakeAuthServer.consent` is the admin accepting on the consent page (it
reads the authorize URL as the browser would, keeps the PKCE challenge and
returns the code the redirect carries); the token endpoint trades a code only
with the verifier of that challenge, hands out numbered tokens, refreshes
(rotating the refresh token when ``rotate`` is set), and answers
``invalid_grant`` once :meth:`~FakeAuthServer.revoke` was called.

:class:`XoauthSmtp` is an ``aiosmtpd`` handler that accepts ``AUTH XOAUTH2``
with the tokens it is told are good and records each login.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.channels.harness import SmtpSink

LOGIN = "https://login.fake.test"
GOOGLE = "https://google.fake.test"


def id_token(email: str) -> str:
    """An unsigned id token naming ``email`` (the app only reads it)."""
    part = base64.urlsafe_b64encode(json.dumps({"email": email}).encode()).rstrip(b"=").decode()
    return f"e30.{part}.sig"


@dataclass
class Grant:
    """One consented sign-in: its code's PKCE challenge and its current refresh token."""

    challenge: str
    redirect_uri: str
    client_id: str
    account: str
    refresh_token: str | None = None


@dataclass
class FakeAuthServer:
    """Both providers' sign-in servers (see the module docstring)."""

    account: str = "support@shop.example"
    rotate: bool = True
    lifetime: int = 3600
    down: bool = False  # the token endpoint answers 503
    revoked: str | None = None  # the provider's error_description for invalid_grant
    codes: dict[str, Grant] = field(default_factory=dict)
    grants: list[Grant] = field(default_factory=list)
    token_calls: list[dict] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)  # access tokens for the mail servers
    graph_issued: list[str] = field(default_factory=list)  # for Graph (scope Mail.Send)
    owners: dict[str, str] = field(default_factory=dict)  # access token -> account
    _n: itertools.count = field(default_factory=lambda: itertools.count(1))

    settings = {
        "MICROSOFT_CLIENT_ID": "ms-client",
        "MICROSOFT_CLIENT_SECRET": "ms-secret",
        "MICROSOFT_TENANT": "contoso.example",
        "MICROSOFT_AUTHORIZE_URL": LOGIN + "/{tenant}/oauth2/v2.0/authorize",
        "MICROSOFT_TOKEN_URL": LOGIN + "/{tenant}/oauth2/v2.0/token",
        "GOOGLE_CLIENT_ID": "google-client",
        "GOOGLE_CLIENT_SECRET": "google-secret",
        "GOOGLE_AUTHORIZE_URL": GOOGLE + "/o/oauth2/v2/auth",
        "GOOGLE_TOKEN_URL": GOOGLE + "/token",
    }

    def install(self, mock: responses.RequestsMock) -> None:
        """Answer both token endpoints on ``mock`` (kept as :attr:`mock` for more answers)."""
        self.mock = mock
        for url in (LOGIN + "/contoso.example/oauth2/v2.0/token", GOOGLE + "/token"):
            mock.add_callback(responses.POST, url, callback=self._token)

    def consent(self, authorize_url: str, account: str | None = None) -> dict[str, str]:
        """The admin consents: the query the provider redirects back with (code, state)."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        assert query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        code = f"code-{next(self._n)}"
        self.codes[code] = Grant(
            query["code_challenge"],
            query["redirect_uri"],
            query["client_id"],
            account or self.account,
        )
        return {"code": code, "state": query["state"]}

    def revoke(
        self, why: str = "AADSTS70008: The refresh token has expired due to inactivity."
    ) -> None:
        """Every refresh from now on answers invalid_grant with these words."""
        self.revoked = why

    def refreshes(self) -> list[dict]:
        """The refresh requests received, in order."""
        return [c for c in self.token_calls if c.get("grant_type") == "refresh_token"]

    # -- the token endpoint ------------------------------------------------------
    def _token(self, request):
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        self.token_calls.append(form)
        if self.down:
            return 503, {}, json.dumps({"error": "temporarily_unavailable"})
        if form.get("grant_type") == "authorization_code":
            grant = self.codes.pop(form.get("code", ""), None)
            if grant is None:
                return _refused("AADSTS54005: OAuth2 Authorization code was already redeemed.")
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
                return _refused(
                    "AADSTS501481: The Code_Verifier does not match the code_challenge."
                )
            if form.get("redirect_uri") != grant.redirect_uri:
                return _refused("AADSTS50148: The redirect_uri does not match.")
            self.grants.append(grant)
            return self._issue(grant, with_id=True)
        if form.get("grant_type") == "refresh_token":
            if self.revoked:
                return _refused(self.revoked)
            grant = next(
                (g for g in self.grants if g.refresh_token == form.get("refresh_token")), None
            )
            if grant is None:
                return _refused("AADSTS9002313: Invalid request. The refresh token is malformed.")
            graph = "graph.microsoft.com" in form.get("scope", "")
            return self._issue(grant, rotate=self.rotate, graph=graph)
        return 400, {}, json.dumps({"error": "unsupported_grant_type"})

    def _issue(self, grant: Grant, with_id: bool = False, rotate: bool = True, graph=False):
        n = next(self._n)
        access = f"graph-{n}" if graph else f"access-{n}"
        (self.graph_issued if graph else self.issued).append(access)
        self.owners[access] = grant.account
        body = {"access_token": access, "token_type": "Bearer", "expires_in": self.lifetime}
        if rotate or grant.refresh_token is None:
            grant.refresh_token = f"refresh-{n}"
            body["refresh_token"] = grant.refresh_token
        if with_id:
            body["id_token"] = id_token(grant.account)
        return 200, {}, json.dumps(body)


def _refused(description: str):
    body = {"error": "invalid_grant", "error_description": description + "\r\nTrace ID: 1234"}
    return 400, {}, json.dumps(body)


DISABLED = (
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
    "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."
)


class XoauthSmtp(SmtpSink):
    """An SMTP server that takes ``AUTH XOAUTH2`` with the tokens in ``good``."""

    def __init__(self, live=None) -> None:
        super().__init__()
        self.good: set[str] = set()
        self.live = live  # or a function saying whether a token is good (a sign-in server's)
        self.smtp_auth_off = False  # Microsoft's answer when a tenant turned SMTP AUTH off
        self.logins: list[tuple[str, str]] = []  # (user, token) of accepted logins
        self.refused: list[str] = []

    async def auth_XOAUTH2(self, server, args):  # noqa: N802 - aiosmtpd's hook name
        raw = base64.b64decode(args[1]).decode() if len(args) > 1 else ""
        fields = dict(part.split("=", 1) for part in raw.split("\x01") if "=" in part)
        user, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        if self.smtp_auth_off:
            self.refused.append(token)
            return AuthResult(success=False, handled=False, message=DISABLED)
        if token in self.good or (self.live is not None and self.live(token)):
            self.logins.append((user, token))
            return AuthResult(success=True)
        self.refused.append(token)
        error = json.dumps({"status": "401", "schemes": "bearer", "scope": "SMTP.Send"})
        await server.challenge_auth(error)  # the client answers an empty line
        return AuthResult(success=False, message="535 5.7.3 Authentication unsuccessful")


@pytest.fixture
def xoauth_smtp():
    """A local SMTP server taking XOAUTH2; yields ``(server, port)``."""
    from tests.connectors.imap_server import free_port

    sink, port = XoauthSmtp(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, auth_require_tls=False)
    controller.start()
    yield sink, port
    controller.stop()
