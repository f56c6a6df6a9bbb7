"""Counsellors' own calendars imported as busy time, from a local HTTP server serving
real-world-shaped files: a weekly meeting with a moved and a cancelled occurrence, all-day and
transparent events, 304s, a huge file, a broken file, an unreachable server, private addresses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from orchestrator import tasks
from orchestrator.channels.calendar_fetch import HttpCalendarFetcher
from orchestrator.models import BusyBlock, Notification
from tests.helpers import ADMIN, assert_problem, bearer, make_agency, make_counsellor, make_rule, make_service

WEEKLY = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Test//Outlook-like//FR\r
BEGIN:VEVENT\r
UID:team-meeting@example.org\r
DTSTART;TZID=Europe/Paris:20260302T100000\r
DTEND;TZID=Europe/Paris:20260302T110000\r
RRULE:FREQ=WEEKLY;BYDAY=MO\r
EXDATE;TZID=Europe/Paris:20260309T100000\r
SUMMARY:R\xc3\xa9union d'\xc3\xa9quipe\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:team-meeting@example.org\r
RECURRENCE-ID;TZID=Europe/Paris:20260316T100000\r
DTSTART;TZID=Europe/Paris:20260316T140000\r
DTEND;TZID=Europe/Paris:20260316T150000\r
SUMMARY:R\xc3\xa9union d\xc3\xa9plac\xc3\xa9e\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:training@example.org\r
DTSTART;VALUE=DATE:20260304\r
DTEND;VALUE=DATE:20260305\r
SUMMARY:Formation\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:lunch@example.org\r
DTSTART;TZID=Europe/Paris:20260303T120000\r
DTEND;TZID=Europe/Paris:20260303T130000\r
TRANSP:TRANSPARENT\r
SUMMARY:Pause\r
END:VEVENT\r
END:VCALENDAR\r
"""


class Files:
    """What the local calendar server answers, per path: (status, body, etag)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes, str | None]] = {}


@pytest.fixture
def calendar_server() -> Iterator[tuple[Files, str]]:
    files = Files()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body, etag = files.routes.get(self.path, (404, b"", None))
            if etag and self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(status)
            self.send_header("Content-Type", "text/calendar")
            if etag:
                self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield files, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
async def world(client: Any) -> dict[str, Any]:
    agency = await make_agency(client, name="Agence Lyon")
    counsellor = await make_counsellor(client, agency["id"])
    for day in range(5):
        await make_rule(client, counsellor["id"], weekday=day, start="09:00", end="17:00")
    return {"agency": agency, "counsellor": counsellor, "service": await make_service(client, agency["id"])}


def _ctx(sessions: Any, clock: Any, *, allow_private: bool = True) -> dict[str, Any]:
    return {
        "sessions": sessions,
        "clock": clock,
        "calendars": HttpCalendarFetcher(allow_private=allow_private),
    }


async def _blocks(sessions: Any) -> list[tuple[datetime, datetime]]:
    async with sessions() as session:
        rows = await session.execute(
            select(BusyBlock.starts_at, BusyBlock.ends_at).order_by(BusyBlock.starts_at)
        )
        return [(a, b) for a, b in rows]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def _add(client: Any, world: dict[str, Any], url: str) -> dict[str, Any]:
    r = await client.post(
        f"/api/v1/counsellors/{world['counsellor']['id']}/external-calendars",
        json={"url": url},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _public_starts(
    client: Any, world: dict[str, Any], day: str = "2026-03-03", **headers: str
) -> set[str]:
    """The starts offered on ``day`` between 9:00 and 12:00 (Paris)."""
    r = await client.get(
        "/api/v1/availability",
        params={
            "agency_id": world["agency"]["id"],
            "service_id": world["service"]["id"],
            "from": f"{day}T09:00:00+01:00",
            "to": f"{day}T12:00:00+01:00",
        },
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return {s["starts_at"] for s in r.json()["slots"]}


async def test_a_weekly_meeting_with_exceptions_becomes_busy_time(
    client, world, sessions, clock, calendar_server, enqueued
):
    files, base = calendar_server
    files.routes["/team.ics"] = (200, WEEKLY, '"v1"')
    added = await _add(client, world, base + "/team.ics")
    assert ("sync_calendar", (added["id"],), f"sync_calendar:{added['id']}") in enqueued.jobs
    assert await tasks.sync_calendar(_ctx(sessions, clock), added["id"]) == "synced"
    blocks = await _blocks(sessions)
    assert (utc(2026, 3, 2, 9), utc(2026, 3, 2, 10)) in blocks  # Monday 10-11 Paris
    assert not any(a.date().isoformat() == "2026-03-09" for a, _ in blocks)  # the cancelled Monday
    assert (utc(2026, 3, 16, 13), utc(2026, 3, 16, 14)) in blocks  # the moved one, at 14:00
    assert (utc(2026, 3, 16, 9), utc(2026, 3, 16, 10)) not in blocks
    assert (utc(2026, 3, 30, 8), utc(2026, 3, 30, 9)) in blocks  # after the clocks change: 10:00 CEST
    assert (utc(2026, 3, 3, 23), utc(2026, 3, 4, 23)) in blocks  # the all-day training
    assert not any(a == utc(2026, 3, 3, 11) for a, _ in blocks)  # the transparent lunch is free
    # availability no longer offers the meeting's hour
    starts = await _public_starts(client, world, "2026-03-02")
    assert "2026-03-02T09:00:00Z" not in starts and "2026-03-02T10:00:00Z" in starts
    # an unchanged calendar is a 304, and its blocks stay
    assert await tasks.sync_calendar(_ctx(sessions, clock), added["id"]) == "unchanged"
    assert await _blocks(sessions) == blocks


async def test_failures_are_recorded_and_keep_the_previous_blocks(
    client, world, sessions, clock, calendar_server
):
    files, base = calendar_server
    files.routes["/cal.ics"] = (200, WEEKLY, None)
    added = await _add(client, world, base + "/cal.ics")
    assert await tasks.sync_calendar(_ctx(sessions, clock), added["id"]) == "synced"
    kept = await _blocks(sessions)
    for body, status, expected in [
        (b"not a calendar at all", 200, "not a readable iCalendar file"),
        (b"BEGIN:VCALENDAR\r\n" + b"X" * (6 * 1024 * 1024), 200, "larger than 5 MB"),
        (b"", 500, "HTTP 500"),
    ]:
        files.routes["/cal.ics"] = (status, body, None)
        outcome = await tasks.sync_calendar(_ctx(sessions, clock), added["id"])
        assert outcome.startswith("error") and expected in outcome, outcome
        assert await _blocks(sessions) == kept
    listed = await client.get(
        f"/api/v1/counsellors/{world['counsellor']['id']}/external-calendars", headers=ADMIN
    )
    (health,) = listed.json()
    assert health["last_error"] == "HTTP 500" and health["busy_blocks"] == len(kept)
    assert health["last_success_at"] is not None


async def test_unreachable_and_private_addresses(client, world, sessions, clock):
    added = await _add(client, world, "http://127.0.0.1:9/nothing.ics")
    assert "unreachable" in await tasks.sync_calendar(_ctx(sessions, clock), added["id"])
    refused = await tasks.sync_calendar(_ctx(sessions, clock, allow_private=False), added["id"])
    assert "not public" in refused  # a server-side request a user controls: no loopback, no intranet


async def test_conflicts_are_counted_and_told_once_and_deleting_releases_the_time(
    client, world, sessions, clock, calendar_server
):
    r = await client.post(
        "/api/v1/appointments",
        json={
            "agency_id": world["agency"]["id"],
            "service_id": world["service"]["id"],
            "starts_at": "2026-03-02T10:00:00+01:00",
            "mode": "in_person",
            "job_seeker": {"name": "A"},
        },
    )
    assert r.status_code == 201, r.text
    files, base = calendar_server
    files.routes["/team.ics"] = (200, WEEKLY, None)
    added = await _add(client, world, base + "/team.ics")
    for _ in range(2):
        assert await tasks.sync_calendar(_ctx(sessions, clock), added["id"]) == "synced"
    listed = await client.get(
        f"/api/v1/counsellors/{world['counsellor']['id']}/external-calendars", headers=ADMIN
    )
    assert listed.json()[0]["conflicts"] == 1  # flagged, the booked person is not moved
    booked = r.json()
    ((to, body),) = await _alerts(sessions, "staff.calendar_conflict")  # told once, by e-mail
    assert to == "camille@example.org" and booked["id"][:8] in body and "lundi 2 mars à 10h00" in body
    r = await client.get(f"/api/v1/appointments/{booked['id']}", headers=ADMIN)
    assert (r.json()["starts_at"], r.json()["status"]) == ("2026-03-02T09:00:00Z", "confirmed")
    r = await client.delete(f"/api/v1/external-calendars/{added['id']}", headers=ADMIN)
    assert r.status_code == 204
    assert await _blocks(sessions) == []


async def test_only_http_urls_and_only_the_counsellors_people(client, world):
    path = f"/api/v1/counsellors/{world['counsellor']['id']}/external-calendars"
    for url in ("ftp://example.org/cal.ics", "file:///etc/passwd", "javascript:alert(1)"):
        assert_problem(await client.post(path, json={"url": url}, headers=ADMIN), 400, 422, field="url")
    other = await make_agency(client, name="Autre")
    assert_problem(
        await client.post(
            path, json={"url": "https://example.org/c.ics"}, headers=bearer("manager", other["id"])
        ),
        404,
    )
    assert_problem(await client.get(path), 401)


async def _alerts(sessions: Any, kind: str) -> list[tuple[str, str]]:
    async with sessions() as session:
        rows = await session.execute(
            select(Notification.recipient, Notification.body)
            .where(Notification.kind == kind, Notification.channel == "email")
            .order_by(Notification.recipient)
        )
        return [(to, body) for to, body in rows]


async def test_a_stale_calendar_withholds_online_slots_and_tells_staff_once(
    client, world, sessions, clock, calendar_server
):
    r = await client.patch(
        f"/api/v1/agencies/{world['agency']['id']}",
        json={"alert_email": "direction@agence.example", "calendar_stale_minutes": 60},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    assert "alert_email" not in r.json()  # write-only: the agency's page is public
    files, base = calendar_server
    files.routes["/team.ics"] = (200, WEEKLY, None)
    added = await _add(client, world, base + "/team.ics")
    ctx = _ctx(sessions, clock)
    assert await tasks.sync_calendar(ctx, added["id"]) == "synced"
    offered = await _public_starts(client, world)
    assert "2026-03-03T08:00:00Z" in offered

    files.routes["/team.ics"] = (500, b"", None)  # the counsellor's calendar server goes down
    clock.advance(minutes=30)
    assert (await tasks.sync_calendar(ctx, added["id"])).startswith("error")
    assert await _public_starts(client, world) == offered  # not stale yet
    assert await _alerts(sessions, "staff.calendar_stale") == []

    clock.advance(minutes=40)  # 70 minutes since the last success: stale
    assert (await tasks.sync_calendar(ctx, added["id"])).startswith("error")
    assert await _public_starts(client, world) == set()  # its busy time is unknown: withheld
    staff = bearer("front_desk", world["agency"]["id"])
    assert await _public_starts(client, world, **staff) == offered  # staff still see and decide
    alerts = await _alerts(sessions, "staff.calendar_stale")
    assert [to for to, _ in alerts] == ["camille@example.org", "direction@agence.example"]
    assert all("HTTP 500" in body and "Camille Martin" in body for _, body in alerts)

    clock.advance(minutes=5)
    await tasks.sync_calendar(ctx, added["id"])
    assert len(await _alerts(sessions, "staff.calendar_stale")) == 2  # once per outage

    files.routes["/team.ics"] = (200, WEEKLY, None)  # back: one sync gives the slots back
    assert await tasks.sync_calendar(ctx, added["id"]) == "synced"
    assert await _public_starts(client, world) == offered


async def test_an_uploaded_file_is_busy_time_and_a_snapshot(client, world, sessions, clock):
    path = f"/api/v1/counsellors/{world['counsellor']['id']}/external-calendars/upload"
    headers = {**ADMIN, "Content-Type": "text/calendar"}
    r = await client.post(path, content=WEEKLY, params={"name": "export.ics"}, headers=headers)
    assert r.status_code == 201, r.text
    uploaded = r.json()
    assert (uploaded["uploaded"], uploaded["busy_blocks"], uploaded["lag_seconds"]) == (
        True,
        len(await _blocks(sessions)),
        0,
    )
    assert (utc(2026, 3, 2, 9), utc(2026, 3, 2, 10)) in await _blocks(sessions)
    assert await tasks.sync_calendar(_ctx(sessions, clock), uploaded["id"]) == "uploaded"  # never fetched
    clock.advance(hours=10)  # far beyond the stale threshold: a snapshot never withholds slots
    assert await _public_starts(client, world)
    (listed,) = (await client.get(path.removesuffix("/upload"), headers=ADMIN)).json()
    assert listed["lag_seconds"] == 36_000 and listed["uploaded"]

    assert_problem(await client.post(path, content=b"not a calendar", headers=headers), 422, field="file")
    huge = b"BEGIN:VCALENDAR\r\n" + b"X" * (6 * 1024 * 1024)
    assert_problem(await client.post(path, content=huge, headers=headers), 413)
    other = await make_agency(client, name="Autre")
    assert_problem(await client.post(path, content=WEEKLY, headers={**bearer("manager", other["id"])}), 404)
