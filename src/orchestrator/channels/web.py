"""Web booking channel: availability, holds, appointments (HTTP).

Open to the public without a token (rate-limited per client); a staff bearer token of the
agency books on someone's behalf and is not rate-limited. Job seekers act on their appointment
with the ``X-Manage-Token`` header they received when booking.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Response, Router, get, post
from litestar.params import FromQuery, JSONBody, QueryParameter

from orchestrator.auth import Principal
from orchestrator.channels.http import (
    Caller,
    Clock,
    Config,
    Id,
    IdempotencyKey,
    IdempotencyScope,
    ManageToken,
    UoW,
    actor_of,
    booking_channel,
    idempotent_create,
)
from orchestrator.channels.openapi import problems
from orchestrator.errors import Invalid
from orchestrator.models import Appointment, Hold
from orchestrator.schemas import (
    AppointmentCreate,
    AppointmentRead,
    Cancel,
    HoldCreate,
    HoldRead,
    Reschedule,
    SlotRead,
    check_moment,
    to_struct,
)
from orchestrator.services import booking
from orchestrator.services.commands import Channel, JobSeekerDetails


class SlotsRead(msgspec.Struct):
    slots: list[SlotRead]


def _moment(field: str, raw: str) -> datetime:
    """ISO 8601 with an offset; a '+' that arrived unencoded (as a space) is forgiven."""
    text = raw.strip()
    if len(text) > 6 and text[-6] == " ":
        text = text[:-6] + "+" + text[-5:]
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Invalid(field, "not an ISO 8601 date-time") from exc
    if moment.tzinfo is None:
        raise Invalid(field, "needs a UTC offset (e.g. 2026-03-02T09:00:00+01:00)")
    try:
        return check_moment(field, moment)
    except ValueError as exc:  # "<field>: <message>"
        raise Invalid(field, str(exc).partition(": ")[2]) from None


def _window(field: str, raw: str) -> tuple[datetime, datetime]:
    start, sep, end = raw.partition("/")
    if not sep:
        raise Invalid(field, "expected <start>/<end> (ISO 8601 with offsets)")
    window = _moment(field, start), _moment(field, end)
    if window[0] >= window[1]:
        raise Invalid(field, "end must be after start")
    return window


def _booking(data: AppointmentCreate, principal: Principal | None) -> booking.BookAppointment:
    """The JSON body as a command: the web's only job."""
    seeker, needs = data.job_seeker, data.job_seeker.needs
    return booking.BookAppointment(
        actor=actor_of(principal),
        channel=booking_channel(principal, data.agency_id, data.channel),
        agency_id=data.agency_id,
        service_id=data.service_id,
        starts_at=data.starts_at,
        mode=data.mode,
        counsellor_id=data.counsellor_id,
        hold_id=data.hold_id,
        job_seeker=JobSeekerDetails(
            name=seeker.name,
            phone=seeker.phone,
            email=seeker.email,
            language=seeker.language,
            preferred_channel=seeker.preferred_channel,
            consent_sms=seeker.consent_sms,
            consent_email=seeker.consent_email,
            priority=needs.priority if needs else 0,
            accessibility=tuple(needs.accessibility) if needs else (),
            interpreter_language=needs.interpreter_language if needs else None,
            preferred_mode=needs.preferred_mode if needs else None,
            preferred_windows=tuple(needs.preferred_windows) if needs else (),
        ),
    )


def _read(appointment: Appointment, manage_token: str | None = None) -> AppointmentRead:
    return to_struct(AppointmentRead, appointment, manage_token=manage_token)


@get("/availability", responses=problems(401, 404, 422, 429))
async def availability(
    uow: UoW,
    principal: Caller,
    clock: Clock,
    settings: Config,
    agency_id: FromQuery[uuid.UUID],
    service_id: FromQuery[uuid.UUID],
    start: Annotated[str, QueryParameter(name="from")],
    end: Annotated[str, QueryParameter(name="to")],
    mode: Annotated[str | None, QueryParameter(pattern="^(in_person|phone|video)$")] = None,
    language: Annotated[str | None, QueryParameter(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")] = None,
    limit: Annotated[int | None, QueryParameter(ge=1, le=1000)] = None,
    prefer: Annotated[list[str] | None, QueryParameter(max_items=10)] = None,
) -> SlotsRead:
    """Free slots for a service between ``from`` and ``to`` (ISO 8601 with offset), earliest first.

    ``language`` ranks counsellors who speak it first; ``prefer=<start>/<end>`` (repeatable)
    puts slots inside the person's preferred times first; ``limit`` keeps the best N.
    """
    windows = [_window("prefer", raw) for raw in prefer or []]
    query = booking.FindSlots(
        actor=actor_of(principal),
        channel=booking_channel(principal, agency_id, None),
        agency_id=agency_id,
        service_id=service_id,
        start=_moment("from", start),
        end=_moment("to", end),
        mode=mode,
        language=language,
        limit=limit,
        preferred=tuple(windows),
    )
    await uow.reads_only()  # a search writes nothing: no BEGIN, no COMMIT
    slots = await booking.find_slots(uow, query, now=clock(), max_days=settings.availability_max_days)
    ids = {c: uuid.UUID(c) for c in {s.counsellor_id for s in slots}}  # a few counsellors, many slots
    return SlotsRead([SlotRead(s.start, s.end, ids[s.counsellor_id], s.mode.value, s.reason) for s in slots])


@post("/holds", status_code=201, responses=problems(401, 404, 409, 422, 429))
async def create_hold(
    data: JSONBody[HoldCreate],
    uow: UoW,
    principal: Caller,
    clock: Clock,
    settings: Config,
    idempotency_scope: IdempotencyScope,
    idempotency_key: IdempotencyKey = None,
) -> Response[HoldRead]:
    """Hold a slot for ``ORCHESTRATOR_HOLD_TTL_MINUTES`` while the person finishes booking."""

    async def create() -> HoldRead:
        command = booking.PlaceHold(
            actor=actor_of(principal),
            channel=booking_channel(principal, data.agency_id, None),
            agency_id=data.agency_id,
            service_id=data.service_id,
            starts_at=data.starts_at,
            mode=data.mode,
            counsellor_id=data.counsellor_id,
        )
        hold: Hold = await booking.place_hold(
            uow, command, now=clock(), ttl=timedelta(minutes=settings.hold_ttl_minutes)
        )
        return to_struct(HoldRead, hold)

    return await idempotent_create(uow, idempotency_scope, idempotency_key, data, create)


@post("/appointments", status_code=201, responses=problems(401, 404, 409, 422, 429))
async def create_appointment(
    data: JSONBody[AppointmentCreate],
    uow: UoW,
    principal: Caller,
    clock: Clock,
    idempotency_scope: IdempotencyScope,
    idempotency_key: IdempotencyKey = None,
) -> Response[AppointmentRead]:
    """Book an appointment; the response carries the ``manage_token`` (shown once).

    Conflict → 409 with ``alternatives``. Send an ``Idempotency-Key`` to retry safely.
    """

    async def create() -> AppointmentRead:
        appointment, token = await booking.book_appointment(uow, _booking(data, principal), now=clock())
        return _read(appointment, token)

    return await idempotent_create(uow, idempotency_scope, idempotency_key, data, create)


@get("/appointments/{appointment_id:uuid}", responses=problems(401, 404, 429))
async def get_appointment(
    appointment_id: Id, uow: UoW, principal: Caller, manage_token: ManageToken = None
) -> AppointmentRead:
    """An appointment, for its job seeker (``X-Manage-Token``) or the agency's staff."""
    command = booking.GetAppointment(actor_of(principal, manage_token), Channel.WEB, appointment_id)
    return _read(await booking.get_appointment(uow, command))


@post(
    "/appointments/{appointment_id:uuid}/cancel", status_code=200, responses=problems(401, 404, 409, 422, 429)
)
async def cancel_appointment(
    appointment_id: Id,
    uow: UoW,
    principal: Caller,
    clock: Clock,
    settings: Config,
    manage_token: ManageToken = None,
    data: JSONBody[Cancel | None] = None,
) -> AppointmentRead:
    """Cancel; job seekers only until the cut-off before the appointment (staff any time)."""
    command = booking.CancelAppointment(
        actor_of(principal, manage_token), Channel.WEB, appointment_id, reason=data.reason if data else None
    )
    appointment = await booking.cancel_appointment(
        uow, command, now=clock(), cutoff=timedelta(minutes=settings.cancel_cutoff_minutes)
    )
    return _read(appointment)


@post(
    "/appointments/{appointment_id:uuid}/reschedule",
    status_code=200,
    responses=problems(401, 404, 409, 422, 429),
)
async def reschedule_appointment(
    appointment_id: Id,
    data: JSONBody[Reschedule],
    uow: UoW,
    principal: Caller,
    clock: Clock,
    settings: Config,
    manage_token: ManageToken = None,
) -> AppointmentRead:
    """Move to a new time, atomically: on conflict (409 with alternatives) nothing changes."""
    command = booking.RescheduleAppointment(
        actor_of(principal, manage_token),
        Channel.WEB,
        appointment_id,
        starts_at=data.starts_at,
        counsellor_id=data.counsellor_id,
        mode=data.mode,
    )
    appointment = await booking.reschedule_appointment(
        uow, command, now=clock(), cutoff=timedelta(minutes=settings.cancel_cutoff_minutes)
    )
    return _read(appointment)


def router(rate_limit_middleware: Any | None) -> Router:
    return Router(
        path="/api/v1",
        tags=["booking"],
        route_handlers=[
            availability,
            create_hold,
            create_appointment,
            get_appointment,
            cancel_appointment,
            reschedule_appointment,
        ],
        middleware=[rate_limit_middleware] if rate_limit_middleware else [],
    )
