"""Appointments in the walk-in flow: check in on arrival, then complete or no-show.

State machine (anything else is a 409 ``bad_transition``): ``confirmed → checked_in`` (on its
local day, before its end) ``→ in_progress`` (handed out by call next,
:mod:`orchestrator.services.desk`) ``→ completed``; ``confirmed|checked_in|in_progress →
no_show`` once its start time has passed.

Each action locks the appointment row (``appointment_for(…, for_update=True)``) before checking
its status; call next starts an appointment with a conditional ``UPDATE … WHERE status =
'checked_in'``, so the two never both succeed on a stale status.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from redis.asyncio import Redis

from orchestrator.auth import STAFF_ROLES, Principal, Role, require_in_agency
from orchestrator.db import UnitOfWork
from orchestrator.errors import Conflict, Forbidden, NotFound
from orchestrator.models import Agency, Appointment
from orchestrator.repositories.queue import appointment_label, load_snapshot, local_day
from orchestrator.services import audit
from orchestrator.services.appointments import appointment_for
from orchestrator.services.queue_common import agency_of, agency_tz, event, publish, release_claim


async def check_in(
    uow: UnitOfWork,
    redis: Redis,
    principal: Principal | None,
    manage_token: str | None,
    appointment_id: uuid.UUID,
    *,
    now: datetime,
) -> tuple[Appointment, str]:
    """The appointment holder has arrived. Open on the appointment's local day (agency time
    zone), from midnight until the appointment's end; only a ``confirmed`` appointment."""
    appointment, staff = await appointment_for(uow, appointment_id, principal, manage_token, for_update=True)
    agency = await agency_of(uow, appointment.agency_id)
    tz = agency_tz(agency)
    if appointment.status != "confirmed":
        raise Conflict(
            f"the appointment is {appointment.status}; it cannot be checked in",
            code="bad_transition",
            status_now=appointment.status,
        )
    if local_day(tz, appointment.starts_at) != local_day(tz, now):
        raise Conflict("check-in is open on the day of the appointment only", code="not_today")
    if now >= appointment.ends_at:
        raise Conflict("the appointment is over; book a new one or take a ticket", code="too_late")
    appointment.status, appointment.checked_in_at, appointment.updated_at = "checked_in", now, now
    actor = staff.actor if staff is not None else "job_seeker:manage_token"
    audit.record(uow, actor=actor, action="appointment.checked_in", entity=appointment, agency_id=agency.id)
    return appointment, await _announce(uow, redis, agency, appointment, "checked_in", now)


async def _staff_appointment(
    uow: UnitOfWork, principal: Principal | None, appointment_id: uuid.UUID
) -> tuple[Appointment, Principal, Agency]:
    appointment, staff = await appointment_for(uow, appointment_id, principal, None, for_update=True)
    if staff is None:  # pragma: no cover - appointment_for without a token always returns staff
        raise NotFound(f"no appointment {appointment_id}", code="not_found")
    caller = require_in_agency(staff, appointment.agency_id, *STAFF_ROLES)
    if caller.role is Role.COUNSELLOR and caller.counsellor_id != appointment.counsellor_id:
        raise Forbidden("a counsellor acts only on its own appointments", code="not_yours")
    return appointment, caller, await agency_of(uow, appointment.agency_id)


async def complete_appointment(
    uow: UnitOfWork, redis: Redis, principal: Principal | None, appointment_id: uuid.UUID, *, now: datetime
) -> tuple[Appointment, str]:
    appointment, caller, agency = await _staff_appointment(uow, principal, appointment_id)
    if appointment.status != "in_progress":
        raise Conflict(
            f"the appointment is {appointment.status}; it cannot be completed",
            code="bad_transition",
            status_now=appointment.status,
        )
    appointment.status, appointment.completed_at, appointment.updated_at = "completed", now, now
    if await release_claim(uow, appointment.claim_id, now):  # finishing early frees time for walk-ins
        appointment.claim_id = None
    seconds = int((now - (appointment.started_at or now)).total_seconds())
    audit.record(
        uow,
        actor=caller.actor,
        action="appointment.completed",
        entity=appointment,
        agency_id=agency.id,
        service_seconds=seconds,
    )
    return appointment, await _announce(uow, redis, agency, appointment, "completed", now)


async def no_show_appointment(
    uow: UnitOfWork, redis: Redis, principal: Principal | None, appointment_id: uuid.UUID, *, now: datetime
) -> tuple[Appointment, str]:
    """Nobody came: the rest of the appointment's time goes back to the pool (walk-ins, bookings)."""
    appointment, caller, agency = await _staff_appointment(uow, principal, appointment_id)
    if appointment.status not in ("confirmed", "checked_in", "in_progress"):
        raise Conflict(
            f"the appointment is {appointment.status}; it cannot be a no-show",
            code="bad_transition",
            status_now=appointment.status,
        )
    if now < appointment.starts_at:
        raise Conflict("the appointment has not started yet", code="not_started")
    appointment.status, appointment.updated_at = "no_show", now
    if await release_claim(uow, appointment.claim_id, now):
        appointment.claim_id = None
    audit.record(
        uow, actor=caller.actor, action="appointment.no_show", entity=appointment, agency_id=agency.id
    )
    return appointment, await _announce(uow, redis, agency, appointment, "no_show", now)


async def _announce(
    uow: UnitOfWork, redis: Redis, agency: Agency, appointment: Appointment, event_type: str, now: datetime
) -> str:
    """Tell consoles and boards (after commit) that the appointment moved; return its label."""
    label = appointment_label(appointment, agency_tz(agency))
    snapshot = await load_snapshot(uow.session, agency, now)
    publish(
        uow,
        redis,
        agency.id,
        event(event_type, snapshot, kind="appointment", id=str(appointment.id), label=label),
    )
    return label
