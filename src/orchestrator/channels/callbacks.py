"""Callback channel (HTTP): ask to be called back, follow and cancel the request, and the
counsellor's side (start the call, record its outcome). Public requests are rate-limited per
client like web booking; the job seeker acts with the ``X-Manage-Token`` they received."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Response, Router, get, post
from litestar.params import JSONBody, QueryParameter

from orchestrator.channels.http import (
    Caller,
    Clock,
    Id,
    IdempotencyKey,
    IdempotencyScope,
    ManageToken,
    UoW,
    actor_of,
    idempotent_create,
)
from orchestrator.channels.openapi import problems
from orchestrator.models import CallbackRequest
from orchestrator.schemas import CallbackCreate, CallbackOutcome, CallbackRead
from orchestrator.services import callbacks
from orchestrator.services.commands import Channel, Staff


def _read(request: CallbackRequest, *, staff: bool, token: str | None = None) -> CallbackRead:
    return CallbackRead(
        id=request.id,
        agency_id=request.agency_id,
        status=request.status,
        channel=request.channel,
        service_id=request.service_id,
        expected_at=request.scheduled_at,
        deadline_at=request.deadline_at,
        attempts=request.attempts,
        counsellor_id=request.counsellor_id if staff else None,
        placement_reason=request.placement_reason if staff else None,
        outcome=request.outcome,
        phone=request.phone if staff else None,
        call_status=request.call_status if staff else None,
        manage_token=token,
    )


@post("/callbacks", status_code=201, responses=problems(401, 404, 409, 422, 429))
async def request_callback(
    data: JSONBody[CallbackCreate],
    uow: UoW,
    principal: Caller,
    clock: Clock,
    idempotency_scope: IdempotencyScope,
    idempotency_key: IdempotencyKey = None,
) -> Response[Any]:
    """Ask to be called back. One active request per number and agency: asking again updates it
    (then no new ``manage_token`` is given). The call is placed at once when a counsellor can take
    it (``expected_at``), and the person is told by SMS."""
    actor = actor_of(principal)

    async def create() -> CallbackRead:
        command = callbacks.RequestCallback(
            actor,
            Channel.FRONT_DESK if isinstance(actor, Staff) else Channel.WEB,
            data.agency_id,
            data.phone,
            service_id=data.service_id,
            language=data.language,
            reason=data.reason,
            needs=tuple(data.needs),
            windows=tuple((w.starts_at, w.ends_at) for w in data.windows),
            name=data.name,
        )
        asked = await callbacks.request_callback(uow, command, now=clock())
        return _read(asked.request, staff=isinstance(actor, Staff), token=asked.manage_token)

    return await idempotent_create(uow, idempotency_scope, idempotency_key, data, create)


@get("/callbacks/{callback_id:uuid}", responses=problems(401, 404, 429))
async def get_callback(
    callback_id: Id, uow: UoW, principal: Caller, manage_token: ManageToken = None
) -> CallbackRead:
    """A callback request, for its job seeker (``X-Manage-Token``) or the agency's staff."""
    actor = actor_of(principal, manage_token)
    request = await callbacks.get_callback(uow, callbacks.GetCallback(actor, Channel.WEB, callback_id))
    return _read(request, staff=isinstance(actor, Staff))


@post("/callbacks/{callback_id:uuid}/cancel", status_code=200, responses=problems(401, 404, 409, 429))
async def cancel_callback(
    callback_id: Id, uow: UoW, principal: Caller, clock: Clock, manage_token: ManageToken = None
) -> CallbackRead:
    """Cancel the request (its reserved time is released at once)."""
    actor = actor_of(principal, manage_token)
    command = callbacks.CancelCallback(actor, Channel.WEB, callback_id)
    return _read(await callbacks.cancel_callback(uow, command, now=clock()), staff=isinstance(actor, Staff))


@get("/agencies/{agency_id:uuid}/callbacks", responses=problems(401, 403, 404))
async def list_callbacks(
    agency_id: Id,
    uow: UoW,
    principal: Caller,
    status: Annotated[
        str | None,
        QueryParameter(pattern="^(requested|scheduled|in_progress|completed|failed|cancelled)$"),
    ] = None,
    counsellor_id: Annotated[uuid.UUID | None, QueryParameter()] = None,
) -> list[CallbackRead]:
    """The agency's callbacks, planned ones first by expected time (staff)."""
    command = callbacks.ListCallbacks(actor_of(principal), agency_id, status, counsellor_id)
    return [_read(r, staff=True) for r in await callbacks.list_callbacks(uow, command)]


@post("/callbacks/{callback_id:uuid}/start", status_code=200, responses=problems(401, 403, 404, 409))
async def start_callback(callback_id: Id, uow: UoW, principal: Caller, clock: Clock) -> CallbackRead:
    """The counsellor starts the call (``call next`` also starts a due one)."""
    command = callbacks.StartCallback(actor_of(principal), Channel.VOICE, callback_id)
    return _read(await callbacks.start_callback(uow, command, now=clock()), staff=True)


@post("/callbacks/{callback_id:uuid}/outcome", status_code=200, responses=problems(401, 403, 404, 409, 422))
async def record_outcome(
    callback_id: Id, data: JSONBody[CallbackOutcome], uow: UoW, principal: Caller, clock: Clock
) -> CallbackRead:
    """``reached``, ``no_answer`` / ``voicemail`` (tried again later while attempts are left),
    ``wrong_number``; with a short note."""
    command = callbacks.RecordOutcome(
        actor_of(principal), Channel.VOICE, callback_id, data.outcome, data.note
    )
    return _read(await callbacks.record_outcome(uow, command, now=clock()), staff=True)


@post("/callbacks/{callback_id:uuid}/dial", status_code=202, responses=problems(401, 403, 404, 409))
async def dial(callback_id: Id, uow: UoW, principal: Caller, clock: Clock) -> CallbackRead:
    """Click-to-call: the app rings the counsellor's phone, then connects them to the person
    (``call_status`` follows Twilio's call status callbacks)."""
    command = callbacks.DialCallback(actor_of(principal), Channel.VOICE, callback_id)
    return _read(await callbacks.dial_callback(uow, command, now=clock()), staff=True)


def router(rate_limit_middleware: Any | None) -> Router:
    return Router(
        path="/api/v1",
        tags=["callbacks"],
        route_handlers=[request_callback, get_callback, cancel_callback],
        middleware=[rate_limit_middleware] if rate_limit_middleware else [],
    )


STAFF_HANDLERS = [
    Router(
        path="/api/v1",
        tags=["callbacks"],
        route_handlers=[list_callbacks, start_callback, record_outcome, dial],
    )
]
