"""No double booking under real concurrency: many clients against a real server process, each
request on its own HTTP and database connection, then the database itself is checked.

DESIGN.md §3: the exclusion constraint on ``claims`` is the guarantee; the per-counsellor
advisory lock makes a lost race a clean 409 instead of a deadlock or a 500.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import ADMIN, PROBLEM_JSON

REQUESTS_PER_SLOT = 30


async def _post(
    http: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    r = await http.post(path, json=body, headers=headers or ADMIN)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _agency(http: httpx.AsyncClient, counsellors: int) -> dict[str, Any]:
    """An agency open every day 08:00-18:00 with ``counsellors`` counsellors and a 30-min service."""
    agency = await _post(
        http, "/api/v1/agencies", {"name": f"Race {uuid.uuid4().hex[:8]}", "timezone": "Europe/Paris"}
    )
    staff = []
    for n in range(counsellors):
        c = await _post(
            http,
            f"/api/v1/agencies/{agency['id']}/counsellors",
            {"name": f"C{n}", "email": f"c{n}@example.org", "modes": ["in_person"]},
        )
        for weekday in range(7):
            await _post(
                http,
                f"/api/v1/counsellors/{c['id']}/rules",
                {"weekday": weekday, "start": "08:00", "end": "18:00", "modes": ["in_person"]},
            )
        staff.append(c)
    service = await _post(
        http,
        f"/api/v1/agencies/{agency['id']}/services",
        {"name": "Entretien", "duration_minutes": 30, "modes": ["in_person"], "min_notice_minutes": 0},
    )
    # free starts from tomorrow on (real clock: the server runs on wall-clock time)
    start = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    r = await http.get(
        "/api/v1/availability",
        params={
            "agency_id": agency["id"],
            "service_id": service["id"],
            "from": start.isoformat(),
            "to": (start + timedelta(days=3)).isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    starts = [s["starts_at"] for s in r.json()["slots"]]
    assert len(starts) >= 8, starts
    return {"agency": agency, "counsellors": staff, "service": service, "starts": starts}


def _booking(w: dict[str, Any], starts_at: str, n: int, counsellor_id: str | None = None) -> dict[str, Any]:
    body = {
        "agency_id": w["agency"]["id"],
        "service_id": w["service"]["id"],
        "starts_at": starts_at,
        "mode": "in_person",
        "job_seeker": {"name": f"Seeker {n}"},
    }
    if counsellor_id is not None:
        body["counsellor_id"] = counsellor_id
    return body


def _client(base_url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=httpx.Timeout(120))


async def _fire(http: httpx.AsyncClient, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    return list(await asyncio.gather(*(http.post("/api/v1/appointments", json=b) for b in bodies)))


def _assert_only_201_or_clean_409(responses: list[httpx.Response]) -> None:
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, (
        statuses,
        [r.text for r in responses if r.status_code not in (201, 409)][:3],
    )
    for r in responses:
        if r.status_code == 409:
            assert r.headers["content-type"].startswith(PROBLEM_JSON)
            assert r.json()["code"] == "slot_unavailable", r.text


async def _overlaps(conn: asyncpg.Connection, agency_id: str) -> int:
    return int(
        await conn.fetchval(
            """SELECT count(*) FROM claims a JOIN claims b
             ON a.counsellor_id = b.counsellor_id AND a.id < b.id
            AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at
            WHERE a.agency_id = $1""",
            uuid.UUID(agency_id),
        )
    )


async def test_many_clients_racing_for_named_slots_get_exactly_one_each(live_server):
    async with _client(live_server.base_url) as http:
        w = await _agency(http, counsellors=3)
        # 4 slots: two starts an hour apart (the grid is 15 min, so neighbours overlap) x two counsellors
        slots = [(start, c["id"]) for start in w["starts"][0:8:4] for c in w["counsellors"][:2]]
        bodies = [
            _booking(w, start, n, counsellor) for n in range(REQUESTS_PER_SLOT) for start, counsellor in slots
        ]
        assert len(bodies) >= 120
        responses = await _fire(http, bodies)
    _assert_only_201_or_clean_409(responses)
    won = Counter(
        (r.json()["starts_at"], r.json()["counsellor_id"]) for r in responses if r.status_code == 201
    )
    assert sorted(won) == sorted((s.replace("+00:00", "Z"), c) for s, c in slots)
    assert set(won.values()) == {1}
    conn = await asyncpg.connect(live_server.database_url)
    try:
        assert await _overlaps(conn, w["agency"]["id"]) == 0
        count = await conn.fetchval(
            "SELECT count(*) FROM appointments WHERE agency_id = $1", uuid.UUID(w["agency"]["id"])
        )
        assert count == len(slots)
        claims = await conn.fetchval(
            "SELECT count(*) FROM claims WHERE agency_id = $1", uuid.UUID(w["agency"]["id"])
        )
        assert claims == len(slots)
        # a loser's person, appointment and audit row went with its claim, in one statement: none
        seekers = await conn.fetchval(
            "SELECT count(*) FROM job_seekers WHERE agency_id = $1", uuid.UUID(w["agency"]["id"])
        )
        booked = await conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE agency_id = $1 AND action = 'appointment.booked'",
            uuid.UUID(w["agency"]["id"]),
        )
        assert seekers == booked == len(slots)
    finally:
        await conn.close()


@pytest.mark.parametrize("counsellors", [3, 5])
async def test_unnamed_requests_fill_every_free_counsellor_exactly_once(live_server, counsellors):
    """Requests that do not name a counsellor: a lost race is retried on another counsellor, so the
    number of 201s equals the number of counsellors free at that time (one was booked before)."""
    async with _client(live_server.base_url) as http:
        w = await _agency(http, counsellors=counsellors)
        start = w["starts"][3]
        busy = w["counsellors"][0]["id"]
        await _post(http, "/api/v1/appointments", _booking(w, start, -1, busy), headers={})
        bodies = [_booking(w, start, n) for n in range(10 * counsellors)]
        responses = await _fire(http, bodies)
    _assert_only_201_or_clean_409(responses)
    winners = [r.json()["counsellor_id"] for r in responses if r.status_code == 201]
    assert len(winners) == counsellors - 1, Counter(r.status_code for r in responses)
    assert sorted(winners) == sorted(c["id"] for c in w["counsellors"][1:])
    conn = await asyncpg.connect(live_server.database_url)
    try:
        assert await _overlaps(conn, w["agency"]["id"]) == 0
        count = await conn.fetchval(
            "SELECT count(*) FROM appointments WHERE agency_id = $1", uuid.UUID(w["agency"]["id"])
        )
        assert count == counsellors
    finally:
        await conn.close()


async def test_the_exclusion_constraint_itself_rejects_an_overlap_made_in_sql(live_server):
    """Bypassing the app (an admin script, an import): PostgreSQL still refuses with 23P01."""
    async with _client(live_server.base_url) as http:
        w = await _agency(http, counsellors=1)
        appt = await _post(http, "/api/v1/appointments", _booking(w, w["starts"][0], 0), headers={})
    conn = await asyncpg.connect(live_server.database_url)
    try:
        agency_id, counsellor_id = uuid.UUID(w["agency"]["id"]), uuid.UUID(appt["counsellor_id"])
        starts = datetime.fromisoformat(appt["starts_at"].replace("Z", "+00:00"))
        ends = datetime.fromisoformat(appt["ends_at"].replace("Z", "+00:00"))
        insert = (
            "INSERT INTO claims (id, agency_id, counsellor_id, starts_at, ends_at, kind) "
            "VALUES (gen_random_uuid(), $1, $2, $3, $4, 'busy')"
        )
        for a, b in (
            (starts, ends),
            (starts + timedelta(minutes=29), ends + timedelta(hours=1)),
            (starts - timedelta(hours=1), starts + timedelta(minutes=1)),
        ):
            with pytest.raises(asyncpg.exceptions.ExclusionViolationError) as caught:
                await conn.execute(insert, agency_id, counsellor_id, a, b)
            assert caught.value.sqlstate == "23P01"
        # half-open ranges: touching is not overlapping (checked, then rolled back)
        tr = conn.transaction()
        await tr.start()
        await conn.execute(insert, agency_id, counsellor_id, ends, ends + timedelta(minutes=30))
        await conn.execute(insert, agency_id, counsellor_id, starts - timedelta(minutes=30), starts)
        assert await conn.fetchval("SELECT count(*) FROM claims WHERE agency_id = $1", agency_id) == 3
        await tr.rollback()
        assert await conn.fetchval("SELECT count(*) FROM claims WHERE agency_id = $1", agency_id) == 1
    finally:
        await conn.close()


async def test_the_database_and_python_agree_on_counsellor_lock_keys(db_connection):
    """claim_time() locks in SQL, the desk's lock_counsellors in Python: the same counsellor
    must be the same lock, or a call-next and a booking would not serialize."""
    from sqlalchemy import text

    from orchestrator.repositories.calendars import lock_key

    ids = [uuid.uuid4() for _ in range(64)] + [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)]
    for counsellor_id in ids:
        in_sql = await db_connection.scalar(text("SELECT counsellor_lock_key(:id)"), {"id": counsellor_id})
        assert in_sql == lock_key(counsellor_id)
