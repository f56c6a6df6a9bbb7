"""Who may act on an appointment: that agency's staff, or the job seeker holding its manage token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

from orchestrator.auth import STAFF_ROLES, Principal
from orchestrator.db import UnitOfWork
from orchestrator.errors import NotFound, Unauthorized
from orchestrator.models import Appointment


def new_manage_token() -> tuple[str, str]:
    """A fresh unguessable token and the hash the appointment keeps. The token itself is only
    kept inside an Idempotency-Key record (the replayable response), purged after 24 hours."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def appointment_for(
    uow: UnitOfWork,
    appointment_id: uuid.UUID,
    principal: Principal | None,
    manage_token: str | None,
    *,
    for_update: bool = False,
) -> tuple[Appointment, Principal | None]:
    """Load the appointment if the caller may act on it.

    Returns the staff principal, or None when the job seeker's manage token authorized it.
    Unknown id, other agency or wrong token → 404 (existence is never revealed); no
    credentials at all → 401.
    """
    if principal is None and not manage_token:
        raise Unauthorized(
            "a staff bearer token or the X-Manage-Token header is required", code="unauthorized"
        )
    appointment = await uow.session.get(Appointment, appointment_id, with_for_update=for_update)
    if appointment is None:
        raise NotFound(f"no appointment {appointment_id}", code="not_found")
    if (
        principal is not None
        and principal.role in STAFF_ROLES
        and principal.sees_agency(appointment.agency_id)
    ):
        return appointment, principal
    if manage_token and hmac.compare_digest(hash_token(manage_token), appointment.manage_token_hash):
        return appointment, None
    raise NotFound(f"no appointment {appointment_id}", code="not_found")
