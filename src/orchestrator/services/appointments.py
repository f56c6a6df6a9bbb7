"""Who may act on an appointment: its agency's staff, its job seeker (manage token or verified
phone number), or the system."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime

from sqlalchemy import select

from orchestrator.auth import Principal, staff_of
from orchestrator.db import UnitOfWork
from orchestrator.errors import NotFound, Unauthorized
from orchestrator.models import Appointment, JobSeeker
from orchestrator.repositories.appointments import AppointmentRows, load_appointment
from orchestrator.scheduling.transitions import AppointmentStatus
from orchestrator.services.commands import Actor, ManageTokenHolder, PhoneOwner, Public, Staff, System


def new_manage_token() -> tuple[str, str]:
    """A fresh unguessable token and the hash the appointment keeps. The token itself is only
    kept inside an Idempotency-Key record (the replayable response), purged after 24 hours."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def appointment_for(
    uow: UnitOfWork, appointment_id: uuid.UUID, actor: Actor, *, for_update: bool = False
) -> tuple[AppointmentRows, Principal | None]:
    """Load the appointment, with its job seeker, agency and service (one query; objects not in
    the session: changes are written explicitly, see ``repositories.appointments``), if
    ``actor`` may act on it: that agency's staff, the holder of its manage token, the owner of
    its job seeker's phone number, or the system.

    Returns the staff principal (None for anyone else). Unknown id, other agency, wrong token or
    number → 404 (existence is never revealed); an anonymous caller → 401.
    """
    if isinstance(actor, Public) or (isinstance(actor, ManageTokenHolder) and not actor.token):
        raise Unauthorized(
            "a staff bearer token or the X-Manage-Token header is required", code="unauthorized"
        )
    found = await load_appointment(uow.session, appointment_id, for_update=for_update)
    if found is None:
        raise NotFound(f"no appointment {appointment_id}", code="not_found")
    appointment = found.appointment
    if isinstance(actor, Staff):
        if (staff := staff_of(actor.principal, appointment.agency_id)) is not None:
            return found, staff
    elif isinstance(actor, ManageTokenHolder):
        if hmac.compare_digest(hash_token(actor.token), appointment.manage_token_hash):
            return found, None
    elif isinstance(actor, PhoneOwner):
        if found.seeker.phone == actor.phone:
            return found, None
    elif isinstance(actor, System):
        return found, None
    raise NotFound(f"no appointment {appointment_id}", code="not_found")


async def appointment_by_token(uow: UnitOfWork, token: str) -> tuple[Appointment, JobSeeker]:
    """The appointment a manage link points to, and its job seeker (404 for any other token)."""
    found = (
        await uow.session.execute(
            select(Appointment, JobSeeker)
            .join(JobSeeker, JobSeeker.id == Appointment.job_seeker_id)
            .where(Appointment.manage_token_hash == hash_token(token))
        )
    ).first()
    if found is None:
        raise NotFound("no appointment for this link", code="not_found")
    return found[0], found[1]


async def latest_seeker(uow: UnitOfWork, agency_id: uuid.UUID, phone: str) -> JobSeeker | None:
    """The latest record of a phone number in the agency (name, needs, preferences): a person
    reaching us by SMS or phone is their number."""
    return await uow.session.scalar(
        select(JobSeeker)
        .where(JobSeeker.agency_id == agency_id, JobSeeker.phone == phone)
        .order_by(JobSeeker.created_at.desc())
        .limit(1)
    )


async def next_appointment(
    uow: UnitOfWork, agency_id: uuid.UUID, phone: str, now: datetime
) -> Appointment | None:
    """The next confirmed appointment in the agency booked with this phone number."""
    return await uow.session.scalar(
        select(Appointment)
        .join(JobSeeker, JobSeeker.id == Appointment.job_seeker_id)
        .where(
            Appointment.agency_id == agency_id,
            JobSeeker.phone == phone,
            Appointment.status == AppointmentStatus.CONFIRMED,
            Appointment.starts_at > now,
        )
        .order_by(Appointment.starts_at)
        .limit(1)
    )
