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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from orchestrator.auth import STAFF_ROLES, Principal, Role, require_in_agency
from orchestrator.db import UnitOfWork
from orchestrator.errors import Conflict, Forbidden, Unauthorized
from orchestrator.models import Agency, Appointment
from orchestrator.repositories.appointments import changed
from orchestrator.repositories.calendars import release_claim
from orchestrator.repositories.queue import appointment_label, local_day
from orchestrator.repositories.queue_policy import queue_settings
from orchestrator.repositories.writes import Write, write_together
from orchestrator.scheduling.transitions import APPOINTMENT
from orchestrator.services import audit, callbacks
from orchestrator.services.appointments import appointment_for
from orchestrator.services.commands import Actor, Channel, System, principal_of
from orchestrator.services.queue_common import agency_of, agency_tz, light_event, publish_change


@dataclass(frozen=True, slots=True)
class AppointmentStep:
    """A step of a booked person through the desk: ``check_in``, ``complete`` or ``no_show``."""

    actor: Actor
    channel: Channel
    appointment_id: uuid.UUID


async def check_in(uow: UnitOfWork, cmd: AppointmentStep, *, now: datetime) -> tuple[Appointment, str]:
    """The appointment holder has arrived. Open on the appointment's local day (agency time
    zone), from midnight until the appointment's end; only a ``confirmed`` appointment."""
    found, _ = await appointment_for(uow, cmd.appointment_id, cmd.actor, for_update=True)
    appointment, agency = found.appointment, found.agency
    tz = agency_tz(agency)
    move = APPOINTMENT.move("check_in", appointment.status)
    if local_day(tz, appointment.starts_at) != local_day(tz, now):
        raise Conflict("check-in is open on the day of the appointment only", code="not_today")
    if now >= appointment.ends_at:
        raise Conflict("the appointment is over; book a new one or take a ticket", code="too_late")
    change = changed(appointment, status=move.target, checked_in_at=now, updated_at=now)
    await _write(uow, cmd.actor.audit_name, "appointment.checked_in", appointment, change)
    return appointment, announce(uow, agency, appointment, move.live_event, now)


async def _write(
    uow: UnitOfWork, actor: str, action: str, appointment: Appointment, *writes: Write, **data: Any
) -> None:
    """The appointment's changes and their audit row, in one statement."""
    audited = audit.row(
        actor=actor, action=action, entity=appointment, agency_id=appointment.agency_id, **data
    )
    await write_together(uow.session, [*writes, audited])


async def _staff_appointment(uow: UnitOfWork, cmd: AppointmentStep) -> tuple[Appointment, Principal, Agency]:
    principal = principal_of(cmd.actor)
    if principal is None:  # the desk's steps: staff (or the system) only
        raise Unauthorized("a staff bearer token is required", code="unauthorized")
    found, _ = await appointment_for(uow, cmd.appointment_id, cmd.actor, for_update=True)
    appointment = found.appointment
    caller = require_in_agency(principal, appointment.agency_id, *STAFF_ROLES)
    if caller.role is Role.COUNSELLOR and caller.counsellor_id != appointment.counsellor_id:
        raise Forbidden("a counsellor acts only on its own appointments", code="not_yours")
    return appointment, caller, found.agency


async def _released(uow: UnitOfWork, appointment: Appointment, now: datetime) -> dict[str, Any]:
    """Give back the rest of the appointment's time (walk-ins, bookings); the change of its
    reference if the claim is gone."""
    if await release_claim(uow.session, appointment.claim_id, now):
        return {"claim_id": None}
    return {}


async def complete_appointment(
    uow: UnitOfWork, cmd: AppointmentStep, *, now: datetime
) -> tuple[Appointment, str]:
    appointment, caller, agency = await _staff_appointment(uow, cmd)
    move = APPOINTMENT.move("complete", appointment.status)
    released = await _released(uow, appointment, now)  # finishing early frees time for walk-ins
    change = changed(appointment, status=move.target, completed_at=now, updated_at=now, **released)
    seconds = int((now - (appointment.started_at or now)).total_seconds())
    await _write(uow, caller.actor, "appointment.completed", appointment, change, service_seconds=seconds)
    return appointment, announce(uow, agency, appointment, move.live_event, now)


async def no_show_appointment(
    uow: UnitOfWork, cmd: AppointmentStep, *, now: datetime
) -> tuple[Appointment, str]:
    """Nobody came: the rest of the appointment's time goes back to the pool (walk-ins, bookings)."""
    appointment, caller, agency = await _staff_appointment(uow, cmd)
    move = APPOINTMENT.move("no_show", appointment.status)
    if now < appointment.starts_at:
        raise Conflict("the appointment has not started yet", code="not_started")
    released = await _released(uow, appointment, now)
    change = changed(appointment, status=move.target, updated_at=now, **released)
    await _write(uow, caller.actor, "appointment.no_show", appointment, change)
    callbacks.plan_soon(uow, agency.id)  # the rest of its time may suit a waiting callback
    return appointment, announce(uow, agency, appointment, move.live_event, now)


def announce(
    uow: UnitOfWork, agency: Agency, appointment: Appointment, event_type: str, now: datetime
) -> str:
    """Tell consoles and boards (after commit) that the appointment moved; return its label.
    The event carries no counters: the queue refresh that follows publishes them
    (``services.queue_refresh``), so a check-in does not read the queue."""
    label = appointment_label(appointment, agency_tz(agency))
    payload = light_event(event_type, now, kind="appointment", id=str(appointment.id), label=label)
    publish_change(uow, agency.id, payload)
    return label


async def release_no_shows(uow: UnitOfWork, agency_id: uuid.UUID, *, now: datetime) -> int:
    """No-show backfill: a booked person not checked in ``no_show_grace_minutes`` after the
    start (the agency's queue policy; 0: off) is marked a no-show by the system, and the rest of
    the slot goes back to the pool — the next walk-in or callback. Returns how many."""
    agency = await agency_of(uow, agency_id)
    grace = queue_settings(agency.queue_policy).no_show_grace_minutes
    if grace <= 0:
        return 0
    overdue = await uow.session.scalars(
        select(Appointment)
        .where(
            Appointment.agency_id == agency_id,
            Appointment.status == "confirmed",
            Appointment.starts_at <= now - timedelta(minutes=grace),
            Appointment.ends_at > now,
        )
        .with_for_update(skip_locked=True)
    )
    released = 0
    for appointment in overdue:
        move = APPOINTMENT.move("no_show", appointment.status)
        appointment.status, appointment.updated_at = move.target, now
        if await release_claim(uow.session, appointment.claim_id, now):
            appointment.claim_id = None
        audit.record(
            uow,
            actor=System("release_no_shows").audit_name,
            action="appointment.no_show",
            entity=appointment,
            agency_id=agency.id,
            reason=f"not checked in {grace} min after the start: the time goes to the next person",
        )
        announce(uow, agency, appointment, move.live_event, now)
        released += 1
    if released:
        callbacks.plan_soon(uow, agency.id)
        uow.refresh_queue(agency.id)
    return released
