"""Transactional outbox: a notification row is written in the same transaction as the change
that causes it. Sending (arq job → Twilio/e-mail adapter, sweeper for rows left pending) reads
these rows after commit; nothing is sent from inside a request."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import Insert, insert

from orchestrator.db import UnitOfWork
from orchestrator.models import JobSeeker, Notification


def sms_recipient(job_seeker: JobSeeker | None) -> str | None:
    """The phone number we may text, or None (no number, no consent, opted out)."""
    if job_seeker is None or not job_seeker.phone or job_seeker.opted_out_sms:
        return None
    return job_seeker.phone if job_seeker.consent_sms or job_seeker.preferred_channel == "sms" else None


def message(
    *,
    agency_id: uuid.UUID,
    kind: str,
    channel: str,
    recipient: str,
    dedupe_key: str,
    payload: dict[str, Any],
    send_after: datetime | None = None,
    appointment_id: uuid.UUID | None = None,
    ticket_id: uuid.UUID | None = None,
) -> Insert:
    """The insert of one message; the same ``dedupe_key`` is recorded once."""
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "agency_id": agency_id,
        "kind": kind,
        "channel": channel,
        "recipient": recipient,
        "dedupe_key": dedupe_key,
        "payload": payload,
        "appointment_id": appointment_id,
        "ticket_id": ticket_id,
    }
    if send_after is not None:
        values["next_attempt_at"] = send_after
    return insert(Notification).values(**values).on_conflict_do_nothing(index_elements=["dedupe_key"])


async def record(uow: UnitOfWork, **fields: Any) -> bool:
    """Queue one message (see :func:`message`). Returns True if new."""
    result = await uow.session.execute(message(**fields))
    return bool(result.rowcount)  # type: ignore[attr-defined]
