"""Call next under real concurrency: many counsellors press "next" at the same instant against a
real server process (separate connections, real HTTP). Nobody may be handed out twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx

from orchestrator.auth import Role
from tests.helpers import ADMIN, bearer

COUNSELLORS = 16
TICKETS = 24


async def _setup(http: httpx.AsyncClient) -> dict[str, Any]:
    r = await http.post(
        "/api/v1/agencies", json={"name": "Course à l'appel", "timezone": "Europe/Paris"}, headers=ADMIN
    )
    assert r.status_code == 201, r.text
    agency_id = r.json()["id"]
    r = await http.post(
        f"/api/v1/agencies/{agency_id}/services",
        json={"name": "Accueil", "duration_minutes": 20, "ticket_prefix": "C"},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    service_id = r.json()["id"]
    counsellors = []
    for index in range(COUNSELLORS):
        r = await http.post(
            f"/api/v1/agencies/{agency_id}/counsellors",
            json={"name": f"C{index}", "email": f"c{index}@example.org", "languages": ["fr"]},
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        counsellor = r.json()
        counsellor["headers"] = bearer(Role.COUNSELLOR, agency_id, counsellor["id"])
        r = await http.post(
            f"/api/v1/counsellors/{counsellor['id']}/desk",
            json={"on_desk": True, "desk_label": str(index + 1)},
            headers=counsellor["headers"],
        )
        assert r.status_code == 200, r.text
        counsellors.append(counsellor)
    front = bearer(Role.FRONT_DESK, agency_id)
    # tickets issued concurrently too: numbers must stay unique
    issued = await asyncio.gather(
        *(
            http.post(f"/api/v1/agencies/{agency_id}/tickets", json={"service_id": service_id}, headers=front)
            for _ in range(TICKETS)
        )
    )
    assert [r.status_code for r in issued] == [201] * TICKETS, [
        r.text for r in issued if r.status_code != 201
    ]
    numbers = [r.json()["number"] for r in issued]
    assert sorted(numbers) == [f"C{n:03d}" for n in range(1, TICKETS + 1)]
    return {"agency_id": agency_id, "counsellors": counsellors, "front": front}


async def test_simultaneous_call_next_never_hands_out_anyone_twice(live_server):
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30, limits=limits) as http:
        setup = await _setup(http)
        counsellors = setup["counsellors"]

        async def press(counsellor: dict[str, Any]) -> httpx.Response:
            return await http.post(
                f"/api/v1/counsellors/{counsellor['id']}/next", headers=counsellor["headers"]
            )

        # round 1: every counsellor presses twice at the same instant
        responses = await asyncio.gather(*(press(c) for c in counsellors for _ in range(2)))
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {200: COUNSELLORS, 409: COUNSELLORS}, [
            r.text for r in responses if r.status_code >= 500
        ]
        first = [r.json() for r in responses if r.status_code == 200]
        assert all(r.json()["code"] == "busy" for r in responses if r.status_code == 409)
        assert len({w["id"] for w in first}) == COUNSELLORS  # distinct people
        assert len({w["counsellor_id"] for w in first}) == COUNSELLORS  # one each

        # everyone serves their person, then presses again together: 8 tickets left for 16 counsellors
        by_counsellor = {c["id"]: c for c in counsellors}
        for work in first:
            headers = by_counsellor[work["counsellor_id"]]["headers"]
            for action in ("start", "complete"):
                r = await http.post(f"/api/v1/tickets/{work['id']}/{action}", headers=headers)
                assert r.status_code == 200, r.text
        responses = await asyncio.gather(*(press(c) for c in counsellors))
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {200: TICKETS - COUNSELLORS, 204: 2 * COUNSELLORS - TICKETS}
        second = [r.json() for r in responses if r.status_code == 200]
        handed = [w["id"] for w in first + second]
        assert len(handed) == len(set(handed)) == TICKETS  # everybody called exactly once

        r = await http.get(f"/api/v1/agencies/{setup['agency_id']}/queue", headers=setup["front"])
        queue = r.json()
        assert queue["waiting"] == [] and len(queue["called"]) == TICKETS - COUNSELLORS
        assert len({t["counsellor_id"] for t in queue["called"]}) == TICKETS - COUNSELLORS
