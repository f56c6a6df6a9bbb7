"""The live agency runs the same plan: computed for a day ahead it keeps walk-in time out of
online booking; on the day, a quiet morning releases the coming hours to booking; a booked
person who does not come gives their time to the next walk-in; staff see the plan and why."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from orchestrator import tasks
from orchestrator.models import AuditEvent
from tests.helpers import ADMIN, assert_problem, bearer, make_agency, make_counsellor, make_rule, make_service
from tests.integration.test_walkin_queue import as_counsellor, call_next, front, issue, on_desk

TUESDAY = "2026-03-03"


async def _agency(client: Any) -> dict[str, Any]:
    agency = await make_agency(client, name="Agence Plan")
    people = []
    for index, modes in enumerate((["in_person", "phone"],) * 3 + (["phone"],)):
        counsellor = await make_counsellor(
            client, agency["id"], name=f"C{index}", email=f"c{index}@example.org", modes=modes
        )
        for day in range(5):
            await make_rule(client, counsellor["id"], weekday=day, start="09:00", end="17:00", modes=modes)
        people.append(counsellor)
    service = await make_service(client, agency["id"], min_notice_minutes=0, ticket_prefix="A")
    return {"agency": agency, "counsellors": people, "service": service}


async def _in_person_hours(client: Any, world: dict[str, Any]) -> set[int]:
    """Local hours of Tuesday with an in-person slot online."""
    r = await client.get(
        "/api/v1/availability",
        params={
            "agency_id": world["agency"]["id"],
            "service_id": world["service"]["id"],
            "from": f"{TUESDAY}T09:00:00+01:00",
            "to": f"{TUESDAY}T17:00:00+01:00",
            "mode": "in_person",
        },
    )
    assert r.status_code == 200, r.text
    return {datetime.fromisoformat(s["starts_at"]).astimezone(UTC).hour + 1 for s in r.json()["slots"]}


async def test_the_plan_keeps_walk_in_time_then_releases_it_as_the_day_approaches(client, clock, sessions):
    world = await _agency(client)
    agency_id = world["agency"]["id"]
    assert await _in_person_hours(client, world) == set(range(9, 17))  # no plan yet: all bookable

    manager = bearer("manager", agency_id)
    r = await client.post(f"/api/v1/agencies/{agency_id}/plan", params={"date": TUESDAY}, headers=manager)
    assert r.status_code == 200, r.text
    plan = r.json()
    assert [h["hour"] for h in plan["hours"]] == list(range(9, 17))
    nine = plan["hours"][0]
    # no history: the prior, 4 walk-ins an hour of 20 minutes -> 3 counsellors (Erlang C), and
    # only the three who meet people in person can hold the walk-in pool
    assert (nine["counsellors"], nine["walk_in"], nine["booking"]) == (4, 3, 1)
    assert "Erlang C" in nine["reasons"][0] and "prior" in nine["reasons"][0]
    phone_only = world["counsellors"][3]["id"]
    assert {r["counsellor_id"] for r in plan["reservations"] if r["pool"] == "walk_in"} == {
        c["id"] for c in world["counsellors"][:3]
    }
    assert phone_only not in {r["counsellor_id"] for r in plan["reservations"]}
    assert await _in_person_hours(client, world) == set()  # kept for walk-ins: not online
    # priority on every channel: the front desk books a person with priority needs into that time
    at_eleven = {
        "agency_id": agency_id,
        "service_id": world["service"]["id"],
        "starts_at": f"{TUESDAY}T11:00:00+01:00",
        "mode": "in_person",
    }
    public = await client.post("/api/v1/appointments", json={**at_eleven, "job_seeker": {"name": "P"}})
    assert_problem(public, 409)  # the public does not get reserved time
    r = await client.post(
        "/api/v1/appointments",
        json={**at_eleven, "job_seeker": {"name": "Q", "needs": {"priority": 1}}},
        headers=front(agency_id),
    )
    assert r.status_code == 201, r.text
    assert (
        await client.get(
            f"/api/v1/agencies/{agency_id}/plan", params={"date": TUESDAY}, headers=front(agency_id)
        )
    ).json() == plan

    # Tuesday 8:00: nobody walked in the last hour -> the next two hours go back to booking
    clock.now = datetime(2026, 3, 3, 7, 0, tzinfo=UTC)
    await tasks.plan_capacity({"sessions": sessions, "clock": clock}, 1)
    assert await _in_person_hours(client, world) == {9, 10}
    today = (await client.get(f"/api/v1/agencies/{agency_id}/plan", headers=front(agency_id))).json()
    assert today["date"] == TUESDAY and "release" in today["hours"][0]["reasons"][0]
    assert today["hours"][2]["walk_in"] == 3  # beyond the horizon: the forecast still holds

    # a booked person who does not come: after the grace their time goes to the next walk-in
    r = await client.post(
        "/api/v1/appointments",
        json={
            "agency_id": agency_id,
            "service_id": world["service"]["id"],
            "starts_at": f"{TUESDAY}T09:00:00+01:00",
            "mode": "in_person",
            "job_seeker": {"name": "Absent"},
        },
    )
    assert r.status_code == 201, r.text
    booked = r.json()
    counsellor = next(c for c in world["counsellors"] if c["id"] == booked["counsellor_id"])
    await on_desk(client, counsellor, "1")
    clock.now = datetime(2026, 3, 3, 8, 2, tzinfo=UTC)  # 9:02
    ticket = await issue(client, agency_id, world["service"]["id"])
    assert (await call_next(client, counsellor)).status_code == 204  # the 9:00 appointment holds the time
    clock.now += timedelta(minutes=9)  # 9:11: ten minutes of grace are over
    assert await tasks.release_no_shows({"sessions": sessions, "clock": clock}) == 1
    r = await call_next(client, counsellor, headers=as_counsellor(counsellor))
    assert r.status_code == 200 and r.json()["id"] == ticket["id"]
    r = await client.get(f"/api/v1/appointments/{booked['id']}", headers=ADMIN)
    assert r.json()["status"] == "no_show"
    async with sessions() as session:
        event = await session.scalar(
            select(AuditEvent).where(
                AuditEvent.entity_id == uuid.UUID(booked["id"]), AuditEvent.action == "appointment.no_show"
            )
        )
    assert event is not None and event.actor == "system:release_no_shows" and "10 min" in event.data["reason"]


async def test_the_plan_is_for_the_agency_staff(client):
    world = await _agency(client)
    path = f"/api/v1/agencies/{world['agency']['id']}/plan"
    assert_problem(await client.get(path), 401)
    assert_problem(await client.get(path, headers=bearer("manager", str(uuid.uuid4()))), 403, 404)
    assert_problem(await client.post(path, headers=front(world["agency"]["id"])), 403)
    assert_problem(await client.get(path, params={"date": "03/03/2026"}, headers=ADMIN), 400, field="date")
    assert_problem(await client.get(path, params={"date": "2026-02-30"}, headers=ADMIN), 422, field="date")
    assert_problem(await client.get(f"/api/v1/agencies/{uuid.uuid4()}/plan", headers=ADMIN), 404)


async def test_a_simulator_profile_is_learned_from_the_agency_history(client, clock, sessions):
    from orchestrator.db import unit_of_work
    from orchestrator.scheduling.agency_sim import simulate
    from orchestrator.services.capacity import simulation_profile
    from orchestrator.simulate import profile_of

    world = await _agency(client)
    agency_id = world["agency"]["id"]
    clock.now = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)  # Monday 9:30 in Paris
    for _ in range(4):
        await issue(client, agency_id, world["service"]["id"])
    async with unit_of_work(sessions) as uow:
        fields = await simulation_profile(uow, uuid.UUID(agency_id), now=clock.now + timedelta(days=1))
    assert fields["counsellors"] == 4 and fields["hours"] == [(9, 12), (13, 17)]
    assert fields["walk_ins"][0] == 4 / 40 and sum(fields["walk_ins"]) == 4 / 40  # 4 over 8 weeks of weekdays
    report = simulate(profile_of(fields), days=1, seed=1)
    assert report["profile"] == "agency Agence Plan" and set(report["policies"]) == {"siloed", "unified"}
