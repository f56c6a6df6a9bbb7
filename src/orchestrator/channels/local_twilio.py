"""A local Twilio: the part of Twilio's Messages API we use, over real HTTP, for the demo and tests.

- ``POST /2010-04-01/Accounts/{sid}/Messages.json`` (HTTP Basic with the account SID and auth
  token, form-encoded like the SDK sends it) → 201 with Twilio's JSON (``SM…`` SID, ``queued``,
  or ``accepted`` with a Messaging Service; ``num_segments`` counted as carriers do).
- ``GET`` on the same path lists messages (``To``, ``DateSent>``), paged as Twilio pages.
- Twilio's magic test numbers give Twilio's legacy error JSON: ``+15005550001`` → 21211
  (invalid), ``+15005550004`` → 21610 (unsubscribed), ``+15005550009`` → 21614 (not a mobile).
- With a ``StatusCallback`` it posts signed callbacks (``X-Twilio-Signature``, computed by the
  SDK's ``RequestValidator``): ``sent`` then ``delivered``, or ``undelivered`` with 30003 for
  numbers marked unreachable.
- ``POST …/Calls.json`` places a call (click-to-call): 201 with a ``CA…`` SID, then signed
  status callbacks ``ringing``, ``in-progress``, ``completed``.
- ``/_local/…`` controls it: the messages taken, faults to answer next (429, 500…), a delay,
  unreachable numbers. It keeps everything in memory: it is the outside world, not our data.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import aiohttp
from litestar import Litestar, Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody
from twilio.request_validator import RequestValidator

from orchestrator.scheduling.sms import shape

MAGIC_ERRORS = {
    "+15005550001": (21211, "The 'To' number is not a valid phone number."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}


@dataclass
class LocalTwilio:
    account_sid: str
    auth_token: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    faults: list[int] = field(default_factory=list)  # HTTP statuses to answer next, in order
    delay_seconds: float = 0.0  # before answering a create
    unreachable: set[str] = field(default_factory=set)  # accepted, then 'undelivered' (30003)
    callbacks: bool = True
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _session: aiohttp.ClientSession | None = None

    def authorized(self, request: Request[Any, Any, Any], account_sid: str) -> bool:
        header = request.headers.get("authorization", "")
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return account_sid == self.account_sid and header == f"Basic {expected}"

    def create(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        to, body = form.get("To", ""), form.get("Body", "")
        if self.faults:
            status = self.faults.pop(0)
            code = 20429 if status == 429 else 20500
            return status, _error(status, code, "Too Many Requests" if status == 429 else "Internal error")
        if not to.startswith("+") or not to[1:].isdigit():
            return 400, _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if to in MAGIC_ERRORS:
            code, text = MAGIC_ERRORS[to]
            return 400, _error(400, code, text)
        if not body or len(body) > 1600:
            return 400, _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        now = datetime.now(UTC)
        sms = shape(body)
        message: dict[str, Any] = {
            "sid": "SM" + uuid.uuid4().hex,
            "account_sid": self.account_sid,
            "to": to,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": body,
            "status": "accepted" if form.get("MessagingServiceSid") else "queued",
            "num_segments": str(sms.segments),
            "num_media": "0",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": format_datetime(now, usegmt=True),
            "date_updated": format_datetime(now, usegmt=True),
            "date_sent": format_datetime(now, usegmt=True),
            "error_code": None,
            "error_message": None,
            "price": None,
            "price_unit": "EUR",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/SM.json",
            "subresource_uris": {},
            "encoding": sms.encoding,
            "status_callback": form.get("StatusCallback"),
            "created": now.isoformat(),
        }
        self.messages.append(message)
        if form.get("StatusCallback") and self.callbacks:
            self._later(self._report(message))
        return 201, message

    async def _report(self, message: dict[str, Any]) -> None:
        """The carrier's side: ``sent``, then ``delivered`` (or ``undelivered`` 30003)."""
        final = ("undelivered", "30003") if message["to"] in self.unreachable else ("delivered", "")
        for status, error in (("sent", ""), final):
            message["status"] = status
            await self.callback(message, status, error)

    async def callback(self, message: dict[str, Any], status: str, error: str = "") -> int:
        """POST a signed status callback for ``message`` to its ``StatusCallback`` URL."""
        params = {
            "MessageSid": message["sid"],
            "SmsSid": message["sid"],
            "MessageStatus": status,
            "SmsStatus": status,
            "AccountSid": self.account_sid,
            "From": message["from"] or "",
            "To": message["to"],
            "ApiVersion": "2010-04-01",
        }
        if error:
            params["ErrorCode"] = error
        url = message["status_callback"]
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                url, data=params, headers={"X-Twilio-Signature": signature}
            ) as resp:
                return resp.status
        except aiohttp.ClientError:
            return 0  # Twilio gives up on a callback that cannot be delivered, too

    def call(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """A call (``Calls.json``): answered at once; its status callbacks follow."""
        to = form.get("To", "")
        if not to.startswith("+") or not to[1:].isdigit():
            return 400, _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        now = datetime.now(UTC)
        call: dict[str, Any] = {
            "sid": "CA" + uuid.uuid4().hex,
            "account_sid": self.account_sid,
            "to": to,
            "from": form.get("From"),
            "status": "queued",
            "twiml": form.get("Twiml"),
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": format_datetime(now, usegmt=True),
            "date_updated": format_datetime(now, usegmt=True),
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/CA.json",
            "subresource_uris": {},
            "status_callback": form.get("StatusCallback"),
        }
        self.calls.append(call)
        if form.get("StatusCallback") and self.callbacks:
            self._later(self._ring(call))
        return 201, call

    def _later(self, callbacks: Coroutine[Any, Any, None]) -> None:
        """Post status callbacks after answering, as Twilio's carrier side does."""
        task = asyncio.get_running_loop().create_task(callbacks)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ring(self, call: dict[str, Any]) -> None:
        for status in ("ringing", "in-progress", "completed"):
            call["status"] = status
            params = {"CallSid": call["sid"], "CallStatus": status, "AccountSid": self.account_sid}
            params |= {"From": call["from"] or "", "To": call["to"], "ApiVersion": "2010-04-01"}
            await self._post(call["status_callback"], params)

    async def _post(self, url: str, params: dict[str, str]) -> int:
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                url, data=params, headers={"X-Twilio-Signature": signature}
            ) as resp:
                return resp.status
        except aiohttp.ClientError:
            return 0

    def listed(self, to: str | None, after: str | None) -> list[dict[str, Any]]:
        since = datetime.fromisoformat(after) if after else None
        return [
            m
            for m in reversed(self.messages)
            if (to is None or m["to"] == to)
            and (since is None or datetime.fromisoformat(m["created"]) >= since)
        ]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()


def _error(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def create_local_twilio_app(twilio: LocalTwilio) -> Litestar:
    """The local Twilio's HTTP app (serve it with uvicorn)."""
    base = "/2010-04-01/Accounts/{account_sid:str}/Messages.json"

    @post(base, status_code=201)
    async def create_message(request: Request[Any, Any, Any], account_sid: FromPath[str]) -> Response[Any]:
        if not twilio.authorized(request, account_sid):
            return Response(_error(401, 20003, "Authenticate"), status_code=401)
        if twilio.delay_seconds:
            await asyncio.sleep(twilio.delay_seconds)
        form = {key: str(value) for key, value in (await request.form()).items()}
        status, body = twilio.create(form)
        return Response(body, status_code=status)

    @get(base)
    async def list_messages(request: Request[Any, Any, Any], account_sid: FromPath[str]) -> Response[Any]:
        if not twilio.authorized(request, account_sid):
            return Response(_error(401, 20003, "Authenticate"), status_code=401)
        found = twilio.listed(request.query_params.get("To"), request.query_params.get("DateSent>"))
        page = {
            "messages": found,
            "page": 0,
            "page_size": len(found),
            "start": 0,
            "end": max(len(found) - 1, 0),
            "uri": request.url.path,
            "first_page_uri": request.url.path,
            "next_page_uri": None,
            "previous_page_uri": None,
        }
        return Response(page)

    @post("/2010-04-01/Accounts/{account_sid:str}/Calls.json", status_code=201)
    async def create_call(request: Request[Any, Any, Any], account_sid: FromPath[str]) -> Response[Any]:
        if not twilio.authorized(request, account_sid):
            return Response(_error(401, 20003, "Authenticate"), status_code=401)
        form = {key: str(value) for key, value in (await request.form()).items()}
        status, body = twilio.call(form)
        return Response(body, status_code=status)

    @get("/_local/messages")
    async def taken() -> list[dict[str, Any]]:
        return twilio.messages

    @get("/_local/calls")
    async def calls_made() -> list[dict[str, Any]]:
        return twilio.calls

    @delete("/_local/messages", status_code=204)
    async def forget() -> None:
        twilio.messages.clear()

    @post("/_local/faults", status_code=204)
    async def set_faults(data: JSONBody[dict[str, Any]]) -> None:
        twilio.faults = [int(status) for status in data.get("next", [])]
        twilio.delay_seconds = float(data.get("delay_seconds", 0))
        twilio.unreachable = set(data.get("unreachable", []))
        twilio.callbacks = bool(data.get("callbacks", True))

    return Litestar(
        route_handlers=[create_message, list_messages, create_call, taken, calls_made, forget, set_faults],
        on_shutdown=[twilio.close],
        openapi_config=None,
    )
