"""A counsellor's calendar feed: parsed with icalendar and with a plain line reader; stable UIDs,
SEQUENCE on every change, cancellations kept as CANCELLED, the agency's zone, 304, revocation."""

from __future__ import annotations

from typing import Any

import icalendar
import vobject

from tests.helpers import ADMIN, assert_problem, bearer, make_agency, make_counsellor, make_rule, make_service


def _lines(body: str) -> list[str]:
    """RFC 5545 unfolding, written here without icalendar: the second, independent reader."""
    unfolded: list[str] = []
    for raw in body.split("\r\n"):
        if raw.startswith((" ", "\t")) and unfolded:
            unfolded[-1] += raw[1:]
        elif raw:
            unfolded.append(raw)
    return unfolded


async def _world(client: Any) -> dict[str, Any]:
    agency = await make_agency(client, name="Agence Lyon")
    counsellor = await make_counsellor(client, agency["id"])
    for day in range(7):  # Sunday too: the feed is checked on the day clocks change
        await make_rule(client, counsellor["id"], weekday=day, start="09:00", end="17:00")
    service = await make_service(client, agency["id"], name="Suivi; emploi, \\ formation")
    return {"agency": agency, "counsellor": counsellor, "service": service}


async def _book(client: Any, w: dict[str, Any], starts_at: str) -> dict[str, Any]:
    r = await client.post(
        "/api/v1/appointments",
        json={
            "agency_id": w["agency"]["id"],
            "service_id": w["service"]["id"],
            "starts_at": starts_at,
            "mode": "phone",
            "job_seeker": {"name": "Awa Diallo", "phone": "0612345678"},
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_the_feed_follows_appointments_with_stable_uids(client):
    w = await _world(client)
    as_counsellor = bearer("counsellor", w["agency"]["id"], w["counsellor"]["id"])
    r = await client.post(
        f"/api/v1/counsellors/{w['counsellor']['id']}/calendar-token", headers=as_counsellor
    )
    assert r.status_code == 201, r.text
    path = r.json()["url"].removeprefix("http://127.0.0.1:8000")
    assert path.startswith("/calendar/") and path.endswith(".ics")
    booked = await _book(client, w, "2026-03-29T10:00:00+02:00")  # the day Paris changes to summer time
    feed = await client.get(path)
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    cal = icalendar.Calendar.from_ical(feed.content)
    (event,) = cal.walk("VEVENT")
    uid = f"appointment-{booked['id']}@orchestrator"
    assert str(event["UID"]) == uid and event["SEQUENCE"] == 0 and str(event["STATUS"]) == "CONFIRMED"
    assert event.decoded("DTSTART").isoformat() == "2026-03-29T10:00:00+02:00"
    assert str(event["SUMMARY"]) == "RDV Suivi; emploi, \\ formation (par téléphone)"
    assert "Awa" not in feed.text and "612345678" not in feed.text  # no job-seeker data
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Europe/Paris"]
    other = vobject.readOne(feed.text)  # an independent parser agrees, time zone included
    (vevent,) = other.vevent_list
    assert (vevent.uid.value, vevent.dtstart.value) == (uid, event.decoded("DTSTART"))
    assert vevent.summary.value == "RDV Suivi; emploi, \\ formation (par téléphone)"
    lines = _lines(feed.text)
    assert f"UID:{uid}" in lines and lines.count("BEGIN:VEVENT") == 1
    assert "SUMMARY:RDV Suivi\\; emploi\\, \\\\ formation (par téléphone)" in lines  # escaped, one line

    # not modified: 304 with the same ETag
    again = await client.get(path, headers={"If-None-Match": feed.headers["etag"]})
    assert again.status_code == 304 and again.content == b""

    # a move keeps the UID and raises SEQUENCE; a cancellation stays, CANCELLED
    manage = {"X-Manage-Token": booked["manage_token"]}
    r = await client.post(
        f"/api/v1/appointments/{booked['id']}/reschedule",
        json={"starts_at": "2026-03-30T11:00:00+02:00"},
        headers=manage,
    )
    assert r.status_code == 200, r.text
    moved = icalendar.Calendar.from_ical(
        (await client.get(path, headers={"If-None-Match": feed.headers["etag"]})).content
    )
    (event,) = moved.walk("VEVENT")
    assert (str(event["UID"]), event["SEQUENCE"]) == (uid, 1)
    await client.post(f"/api/v1/appointments/{booked['id']}/cancel", headers=manage)
    (event,) = icalendar.Calendar.from_ical((await client.get(path)).content).walk("VEVENT")
    assert (str(event["STATUS"]), event["SEQUENCE"]) == ("CANCELLED", 2)


async def test_a_new_link_revokes_the_old_and_others_cannot_get_one(client):
    w = await _world(client)
    url = f"/api/v1/counsellors/{w['counsellor']['id']}/calendar-token"
    first = (await client.post(url, headers=ADMIN)).json()["url"].removeprefix("http://127.0.0.1:8000")
    second = (await client.post(url, headers=ADMIN)).json()["url"].removeprefix("http://127.0.0.1:8000")
    assert_problem(await client.get(first), 404)
    assert (await client.get(second)).status_code == 200
    assert_problem(await client.post(url), 401)
    other = await make_agency(client, name="Autre")
    assert_problem(await client.post(url, headers=bearer("manager", other["id"])), 404)
    colleague = await make_counsellor(client, w["agency"]["id"], name="B", email="b@example.org")
    assert_problem(
        await client.post(url, headers=bearer("counsellor", w["agency"]["id"], colleague["id"])), 403, 404
    )
    assert_problem(await client.get("/calendar/not-a-token.ics"), 404)


async def test_desk_duty_is_in_the_feed_in_local_time(client):
    w = await _world(client)
    r = await client.post(
        f"/api/v1/counsellors/{w['counsellor']['id']}/rules",
        json={"weekday": 0, "start": "17:00", "end": "18:30", "modes": ["in_person"], "quota": "walk_in"},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    url = (
        await client.post(f"/api/v1/counsellors/{w['counsellor']['id']}/calendar-token", headers=ADMIN)
    ).json()["url"]
    feed = await client.get(url.removeprefix("http://127.0.0.1:8000"))
    duty = [
        e for e in vobject.readOne(feed.text).vevent_list if e.summary.value == "Accueil sans rendez-vous"
    ]
    starts = sorted(e.dtstart.value for e in duty)
    assert all(s.weekday() == 0 and (s.hour, s.minute) == (17, 0) for s in starts)  # Mondays 17:00 local
    assert {s.utcoffset().total_seconds() / 3600 for s in starts} == {
        1.0,
        2.0,
    }  # both sides of the DST change
    assert len({e.uid.value for e in duty}) == len(duty) > 10  # ~30 days back, 90 ahead
