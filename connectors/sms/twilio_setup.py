"""Twilio account checks and webhook set-up over the REST API (no message sending here).

:class:`TwilioSetup` answers for one inbox's config:

* credentials: ``GET /2010-04-01/Accounts/{AccountSid}.json`` with basic auth (the
  account exists, the Auth Token is right, the account is active);
* the sender: the number (``IncomingPhoneNumbers.json?PhoneNumber=``, SMS capable) and,
  when set, the Messaging Service (``messaging.twilio.com/v1/Services/{sid}``);
* US registration, as a warning: a toll-free number's verification
  (``/v1/Tollfree/Verifications?TollfreePhoneNumberSid=``, ``status`` must be
  ``TWILIO_APPROVED``), a US long code's A2P 10DLC campaign on the Messaging Service
  (``/v1/Services/{sid}/Compliance/Usa2p``, a ``campaign_status`` of ``VERIFIED``);
* provisioning: the Messaging Service's ``InboundRequestUrl``/``InboundMethod``/
  ``StatusCallback`` when the inbox sends through one, else the number's
  ``SmsUrl``/``SmsMethod``.

Base URLs: ``options.base_urls["twilio"]`` (api.twilio.com) and
``["twilio_messaging"]`` (messaging.twilio.com). Every failure becomes a
:class:`~connectors.base.Check` with Twilio's own message; nothing raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests

from connectors.base import Check, ConnectorOptions

from . import phone

API_URL = "https://api.twilio.com"
MESSAGING_URL = "https://messaging.twilio.com"
_LIST_META = {"meta", "end", "first_page_uri", "next_page_uri", "page", "page_size"}
_LIST_META |= {"previous_page_uri", "start", "uri", "num_pages", "total"}


class TwilioError(Exception):
    """A Twilio call that did not succeed: ``status`` (0: not reached) and Twilio's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _records(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of a list answer (``meta.key``, else its one non-paging key)."""
    key = (body.get("meta") or {}).get("key") if isinstance(body.get("meta"), dict) else None
    keys = [key] if key else [k for k in body if k not in _LIST_META]
    items = body.get(keys[0]) if len(keys) == 1 else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


class TwilioSetup:
    """Checks and webhook set-up for one Twilio inbox (see the module docstring)."""

    def __init__(
        self, config: Mapping[str, Any], options: ConnectorOptions, http: requests.Session
    ) -> None:
        self.config = config
        self.options = options
        self.http = http
        self.sid = str(config.get("account_sid") or "")
        self.service = str(config.get("messaging_service_sid") or "").strip()
        self.number = phone.address(str(config.get("number") or ""))

    # -- HTTP --------------------------------------------------------------------
    def _url(self, base: str, path: str) -> str:
        default = MESSAGING_URL if base == "twilio_messaging" else API_URL
        return self.options.base_urls.get(base, default).rstrip("/") + path

    def _account(self, path: str) -> str:
        return self._url("twilio", f"/2010-04-01/Accounts/{quote(self.sid, safe='')}{path}")

    def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        """One authenticated call; its JSON object, or :class:`TwilioError`."""
        auth = (self.sid, str(self.config.get("auth_token") or ""))
        try:
            resp = self.http.request(method, url, auth=auth, timeout=self.options.timeout, **kwargs)
        except requests.Timeout:
            raise TwilioError(0, "Twilio did not answer in time.") from None
        except requests.RequestException as exc:
            raise TwilioError(0, f"Twilio could not be reached ({type(exc).__name__}).") from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        if not 200 <= resp.status_code < 300:
            text = str(body.get("message") or resp.reason or f"HTTP {resp.status_code}")
            raise TwilioError(resp.status_code, text)
        return body

    # -- checks ------------------------------------------------------------------
    def check(self) -> list[Check]:
        """Credentials, then the sender and its registration; stops at the first refusal."""
        try:
            account = self._call("GET", self._account(".json"))
        except TwilioError as exc:
            if exc.status == 0 or exc.status >= 500:
                return [Check("account", False, str(exc))]
            field = "account_sid" if exc.status == 404 else "auth_token"
            text = f"Twilio refused the Account SID and Auth Token: {exc}"
            return [Check("account", False, text, field)]
        status = str(account.get("status") or "active")
        if status != "active":
            return [Check("account", False, f"The Twilio account is {status}.", "account_sid")]
        name = account.get("friendly_name") or self.sid
        checks = [Check("account", True, f"Signed in to the Twilio account {name}.")]
        if self.service:
            checks.append(self._check_service())
        found, number = self._check_number()
        checks.append(found)
        if found.ok and number is not None:
            checks.extend(self._registration(number))
        return checks

    def _check_service(self) -> Check:
        url = self._url("twilio_messaging", f"/v1/Services/{quote(self.service, safe='')}")
        try:
            service = self._call("GET", url)
        except TwilioError as exc:
            if exc.status == 404:
                text = f"Twilio has no Messaging Service {self.service} in this account."
                return Check("messaging_service", False, text, "messaging_service_sid")
            return Check("messaging_service", False, f"Reading the Messaging Service: {exc}")
        label = service.get("friendly_name") or self.service
        return Check("messaging_service", True, f"Messaging Service {label} found.")

    def _check_number(self) -> tuple[Check, dict[str, Any] | None]:
        """The number in the account (``IncomingPhoneNumbers``), able to send SMS."""
        url = self._account("/IncomingPhoneNumbers.json")
        try:
            body = self._call("GET", url, params={"PhoneNumber": self.number})
        except TwilioError as exc:
            return Check("number", False, f"Looking the number up: {exc}"), None
        numbers = [n for n in _records(body) if n.get("phone_number") == self.number]
        if not numbers:
            text = f"The number {self.number} is not in this Twilio account."
            return Check("number", False, text, "number"), None
        number = numbers[0]
        if (number.get("capabilities") or {}).get("sms") is False:
            text = f"Twilio says the number {self.number} cannot send text messages."
            return Check("number", False, text, "number"), None
        return Check("number", True, f"The number {self.number} is in the account."), number

    def _registration(self, number: dict[str, Any]) -> list[Check]:
        """US carriers' registration, as a warning when Twilio says it is missing."""
        if phone.region(self.number) != "US":
            return []
        try:
            if phone.kind(self.number) == "toll_free":
                url = self._url("twilio_messaging", "/v1/Tollfree/Verifications")
                params = {"TollfreePhoneNumberSid": str(number.get("sid") or "")}
                found = _records(self._call("GET", url, params=params))
                if any(v.get("status") == "TWILIO_APPROVED" for v in found):
                    return [Check("registration", True, "The toll-free number is verified.")]
                status = found[0].get("status") if found else "not submitted"
                text = (
                    f"The toll-free number's verification is {status}: US carriers block "
                    "unverified toll-free numbers."
                )
                return [Check("registration", True, text, "number", warning=True)]
            if not self.service:
                text = (
                    "US long codes need an A2P 10DLC campaign on a Messaging Service; this "
                    "inbox sends from the number alone, so carriers may block its texts."
                )
                return [Check("registration", True, text, "messaging_service_sid", warning=True)]
            path = f"/v1/Services/{quote(self.service, safe='')}/Compliance/Usa2p"
            found = _records(self._call("GET", self._url("twilio_messaging", path)))
        except TwilioError as exc:
            text = f"Could not read the number's US registration: {exc}"
            return [Check("registration", True, text, warning=True)]
        if any(c.get("campaign_status") == "VERIFIED" for c in found):
            return [
                Check(
                    "registration", True, "The Messaging Service has a verified A2P 10DLC campaign."
                )
            ]
        text = (
            "The Messaging Service has no verified A2P 10DLC campaign: US carriers block "
            "unregistered traffic."
        )
        return [Check("registration", True, text, "messaging_service_sid", warning=True)]

    # -- provisioning --------------------------------------------------------------
    def provision(self, urls: dict[str, str]) -> list[Check]:
        """Point the Messaging Service (or else the number) at our inbound URL, POST."""
        inbound = urls.get("inbound") or ""
        if self.service:
            data = {"InboundRequestUrl": inbound, "InboundMethod": "POST"}
            if urls.get("status"):
                data["StatusCallback"] = urls["status"]
            url = self._url("twilio_messaging", f"/v1/Services/{quote(self.service, safe='')}")
            where = f"the Messaging Service {self.service}"
        else:
            try:
                body = self._call(
                    "GET",
                    self._account("/IncomingPhoneNumbers.json"),
                    params={"PhoneNumber": self.number},
                )
            except TwilioError as exc:
                return [Check("inbound_url", False, f"Looking the number up: {exc}")]
            found = [n for n in _records(body) if n.get("phone_number") == self.number]
            if not found:
                text = f"The number {self.number} is not in this Twilio account."
                return [Check("inbound_url", False, text, "number")]
            pn = quote(str(found[0].get("sid") or ""), safe="")
            url = self._account(f"/IncomingPhoneNumbers/{pn}.json")
            data = {"SmsUrl": inbound, "SmsMethod": "POST"}
            where = f"the number {self.number}"
        try:
            self._call("POST", url, data=data)
        except TwilioError as exc:
            return [Check("inbound_url", False, f"Twilio refused to update {where}: {exc}")]
        return [Check("inbound_url", True, f"Incoming texts to {where} now come to {inbound}.")]
