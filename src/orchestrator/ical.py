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
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone, TimezoneDaylight, TimezoneStandard, vCalAddress

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
    downloads), REQUEST or CANCEL (invitations, with ``invitation``'s organizer and attendee).

    The calendar's own lines, its VTIMEZONE and each VEVENT are rendered by ``icalendar`` and
    kept (``lru_cache``): a feed polled again renders only the events that changed."""
    cal = Calendar.new(
        organization="orchestrator",
        name=name,
        uid=uid or (f"calendar-{events[0].uid}" if events else "calendar@orchestrator"),
        refresh_interval=refresh,
        method=method,
    )
    head, end = cal.to_ical().split(b"END:VCALENDAR")
    first, last = _date_range(events)
    parts = [head, _vtimezone_ics(tz, first, last)]
    parts += [_event_ics(item, tz, invitation) for item in events]
    return b"".join([*parts, b"END:VCALENDAR", end])


@lru_cache(maxsize=50_000)
def _event_ics(item: CalendarEvent, tz: str, invitation: Invitation | None) -> bytes:
    event = Event.new(
        uid=item.uid,
        stamp=item.stamp,
        start=_local(item.start, ZoneInfo(tz)),
        end=_local(item.end, ZoneInfo(tz)),
        summary=item.summary,
        description=item.description or None,
        location=item.location or None,
        sequence=item.sequence,
    )
    event.add("status", "CANCELLED" if item.cancelled else "CONFIRMED")
    if invitation is not None:
        event.add("organizer", _address(invitation.organizer_email, cn=invitation.organizer_name))
        event.add("attendee", _address(invitation.attendee_email, partstat="ACCEPTED", rsvp=False))
    return bytes(event.to_ical())


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    """``moment`` in the agency's local time, or in UTC when that local time happens twice (the
    hour the clocks go back): ``DTSTART;TZID=…`` cannot say which one, ``…Z`` can."""
    local = moment.astimezone(zone)
    twin = local.replace(fold=1 - local.fold)
    return moment.astimezone(UTC) if twin.utcoffset() != local.utcoffset() else local


@lru_cache(maxsize=1024)
def _vtimezone_ics(tz: str, first: date, last: date) -> bytes:
    rules = vtimezone(tz, first.year, last.year)
    if rules is None:  # a zone whose rules change over these years: its transitions one by one
        rules = Timezone.from_tzid(tz, first_date=first, last_date=last)
    return bytes(rules.to_ical())


_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_STEP = timedelta(minutes=15)


@lru_cache(maxsize=256)
def vtimezone(tz: str, first_year: int, last_year: int) -> Timezone | None:
    """``tz``'s VTIMEZONE as yearly rules (``RRULE:FREQ=YEARLY;BYMONTH=…;BYDAY=…``), the form
    Outlook and Google write and every reader understands (dateutil, behind vobject, ignores the
    ``RDATE`` lists of icalendar's own VTIMEZONEs). None when the zone's rules differ between
    ``first_year - 1`` and ``last_year + 1``; then the caller lists the transitions instead."""
    zone = ZoneInfo(tz)
    years = range(first_year - 1, last_year + 2)
    found = [_transitions(zone, year) for year in years]
    rules = [[_rule(at, before) for at, before, _, _ in year] for year in found]
    if any(r != rules[0] for r in rules):
        return None
    component = Timezone()
    component.add("tzid", tz)
    if not found[0]:  # no daylight saving time: one standard offset
        offset = datetime(years[0], 1, 1, tzinfo=UTC).astimezone(zone).utcoffset()
        epoch = datetime(1970, 1, 1, tzinfo=UTC).replace(tzinfo=None)  # local wall-clock: naive
        component.add_component(_onset(TimezoneStandard(), epoch, offset, offset, zone, None))
        return component
    for at, before, after, dst in found[0]:
        onset = TimezoneDaylight() if dst else TimezoneStandard()
        month, byday = _rule(at, before)
        wall = (at + before).replace(tzinfo=None)
        component.add_component(_onset(onset, _first_onset(month, byday, wall), before, after, zone, at))
        onset.add("rrule", {"freq": "yearly", "bymonth": month, "byday": byday})
    return component


def _transitions(zone: ZoneInfo, year: int) -> list[tuple[datetime, timedelta, timedelta, bool]]:
    """(UTC instant, offset before, offset after, daylight after) of each change in ``year``:
    day by day, then to the quarter hour within the day of a change."""
    found = []
    day = datetime(year, 1, 1, tzinfo=UTC)
    offset = zone.utcoffset(day.astimezone(zone).replace(tzinfo=None))
    while day.year == year:
        following = day + timedelta(days=1)
        if following.astimezone(zone).utcoffset() != offset:
            moment = day
            while moment.astimezone(zone).utcoffset() == offset:
                moment += _STEP
            local = moment.astimezone(zone)
            after = local.utcoffset()
            assert offset is not None and after is not None
            found.append((moment, offset, after, bool(local.dst())))
            offset = after
        day = following
    return found


def _first_onset(month: int, byday: str, wall: datetime) -> datetime:
    """The rule's onset in 1970, at the transition's wall-clock time: the ``DTSTART`` Outlook and
    Google write, so that every date after it follows the rule (some readers, vobject among them,
    keep the first VTIMEZONE they see for a TZID and apply it to every later file)."""
    weekday = _DAYS.index(byday[-2:])
    nth = int(byday[:-2])
    first = datetime(1970, month, 1, wall.hour, wall.minute, tzinfo=UTC).replace(tzinfo=None)
    days = [first + timedelta(days=d) for d in range(31) if (first + timedelta(days=d)).month == month]
    matching = [d for d in days if d.weekday() == weekday]
    return matching[nth - 1] if nth > 0 else matching[nth]


def _rule(at: datetime, before: timedelta) -> tuple[int, str]:
    """The transition's month and weekday rule: "-1SU" (the last Sunday) or "2SU" (the second)."""
    wall = at + before
    last = (wall + timedelta(days=7)).month != wall.month
    return wall.month, f"{-1 if last else (wall.day - 1) // 7 + 1}{_DAYS[wall.weekday()]}"


def _onset(
    onset: TimezoneStandard | TimezoneDaylight,
    start: datetime,
    before: timedelta | None,
    after: timedelta | None,
    zone: ZoneInfo,
    at: datetime | None,
) -> TimezoneStandard | TimezoneDaylight:
    onset.add("dtstart", start)
    onset.add("tzoffsetfrom", before)
    onset.add("tzoffsetto", after)
    name = (at or datetime(1970, 1, 1, tzinfo=UTC)).astimezone(zone).tzname()
    if name:
        onset.add("tzname", name)
    return onset


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
