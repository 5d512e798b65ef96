"""Local fakes of Meta's Graph API and Twilio's REST API for connecting inboxes in the browser.

Each fake is a small threaded HTTP server on 127.0.0.1 that records every request
(method, path, query, form or JSON body, bearer token) and answers what the real
provider would for the set-up calls: token checks, the Page subscription, account and
number look-ups, the number's inbound URL update, and sends.
"""

from __future__ import annotations

import json
import threading
import time
from base64 import b64decode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class FakeServer:
    """A recording HTTP server; subclasses answer in :meth:`answer`."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.delay = 0.0  # seconds before each answer (to see "Checking…")
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _handle(self):
                parts = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kind = self.headers.get("Content-Type") or ""
                if "json" in kind:
                    body = json.loads(raw or b"{}")
                else:
                    body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                req = {
                    "method": self.command,
                    "path": parts.path,
                    "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                    "body": body,
                    "auth": self.headers.get("Authorization") or "",
                }
                outer.requests.append(req)
                time.sleep(outer.delay)
                status, answer = outer.answer(req)
                out = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_DELETE = _handle  # noqa: N815 - http.server API

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, req: dict) -> tuple[int, dict]:
        raise NotImplementedError

    def calls(self, method: str, path_part: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method and path_part in r["path"]]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _graph_error(message: str, code: int = 190) -> tuple[int, dict]:
    return 400, {"error": {"message": message, "type": "OAuthException", "code": code}}


class FakeGraph(FakeServer):
    """Meta's Graph API for one Page: only ``tokens`` are valid Page tokens."""

    def __init__(self, page_id: str, page_name: str = "Corner Shop") -> None:
        super().__init__()
        self.page_id, self.page_name = page_id, page_name
        self.tokens: set[str] = set()

    def token(self, req: dict) -> str:
        return req["auth"].removeprefix("Bearer ") or req["query"].get("input_token", "")

    def answer(self, req):
        path = req["path"].split("/", 2)[-1]  # without the version
        valid = self.token(req) in self.tokens
        if req["method"] == "GET" and path == "me":
            if not valid:
                return _graph_error("Error validating access token: Session has expired.")
            return 200, {"id": self.page_id, "name": self.page_name}
        if req["method"] == "GET" and path == "debug_token":
            scopes = ["pages_messaging", "pages_manage_metadata"]
            return 200, {"data": {"is_valid": valid, "scopes": scopes}}
        if not valid:
            return _graph_error("Error validating access token: Session has expired.")
        if path == f"{self.page_id}/subscribed_apps":
            return 200, {"success": True}
        if "message" in req["body"]:
            n = len(self.requests)
            return 200, {"recipient_id": req["body"]["recipient"]["id"], "message_id": f"m_{n}"}
        return 200, {}

    def sends(self) -> list[dict]:
        return [r for r in self.requests if "message" in r["body"]]


class FakeTwilio(FakeServer):
    """Twilio's REST API for one account holding ``numbers``; ``auth_token`` signs in."""

    def __init__(self, sid: str, auth_token: str, numbers: dict[str, str]) -> None:
        super().__init__()
        self.sid, self.auth_token, self.numbers = sid, auth_token, numbers  # E.164 -> PN sid

    def answer(self, req):
        user, _, password = b64decode(req["auth"].removeprefix("Basic ")).decode().partition(":")
        if user != self.sid or password != self.auth_token:
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        account = f"/2010-04-01/Accounts/{self.sid}"
        if req["path"] == account + ".json":
            return 200, {"sid": self.sid, "status": "active", "friendly_name": "Corner Shop"}
        if req["path"] == account + "/IncomingPhoneNumbers.json":
            wanted = req["query"].get("PhoneNumber")
            found = [
                {"sid": pn, "phone_number": number, "capabilities": {"sms": True}}
                for number, pn in self.numbers.items()
                if number == wanted
            ]
            return 200, {"incoming_phone_numbers": found}
        for number, pn in self.numbers.items():
            if req["path"] == f"{account}/IncomingPhoneNumbers/{pn}.json":
                return 200, {"sid": pn, "phone_number": number, **req["body"]}
        return 404, {"code": 20404, "message": "The requested resource was not found"}


class FakeWhatsApp(FakeServer):
    """The WhatsApp Cloud API for one business number: templates, sends and read marks."""

    def __init__(self, templates: list[dict]) -> None:
        super().__init__()
        self.templates = templates

    def answer(self, req):
        if req["method"] == "GET" and req["path"].endswith("/message_templates"):
            return 200, {"data": self.templates}
        if req["method"] == "POST" and req["path"].endswith("/messages"):
            if req["body"].get("status") == "read":
                return 200, {"success": True}
            n = len(self.requests)
            return 200, {
                "contacts": [{"wa_id": req["body"]["to"]}],
                "messages": [{"id": f"wamid.{n}"}],
            }
        return 404, {"error": {"message": "Unknown path", "code": 100}}

    def sends(self) -> list[dict]:
        return [r["body"] for r in self.calls("POST", "/messages") if r["body"].get("type")]
