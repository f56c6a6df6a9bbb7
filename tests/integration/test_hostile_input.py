"""The cases of the hostile-input review: control characters in free text and date-times out of
range are a 422 naming the field (never a 500), nothing is written, and no log line carries the
person's name, phone number or e-mail address."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from litestar import post
from litestar.params import FromPath, JSONBody
from sqlalchemy import text

from orchestrator.channels.http import UoW
from tests.helpers import ADMIN, assert_problem, make_agency, make_counsellor, make_rule, make_service
from tests.integration.test_booking_errors import _counts

NAME, PHONE, EMAIL = "Jeanne Dupont-Zarkovic", "+33698765432", "jeanne.zarkovic@example.org"
SEEKER = {"name": NAME, "phone": PHONE, "email": EMAIL, "preferred_channel": "sms"}
FAR = "9999-12-31T23:45:00+00:00"


@pytest.fixture
def app(settings, deps):  # type: ignore[no-untyped-def]
    """The real app plus one test-only route that fails with a database error quoting a phone."""
    from orchestrator.app import create_app

    @post("/test-only/duplicate", status_code=204)
    async def duplicate(data: JSONBody[dict[str, str]], uow: UoW) -> None:
        await uow.session.execute(text("CREATE TEMP TABLE IF NOT EXISTS dup (phone text PRIMARY KEY)"))
        await uow.session.execute(text("INSERT INTO dup VALUES (:p), (:p)"), {"p": data["phone"]})

    @post("/test-only/cast", status_code=204)
    async def cast(data: JSONBody[dict[str, str]], uow: UoW) -> None:
        await uow.session.execute(text("SELECT CAST(:p AS integer)"), {"p": data["phone"]})

    @post("/test-only/sqlstate/{code:str}", status_code=204)
    async def fail_with(code: FromPath[str], uow: UoW) -> None:
        # PostgreSQL raises the error itself, as it would on a real deadlock or serialization failure
        await uow.session.execute(
            text(f"DO $$ BEGIN RAISE EXCEPTION 'simulated' USING ERRCODE = '{code}'; END $$")
        )

    return create_app(settings, deps, route_handlers=[duplicate, cast, fail_with])


@pytest.fixture
async def world(client) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    agency = await make_agency(client)
    counsellor = await make_counsellor(client, agency["id"])
    await make_rule(client, counsellor["id"], weekday=0, start="09:00", end="12:00")
    service = await make_service(client, agency["id"], max_horizon_days=30)
    r = await client.post("/api/v1/appointments", json=_booking(agency, service))
    assert r.status_code == 201, r.text
    return {"agency": agency, "service": service, "appointment": r.json()}


def _booking(agency: dict[str, Any], service: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {
        "agency_id": agency["id"],
        "service_id": service["id"],
        "starts_at": "2026-03-09T10:00:00+01:00",
        "mode": "in_person",
        "job_seeker": SEEKER,
        **over,
    }


CONTROL_CASES = [
    ("job_seeker.name", {"name": "Jean\u0000Dupont"}),
    ("job_seeker.name", {"name": "Jean\u001b[31mDupont"}),
    ("job_seeker.name", {"name": "Jean\nDupont"}),  # a name is one line
    ("job_seeker.name", {"name": "Jean\u0085Dupont"}),  # C1 "next line"
    ("job_seeker.phone", {"phone": "+3369876543\u00002"}),
    ("job_seeker.name", {"name": "\u202egnp.exe"}),  # a right-to-left override
]


@pytest.mark.parametrize(("field", "seeker"), CONTROL_CASES)
async def test_control_characters_in_a_booking_are_a_422_naming_the_field(
    client, sessions, world, field, seeker
):
    before = await _counts(sessions)
    body = _booking(world["agency"], world["service"], starts_at="2026-03-09T09:00:00+01:00")
    body["job_seeker"] = {**SEEKER, **seeker}
    problem = assert_problem(await client.post("/api/v1/appointments", json=body), 422, field=field)
    assert "control characters" in problem["errors"][0]["message"]
    assert await _counts(sessions) == before


async def test_a_cancel_reason_with_nul_is_a_422_and_a_multiline_reason_is_fine(client, sessions, world):
    appointment = world["appointment"]
    url = f"/api/v1/appointments/{appointment['id']}/cancel"
    headers = {"X-Manage-Token": appointment["manage_token"]}
    assert_problem(await client.post(url, json={"reason": "x\u0000y"}, headers=headers), 422, field="reason")
    r = await client.get(f"/api/v1/appointments/{appointment['id']}", headers=headers)
    assert r.json()["status"] == "confirmed"
    r = await client.post(url, json={"reason": "Empêchée.\nJe rappelle demain."}, headers=headers)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("path", "extra"),
    [("/api/v1/holds", {}), ("/api/v1/appointments", {"job_seeker": SEEKER})],
)
@pytest.mark.parametrize("starts_at", [FAR, "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+14:00"])
async def test_far_dates_are_a_422_not_an_overflow(client, sessions, world, path, extra, starts_at):
    before = await _counts(sessions)
    body = {
        "agency_id": world["agency"]["id"],
        "service_id": world["service"]["id"],
        "starts_at": starts_at,
        "mode": "in_person",
        **extra,
    }
    problem = assert_problem(await client.post(path, json=body), 422, field="starts_at")
    assert "between 2000-01-01 and 2100-01-01" in problem["errors"][0]["message"]
    assert await _counts(sessions) == before


async def test_rescheduling_to_year_9999_is_a_422(client, world):
    appointment = world["appointment"]
    r = await client.post(
        f"/api/v1/appointments/{appointment['id']}/reschedule",
        json={"starts_at": FAR},
        headers={"X-Manage-Token": appointment["manage_token"]},
    )
    assert_problem(r, 422, field="starts_at")


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("0001-01-01T00:00:00+00:00", "0001-01-02T00:00:00+00:00", "from"),
        ("9999-12-31T00:00:00-05:00", "9999-12-31T20:00:00-05:00", "from"),
        ("2026-03-02T00:00:00+00:00", "9999-12-31T20:00:00-05:00", "to"),
    ],
)
async def test_availability_far_from_or_to_is_a_422(client, world, start, end, field):
    query = {
        "agency_id": world["agency"]["id"],
        "service_id": world["service"]["id"],
        "from": start,
        "to": end,
    }
    assert_problem(await client.get("/api/v1/availability", params=query), 422, field=field)


async def test_preferred_window_out_of_range_is_a_422(client, world):
    query = {
        "agency_id": world["agency"]["id"],
        "service_id": world["service"]["id"],
        "from": "2026-03-09T00:00:00+01:00",
        "to": "2026-03-10T00:00:00+01:00",
        "prefer": "0001-01-01T00:00:00+00:00/2026-03-09T10:00:00+01:00",
    }
    assert_problem(await client.get("/api/v1/availability", params=query), 422, field="prefer")


async def test_absence_far_in_the_future_is_a_422(client, world):
    counsellor = await make_counsellor(client, world["agency"]["id"], email="other@example.org")
    r = await client.post(
        f"/api/v1/counsellors/{counsellor['id']}/absences",
        json={"starts_at": "2026-03-09T00:00:00+01:00", "ends_at": "9999-12-31T23:00:00-05:00"},
        headers=ADMIN,
    )
    assert_problem(r, 422, field="ends_at")


async def test_control_characters_in_admin_text_are_a_422(client, world):
    r = await client.patch(
        f"/api/v1/agencies/{world['agency']['id']}", json={"name": "Agence\u0007Nord"}, headers=ADMIN
    )
    assert_problem(r, 422, field="name")
    r = await client.patch(
        f"/api/v1/agencies/{world['agency']['id']}",
        json={"address": "12 rue de la Paix\n75002 Paris"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text


async def test_ticket_name_with_nul_is_a_422(client, world):
    r = await client.post(
        f"/api/v1/agencies/{world['agency']['id']}/tickets",
        json={"service_id": world["service"]["id"], "job_seeker": {"name": "A\u0000B"}},
        headers=ADMIN,
    )
    assert_problem(r, 422, field="job_seeker.name")


@pytest.mark.parametrize("code", ["40P01", "40001"])
async def test_deadlocks_and_serialization_failures_are_a_409_to_retry(client, code):
    r = await client.post(f"/test-only/sqlstate/{code}")
    problem = assert_problem(r, 409)
    assert problem["code"] == "retry"
    assert r.headers["retry-after"] == "1"


async def test_other_database_errors_stay_a_500_problem(client):
    assert_problem(await client.post("/test-only/sqlstate/XX000"), 500)


# --- no personal data in logs -------------------------------------------------------------------

# E.164 numbers, French national numbers, e-mail addresses
PERSONAL = re.compile(r"\+\d{6,}|\b0[1-9](?:[ .-]?\d{2}){4}\b|[\w.+-]+@[\w-]+\.[a-z]{2,}")


async def test_the_worst_cases_leave_no_personal_data_in_the_logs(client, world, caplog):
    """Drive conflicts, validation errors, an exclusion violation and unexpected errors, with the
    JSON formatter the server uses, and scan every line for the person's data."""
    from orchestrator.logs import JsonFormatter, PlainFormatter

    caplog.set_level(logging.DEBUG)
    agency, service, appointment = world["agency"], world["service"], world["appointment"]
    taken = _booking(agency, service)  # the slot of world["appointment"]: a 409 with alternatives
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("post", "/api/v1/appointments", taken),
        ("post", "/api/v1/appointments", {**taken, "job_seeker": {**SEEKER, "name": "Jean\u0000" + NAME}}),
        ("post", "/api/v1/appointments", {**taken, "starts_at": FAR}),
        ("post", "/api/v1/appointments", {**taken, "job_seeker": {**SEEKER, "phone": "+1 not a phone"}}),
        ("post", "/api/v1/appointments", {**taken, "job_seeker": {**SEEKER, "email": "x\u0000" + EMAIL}}),
        ("post", f"/api/v1/appointments/{appointment['id']}/cancel", {"reason": NAME + "\u0000"}),
    ]
    for method, path, body in requests:
        r = await getattr(client, method)(path, json=body)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
    # unexpected database errors, raised inside a request, are logged with their traceback
    await _provoke_unique_violation_in_a_request(client, world)
    r = await client.post("/test-only/cast", json={"phone": PHONE})  # PostgreSQL quotes the value
    assert r.status_code == 500 and PHONE not in r.text
    lines = [JsonFormatter().format(record) for record in caplog.records]
    lines += [PlainFormatter().format(record) for record in caplog.records]  # ORCHESTRATOR_LOG_JSON=0
    assert any('"exc"' in line for line in lines), "the unexpected error should be logged with a traceback"
    for line in lines:
        assert NAME not in line and "Zarkovic" not in line, line
        assert PHONE not in line and "698765432" not in line, line
        assert EMAIL not in line, line
        assert not PERSONAL.search(line), line


async def _provoke_unique_violation_in_a_request(client: Any, world: dict[str, Any]) -> None:
    """A database error the API does not expect: a route (test-only) inserts a duplicate key
    whose value is the person's phone number, so the driver's message quotes it."""
    r = await client.post("/test-only/duplicate", json={"phone": PHONE})
    assert r.status_code == 500
    assert PHONE not in r.text


# --- phone numbers read in the agency's region --------------------------------------------------


@pytest.mark.parametrize(
    ("timezone", "typed", "stored"),
    [
        ("Indian/Reunion", "0692 12 34 56", "+262692123456"),
        ("America/Cayenne", "0694 20 12 34", "+594694201234"),
        ("Europe/Paris", "06 98 76 54 32", "+33698765432"),
        ("Indian/Reunion", "+33 6 98 76 54 32", "+33698765432"),  # an international number stays itself
        ("Europe/Paris", "0692 12 34 56", "+262692123456"),  # one national plan: a Réunion mobile
        ("America/Cayenne", "06 98 76 54 32", "+33698765432"),  # … and a metropolitan one
        ("Pacific/Noumea", "75 12 34", "+687751234"),  # New Caledonia has its own plan
    ],
)
async def test_national_numbers_are_read_in_the_agency_region(client, sessions, timezone, typed, stored):
    agency = await make_agency(client, timezone=timezone)
    counsellor = await make_counsellor(client, agency["id"])
    await make_rule(client, counsellor["id"], weekday=0, start="09:00", end="12:00")
    service = await make_service(client, agency["id"], max_horizon_days=30)
    body = _booking(agency, service, starts_at="2026-03-09T10:00:00+00:00")
    body["job_seeker"] = {"name": "R", "phone": typed, "preferred_channel": "sms"}
    if timezone != "Europe/Paris":  # opening hours differ: find the first free slot instead
        r = await client.get(
            "/api/v1/availability",
            params={
                "agency_id": agency["id"],
                "service_id": service["id"],
                "from": "2026-03-09T00:00:00+00:00",
                "to": "2026-03-10T12:00:00+00:00",
            },
        )
        body["starts_at"] = r.json()["slots"][0]["starts_at"]
    r = await client.post("/api/v1/appointments", json=body)
    assert r.status_code == 201, r.text
    async with sessions() as session:
        phone = await session.scalar(
            text("SELECT phone FROM job_seekers WHERE id = :id"), {"id": r.json()["job_seeker_id"]}
        )
    assert phone == stored


async def test_a_number_outside_every_plan_is_a_422(client, world):
    body = _booking(world["agency"], world["service"], starts_at="2026-03-09T09:00:00+01:00")
    body["job_seeker"] = {"name": "R", "phone": "0012 34", "preferred_channel": "sms"}
    assert_problem(await client.post("/api/v1/appointments", json=body), 422, field="job_seeker.phone")
