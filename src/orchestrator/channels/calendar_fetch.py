"""Reading counsellors' own calendars (ICS URLs): the ``CalendarFetcher`` adapter.

A user gives the URL, so this is a server-side request they control: only ``http(s)``, every
address the host resolves to must be public (no loopback, private, link-local or reserved
ranges) unless the operator allows private ones, a 10-second timeout and a 5 MB limit,
``ETag`` / ``If-Modified-Since`` so an unchanged calendar costs a 304. Recurrences are expanded
with their exceptions (moved and cancelled occurrences) by ``recurring-ical-events``;
transparent (free) and cancelled events are not busy time.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from datetime import UTC, date, datetime, time
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import icalendar
import recurring_ical_events  # type: ignore[import-untyped]

from orchestrator.deps import BusyTime, CalendarError, CalendarUnchanged

MAX_BYTES = 5 * 1024 * 1024
TIMEOUT = aiohttp.ClientTimeout(total=10)


class HttpCalendarFetcher:
    def __init__(self, *, allow_private: bool = False, default_tz: str = "Europe/Paris") -> None:
        self.allow_private, self.default_tz = allow_private, default_tz

    async def busy(
        self, url: str, *, etag: str | None, last_modified: str | None, since: datetime, until: datetime
    ) -> BusyTime:
        await self._check_address(url)
        headers = {"Accept": "text/calendar"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            async with (
                aiohttp.ClientSession(timeout=TIMEOUT) as session,
                session.get(url, headers=headers, allow_redirects=False) as response,
            ):
                if response.status == 304:
                    raise CalendarUnchanged()
                if response.status != 200:
                    raise CalendarError(f"HTTP {response.status}")
                body = await _read_at_most(response, MAX_BYTES)
                new_etag, new_modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CalendarError(f"unreachable ({type(exc).__name__})") from None
        spans = parse_busy(body, since, until, self.default_tz)
        return BusyTime(spans, new_etag, new_modified)

    async def _check_address(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CalendarError("only http(s) URLs are fetched")
        if self.allow_private:
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                parts.hostname, parts.port, type=socket.SOCK_STREAM
            )
        except OSError:
            raise CalendarError("the host name does not resolve") from None
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if not address.is_global:
                raise CalendarError("the address is not public (loopback, private or reserved)")


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or ``CalendarError`` as soon as it passes ``limit`` (never read it all)."""
    too_big = CalendarError(f"larger than {limit // (1024 * 1024)} MB")
    if (response.content_length or 0) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def parse_busy(
    body: bytes, since: datetime, until: datetime, default_tz: str
) -> list[tuple[datetime, datetime]]:
    """Busy spans of an iCalendar file within ``[since, until)``, in UTC, merged by nothing (the
    ledger merges). All-day events block their local days. ``CalendarError`` when unreadable."""
    try:
        calendar = icalendar.Calendar.from_ical(body)
        events = recurring_ical_events.of(calendar).between(since, until)
    except Exception as exc:
        raise CalendarError(f"not a readable iCalendar file ({type(exc).__name__})") from None
    zone = ZoneInfo(default_tz)
    spans = []
    for event in events:
        if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
            continue
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        start, end = event.get("DTSTART"), event.get("DTEND")
        if start is None:
            continue
        begins = _moment(start.dt, zone)
        ends = _moment(end.dt, zone) if end is not None else begins
        if ends > begins:
            spans.append((max(begins, since), min(ends, until)))
    return sorted(span for span in spans if span[0] < span[1])


def _moment(value: datetime | date, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)
    return datetime.combine(value, time(0), tzinfo=zone).astimezone(UTC)  # all day: local midnight
