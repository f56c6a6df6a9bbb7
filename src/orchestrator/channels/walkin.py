"""Walk-in queue, front desk, counsellor desk and the live display board (HTTP + SSE).

Handlers parse, call the queue use cases (:mod:`orchestrator.services.tickets`, ``desk``,
``arrivals``, ``queue_view``) and serialize. Roles: the agency's front desk, manager and admin
run the queue; a kiosk only issues tickets; a counsellor calls and acts for itself; the display
board and its event stream are public (numbers, desks and counters only).
"""

from __future__ import annotations

import html
import json
import secrets
import string
import time
import uuid
from collections.abc import AsyncIterator
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any

from litestar import MediaType, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from orchestrator import live
from orchestrator.auth import Principal, Role
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
from orchestrator.channels.openapi import NOTHING_TO_CALL, STAFF_READ, STAFF_WRITE
from orchestrator.db import unit_of_work
from orchestrator.deps import Deps
from orchestrator.models import Appointment
from orchestrator.schemas import to_struct
from orchestrator.schemas_queue import (
    AppointmentQueueRead,
    DeskRead,
    DeskUpdate,
    QueueRead,
    SkippedRead,
    TicketCreate,
    TicketRead,
    TicketTransfer,
    WorkRead,
)
from orchestrator.services import arrivals, desk, queue_view, tickets
from orchestrator.services.commands import Channel
from orchestrator.services.queue_common import TicketView

Dependencies = NamedDependency[Deps]
LastEventId = Annotated[str | None, HeaderParameter(name="Last-Event-ID", required=False)]

SSE_RETRY_MS = 1000  # how soon browsers reconnect


def _desk_channel(principal: Principal | None) -> Channel:
    """A kiosk is the walk-in channel; everyone else at the agency is the front desk."""
    return Channel.WALK_IN if principal is not None and principal.role is Role.KIOSK else Channel.FRONT_DESK


def _ticket(view: TicketView) -> TicketRead:
    return to_struct(
        TicketRead,
        view.ticket,
        has_phone=view.has_phone,
        position=view.position,
        estimated_wait_minutes=view.estimated_wait_minutes,
        service_seconds=view.service_seconds,
    )


def _appointment(appointment: Appointment, label: str) -> AppointmentQueueRead:
    return to_struct(AppointmentQueueRead, appointment, label=label)


# --- tickets --------------------------------------------------------------------------------


@post("/agencies/{agency_id:uuid}/tickets", status_code=HTTP_201_CREATED, responses=STAFF_WRITE)
async def issue_ticket(
    agency_id: Id,
    data: JSONBody[TicketCreate],
    uow: UoW,
    principal: Caller,
    clock: Clock,
    idempotency_scope: IdempotencyScope,
    idempotency_key: IdempotencyKey = None,
) -> Response[Any]:
    """Issue a walk-in ticket (front desk, manager, admin, kiosk). Supports ``Idempotency-Key``."""

    async def create() -> TicketRead:
        command = tickets.IssueTicket(
            actor=actor_of(principal),
            channel=_desk_channel(principal),
            agency_id=agency_id,
            service_id=data.service_id,
            language=data.language,
            priority=data.priority,
            needs=tuple(data.needs),
            preferred_counsellor_id=data.preferred_counsellor_id,
            name=data.job_seeker.name if data.job_seeker else None,
            phone=data.job_seeker.phone if data.job_seeker else None,
            outside_hours=data.outside_hours,
        )
        view = await tickets.issue_ticket(uow, command, now=clock())
        return _ticket(view)

    return await idempotent_create(uow, idempotency_scope, idempotency_key, data, create)


@get("/tickets/{ticket_id:uuid}", responses=STAFF_READ)
async def get_ticket(ticket_id: Id, uow: UoW, principal: Caller, clock: Clock) -> TicketRead:
    """One ticket with its position and estimated wait (agency staff)."""
    command = tickets.GetTicket(actor_of(principal), _desk_channel(principal), ticket_id)
    return _ticket(await tickets.get_ticket(uow, command, now=clock()))


def _action(name: str, doc: str) -> Any:
    action = name.replace("-", "_")

    async def handler(ticket_id: Id, uow: UoW, principal: Caller, clock: Clock) -> TicketRead:
        command = tickets.TicketAction(actor_of(principal), _desk_channel(principal), ticket_id, action)
        return _ticket(await tickets.act_on_ticket(uow, command, now=clock()))

    handler.__name__ = handler.__qualname__ = f"ticket_{action}"
    handler.__doc__ = doc
    return post(f"/tickets/{{ticket_id:uuid}}/{name}", status_code=HTTP_200_OK, responses=STAFF_WRITE)(
        handler
    )


recall_ticket = _action("recall", "Call the ticket again (not sooner than the policy's recall interval).")
start_ticket = _action("start", "The person is at the desk: claims the counsellor's time (409 if committed).")
complete_ticket = _action("complete", "Done; records the service duration.")
requeue_ticket = _action("requeue", "Nobody answered: back to the queue, calls counted.")
no_show_ticket = _action("no-show", "No-show, once called the policy's number of times.")
cancel_ticket = _action("cancel", "Cancel a waiting or called ticket.")


@post("/tickets/{ticket_id:uuid}/transfer", status_code=HTTP_200_OK, responses=STAFF_WRITE)
async def transfer_ticket(
    ticket_id: Id,
    data: JSONBody[TicketTransfer],
    uow: UoW,
    principal: Caller,
    clock: Clock,
) -> TicketRead:
    """Another service and/or counsellor; keeps the number and the original arrival time."""
    command = tickets.TransferTicket(
        actor_of(principal), _desk_channel(principal), ticket_id, data.service_id, data.counsellor_id
    )
    view = await tickets.transfer_ticket(uow, command, now=clock())
    return _ticket(view)


# --- counsellors ----------------------------------------------------------------------------


@post(
    "/counsellors/{counsellor_id:uuid}/next",
    status_code=HTTP_200_OK,
    responses={**STAFF_WRITE, **NOTHING_TO_CALL},
)
async def call_next(
    counsellor_id: Id, uow: UoW, principal: Caller, clock: Clock
) -> Response[WorkRead | None]:
    """Hand the counsellor their next person (200), or 204 when nothing suits them."""
    command = desk.CallNext(actor_of(principal), _desk_channel(principal), counsellor_id)
    view = await desk.call_next(uow, command, now=clock())
    if view is None:
        return Response(None, status_code=HTTP_204_NO_CONTENT)
    decision = view.decision
    body = WorkRead(
        kind=decision.kind.value,
        id=uuid.UUID(decision.item_id),
        reason=decision.reason.value,
        counsellor_id=view.counsellor.id,
        desk=view.counsellor.desk_label,
        service_id=view.service_id,
        label=view.label,
        number=view.ticket.number if view.ticket else None,
        call_count=view.ticket.call_count if view.ticket else None,
        starts_at=view.appointment.starts_at
        if view.appointment
        else (view.callback.scheduled_at if view.callback else None),
        phone=view.callback.phone if view.callback else None,
        detail=dict(decision.detail),
        skipped=[SkippedRead(uuid.UUID(s.ticket_id), s.reason.value) for s in decision.skipped],
    )
    return Response(body, status_code=HTTP_200_OK)


@post("/counsellors/{counsellor_id:uuid}/desk", status_code=HTTP_200_OK, responses=STAFF_WRITE)
async def set_desk(
    counsellor_id: Id,
    data: JSONBody[DeskUpdate],
    uow: UoW,
    principal: Caller,
    clock: Clock,
) -> DeskRead:
    """On desk (with a desk label) or off desk (the counsellor, front desk, manager, admin)."""
    command = desk.SetDesk(
        actor_of(principal), _desk_channel(principal), counsellor_id, data.on_desk, data.desk_label
    )
    counsellor = await desk.set_desk(uow, command, now=clock())
    return to_struct(DeskRead, counsellor, current=None)


# --- appointments in the same flow ----------------------------------------------------------


@post("/appointments/{appointment_id:uuid}/check-in", status_code=HTTP_200_OK, responses=STAFF_WRITE)
async def check_in(
    appointment_id: Id,
    uow: UoW,
    principal: Caller,
    clock: Clock,
    manage_token: ManageToken = None,
) -> AppointmentQueueRead:
    """The appointment holder has arrived (staff, or the job seeker's ``X-Manage-Token``)."""
    command = arrivals.AppointmentStep(
        actor_of(principal, manage_token), _desk_channel(principal), appointment_id
    )
    appointment, label = await arrivals.check_in(uow, command, now=clock())
    return _appointment(appointment, label)


@post("/appointments/{appointment_id:uuid}/complete", status_code=HTTP_200_OK, responses=STAFF_WRITE)
async def complete_appointment(
    appointment_id: Id, uow: UoW, principal: Caller, clock: Clock
) -> AppointmentQueueRead:
    """The appointment (handed out by call next) is over; unused booked time is given back."""
    command = arrivals.AppointmentStep(actor_of(principal), _desk_channel(principal), appointment_id)
    appointment, label = await arrivals.complete_appointment(uow, command, now=clock())
    return _appointment(appointment, label)


@post("/appointments/{appointment_id:uuid}/no-show", status_code=HTTP_200_OK, responses=STAFF_WRITE)
async def no_show_appointment(
    appointment_id: Id, uow: UoW, principal: Caller, clock: Clock
) -> AppointmentQueueRead:
    """Nobody came (after the start time); the rest of the booked time goes back to the pool."""
    command = arrivals.AppointmentStep(actor_of(principal), _desk_channel(principal), appointment_id)
    appointment, label = await arrivals.no_show_appointment(uow, command, now=clock())
    return _appointment(appointment, label)


# --- the queue ------------------------------------------------------------------------------


@get("/agencies/{agency_id:uuid}/queue", responses=STAFF_READ)
async def get_queue(agency_id: Id, uow: UoW, principal: Caller, clock: Clock) -> QueueRead:
    """Waiting tickets in call order with estimates, calls in progress, today's appointments,
    counsellors on desk (agency staff)."""
    view = await queue_view.get_queue(
        uow, queue_view.GetQueue(actor_of(principal), _desk_channel(principal), agency_id), now=clock()
    )
    snapshot = view.snapshot
    return QueueRead(
        agency_id=agency_id,
        now=snapshot.now,
        local_day=snapshot.day,
        snapshot_id=view.snapshot_id,
        waiting_count=snapshot.waiting_count(),
        typical_wait_minutes=snapshot.typical_wait_minutes(),
        waiting=[_ticket(v) for v in view.waiting],
        called=[_ticket(v) for v in view.called],
        appointments=[_appointment(a, label) for a, label in view.appointments],
        counsellors=[to_struct(DeskRead, c, current=current) for c, current in view.counsellors],
    )


def _message(event: str, event_id: str, payload: dict[str, Any]) -> ServerSentEventMessage:
    return ServerSentEventMessage(event=event, id=event_id, data=json.dumps(payload, separators=(",", ":")))


async def _events(
    deps: Deps, agency_id: uuid.UUID, last_id: str | None
) -> AsyncIterator[ServerSentEventMessage]:
    """``snapshot`` first (unless the client's Last-Event-ID can be replayed), then live events.

    Ends when the client disconnects (Litestar cancels the stream; ``finally`` runs) or after
    ``Deps.sse_max_seconds`` (the client reconnects with its Last-Event-ID and misses nothing).
    """
    keepalive, lifetime = deps.sse_keepalive_ms, deps.sse_max_seconds
    live.open_streams += 1
    try:
        yield ServerSentEventMessage(data=None, comment="orchestrator queue stream", retry=SSE_RETRY_MS)
        cursor = last_id if last_id and await live.retained(deps.redis, agency_id, last_id) else None
        if cursor is None:
            cursor = await live.latest_id(deps.redis, agency_id)  # before reading: nothing falls between
            async with unit_of_work(deps.sessions) as uow:
                snapshot = await queue_view.board_snapshot(uow, agency_id, now=deps.clock())
            yield _message("snapshot", cursor, snapshot)
        deadline = time.monotonic() + lifetime
        while time.monotonic() < deadline and not deps.closing.is_set():
            events = await live.read_after(
                deps.redis, agency_id, cursor, block_ms=keepalive, closing=deps.closing
            )
            if not events:
                yield ServerSentEventMessage(data=None, comment="keep-alive")
                continue
            for event_id, payload in events:
                cursor = event_id
                yield _message(str(payload.get("type") or "message"), event_id, payload)
    finally:
        live.open_streams -= 1


@get("/agencies/{agency_id:uuid}/queue/stream", media_type="text/event-stream", responses=STAFF_READ)
async def queue_stream(
    agency_id: Id,
    deps: Dependencies,
    last_event_id: LastEventId = None,
    last_event_id_query: Annotated[str | None, QueryParameter(name="last_event_id", required=False)] = None,
) -> ServerSentEvent:
    """Server-Sent Events for consoles and display boards (public: numbers, desks, counters).

    Events: ``snapshot`` (current state), then ``issued``, ``called``, ``recalled``, ``requeued``,
    ``started``, ``transferred``, ``completed``, ``cancelled``, ``no_show``, ``checked_in``,
    ``desk``. Each ``id`` is a Redis stream id; reconnect with ``Last-Event-ID`` (or
    ``?last_event_id=``) to replay what was missed.
    """
    async with unit_of_work(deps.sessions) as uow:
        await queue_view.public_agency(uow, agency_id)  # 404 before the stream starts
    last_id = last_event_id or last_event_id_query
    return ServerSentEvent(_events(deps, agency_id, last_id if live.valid_id(last_id) else None))


@lru_cache(maxsize=1)
def _board_template() -> string.Template:
    return string.Template((resources.files("orchestrator") / "templates" / "board.html").read_text("utf-8"))


@get("/agencies/{agency_id:uuid}/board", media_type=MediaType.HTML, include_in_schema=False)
async def board(agency_id: Id, uow: UoW) -> Response[str]:
    """The public display board of an agency (French, high contrast, live)."""
    agency = await queue_view.public_agency(uow, agency_id)
    nonce = secrets.token_urlsafe(16)
    page = _board_template().substitute(
        agency_id=str(agency.id),
        agency_name=html.escape(agency.name),
        timezone=html.escape(agency.timezone),
        nonce=nonce,
        stream_url=f"/api/v1/agencies/{agency.id}/queue/stream",
    )
    policy = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    )
    return Response(
        page,
        media_type=MediaType.HTML,
        headers={
            "Content-Security-Policy": policy,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


HANDLERS: list[Any] = [
    Router(
        path="/api/v1",
        tags=["walk-in"],
        route_handlers=[
            issue_ticket,
            get_ticket,
            recall_ticket,
            start_ticket,
            complete_ticket,
            requeue_ticket,
            no_show_ticket,
            cancel_ticket,
            transfer_ticket,
            call_next,
            set_desk,
            check_in,
            complete_appointment,
            no_show_appointment,
            get_queue,
            queue_stream,
        ],
    ),
    board,
]
