"""A real HTTP sign-in server for mailboxes: Microsoft's and Google's, at one local address.

The browser tests (and a person trying the product with ``make run``) need what
:class:`tests.channels.oauth_fake.FakeAuthServer` plays through ``responses``,
but over real HTTP: a consent page a browser can click through, the token
endpoint, token introspection for Dovecot's ``oauth2`` passdb, and Microsoft
Graph's ``sendMail``. :class:`SignInServer` is that, on 127.0.0.1:

- ``GET /{tenant}/oauth2/v2.0/authorize`` (Microsoft) and ``GET /o/oauth2/v2/auth``
  (Google): a consent page naming the app, the account and the permissions, with
  "Accept" and "Cancel"; Accept redirects to the ``redirect_uri`` with a code
  bound to the PKCE challenge, Cancel with ``error=access_denied``.
- ``POST /{tenant}/oauth2/v2.0/token`` and ``POST /token``: the fake's token endpoint
  (code with verifier, refresh with rotation, ``invalid_grant`` once revoked).
- ``POST /introspect`` (``token=``, as Dovecot's ``introspection_mode = post`` sends
  it): ``{"active": true, "username": <account>}`` for a live mail token.
- ``POST /v1.0/me/sendMail`` and ``/v1.0/users/{mailbox}/sendMail``: Graph, taking a
  base64 MIME body with a live Graph token; recorded in :attr:`SignInServer.graph_sent`.

:meth:`SignInServer.settings` gives the app settings pointing at it.
"""

from __future__ import annotations

import base64
import html
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.channels.oauth_fake import FakeAuthServer

TENANT = "contoso.example"


class SignInServer:
    """Both providers' sign-in, introspection and Graph (see the module docstring)."""

    def __init__(self, account: str = "support@shop.example", lifetime: int = 3600) -> None:
        self.auth = FakeAuthServer(account=account, lifetime=lifetime)
        self.expiry: dict[str, float] = {}  # access token -> wall-clock expiry
        self.graph_sent: list[dict] = []  # {"path", "mime": bytes}
        self.introspected: list[str] = []
        self.pending: dict[str, str] = {}  # consent id -> authorize URL
        self.dead: set[str] = set()  # access tokens no longer accepted
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):  # noqa: N802 - http.server API
                outer._get(self)

            def do_POST(self):  # noqa: N802 - http.server API
                outer._post(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    # -- what tests and the app need ----------------------------------------------
    def settings(self) -> dict[str, str]:
        """App settings for both providers pointing here (mail servers not included)."""
        return {
            "MICROSOFT_CLIENT_ID": "ms-client",
            "MICROSOFT_CLIENT_SECRET": "ms-secret",
            "MICROSOFT_TENANT": TENANT,
            "MICROSOFT_AUTHORIZE_URL": self.url + "/{tenant}/oauth2/v2.0/authorize",
            "MICROSOFT_TOKEN_URL": self.url + "/{tenant}/oauth2/v2.0/token",
            "MICROSOFT_GRAPH_URL": self.url + "/v1.0",
            "GOOGLE_CLIENT_ID": "google-client",
            "GOOGLE_CLIENT_SECRET": "google-secret",
            "GOOGLE_AUTHORIZE_URL": self.url + "/o/oauth2/v2/auth",
            "GOOGLE_TOKEN_URL": self.url + "/token",
        }

    @property
    def introspection_url(self) -> str:
        """Where Dovecot asks whether a token is good."""
        return self.url + "/introspect"

    def revoke(self, why: str = "AADSTS50173: The provided grant has been revoked.") -> None:
        """The grant is revoked: refreshes answer invalid_grant, issued tokens stop working."""
        self.auth.revoke(why)
        self.dead.update(self.auth.issued + self.auth.graph_issued)

    def restore(self) -> None:
        """Consent given again (a new sign-in will work)."""
        self.auth.revoked = None

    def live(self, token: str, graph: bool = False) -> bool:
        """True when ``token`` is an unexpired, unrevoked token of that kind."""
        issued = self.auth.graph_issued if graph else self.auth.issued
        return (
            token in issued
            and token not in self.dead
            and self.expiry.get(token, float("inf")) > time.time()
        )

    # -- HTTP ---------------------------------------------------------------------
    def _get(self, req: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path.endswith("/oauth2/v2.0/authorize") or parts.path == "/o/oauth2/v2/auth":
            return self._consent_page(req, query)
        if parts.path == "/consent":
            return self._decide(req, query)
        return _send(req, 404, {"error": "not_found"})

    def _consent_page(self, req: BaseHTTPRequestHandler, query: dict) -> None:
        consent_id = str(len(self.pending) + 1)
        self.pending[consent_id] = req.path
        who = "Microsoft" if "oauth2/v2.0" in req.path else "Google"
        scopes = "".join(f"<li>{html.escape(s)}</li>" for s in query.get("scope", "").split())
        account = html.escape(query.get("login_hint") or self.auth.account)
        page = f"""<!doctype html><html><head><title>Sign in - {who}</title></head><body>
<h1>Sign in with {who}</h1>
<p>The app <b id="client">{html.escape(query.get("client_id", ""))}</b> asks to:</p>
<ul id="scopes">{scopes}</ul>
<form method="get" action="/consent">
<input type="hidden" name="id" value="{consent_id}">
<label>Account <input name="account" id="account" value="{account}"></label>
<button name="decision" value="accept" id="accept">Accept</button>
<button name="decision" value="cancel" id="cancel">Cancel</button>
</form></body></html>"""
        out = page.encode()
        req.send_response(200)
        req.send_header("Content-Type", "text/html; charset=utf-8")
        req.send_header("Content-Length", str(len(out)))
        req.end_headers()
        req.wfile.write(out)

    def _decide(self, req: BaseHTTPRequestHandler, query: dict) -> None:
        authorize = self.pending.pop(query.get("id", ""), None)
        if authorize is None:
            return _send(req, 400, {"error": "invalid_request"})
        asked = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
        if query.get("decision") == "accept":
            answer = self.auth.consent(authorize, query.get("account") or None)
        else:
            answer = {
                "error": "access_denied",
                "error_description": "AADSTS65004: User declined to consent to access the app.",
                "state": asked.get("state", ""),
            }
        req.send_response(302)
        req.send_header("Location", asked["redirect_uri"] + "?" + urlencode(answer))
        req.send_header("Content-Length", "0")
        req.end_headers()

    def _post(self, req: BaseHTTPRequestHandler) -> None:
        path = urlsplit(req.path).path
        raw = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        if path.endswith("/oauth2/v2.0/token") or path == "/token":
            before = len(self.auth.issued) + len(self.auth.graph_issued)
            status, _, body = self.auth._token(SimpleNamespace(body=raw.decode()))
            if len(self.auth.issued) + len(self.auth.graph_issued) > before:
                token = json.loads(body)["access_token"]
                self.expiry[token] = time.time() + self.auth.lifetime
            return _send(req, status, json.loads(body))
        if path == "/introspect":
            token = parse_qs(raw.decode()).get("token", [""])[0]
            self.introspected.append(token)
            if not self.live(token):
                return _send(req, 200, {"active": False})
            return _send(req, 200, {"active": True, "username": self.auth.owners[token]})
        if path.endswith("/sendMail") and path.startswith("/v1.0/"):
            token = (req.headers.get("Authorization") or "").removeprefix("Bearer ")
            if not self.live(token, graph=True):
                error = {"code": "InvalidAuthenticationToken", "message": "Access token is empty."}
                if token in self.auth.issued:  # a mail servers' token: wrong audience
                    error["message"] = "Invalid audience."
                return _send(req, 401, {"error": error})
            self.graph_sent.append({"path": path, "mime": base64.b64decode(raw)})
            return _send(req, 202, None)
        return _send(req, 404, {"error": "not_found"})


def _send(req: BaseHTTPRequestHandler, status: int, body) -> None:
    out = b"" if body is None else json.dumps(body).encode()
    req.send_response(status)
    if body is not None:
        req.send_header("Content-Type", "application/json")
    req.send_header("Content-Length", str(len(out)))
    req.end_headers()
    req.wfile.write(out)
