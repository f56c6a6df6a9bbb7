"""iCalendar (RFC 5545) out of the scheduler, with ``icalendar``: counsellors' feeds, the
``.ics`` of one appointment, and e-mail invitations (RFC 5546 ``METHOD:REQUEST`` / ``CANCEL``).

One event per item, whatever carries it: the same ``UID`` (``appointment-{id}@orchestrator``)
in the feed, the download and every invitation, ``SEQUENCE`` from the item's own change counter
(a move or a cancellation raises it, so calendar apps replace what they hold), ``DTSTAMP`` the
item's last change (a feed's bytes, hence its ETag, change only when the data does), local times
in the agency's zone with its ``VTIMEZONE``. Text is escaped by ``icalendar``: commas,
semicolons, backslashes and line breaks typed by a user stay inside their property value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress

ICS_MEDIA_TYPE = "text/calendar; charset=utf-8"


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    uid: str
    start: datetime
    end: datetime
    summary: str
    description: str
    sequence: int
    stamp: datetime  # the item's last change
    cancelled: bool = False
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Invitation:
    """Who an invitation is from (the agency, at the sender address) and to (the job seeker)."""

    organizer_email: str
    organizer_name: str
    attendee_email: str


def appointment_uid(appointment_id: object) -> str:
    return f"appointment-{appointment_id}@orchestrator"


def calendar_ics(
    events: Sequence[CalendarEvent],
    *,
    tz: str,
    method: str = "PUBLISH",
    name: str | None = None,
    uid: str | None = None,
    refresh: timedelta | None = None,
    invitation: Invitation | None = None,
) -> bytes:
    """``events`` as one iCalendar object in zone ``tz``. ``method``: PUBLISH (feeds and
    downloads), REQUEST or CANCEL (invitations, with ``invitation``'s organizer and attendee)."""
    zone = ZoneInfo(tz)
    cal = Calendar.new(
        organization="orchestrator",
        name=name,
        uid=uid or (f"calendar-{events[0].uid}" if events else "calendar@orchestrator"),
        refresh_interval=refresh,
        method=method,
    )
    for item in events:
        event = Event.new(
            uid=item.uid,
            stamp=item.stamp,
            start=item.start.astimezone(zone),
            end=item.end.astimezone(zone),
            summary=item.summary,
            description=item.description or None,
            location=item.location or None,
            sequence=item.sequence,
        )
        event.add("status", "CANCELLED" if item.cancelled else "CONFIRMED")
        if invitation is not None:
            event.add("organizer", _address(invitation.organizer_email, cn=invitation.organizer_name))
            event.add("attendee", _address(invitation.attendee_email, partstat="ACCEPTED", rsvp=False))
        cal.add_component(event)
    first, last = _date_range(events)
    cal.add_missing_timezones(first_date=first, last_date=last)
    return bytes(cal.to_ical())


def _address(email: str, **params: object) -> vCalAddress:
    return vCalAddress.new(email, **params)  # type: ignore[arg-type]


def _date_range(events: Sequence[CalendarEvent]) -> tuple[date, date]:
    """The dates the zone's VTIMEZONE must cover (a day either side; today with no events)."""
    if not events:
        today = datetime.now().astimezone().date()
        return today, today
    first = min(e.start for e in events).date() - timedelta(days=1)
    last = max(e.end for e in events).date() + timedelta(days=1)
    return first, last
