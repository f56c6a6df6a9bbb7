"""The messages an appointment sends: confirmation, move, cancellation, and reminders.

Confirmations go to every channel the person consented to; reminders only to their preferred
channel, at the configured offsets moved out of quiet hours (``scheduling.reminders``). A move
replaces the pending reminders, a cancellation removes them. A booking made by SMS gets no
outbox copy of its confirmation, move or cancellation: the conversation's reply is that message.

E-mails carry the same sentence as the text, the details, and (confirmation, move,
cancellation) an iCalendar invitation: ``METHOD:REQUEST`` then ``METHOD:CANCEL``, one ``UID`` for
the appointment's whole life and its ``SEQUENCE`` (raised by every change), so the person's
calendar app adds, moves and removes one event.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from orchestrator import outbox
from orchestrator.db import UnitOfWork
from orchestrator.ical import CalendarEvent, Invitation, appointment_uid, calendar_ics
from orchestrator.models import Agency, Appointment, JobSeeker
from orchestrator.repositories.appointments import REMINDER, AppointmentRows, reminders_withdrawn
from orchestrator.repositories.writes import Write
from orchestrator.scheduling.reminders import reminder_times
from orchestrator.services import messages
from orchestrator.services.messages import appointment_text

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
    service: str,
    now: datetime,
    token: str | None = None,
    by_sms: bool = False,
) -> list[outbox.Outgoing]:
    """The outbox rows of ``event`` ("confirmed", "rescheduled", "cancelled") and its reminders
    (``service``: the service's name, for e-mails)."""
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

    def row(kind: str, channel: str, recipient: str, dedupe: str, **when: Any) -> outbox.Outgoing:
        body, payload = text(kind), None
        if channel == "email":
            sender = messaging.email_from
            body, payload = _email(appointment, seeker, agency, kind, body, service, link, sender)
        return outbox.message(
            agency_id=agency.id,
            kind=kind,
            channel=channel,
            recipient=recipient,
            dedupe_key=dedupe,
            body=body,
            payload=payload,
            appointment_id=appointment.id,
            **when,
        )

    channels = _channels(seeker)
    deadline = appointment.starts_at
    rows = [
        row(f"appointment.{event}", channel, recipient, f"{key}:{event}:{channel}", expires_at=deadline)
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
                row(
                    REMINDER,
                    channel,
                    recipient,
                    f"{key}:reminder:{hours}h:{channel}",
                    send_after=when,
                    expires_at=appointment.starts_at - REMINDER_DEADLINE,
                )
                for channel, recipient in preferred
            ]
    return rows


def appointment_event(
    appointment: Appointment, agency: Agency, service: str, *, description: str = ""
) -> CalendarEvent:
    """The appointment as the one calendar event every copy of it shares (see the module doc)."""
    return CalendarEvent(
        uid=appointment_uid(appointment.id),
        start=appointment.starts_at,
        end=appointment.ends_at,
        summary=f"{agency.name} — {service}",
        description=description,
        sequence=appointment.sequence,
        stamp=appointment.updated_at,
        cancelled=appointment.status == "cancelled",
        location=agency.address if appointment.mode == "in_person" else None,
    )


def _email(
    appointment: Appointment,
    seeker: JobSeeker,
    agency: Agency,
    kind: str,
    sentence: str,
    service: str,
    link: str | None,
    sender: str,
) -> tuple[str, dict[str, Any]]:
    """The plain text of an appointment e-mail and its payload: subject, HTML and, except for
    reminders, the invitation (REQUEST, or CANCEL for a cancellation)."""
    lang = seeker.language
    when = messages.when(appointment.starts_at, agency.timezone, messages.language_of(lang))
    subject = messages.email_subject(kind, lang, agency=agency.name, when=when)
    details = [messages.email_line("service", lang, value=service)]
    if appointment.mode == "in_person" and agency.address:
        details.append(messages.email_line("where", lang, value=agency.address))
    payload: dict[str, Any] = {"subject": subject}
    if kind != REMINDER:
        cancel = kind == "appointment.cancelled"
        details.append(messages.email_line("cancellation" if cancel else "invitation", lang))
        payload["method"] = "CANCEL" if cancel else "REQUEST"
        payload["ics"] = calendar_ics(
            [appointment_event(appointment, agency, service, description=link or "")],
            tz=agency.timezone,
            method=payload["method"],
            invitation=Invitation(sender, agency.name, seeker.email or ""),
        ).decode()
    paragraphs = [sentence, "\n".join(details), messages.email_line("footer", lang, agency=agency.name)]
    payload["html"] = messages.email_html(paragraphs)
    return "\n\n".join(paragraphs) + "\n", payload


def notify(
    uow: UnitOfWork,
    found: AppointmentRows,
    event: str,
    *,
    now: datetime,
    by_sms: bool = False,
) -> list[Write]:
    """After a move or a cancellation: the writes that withdraw the old reminders and record
    the new messages (sent after commit)."""
    appointment = found.appointment
    rows = appointment_messages(
        uow,
        appointment,
        found.seeker,
        found.agency,
        event,
        service=found.service.name,
        now=now,
        by_sms=by_sms,
    )
    outbox.send_after_commit(uow, rows)
    return [reminders_withdrawn(appointment.id), *(message.row for message in rows)]
