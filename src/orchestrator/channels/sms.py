"""SMS channel: Twilio's webhooks (inbound texts, delivery status) and the outbox view.

Every webhook is checked with the SDK's ``RequestValidator`` against the URL Twilio was given:
``ORCHESTRATOR_PUBLIC_BASE_URL`` + path + query — never the Host a proxy shows us — over every
form parameter. Invalid or missing signature → 403, nothing stored. Inbound texts are answered
with TwiML (``MessagingResponse``); a retried ``MessageSid`` gets the same answer.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.params import QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from orchestrator.channels.http import Caller, Clock, Config, Id, UoW
from orchestrator.channels.openapi import problems
from orchestrator.channels.twilio import credentials, permanent
from orchestrator.errors import Forbidden, Invalid
from orchestrator.services import notifications
from orchestrator.services.sms_conversation import ConversationPolicy, InboundSms, handle_sms
from orchestrator.settings import Settings

FORM = "application/x-www-form-urlencoded"


async def verified_form(request: Request[Any, Any, Any], settings: Settings) -> Any:
    """The webhook's form parameters, if ``X-Twilio-Signature`` signs them (else 403)."""
    signature = request.headers.get("x-twilio-signature")
    if not signature or not request.headers.get("content-type", "").startswith(FORM):
        raise Forbidden("missing Twilio signature", code="bad_signature")
    form = await request.form()
    url = settings.public_base_url.rstrip("/") + request.url.path
    if query := request.scope.get("query_string", b"").decode("latin-1"):
        url += "?" + query
    if not RequestValidator(credentials(settings)[1]).validate(url, form, signature):
        raise Forbidden("invalid Twilio signature", code="bad_signature")
    return form


def _field(form: Any, name: str, *, required: bool = True) -> str:
    value = form.get(name)
    if isinstance(value, str) and value.strip():
        return value.strip()
    if required:
        raise Invalid(name, "required")
    return ""


@post(
    "/webhooks/twilio/sms",
    status_code=200,
    media_type="application/xml",
    responses=problems(400, 403),
    summary="Twilio inbound SMS webhook (signed)",
)
async def inbound_sms(
    request: Request[Any, Any, Any], uow: UoW, settings: Config, clock: Clock
) -> Response[str]:
    """A text from a job seeker: answered with TwiML in the same HTTP exchange."""
    form = await verified_form(request, settings)
    phone = _field(form, "From")
    if not phone.startswith("+") or not phone[1:].isdigit():
        raise Invalid("From", "an E.164 phone number is required")
    sms = InboundSms(
        message_sid=_field(form, "MessageSid"),
        phone=phone,
        to=_field(form, "To"),
        body=_field(form, "Body", required=False),
        opt_out_type=_field(form, "OptOutType", required=False).upper() or None,
    )
    answer = await handle_sms(uow, sms, now=clock(), policy=_policy(settings))
    twiml = MessagingResponse()
    if answer:
        twiml.message(answer)
    return Response(str(twiml), media_type="application/xml")


def _policy(settings: Settings) -> ConversationPolicy:
    return ConversationPolicy(
        hold_ttl=timedelta(minutes=settings.hold_ttl_minutes),
        cutoff=timedelta(minutes=settings.cancel_cutoff_minutes),
        inbound_per_hour=settings.sms_inbound_per_number_per_hour,
        max_days=settings.availability_max_days,
    )


@post(
    "/webhooks/twilio/status",
    status_code=HTTP_204_NO_CONTENT,
    responses=problems(400, 403),
    summary="Twilio message status callback (signed)",
)
async def message_status(
    request: Request[Any, Any, Any],
    uow: UoW,
    settings: Config,
    clock: Clock,
    n: Annotated[uuid.UUID | None, QueryParameter(description="our message id (set when sending)")] = None,
) -> None:
    """queued → sent → delivered / undelivered / failed (+ ErrorCode); a status never goes back."""
    form = await verified_form(request, settings)
    raw_code = _field(form, "ErrorCode", required=False)
    if raw_code and not raw_code.isdigit():
        raise Invalid("ErrorCode", "must be a number")
    code = int(raw_code) if raw_code else None
    await notifications.record_status(
        uow,
        sid=_field(form, "MessageSid"),
        status=_field(form, "MessageStatus").lower(),
        error_code=code,
        notification_id=n,
        now=clock(),
        permanent=permanent(code),
    )


class MessageRead(msgspec.Struct):
    id: uuid.UUID
    kind: str
    channel: str
    recipient: str
    status: str
    body: str | None
    encoding: str | None
    segments: int | None
    attempts: int
    next_attempt_at: datetime
    sent_at: datetime | None
    provider_sid: str | None
    error_code: int | None
    last_error: str | None


class MessagesRead(msgspec.Struct):
    counts: dict[str, int]  # by status: the backlog is counts["pending"]
    messages: list[MessageRead]


@get(
    "/api/v1/agencies/{agency_id:uuid}/messages",
    responses=problems(401, 403, 404),
    summary="The agency's outbox: messages sent, waiting or dropped (staff)",
)
async def list_messages(
    agency_id: Id,
    uow: UoW,
    principal: Caller,
    status: Annotated[str | None, QueryParameter(description="only this status")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
) -> MessagesRead:
    """What the agency sent or will send, newest first, with counts by status (the backlog)."""
    counts, rows = await notifications.outbox_view(uow, principal, agency_id, status=status, limit=limit)
    return MessagesRead(counts=counts, messages=[msgspec.convert(row, MessageRead) for row in rows])


HANDLERS = [Router(path="/", tags=["sms"], route_handlers=[inbound_sms, message_status, list_messages])]
