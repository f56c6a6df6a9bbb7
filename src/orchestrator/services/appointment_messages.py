"""The messages an appointment sends: confirmation, move, cancellation, and reminders.

Confirmations go to every channel the person consented to; reminders only to their preferred
channel, at the configured offsets moved out of quiet hours (``scheduling.reminders``). A move
replaces the pending reminders, a cancellation removes them. A booking made by SMS gets no
outbox copy of its confirmation, move or cancellation: the conversation's reply is that message.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update

from orchestrator import outbox
from orchestrator.db import UnitOfWork
from orchestrator.models import Agency, Appointment, JobSeeker, Notification
from orchestrator.repositories.writes import insert_together
from orchestrator.scheduling.reminders import reminder_times
from orchestrator.services.messages import appointment_text

REMINDER = "appointment.reminder"
REMINDER_DEADLINE = timedelta(minutes=15)  # a reminder is useless this close to the start


def _channels(seeker: JobSeeker) -> list[tuple[str, str]]:
    found = []
    if (phone := outbox.sms_recipient(seeker)) is not None:
        found.append(("sms", phone))
    if seeker.email and seeker.consent_email:
        found.append(("email", seeker.email))
    return found


def appointment_messages(
    uow: UnitOfWork,
    appointment: Appointment,
    seeker: JobSeeker,
    agency: Agency,
    event: str,
    *,
    now: datetime,
    token: str | None = None,
    by_sms: bool = False,
) -> list[outbox.Outgoing]:
    """The outbox rows of ``event`` ("confirmed", "rescheduled", "cancelled") and its reminders."""
    messaging = uow.messaging
    link = messaging.manage_link(token)
    key = f"appointment:{appointment.id}:{appointment.sequence}"

    def text(kind: str) -> str:
        return appointment_text(
            kind,
            language=seeker.language,
            agency=agency.name,
            tz=agency.timezone,
            starts_at=appointment.starts_at,
            mode=appointment.mode,
            link=link,
        )

    channels = _channels(seeker)
    rows = [
        outbox.message(
            agency_id=agency.id,
            kind=f"appointment.{event}",
            channel=channel,
            recipient=recipient,
            dedupe_key=f"{key}:{event}:{channel}",
            body=text(f"appointment.{event}"),
            expires_at=appointment.starts_at,
            appointment_id=appointment.id,
        )
        for channel, recipient in channels
        if not (by_sms and channel == "sms")
    ]
    preferred = [(c, r) for c, r in channels if c == seeker.preferred_channel]
    if event != "cancelled":
        for offset, when in reminder_times(
            appointment.starts_at,
            offsets=messaging.reminder_offsets,
            quiet=messaging.quiet,
            tz=agency.timezone,
            now=now,
        ):
            hours = int(offset.total_seconds() // 3600)
            rows += [
                outbox.message(
                    agency_id=agency.id,
                    kind=REMINDER,
                    channel=channel,
                    recipient=recipient,
                    dedupe_key=f"{key}:reminder:{hours}h:{channel}",
                    body=text(REMINDER),
                    send_after=when,
                    expires_at=appointment.starts_at - REMINDER_DEADLINE,
                    appointment_id=appointment.id,
                )
                for channel, recipient in preferred
            ]
    return rows


async def withdraw_reminders(uow: UnitOfWork, appointment: Appointment) -> None:
    """The pending reminders of ``appointment`` will not be sent (it moved, or is cancelled)."""
    await uow.session.execute(
        update(Notification)
        .where(
            Notification.appointment_id == appointment.id,
            Notification.kind == REMINDER,
            Notification.status == "pending",
        )
        .values(status="cancelled", last_error="appointment changed")
    )


async def notify(
    uow: UnitOfWork,
    appointment: Appointment,
    seeker: JobSeeker,
    agency: Agency,
    event: str,
    *,
    now: datetime,
    by_sms: bool = False,
) -> None:
    """After a move or a cancellation: withdraw the old reminders, record the new messages."""
    await withdraw_reminders(uow, appointment)
    rows = appointment_messages(uow, appointment, seeker, agency, event, now=now, by_sms=by_sms)
    await insert_together(uow.session, [row.insert for row in rows])
    outbox.send_after_commit(uow, rows)
