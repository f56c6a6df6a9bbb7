"""A counsellor's calendar feed: what their own calendar app shows of the scheduler's work.

The feed URL carries an unguessable token (a calendar app cannot send headers), stored hashed;
issuing a new one revokes the old. The feed holds the counsellor's appointments (cancelled ones
too, so subscribed apps remove them), scheduled callbacks, desk duty and callback hours (weekly
rules with a quota) and absences over a window around now,
with no job-seeker name or number: a service, a mode and a short reference.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from orchestrator.auth import AGENCY_ADMINS, Principal, Role
from orchestrator.db import UnitOfWork
from orchestrator.errors import NotFound
from orchestrator.ical import CalendarEvent, appointment_uid
from orchestrator.models import (
    Absence,
    Agency,
    Appointment,
    AvailabilityRule,
    CallbackRequest,
    Counsellor,
    Service,
)
from orchestrator.scheduling.rules import WeeklyRule, expand_rules
from orchestrator.scheduling.types import Mode
from orchestrator.services import admin, audit
from orchestrator.services.appointment_messages import appointment_event
from orchestrator.services.appointments import appointment_for, hash_token
from orchestrator.services.commands import Actor

PAST, AHEAD = timedelta(days=30), timedelta(days=90)


@dataclass(frozen=True, slots=True)
class Feed:
    counsellor: Counsellor
    agency: Agency
    items: list[CalendarEvent]


async def issue_token(uow: UnitOfWork, principal: Principal | None, counsellor_id: uuid.UUID) -> str:
    """A new feed token for the counsellor (themselves, their manager, an admin); the old stops."""
    counsellor, caller = await admin.visible_counsellor(
        uow, principal, counsellor_id, *AGENCY_ADMINS, Role.COUNSELLOR
    )
    token = secrets.token_urlsafe(32)
    counsellor.calendar_token_hash = hash_token(token)
    audit.record(
        uow,
        actor=caller.actor,
        action="calendar_token.issued",
        entity=counsellor,
        agency_id=counsellor.agency_id,
    )
    return token


MODES = {"in_person": "à l'agence", "phone": "par téléphone", "video": "en visio"}


async def feed(uow: UnitOfWork, token: str, *, now: datetime) -> Feed:
    """The feed behind ``token`` (404 for any other, including a revoked one)."""
    found = (
        await uow.session.execute(
            select(Counsellor, Agency)
            .join(Agency, Agency.id == Counsellor.agency_id)
            .where(Counsellor.calendar_token_hash == hash_token(token))
        )
    ).first()
    if found is None:
        raise NotFound("no calendar for this link", code="not_found")
    counsellor, agency = found
    since, until = now - PAST, now + AHEAD
    items: list[CalendarEvent] = []
    rows = await uow.session.execute(
        select(Appointment, Service.name)
        .join(Service, Service.id == Appointment.service_id)
        .where(
            Appointment.counsellor_id == counsellor.id,
            Appointment.starts_at < until,
            Appointment.ends_at > since,
        )
    )
    for appointment, service in rows:
        reference = str(appointment.id)[:8]
        items.append(
            CalendarEvent(
                uid=appointment_uid(appointment.id),
                start=appointment.starts_at,
                end=appointment.ends_at,
                summary=f"RDV {service} ({MODES.get(appointment.mode, appointment.mode)})",
                description=f"Réf. {reference}",
                sequence=appointment.sequence,
                stamp=appointment.updated_at,
                cancelled=appointment.status == "cancelled",
            )
        )
    calls = await uow.session.scalars(
        select(CallbackRequest).where(
            CallbackRequest.counsellor_id == counsellor.id,
            CallbackRequest.status.in_(("scheduled", "in_progress")),
            CallbackRequest.scheduled_at < until,
            CallbackRequest.scheduled_at > since,
        )
    )
    for call in calls:
        assert call.scheduled_at is not None
        items.append(
            CalendarEvent(
                uid=f"callback-{call.id}@orchestrator",
                start=call.scheduled_at,
                end=call.scheduled_at + timedelta(minutes=15),
                summary="Rappel téléphonique",
                description=f"Réf. {str(call.id)[:8]}",
                sequence=call.attempts,
                stamp=call.updated_at,
            )
        )
    absences = await uow.session.scalars(
        select(Absence).where(
            Absence.counsellor_id == counsellor.id, Absence.starts_at < until, Absence.ends_at > since
        )
    )
    for absence in absences:
        items.append(
            CalendarEvent(
                uid=f"absence-{absence.id}@orchestrator",
                start=absence.starts_at,
                end=absence.ends_at,
                summary="Absence",
                description="",
                sequence=0,
                stamp=absence.created_at,
            )
        )
    items += await _duty(uow, counsellor, agency.timezone, since, until)
    items.sort(key=lambda item: (item.start, item.uid))
    return Feed(counsellor, agency, items)


DUTIES = {"walk_in": "Accueil sans rendez-vous", "callback": "Rappels téléphoniques"}


async def _duty(
    uow: UnitOfWork, counsellor: Counsellor, tz: str, since: datetime, until: datetime
) -> list[CalendarEvent]:
    """The counsellor's desk duty and callback hours (weekly rules with a quota), day by day."""
    rules = await uow.session.scalars(
        select(AvailabilityRule).where(
            AvailabilityRule.counsellor_id == counsellor.id, AvailabilityRule.quota.is_not(None)
        )
    )
    first, last = since.date() - timedelta(days=1), until.date() + timedelta(days=1)
    items = []
    for rule in rules:
        weekly = WeeklyRule(
            rule.weekday,
            rule.start_time,
            rule.end_time,
            frozenset(Mode(m) for m in rule.modes),
            rule.quota,
            rule.valid_from,
            rule.valid_until,
        )
        for block in expand_rules([weekly], tz, first, last):
            start, end = block.interval.start, block.interval.end
            if end <= since or start >= until:
                continue
            items.append(
                CalendarEvent(
                    uid=f"duty-{rule.id}-{start:%Y%m%d}@orchestrator",
                    start=start,
                    end=end,
                    summary=DUTIES.get(rule.quota or "", f"Permanence {rule.quota}"),
                    description="",
                    sequence=0,
                    stamp=rule.created_at,
                )
            )
    return items


@dataclass(frozen=True, slots=True)
class AppointmentCalendar:
    event: CalendarEvent
    tz: str


async def appointment_calendar(
    uow: UnitOfWork, actor: Actor, appointment_id: uuid.UUID
) -> AppointmentCalendar:
    """One appointment as the calendar event its invitations carry (same ``UID`` and
    ``SEQUENCE``), for its job seeker (manage token) or the agency's staff."""
    found, _ = await appointment_for(uow, appointment_id, actor)
    event = appointment_event(found.appointment, found.agency, found.service.name)
    return AppointmentCalendar(event, found.agency.timezone)
