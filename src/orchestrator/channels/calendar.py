"""Calendar channel: a counsellor's subscribable ICS feed (``icalendar``).

``POST /api/v1/counsellors/{id}/calendar-token`` gives the feed URL (a new one revokes the old);
``GET /calendar/{token}.ics`` serves it: stable ``UID``\\ s, ``SEQUENCE`` from each item's own
change counter, ``STATUS:CANCELLED`` for cancelled appointments (so subscribed apps remove
them), times in the agency's zone with its ``VTIMEZONE``, and an ``ETag`` (``If-None-Match`` →
304). Text is escaped by ``icalendar`` (≥ 7.3 also rejects raw line breaks in URIs and addresses).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, cast

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.enums import ScopeType
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.types import ASGIApp, Receive, Scope, Send
from msgspec import Meta

from orchestrator.channels.calendar_fetch import MAX_BYTES, parse_busy
from orchestrator.channels.http import Caller, Clock, Config, Id, ManageToken, UoW, actor_of
from orchestrator.channels.openapi import problems
from orchestrator.errors import PayloadTooLarge
from orchestrator.ical import ICS_MEDIA_TYPE, calendar_ics
from orchestrator.schemas import Body
from orchestrator.services import calendar_feed, calendar_import


class CalendarLink(msgspec.Struct):
    url: str


@post(
    "/api/v1/counsellors/{counsellor_id:uuid}/calendar-token",
    status_code=201,
    responses=problems(401, 403, 404),
)
async def calendar_token(counsellor_id: Id, uow: UoW, principal: Caller, settings: Config) -> CalendarLink:
    """A new feed URL for the counsellor's own calendar app; the previous URL stops working."""
    token = await calendar_feed.issue_token(uow, principal, counsellor_id)
    return CalendarLink(url=f"{settings.public_base_url.rstrip('/')}/calendar/{token}.ics")


def render(feed: calendar_feed.Feed) -> bytes:
    """The feed as iCalendar (RFC 5545)."""
    return calendar_ics(
        feed.items,
        tz=feed.agency.timezone,
        name=f"{feed.counsellor.name} — {feed.agency.name}",
        uid=f"calendar-{feed.counsellor.id}@orchestrator",  # stable: the ETag moves only with the data
        refresh=timedelta(minutes=15),
    )


@get("/calendar/{token:str}", include_in_schema=False)
async def calendar_feed_ics(
    token: FromPath[str], request: Request[Any, Any, Any], uow: UoW, clock: Clock
) -> Response[bytes]:
    """The counsellor's feed (``{token}.ics``); 304 when the client has this version."""
    feed = await calendar_feed.feed(uow, token.removesuffix(".ics"), now=clock())
    body = render(feed)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=300", "Referrer-Policy": "no-referrer"}
    if request.headers.get("if-none-match") == etag:
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type=ICS_MEDIA_TYPE, headers=headers)


@get(
    "/api/v1/appointments/{appointment_id:uuid}/calendar.ics",
    responses=problems(401, 404),
    media_type=ICS_MEDIA_TYPE,
)
async def appointment_ics(
    appointment_id: Id,
    uow: UoW,
    principal: Caller,
    token: Annotated[str | None, QueryParameter(max_length=100, required=False)] = None,
    manage_token: ManageToken = None,
) -> Response[bytes]:
    """The appointment as an iCalendar file (also at ``/api/v1/appointments/{id}.ics``): the
    same ``UID`` and ``SEQUENCE`` as its invitations. For the agency's staff, or its job seeker
    with the manage token (``X-Manage-Token``, or ``?token=`` for a link a calendar app opens)."""
    actor = actor_of(principal, manage_token or token)
    found = await calendar_feed.appointment_calendar(uow, actor, appointment_id)
    body = calendar_ics([found.event], tz=found.tz)
    headers = {
        "Content-Disposition": 'attachment; filename="rendez-vous.ics"',
        "Cache-Control": "private, no-store",
        "Referrer-Policy": "no-referrer",  # the link may carry the manage token
    }
    return Response(body, media_type=ICS_MEDIA_TYPE, headers=headers)


_APPOINTMENT_ICS = re.compile(r"^/api/v1/appointments/([0-9A-Fa-f-]{36})\.ics$")


def appointment_ics_alias(app: ASGIApp) -> ASGIApp:
    """Serve ``/api/v1/appointments/{id}.ics`` (a path segment the router cannot split from the
    appointment's own ``/api/v1/appointments/{id}``) as ``…/{id}/calendar.ics``."""

    async def aliased(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and (match := _APPOINTMENT_ICS.match(scope["path"])):
            path = f"/api/v1/appointments/{match.group(1)}/calendar.ics"
            scope = cast("Scope", {**scope, "path": path, "raw_path": path.encode()})
        await app(scope, receive, send)

    return aliased


class ExternalCalendarIn(Body):
    url: Annotated[str, Meta(min_length=8, max_length=2000, pattern=r"^https?://[^\s]+$")]


class ExternalCalendarRead(msgspec.Struct):
    id: uuid.UUID
    counsellor_id: uuid.UUID
    url: str
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    busy_blocks: int
    conflicts: int  # booked appointments overlapping this calendar's busy time
    lag_seconds: int | None = None  # since the last successful sync (None: never synced)
    uploaded: bool = False  # a file uploaded once: a snapshot, never fetched, never stale


def _calendar(health: calendar_import.CalendarHealth, now: datetime) -> ExternalCalendarRead:
    c = health.calendar
    since = c.last_success_at
    return ExternalCalendarRead(
        c.id,
        c.counsellor_id,
        c.url,
        c.last_attempt_at,
        since,
        c.last_error,
        c.busy_count,
        health.conflicts,
        lag_seconds=int((now - since).total_seconds()) if since is not None else None,
        uploaded=c.url.startswith(calendar_import.UPLOADED),
    )


@post(
    "/api/v1/counsellors/{counsellor_id:uuid}/external-calendars",
    status_code=201,
    responses=problems(401, 403, 404, 422),
)
async def add_external_calendar(
    counsellor_id: Id, data: JSONBody[ExternalCalendarIn], uow: UoW, principal: Caller, clock: Clock
) -> ExternalCalendarRead:
    """Import a calendar the counsellor keeps elsewhere (its ICS URL) as busy time; synced at
    once, then every 5 minutes."""
    created = await calendar_import.add_calendar(uow, principal, counsellor_id, data.url)
    return _calendar(calendar_import.CalendarHealth(created, 0), clock())


@post(
    "/api/v1/counsellors/{counsellor_id:uuid}/external-calendars/upload",
    status_code=201,
    responses=problems(401, 403, 404, 413, 422),
)
async def upload_external_calendar(
    counsellor_id: Id,
    request: Request[Any, Any, Any],
    uow: UoW,
    principal: Caller,
    clock: Clock,
    name: Annotated[str, QueryParameter(pattern=r"^[A-Za-z0-9._ -]{1,100}$")] = "calendar.ics",
) -> ExternalCalendarRead:
    """Import busy time from an iCalendar file (the request body, ``text/calendar``, at most
    5 MB) exported from any calendar app; a snapshot: upload again to update it."""
    if int(request.headers.get("content-length") or 0) > MAX_BYTES:
        raise PayloadTooLarge("the file is larger than 5 MB")
    body = await request.body()
    if len(body) > MAX_BYTES:
        raise PayloadTooLarge("the file is larger than 5 MB")
    health = await calendar_import.upload_calendar(
        uow,
        principal,
        counsellor_id,
        name,
        lambda since, until, tz: parse_busy(body, since, until, tz),
        now=clock(),
    )
    return _calendar(health, clock())


@get("/api/v1/counsellors/{counsellor_id:uuid}/external-calendars", responses=problems(401, 403, 404))
async def list_external_calendars(
    counsellor_id: Id, uow: UoW, principal: Caller, clock: Clock
) -> list[ExternalCalendarRead]:
    """The counsellor's imported calendars with their sync health and conflicts."""
    now = clock()
    return [_calendar(h, now) for h in await calendar_import.list_calendars(uow, principal, counsellor_id)]


@delete("/api/v1/external-calendars/{calendar_id:uuid}", status_code=204, responses=problems(401, 403, 404))
async def delete_external_calendar(calendar_id: Id, uow: UoW, principal: Caller) -> None:
    """Stop importing a calendar; its busy time is released."""
    await calendar_import.delete_calendar(uow, principal, calendar_id)


HANDLERS = [
    calendar_token,
    appointment_ics,
    calendar_feed_ics,
    add_external_calendar,
    upload_external_calendar,
    list_external_calendars,
    delete_external_calendar,
]
