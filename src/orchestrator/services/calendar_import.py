"""Counsellors' own calendars as busy time: register an ICS URL, sync it, see its health.

A sync replaces the calendar's busy blocks for the coming weeks in one transaction; a failure
(unreachable, too big, unreadable) is recorded and the previous blocks are kept. Availability
subtracts busy blocks like absences (the ledger loader reads them). They are outside the
no-overlap constraint: an outside meeting that collides with a booked appointment is counted as
a conflict on the calendar (``conflicts``), for the counsellor and their manager to resolve —
never solved by moving a booked person.

Staff are told by e-mail (the counsellor, and the agency's ``alert_email``): once per conflict,
and once per outage when a calendar has not synced for the agency's ``calendar_stale_minutes`` —
from then on that counsellor's online slots are withheld until a sync succeeds.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete, func, insert, select

from orchestrator import outbox
from orchestrator.auth import AGENCY_ADMINS, Principal, Role
from orchestrator.db import UnitOfWork
from orchestrator.deps import CalendarError, CalendarFetcher, CalendarUnchanged
from orchestrator.errors import Invalid, NotFound
from orchestrator.models import Agency, Appointment, BusyBlock, Counsellor, ExternalCalendar
from orchestrator.services import admin, audit, callbacks, messages

HORIZON = timedelta(weeks=8)
ALERT_DEADLINE = timedelta(days=2)  # an alert not sent by then is no longer news
OWNERS = (*AGENCY_ADMINS, Role.COUNSELLOR)


@dataclass(frozen=True, slots=True)
class CalendarHealth:
    calendar: ExternalCalendar
    conflicts: int  # booked appointments overlapping this calendar's busy time


async def add_calendar(
    uow: UnitOfWork, principal: Principal | None, counsellor_id: uuid.UUID, url: str
) -> ExternalCalendar:
    """Register an ICS URL (http or https) for the counsellor (themselves, their manager, an
    admin); it is synced by a job right after commit."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("url", "an http(s) URL of an iCalendar (.ics) file")
    counsellor, caller = await admin.visible_counsellor(uow, principal, counsellor_id, *OWNERS)
    calendar = ExternalCalendar(
        id=uuid.uuid4(), agency_id=counsellor.agency_id, counsellor_id=counsellor.id, url=url
    )
    uow.session.add(calendar)
    await uow.session.flush()
    audit.record(
        uow, actor=caller.actor, action="calendar.added", entity=calendar, agency_id=counsellor.agency_id
    )
    uow.enqueue("sync_calendar", str(calendar.id), job_id=f"sync_calendar:{calendar.id}")
    return calendar


UPLOADED = "upload:"  # the url of a calendar uploaded as a file: a snapshot, never fetched


async def upload_calendar(
    uow: UnitOfWork,
    principal: Principal | None,
    counsellor_id: uuid.UUID,
    name: str,
    busy: Callable[[datetime, datetime, str], list[tuple[datetime, datetime]]],
    *,
    now: datetime,
) -> CalendarHealth:
    """A calendar uploaded as a file (an export from any calendar app): its busy time over the
    coming weeks as it is now; it is never fetched again (upload it again to update it, or
    register its URL instead) and never counts as stale. ``busy(since, until, tz)`` reads the
    file (``CalendarError`` when it cannot)."""
    counsellor, caller = await admin.visible_counsellor(uow, principal, counsellor_id, *OWNERS)
    agency = await uow.session.get(Agency, counsellor.agency_id)
    assert agency is not None
    try:
        spans = busy(now, now + HORIZON, agency.timezone)
    except CalendarError as exc:
        raise Invalid("file", str(exc)) from None
    calendar = ExternalCalendar(
        id=uuid.uuid4(), agency_id=counsellor.agency_id, counsellor_id=counsellor.id, url=UPLOADED + name
    )
    calendar.last_attempt_at = calendar.last_success_at = now
    uow.session.add(calendar)
    await uow.session.flush()
    await _replace_blocks(uow, calendar, spans)
    audit.record(
        uow, actor=caller.actor, action="calendar.uploaded", entity=calendar, agency_id=counsellor.agency_id
    )
    callbacks.plan_soon(uow, calendar.agency_id)
    await _alert_conflicts(uow, calendar, now)
    return CalendarHealth(calendar, await _conflicts(uow, calendar))


async def list_calendars(
    uow: UnitOfWork, principal: Principal | None, counsellor_id: uuid.UUID
) -> list[CalendarHealth]:
    counsellor, _ = await admin.visible_counsellor(uow, principal, counsellor_id, *OWNERS)
    calendars = list(
        await uow.session.scalars(
            select(ExternalCalendar)
            .where(ExternalCalendar.counsellor_id == counsellor.id)
            .order_by(ExternalCalendar.created_at)
        )
    )
    return [CalendarHealth(c, await _conflicts(uow, c)) for c in calendars]


async def delete_calendar(uow: UnitOfWork, principal: Principal | None, calendar_id: uuid.UUID) -> None:
    calendar = await uow.session.get(ExternalCalendar, calendar_id)
    if calendar is None:
        raise NotFound(f"no calendar {calendar_id}", code="not_found")
    _, caller = await admin.visible_counsellor(uow, principal, calendar.counsellor_id, *OWNERS)
    await uow.session.delete(calendar)  # its busy blocks go with it (ON DELETE CASCADE)
    audit.record(
        uow, actor=caller.actor, action="calendar.deleted", entity=calendar, agency_id=calendar.agency_id
    )
    callbacks.plan_soon(uow, calendar.agency_id)


async def sync_calendar(
    uow: UnitOfWork, fetcher: CalendarFetcher, calendar_id: uuid.UUID, *, now: datetime
) -> str:
    """Fetch and store one calendar's busy time; returns what happened ("synced", "unchanged",
    or "error: …" — then the previous blocks stay)."""
    calendar = await uow.session.get(ExternalCalendar, calendar_id, with_for_update=True)
    if calendar is None:
        return "gone"
    if calendar.url.startswith(UPLOADED):
        return "uploaded"  # a snapshot: nothing to fetch
    calendar.last_attempt_at = now
    try:
        busy = await fetcher.busy(
            calendar.url,
            etag=calendar.etag,
            last_modified=calendar.last_modified,
            since=now,
            until=now + HORIZON,
        )
    except CalendarUnchanged:
        calendar.last_success_at, calendar.last_error = now, None
        return "unchanged"
    except CalendarError as exc:
        calendar.last_error = str(exc)[:300]
        await _alert_if_stale(uow, calendar, now)
        return f"error: {calendar.last_error}"
    await _replace_blocks(uow, calendar, busy.spans)
    calendar.etag, calendar.last_modified = busy.etag, busy.last_modified
    calendar.last_success_at, calendar.last_error = now, None
    callbacks.plan_soon(uow, calendar.agency_id)  # callbacks in newly busy time move
    await _alert_conflicts(uow, calendar, now)
    return "synced"


async def _replace_blocks(
    uow: UnitOfWork, calendar: ExternalCalendar, spans: list[tuple[datetime, datetime]]
) -> None:
    await uow.session.execute(delete(BusyBlock).where(BusyBlock.calendar_id == calendar.id))
    if spans:
        await uow.session.execute(
            insert(BusyBlock),
            [
                {
                    "id": uuid.uuid4(),
                    "counsellor_id": calendar.counsellor_id,
                    "calendar_id": calendar.id,
                    "starts_at": a,
                    "ends_at": b,
                }
                for a, b in spans
            ],
        )
    calendar.busy_count = len(spans)


# --- staff alerts (e-mail to the counsellor and the agency's alert address) -------------------


async def _alert_if_stale(uow: UnitOfWork, calendar: ExternalCalendar, now: datetime) -> None:
    """Once per outage: the calendar has not synced for the agency's threshold, so its
    counsellor's online slots are withheld (``load_ledger_records(withhold_stale=True)``)."""
    agency = await uow.session.get(Agency, calendar.agency_id)
    assert agency is not None
    since = calendar.last_success_at or calendar.created_at
    minutes = agency.calendar_stale_minutes
    if minutes <= 0 or since is None or now - since < timedelta(minutes=minutes):
        return
    await _alert(
        uow,
        calendar,
        agency,
        "staff.calendar_stale",
        key=f"calendar-stale:{calendar.id}:{since.isoformat()}",
        now=now,
        since=messages.when(since, agency.timezone, "fr"),
        error=calendar.last_error or "?",
    )


async def _alert_conflicts(uow: UnitOfWork, calendar: ExternalCalendar, now: datetime) -> None:
    """Once per appointment (and per move of it): a booked appointment ahead overlaps this
    calendar's busy time. Nobody is moved; the counsellor and the manager decide."""
    rows = await uow.session.execute(
        select(Appointment.id, Appointment.starts_at, Appointment.sequence)
        .distinct()
        .join(BusyBlock, BusyBlock.counsellor_id == Appointment.counsellor_id)
        .where(
            BusyBlock.calendar_id == calendar.id,
            Appointment.status.in_(("confirmed", "checked_in")),
            Appointment.starts_at >= now,
            Appointment.starts_at < BusyBlock.ends_at,
            BusyBlock.starts_at < Appointment.ends_at,
        )
    )
    found = rows.all()
    agency = await uow.session.get(Agency, calendar.agency_id) if found else None
    for appointment_id, starts_at, sequence in found:
        assert agency is not None
        await _alert(
            uow,
            calendar,
            agency,
            "staff.calendar_conflict",
            key=f"calendar-conflict:{calendar.id}:{appointment_id}:{sequence}",
            now=now,
            when=messages.when(starts_at, agency.timezone, "fr"),
            reference=str(appointment_id)[:8],
        )


async def _alert(
    uow: UnitOfWork,
    calendar: ExternalCalendar,
    agency: Agency,
    kind: str,
    *,
    key: str,
    now: datetime,
    **values: str,
) -> None:
    counsellor = await uow.session.get(Counsellor, calendar.counsellor_id)
    assert counsellor is not None
    values["counsellor"] = counsellor.name
    text = messages.email_line(kind, None, **values)
    subject = messages.email_subject(kind, None, **values)
    for to in sorted({counsellor.email, agency.alert_email or counsellor.email}):
        await outbox.record(
            uow,
            outbox.message(
                agency_id=agency.id,
                kind=kind,
                channel="email",
                recipient=to,
                dedupe_key=f"{key}:{hashlib.sha256(to.encode()).hexdigest()[:12]}",
                body=text + "\n",
                payload={"subject": subject, "html": messages.email_html([text])},
                expires_at=now + ALERT_DEADLINE,
            ),
        )


async def _conflicts(uow: UnitOfWork, calendar: ExternalCalendar) -> int:
    """Booked appointments of the counsellor that overlap this calendar's busy blocks."""
    overlapping = (
        select(func.count(func.distinct(Appointment.id)))
        .select_from(Appointment)
        .join(BusyBlock, BusyBlock.counsellor_id == Appointment.counsellor_id)
        .where(
            BusyBlock.calendar_id == calendar.id,
            Appointment.status.in_(("confirmed", "checked_in")),
            Appointment.starts_at < BusyBlock.ends_at,
            BusyBlock.starts_at < Appointment.ends_at,
        )
    )
    return int(await uow.session.scalar(overlapping) or 0)
