"""A real Chromium for end-to-end tests: one browser per test module, a fresh app per test.

Tests skip (with the reason) when Debian's ``chromium`` and ``chromedriver`` are not
installed (``make test`` installs them). Screenshots go to ``test-artifacts/screenshots``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.conftest import ARTIFACTS

CHROMIUM = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = (
    os.environ.get("CHROMEDRIVER_BIN") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
)
SCREENSHOTS = ARTIFACTS / "screenshots"
PASSWORD = "correct horse battery"


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"chromium not found at {CHROMIUM} (apt-get install chromium)"
    if not Path(CHROMEDRIVER).exists():
        return f"chromedriver not found at {CHROMEDRIVER} (apt-get install chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (requirements-dev.txt)"
    return None


def pytest_collection_modifyitems(config, items):
    """Browser tests skip with a clear reason when there is no browser."""
    reason = _missing()
    for item in items:
        if "browser" in item.keywords and reason:
            item.add_marker(pytest.mark.skip(reason=reason))


def _options(width: int, height: int):
    from selenium.webdriver.chrome.options import Options

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-features=Translate,MediaRouter",
        f"--window-size={width},{height}",
        "--lang=en-US",
        "--force-device-scale-factor=1",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return opts


def _chromium():
    """A headless Chromium (skips the test when there is none)."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(
        options=_options(1280, 900), service=Service(executable_path=CHROMEDRIVER)
    )
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium shared by the tests of a module."""
    driver = _chromium()
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def second_browser():
    """A second Chromium with its own cookies: a teammate's screen beside the first."""
    driver = _chromium()
    yield driver
    driver.quit()


@pytest.fixture
def teammate(second_browser, live_server):
    """The teammate's page on this test's live server, signed out."""
    p = Page(second_browser, live_server.url)
    p.get("/healthz")
    second_browser.delete_all_cookies()
    second_browser.execute_script("window.localStorage.clear()")
    return p


class Page:
    """Helpers around the shared driver for one test's live server."""

    def __init__(self, driver, base_url: str) -> None:
        self.driver = driver
        self.url = base_url

    # navigation -------------------------------------------------------------
    def get(self, path: str) -> None:
        self.driver.get(self.url + path)

    def login(self, email: str, password: str = PASSWORD, ready: bool = True) -> None:
        """Sign in through the form and wait for the inbox to be ready."""
        from selenium.webdriver.common.by import By

        self.get("/login")
        self.driver.find_element(By.NAME, "email").send_keys(email)
        self.driver.find_element(By.NAME, "password").send_keys(password)
        self.driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        self.wait(lambda d: "/login" not in d.current_url)
        if ready:
            self.wait_ready()

    def wait_ready(self) -> None:
        """The page script finished its first load and the live connection is up."""
        self.wait(
            lambda d: d.execute_script(
                "return document.body.dataset.ready === '1' && document.body.dataset.live === 'on'"
            )
        )

    # waiting ----------------------------------------------------------------
    def wait(self, condition, timeout: float = 10, message: str = ""):
        """Poll ``condition(driver)`` every 0.1 s until truthy."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        # a live update may redraw the element the condition reads: read it again next poll
        return WebDriverWait(
            self.driver,
            timeout,
            poll_frequency=0.1,
            ignored_exceptions=(StaleElementReferenceException,),
        ).until(condition, message)

    def css(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def wait_css(self, selector: str, timeout: float = 10):
        """The first element matching ``selector`` once it is displayed."""

        def find(d):
            els = [e for e in self.all(selector) if e.is_displayed()]
            return els[0] if els else False

        return self.wait(find, timeout, f"nothing displayed matches {selector}")

    def wait_text(self, selector: str, text: str, timeout: float = 10):
        """An element matching ``selector`` whose text contains ``text``."""

        def find(d):
            for el in self.all(selector):
                try:
                    if text in el.text:
                        return el
                except Exception:  # noqa: BLE001 - stale while the list re-renders
                    continue
            return False

        return self.wait(find, timeout, f"no {selector} with text {text!r}")

    def click(self, selector: str, text: str | None = None) -> None:
        """Click the first displayed match (containing ``text``), retrying if it re-renders."""
        from selenium.common.exceptions import (
            ElementClickInterceptedException,
            StaleElementReferenceException,
        )

        def attempt(d):
            try:
                for el in self.all(selector):
                    if el.is_displayed() and (text is None or text in el.text):
                        el.click()
                        return True
            except (StaleElementReferenceException, ElementClickInterceptedException):
                return False
            return False

        self.wait(attempt, message=f"could not click {selector} {text or ''}")

    def status_tab(self, status: str) -> None:
        """Choose a status tab: on the row, or under "More" when the row has no room for it."""
        on_row = f'.status-tabs [data-status-tab="{status}"]'
        if self.driver.execute_script(
            "const b = document.querySelector(arguments[0]); return !!(b && b.offsetParent)", on_row
        ):
            self.click(on_row)
        else:
            self.click("#status-more")
            self.click(f'#status-more-menu [data-status-tab="{status}"]')

    def text(self, selector: str) -> str:
        """Visible text of the first match, read in the page (never stale)."""
        return self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : null",
            selector,
        )

    def texts(self, selector: str) -> list[str]:
        """Visible texts of every match, read in the page (never stale)."""
        return self.js(
            "return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText)", selector
        )

    def attr(self, selector: str, name: str):
        """An attribute of the last match, read in the page (never stale)."""
        return self.js(
            "const l = document.querySelectorAll(arguments[0]);"
            "return l.length ? l[l.length - 1].getAttribute(arguments[1]) : null",
            selector,
            name,
        )

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def in_thread_view(self, element) -> bool:
        """``element`` lies wholly within the thread's visible area (not under the composer)."""
        return self.js(
            "const r = arguments[0].getBoundingClientRect();"
            "const log = document.getElementById('thread-log').getBoundingClientRect();"
            "return r.top >= log.top && r.bottom <= log.bottom;",
            element,
        )

    # evidence ---------------------------------------------------------------
    def screenshot(self, name: str) -> Path:
        """Save a PNG under ``test-artifacts/screenshots``."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        time.sleep(0.3)  # let transitions settle so the picture is what a person sees
        self.driver.save_screenshot(str(path))
        return path

    def console_errors(self) -> list[str]:
        """Severe browser console entries since the last call (resource 404s excluded)."""
        out = []
        for entry in self.driver.get_log("browser"):
            if entry["level"] == "SEVERE" and "favicon" not in entry["message"]:
                out.append(entry["message"])
        return out

    def resize(self, width: int, height: int) -> None:
        self.driver.set_window_size(width, height)


@pytest.fixture
def page(browser, live_server):
    """The shared browser pointed at this test's live server, signed out, 1280 px wide."""
    p = Page(browser, live_server.url)
    browser.set_window_size(1280, 900)
    p.get("/healthz")
    browser.delete_all_cookies()
    browser.execute_script("window.localStorage.clear()")
    browser.get_log("browser")
    yield p


# --------------------------------------------------------------------------- providers


class FakeGraph:
    """A tiny Graph API on 127.0.0.1: accepts sends, answers profile look-ups."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.fail_next: dict | None = None
        self.fail_sends: dict | None = None  # answer every message send with this error
        self.drop_next = False  # read the next send, then hang up without answering
        self.profiles: dict[str, str] = {}  # PSID -> name the profile look-up answers
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _answer(self, status: int, body: dict) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self):  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                outer.requests.append({"method": "POST", "path": self.path, "json": body})
                if outer.fail_next is not None:
                    error, outer.fail_next = outer.fail_next, None
                    return self._answer(400, {"error": error})
                if outer.fail_sends is not None and "message" in body:
                    return self._answer(400, {"error": outer.fail_sends})
                if outer.drop_next and "message" in body:
                    outer.drop_next = False
                    self.close_connection = True  # received, never answered
                    return None
                if "message" in body:
                    n = len(outer.requests)
                    return self._answer(
                        200,
                        {"recipient_id": body["recipient"].get("id"), "message_id": f"m_fake_{n}"},
                    )
                return self._answer(200, {"recipient_id": body.get("recipient", {}).get("id")})

            def do_GET(self):  # noqa: N802 - http.server API
                outer.requests.append({"method": "GET", "path": self.path})
                psid = self.path.split("?")[0].rsplit("/", 1)[-1]
                name = outer.profiles.get(psid)
                if name is None:
                    return self._answer(404, {"error": {"message": "Unknown user", "code": 100}})
                first, _, last = name.partition(" ")
                return self._answer(200, {"first_name": first, "last_name": last, "name": name})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def sends(self) -> list[dict]:
        return [
            r for r in self.requests if r["method"] == "POST" and "message" in r.get("json", {})
        ]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_graph(app):
    """A local fake of Meta's Graph API, wired into the app's config."""
    graph = FakeGraph()
    app.config["MESSENGER_GRAPH_URL"] = graph.url
    yield graph
    graph.stop()


def post_messenger(base_url: str, inbox, psid: str, text: str, mid: str, at_ms: int | None = None):
    """Post a signed Messenger webhook, as Meta does, to the live server."""
    page_id = inbox.config["page_id"]
    at_ms = at_ms or int(time.time() * 1000)
    payload = {
        "object": "page",
        "entry": [
            {
                "id": page_id,
                "time": at_ms,
                "messaging": [
                    {
                        "sender": {"id": psid},
                        "recipient": {"id": page_id},
                        "timestamp": at_ms,
                        "message": {"mid": mid, "text": text},
                    }
                ],
            }
        ],
    }
    raw = json.dumps(payload, ensure_ascii=False).encode()
    sig = "sha256=" + hmac.new(inbox.config["app_secret"].encode(), raw, hashlib.sha256).hexdigest()
    resp = requests.post(
        base_url + "/webhooks/messenger",
        data=raw,
        timeout=10,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def quiet_hours_thread(make, newest: str, customer: str = "+14155550123"):
    """An agent and an SMS conversation of 15 messages in the customer's quiet hours (three
    hours either side of their local time), so the composer shows its notice. Returns the
    agent and the newest message, whose text is ``newest``."""
    from zoneinfo import ZoneInfo

    from app.clock import now
    from connectors.sms.phone import customer_timezone

    local = now().astimezone(ZoneInfo(customer_timezone(customer, "UTC")))
    quiet = {
        "start": (local - timedelta(hours=3)).strftime("%H:%M"),
        "end": (local + timedelta(hours=3)).strftime("%H:%M"),
    }
    agent = make.user("agent", name="Lucas Martin")
    inbox = make.inbox("sms", members=[agent], settings={"quiet_hours": quiet})
    start = now() - timedelta(hours=3)
    for i in range(14):
        make.inbound(
            inbox, customer, text=f"Part {i} of my question", at=start + timedelta(minutes=i)
        )
    return agent, make.inbound(inbox, customer, text=newest, at=start + timedelta(minutes=30))


def run_worker(app) -> int:
    """Process due outbox rows (sends, profile look-ups) as the background worker would."""
    from app.runtime.worker import run_once

    with app.app_context():
        return run_once()
