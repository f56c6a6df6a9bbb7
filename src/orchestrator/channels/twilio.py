"""The official ``twilio`` SDK, wired to a base URL: Twilio's cloud in production, the local
Twilio (``channels/local_twilio.py``) in the demo and the tests. The SDK has no base-URL knob,
so a small ``AsyncTwilioHttpClient`` subclass rewrites ``https://api.twilio.com`` to it.

Errors become the ports' terms (``deps``): a refusal Twilio says is final (bad number,
unsubscribed, landline…) is permanent; 429 / 5xx / a refused connection are transient; a
timeout or a connection cut after the request left is *unknown* (the message may exist).
"""

from __future__ import annotations

import logging
import socket
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from orchestrator.deps import SentSms, SmsOutcomeUnknown, SmsRefused
from orchestrator.settings import Settings

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
LOCAL_ACCOUNT_SID = "AC" + "0" * 32
LOCAL_SENDER = "+33700000000"  # the demo agency's SMS number (``demo.DEMO_SMS_NUMBER``)
LOCAL_AUTH_TOKEN = "local-twilio-auth-token"  # noqa: S105 (the local Twilio's; never a real one)

# Twilio error codes after which the same message to the same number will never go through
PERMANENT_ERRORS = frozenset({21211, 21212, 21408, 21604, 21606, 21610, 21612, 21614, 30004, 30005, 30006})
TRANSIENT_ERRORS = frozenset({20429, 21611, 30001, 30003, 30008})


def permanent(code: int | None) -> bool:
    return code in PERMANENT_ERRORS


class BaseUrlHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The SDK's own aiohttp client, sending to ``api_url`` instead of Twilio's host."""

    def __init__(self, api_url: str, timeout: float = 10.0) -> None:
        super().__init__(timeout=timeout, logger=logging.getLogger("orchestrator.twilio"))
        self.api_url = api_url.rstrip("/")

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if url.startswith(TWILIO_API):
            url = self.api_url + url[len(TWILIO_API) :]
        return await super().request(method, url, *args, **kwargs)

    def log_request(self, kwargs: Any) -> None:  # the SDK logs bodies and numbers: never ours
        return None

    def log_response(self, status_code: int, response: Any) -> None:
        return None


def credentials(settings: Settings) -> tuple[str, str]:
    """(account SID, auth token): the configured ones, or the local Twilio's."""
    if settings.local_twilio:
        return LOCAL_ACCOUNT_SID, settings.twilio_auth_token or LOCAL_AUTH_TOKEN
    return settings.twilio_account_sid, settings.twilio_auth_token


def local_twilio_url(settings: Settings) -> str | None:
    """Where the local Twilio listens when no account is configured (None: Twilio's cloud):
    the configured API URL, else the port after the API's, else (taken) any free port."""
    if not settings.local_twilio:
        return None
    if settings.twilio_api_url.rstrip("/") != TWILIO_API:
        return settings.twilio_api_url.rstrip("/")
    return f"http://{settings.host}:{free_port(settings.host, settings.port + 1)}"


def free_port(host: str, wanted: int) -> int:
    """``wanted`` if nothing listens there, else a port the system gives."""
    with socket.socket() as probe:
        try:
            probe.bind((host, wanted))
            return wanted
        except OSError:
            probe.bind((host, 0))
            return int(probe.getsockname()[1])


class TwilioSms:
    """``SmsSender`` and ``VoiceDialer`` over ``twilio.rest.Client`` (``messages.create_async``,
    ``messages.list_async``, ``calls.create_async``)."""

    def __init__(self, settings: Settings, api_url: str | None = None) -> None:
        account_sid, auth_token = credentials(settings)
        self.http = BaseUrlHttpClient(api_url or settings.twilio_api_url)
        self.client = Client(
            account_sid,
            auth_token,
            http_client=self.http,
            environment={"TWILIO_ACCOUNT_SID": account_sid, "TWILIO_AUTH_TOKEN": auth_token},
        )
        self.sender: dict[str, str] = {}
        self.misconfigured = ""
        if settings.local_twilio and (api_url or settings.twilio_api_url).rstrip("/") == TWILIO_API:
            # never Twilio's cloud with the local credentials: texts wait (and expire) instead
            self.misconfigured = (
                "no Twilio account is configured: set ORCHESTRATOR_TWILIO_ACCOUNT_SID and _AUTH_TOKEN, "
                "or point ORCHESTRATOR_TWILIO_API_URL at a local Twilio (orchestrator local-twilio)"
            )
        elif settings.twilio_messaging_service_sid:
            self.sender = {"messaging_service_sid": settings.twilio_messaging_service_sid}
        elif settings.twilio_from or settings.local_twilio:
            self.sender = {"from_": settings.twilio_from or LOCAL_SENDER}
        else:
            self.misconfigured = "set ORCHESTRATOR_TWILIO_FROM or ORCHESTRATOR_TWILIO_MESSAGING_SERVICE_SID"
        if self.misconfigured:
            log.error("SMS cannot be sent: %s", self.misconfigured)

    async def send(self, to: str, body: str, *, status_callback: str | None) -> SentSms:
        if self.misconfigured:
            raise SmsRefused(None, False, self.misconfigured)  # transient: sent once configured
        extra: dict[str, Any] = {"status_callback": status_callback} if status_callback else {}
        try:
            message = await self.client.messages.create_async(to=to, body=body, **self.sender, **extra)
        except TwilioRestException as exc:
            code = exc.code if isinstance(exc.code, int) else None
            transient = exc.status == 429 or exc.status >= 500 or code in TRANSIENT_ERRORS
            raise SmsRefused(
                code or exc.status, not transient, exc.msg or "", number_is_unreachable=permanent(code)
            ) from None
        except aiohttp.ClientConnectorError as exc:  # never connected: nothing was sent
            raise SmsRefused(None, False, type(exc).__name__) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SmsOutcomeUnknown(type(exc).__name__) from None
        return SentSms(sid=str(message.sid), status=str(message.status or "queued"))

    async def find_sent(self, to: str, body: str, since: datetime) -> SentSms | None:
        if self.misconfigured:
            raise SmsOutcomeUnknown(self.misconfigured)
        try:
            found = await self.client.messages.list_async(
                to=to, date_sent_after=since - timedelta(minutes=1), page_size=100, limit=100
            )
        except (TwilioRestException, aiohttp.ClientError, TimeoutError) as exc:
            raise SmsOutcomeUnknown(type(exc).__name__) from None
        for message in found:
            if message.body == body:
                return SentSms(sid=str(message.sid), status=str(message.status or "queued"))
        return None

    async def bridge(self, to: str, person: str, caller_id: str, *, status_callback: str) -> str:
        """``VoiceDialer``: ``calls.create`` ringing ``to``, with inline TwiML that dials
        ``person`` once answered, and signed status callbacks."""
        if self.misconfigured:
            raise SmsOutcomeUnknown(self.misconfigured)
        twiml = VoiceResponse()
        twiml.say("Mise en relation.", language="fr-FR")
        twiml.dial(caller_id=caller_id).number(person)
        try:
            call = await self.client.calls.create_async(
                to=to,
                from_=caller_id,
                twiml=str(twiml),
                status_callback=status_callback,
                status_callback_event=["initiated", "ringing", "answered", "completed"],
            )
        except TwilioRestException as exc:
            raise SmsRefused(
                exc.code if isinstance(exc.code, int) else exc.status, True, exc.msg or ""
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SmsOutcomeUnknown(type(exc).__name__) from None
        return str(call.sid)

    async def close(self) -> None:
        await self.http.close()
