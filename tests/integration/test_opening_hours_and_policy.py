"""Tickets respect the agency's opening hours and closed dates (staff may override, a kiosk never);
managers tune the queue policy with PATCH, validated field by field."""

from __future__ import annotations

from typing import Any

from tests.helpers import ADMIN, assert_problem, bearer
from tests.integration.test_walkin_queue import front, kiosk, open_agency

HOURS = {str(d): [["08:30", "12:30"], ["13:30", "17:00"]] for d in range(5)}


async def _with_hours(client: Any, **extra: Any) -> dict[str, Any]:
    world = await open_agency(client, desks=1)
    r = await client.patch(
        f"/api/v1/agencies/{world['id']}", json={"opening_hours": HOURS, **extra}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    return world


async def _issue(client: Any, world: dict[str, Any], headers: dict[str, str], **body: Any) -> Any:
    return await client.post(
        f"/api/v1/agencies/{world['id']}/tickets",
        json={"service_id": world["service"]["id"], **body},
        headers=headers,
    )


async def test_no_ticket_at_night_and_the_answer_says_when_it_opens(client, clock, sessions):
    world = await _with_hours(client)
    clock.now = clock.now.replace(hour=23, minute=21)  # Monday 00:21 Tuesday in Paris
    for headers in (kiosk(world["id"]), front(world["id"])):
        problem = assert_problem(await _issue(client, world, headers), 409)
        assert problem["code"] == "agency_closed"
        assert problem["opens_at"] == "2026-03-03T07:30:00+00:00"  # Tuesday 08:30 Paris
    clock.now = clock.now.replace(day=3, hour=7, minute=30)
    assert (await _issue(client, world, kiosk(world["id"]))).status_code == 201


async def test_staff_may_override_the_hours_a_kiosk_may_not(client, clock):
    world = await _with_hours(client)
    clock.now = clock.now.replace(hour=16, minute=5)  # 17:05 in Paris: just closed
    assert_problem(await _issue(client, world, kiosk(world["id"]), outside_hours=True), 409)
    r = await _issue(client, world, front(world["id"]), outside_hours=True)
    assert r.status_code == 201, r.text


async def test_closed_dates_close_a_weekday(client, clock):
    world = await _with_hours(client, closed_dates=["2026-03-02"])  # the test clock's Monday
    problem = assert_problem(await _issue(client, world, front(world["id"])), 409)
    assert problem["opens_at"] == "2026-03-03T07:30:00+00:00"
    r = await client.get(f"/api/v1/agencies/{world['id']}")
    assert r.json()["closed_dates"] == ["2026-03-02"]


async def test_an_agency_without_hours_is_always_open(client, clock):
    world = await open_agency(client, desks=1)
    clock.now = clock.now.replace(hour=23, minute=21)
    assert (await _issue(client, world, front(world["id"]))).status_code == 201


async def test_managers_change_the_queue_policy_partially(client):
    world = await open_agency(client, desks=1)
    url = f"/api/v1/agencies/{world['id']}"
    manager = bearer("manager", world["id"])
    before = (await client.get(url)).json()["queue_policy"]
    assert before["max_calls_before_no_show"] == 3 and before["recall_min_interval_minutes"] == 5
    r = await client.patch(url, json={"queue_policy": {"max_calls_before_no_show": 2}}, headers=manager)
    assert r.status_code == 200, r.text
    r = await client.patch(url, json={"queue_policy": {"language_is_soft": True}}, headers=manager)
    policy = r.json()["queue_policy"]
    assert policy["max_calls_before_no_show"] == 2  # kept from the first change
    assert policy["language_is_soft"] is True
    assert policy["recall_min_interval_minutes"] == 5  # default unchanged


async def test_the_new_policy_applies_to_the_queue(client):
    world = await open_agency(client, desks=1)
    await client.patch(
        f"/api/v1/agencies/{world['id']}",
        json={"queue_policy": {"max_calls_before_no_show": 1}},
        headers=ADMIN,
    )
    ticket = (await _issue(client, world, front(world["id"]))).json()
    counsellor = world["counsellors"][0]
    headers = bearer("counsellor", world["id"], counsellor["id"])
    assert (
        await client.post(f"/api/v1/counsellors/{counsellor['id']}/next", headers=headers)
    ).status_code == 200
    r = await client.post(f"/api/v1/tickets/{ticket['id']}/no-show", headers=headers)
    assert r.status_code == 200, r.text  # one call is enough now (the default needs three)


async def test_bad_policy_values_are_a_4xx_naming_the_field(client, sessions):
    world = await open_agency(client, desks=1)
    url = f"/api/v1/agencies/{world['id']}"
    cases = [
        ({"max_calls_before_no_show": 0}, "queue_policy.max_calls_before_no_show"),
        ({"starvation_factor": 0}, "queue_policy.starvation_factor"),
        ({"recall_min_interval_minutes": -1}, "queue_policy.recall_min_interval_minutes"),
        ({"colour": "red"}, "queue_policy.colour"),
        ({"language_is_soft": "yes"}, "queue_policy.language_is_soft"),
    ]
    for policy, field in cases:
        assert_problem(
            await client.patch(url, json={"queue_policy": policy}, headers=ADMIN), 400, 422, field=field
        )
    assert (await client.get(url)).json()["queue_policy"]["max_calls_before_no_show"] == 3


async def test_only_the_agency_admins_change_the_policy(client):
    world = await open_agency(client, desks=1)
    url = f"/api/v1/agencies/{world['id']}"
    body = {"queue_policy": {"max_calls_before_no_show": 2}}
    assert_problem(await client.patch(url, json=body, headers=front(world["id"])), 403)
    other = await open_agency(client, desks=1)
    assert_problem(await client.patch(url, json=body, headers=bearer("manager", other["id"])), 404)
