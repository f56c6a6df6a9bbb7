"""Transactional outbox: a notification row is written in the same transaction as the change
that causes it, with its text already rendered (body, encoding, segments) and its deadline.
Sending happens after commit only: :func:`send_after_commit` enqueues the arq job of the SMS
and e-mails due now, and the sweeper (``tasks.sweep_outbox``) picks up whatever is due later or was lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table

from orchestrator.db import UnitOfWork
from orchestrator.models import JobSeeker, Notification
from orchestrator.repositories.writes import NewRow, write_together
from orchestrator.scheduling.sms import shape

SEND_JOB = "send_notification"
NOTIFICATIONS = cast(Table, Notification.__table__)


def sms_recipient(job_seeker: JobSeeker | None) -> str | None:
    """The phone number we may text, or None (no number, no consent, opted out)."""
    if job_seeker is None or not job_seeker.phone or job_seeker.opted_out_sms:
        return None
    return job_seeker.phone if job_seeker.consent_sms or job_seeker.preferred_channel == "sms" else None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to record: its row, and whether it should be sent right after commit."""

    id: uuid.UUID
    channel: str
    row: NewRow
    due_now: bool


def message(
    *,
    agency_id: uuid.UUID,
    kind: str,
    channel: str,
    recipient: str,
    dedupe_key: str,
    body: str,
    payload: dict[str, Any] | None = None,
    send_after: datetime | None = None,
    expires_at: datetime | None = None,
    appointment_id: uuid.UUID | None = None,
    ticket_id: uuid.UUID | None = None,
) -> Outgoing:
    """One message (rendered ``body``); the same ``dedupe_key`` is recorded once."""
    sms = shape(body)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "agency_id": agency_id,
        "kind": kind,
        "channel": channel,
        "recipient": recipient,
        "dedupe_key": dedupe_key,
        "payload": payload or {},
        "body": body,
        "encoding": sms.encoding if channel == "sms" else None,
        "segments": sms.segments if channel == "sms" else None,
        "expires_at": expires_at,
        "appointment_id": appointment_id,
        "ticket_id": ticket_id,
    }
    if send_after is not None:
        values["next_attempt_at"] = send_after
    row = NewRow(NOTIFICATIONS, values, skip_duplicate=("dedupe_key",))
    return Outgoing(values["id"], channel, row, due_now=send_after is None)


def send_after_commit(uow: UnitOfWork, messages: Iterable[Outgoing]) -> None:
    """Enqueue one send job for the messages of this transaction due now, once it has committed
    (a row that lost its dedupe race does not exist: the job finds nothing for it)."""
    due = [str(outgoing.id) for outgoing in messages if outgoing.due_now]
    if due:
        uow.enqueue(SEND_JOB, *due, job_id=job_id(due[0], 0))


def job_id(notification_id: uuid.UUID | str, attempts: int) -> str:
    """A send job is named by its first message and that message's attempt: enqueuing the same
    one twice runs it once."""
    return f"notify:{notification_id}:{attempts}"


async def record(uow: UnitOfWork, outgoing: Outgoing) -> bool:
    """Write one message now and send it after commit. Returns True if it is new."""
    new = bool(await write_together(uow.session, [outgoing.row]))
    if new:
        send_after_commit(uow, [outgoing])
    return new
