"""Bad input and other agencies' ids on the booking API: always a problem+json 4xx naming the
field, never a 500, and nothing written."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from tests.helpers import ADMIN, assert_problem, bearer, make_agency, make_counsellor, make_rule, make_service

SEEKER = {"name": "Nadia", "phone": "06 12 34 56 78", "preferred_channel": "sms"}
BOOKING_TABLES = ("appointments", "claims", "holds", "job_seekers", "notifications", "idempotency_keys")


@pytest.fixture
async def world(client) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Agency A (public + staff-only service, one booked appointment) and agency B (its own service)."""
    a = await make_agency(client, "Agence A")
    b = await make_agency(client, "Agence B")
    ca = await make_counsellor(client, a["id"])
    cb = await make_counsellor(client, b["id"], email="b@example.org")
    for c in (ca, cb):
        await make_rule(client, c["id"], weekday=0, start="09:00", end="12:00")
    sa = await make_service(client, a["id"], max_horizon_days=30)
    staff_only = await make_service(client, a["id"], name="Interne", bookable_by="staff")
    sb = await make_service(client, b["id"])
    booked = []
    for start in ("2026-03-09T10:00:00+01:00", "2026-03-09T11:00:00+01:00"):
        r = await client.post(
            "/api/v1/appointments",
            json={
                "agency_id": a["id"],
                "service_id": sa["id"],
                "starts_at": start,
                "mode": "in_person",
                "job_seeker": SEEKER,
            },
        )
        assert r.status_code == 201, r.text
        booked.append(r.json())
    return {
        "a": a,
        "b": b,
        "ca": ca,
        "cb": cb,
        "sa": sa,
        "staff_only": staff_only,
        "sb": sb,
        "x": booked[0],
        "y": booked[1],
    }


async def _counts(sessions: Any) -> dict[str, int]:
    async with sessions() as session:
        return {
            t: int((await session.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one())
            for t in BOOKING_TABLES
        }


def _booking(w: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {
        "agency_id": w["a"]["id"],
        "service_id": w["sa"]["id"],
        "starts_at": "2026-03-09T09:00:00+01:00",
        "mode": "in_person",
        "job_seeker": SEEKER,
        **over,
    }


# --- availability query -----------------------------------------------------------------------

QUERY_CASES = [
    # (overrides of the query, expected statuses, field named)
    ({"from": "2026-03-02T09:00:00"}, (400, 422), "from"),
    ({"to": "2026-03-03T09:00:00"}, (400, 422), "to"),
    ({"from": "yesterday"}, (400, 422), "from"),
    ({"from": "2026-03-03T00:00:00+01:00", "to": "2026-03-02T00:00:00+01:00"}, (422,), "to"),
    ({"from": "2026-03-02T00:00:00+01:00", "to": "2026-03-02T00:00:00+01:00"}, (422,), "to"),
    ({"from": "2026-03-02T00:00:00+01:00", "to": "2026-05-04T00:00:00+02:00"}, (422,), "to"),  # 63 days
    ({"mode": "carrier_pigeon"}, (400, 422), "mode"),
    ({"limit": "0"}, (400, 422), "limit"),
    ({"limit": "lots"}, (400, 422), "limit"),
    ({"language": "'; drop table"}, (400, 422), "language"),
    ({"agency_id": "not-a-uuid"}, (400, 422), "agency_id"),
]


@pytest.mark.parametrize(("override", "statuses", "field"), QUERY_CASES)
async def test_bad_availability_queries_name_the_field(client, world, override, statuses, field):
    params = {
        "agency_id": world["a"]["id"],
        "service_id": world["sa"]["id"],
        "from": "2026-03-02T00:00:00+01:00",
        "to": "2026-03-03T00:00:00+01:00",
        **override,
    }
    assert_problem(await client.get("/api/v1/availability", params=params), *statuses, field=field)


async def test_62_days_is_the_longest_range(client, world):
    params = {
        "agency_id": world["a"]["id"],
        "service_id": world["sa"]["id"],
        "from": "2026-03-02T00:00:00+01:00",
        "to": "2026-05-03T00:00:00+02:00",
    }
    r = await client.get("/api/v1/availability", params=params)
    assert r.status_code == 200, r.text


async def test_unknown_and_other_agency_ids_are_404(client, world):
    base = {"from": "2026-03-09T00:00:00+01:00", "to": "2026-03-10T00:00:00+01:00"}
    cases = [
        {"agency_id": str(uuid.uuid4()), "service_id": world["sa"]["id"]},
        {"agency_id": world["a"]["id"], "service_id": str(uuid.uuid4())},
        {"agency_id": world["a"]["id"], "service_id": world["sb"]["id"]},  # B's service under A
        {"agency_id": world["b"]["id"], "service_id": world["sa"]["id"]},  # A's service under B
    ]
    for ids in cases:
        assert_problem(await client.get("/api/v1/availability", params={**base, **ids}), 404)


# --- booking bodies ---------------------------------------------------------------------------

BODY_CASES = [
    # (overrides of a valid booking, expected statuses, field named)
    ({"starts_at": "2026-03-09T09:00:00"}, (400, 422), "starts_at"),  # naive
    ({"starts_at": "2026-03-09T09:07:00+01:00"}, (422,), "starts_at"),  # not on the grid
    ({"starts_at": "2026-03-02T08:30:00+01:00"}, (422,), "starts_at"),  # inside the 60-min notice
    ({"starts_at": "2026-04-06T09:00:00+02:00"}, (422,), "starts_at"),  # beyond the 30-day horizon
    ({"starts_at": "tomorrow"}, (400, 422), "starts_at"),
    ({"mode": "video"}, (422,), "mode"),  # not offered by the service
    ({"mode": "telepathy"}, (400, 422), "mode"),
    ({"colour": "blue"}, (400, 422), "colour"),  # unknown field
    ({"job_seeker": {**SEEKER, "shoe_size": 42}}, (400, 422), "job_seeker.shoe_size"),
    ({"job_seeker": {**SEEKER, "phone": "12"}}, (400, 422), "job_seeker.phone"),
    ({"job_seeker": {**SEEKER, "phone": "06 12 34"}}, (422,), "job_seeker.phone"),
    ({"job_seeker": {**SEEKER, "phone": "not a phone number"}}, (422,), "job_seeker.phone"),
    ({"job_seeker": {"name": "Sans numéro", "preferred_channel": "sms"}}, (422,), "job_seeker.phone"),
    ({"job_seeker": {**SEEKER, "email": "nope"}}, (400, 422), "job_seeker.email"),
    ({"job_seeker": {**SEEKER, "needs": {"priority": 9}}}, (400, 422), "job_seeker.needs.priority"),
    ({"agency_id": "a"}, (400, 422), "agency_id"),
    ({"channel": "voice"}, (422,), "channel"),  # only staff may say where the request came from
    ({"hold_id": str(uuid.uuid4())}, (422,), "hold_id"),
]


@pytest.mark.parametrize(("override", "statuses", "field"), BODY_CASES)
async def test_bad_booking_bodies_name_the_field_and_write_nothing(
    client, sessions, world, override, statuses, field
):
    before = await _counts(sessions)
    r = await client.post("/api/v1/appointments", json=_booking(world, **override))
    assert_problem(r, *statuses, field=field)
    assert await _counts(sessions) == before


@pytest.mark.parametrize("missing", ["agency_id", "service_id", "starts_at", "mode", "job_seeker"])
async def test_missing_booking_fields_are_named(client, sessions, world, missing):
    body = _booking(world)
    del body[missing]
    before = await _counts(sessions)
    assert_problem(await client.post("/api/v1/appointments", json=body), 400, 422, field=missing)
    assert await _counts(sessions) == before


@pytest.mark.parametrize("path", ["/api/v1/appointments", "/api/v1/holds"])
@pytest.mark.parametrize(
    "raw", [b"{", b"", b"[]", b'{"agency_id": }', b"null", "\u00e9t\u00e9".encode("latin-1")]
)
async def test_malformed_json_is_a_400(client, sessions, world, path, raw):
    before = await _counts(sessions)
    r = await client.post(path, content=raw, headers={"content-type": "application/json"})
    assert_problem(r, 400, 415, 422)
    assert await _counts(sessions) == before


HOLD_CASES = [
    ({"starts_at": "2026-03-09T09:00:00"}, (400, 422), "starts_at"),
    ({"starts_at": "2026-03-09T09:07:00+01:00"}, (422,), "starts_at"),
    ({"mode": "video"}, (422,), "mode"),
    ({"job_seeker": SEEKER}, (400, 422), "job_seeker"),  # a hold carries no personal data
    ({"counsellor_id": "c-1"}, (400, 422), "counsellor_id"),
]


@pytest.mark.parametrize(("override", "statuses", "field"), HOLD_CASES)
async def test_bad_hold_bodies_name_the_field(client, sessions, world, override, statuses, field):
    body = {
        "agency_id": world["a"]["id"],
        "service_id": world["sa"]["id"],
        "starts_at": "2026-03-09T09:00:00+01:00",
        "mode": "in_person",
        **override,
    }
    before = await _counts(sessions)
    assert_problem(await client.post("/api/v1/holds", json=body), *statuses, field=field)
    assert await _counts(sessions) == before


async def test_naming_another_agencys_counsellor_is_rejected(client, sessions, world):
    before = await _counts(sessions)
    r = await client.post("/api/v1/appointments", json=_booking(world, counsellor_id=world["cb"]["id"]))
    assert_problem(r, 404, 422, field=None if r.status_code == 404 else "counsellor_id")
    assert await _counts(sessions) == before


async def test_bad_idempotency_key_is_named(client, sessions, world):
    before = await _counts(sessions)
    r = await client.post(
        "/api/v1/appointments", json=_booking(world), headers={"Idempotency-Key": "x" * 300}
    )
    assert_problem(r, 400, 422, field="Idempotency-Key")
    assert await _counts(sessions) == before


RESCHEDULE_CASES = [
    ({"starts_at": "2026-03-09T09:30:00"}, (400, 422), "starts_at"),
    ({"starts_at": "2026-03-09T09:37:00+01:00"}, (422,), "starts_at"),
    ({"starts_at": "2026-03-09T09:30:00+01:00", "mode": "video"}, (422,), "mode"),
    ({"starts_at": "2026-03-09T09:30:00+01:00", "status": "cancelled"}, (400, 422), "status"),
    ({}, (400, 422), "starts_at"),
]


@pytest.mark.parametrize(("body", "statuses", "field"), RESCHEDULE_CASES)
async def test_bad_reschedule_bodies_change_nothing(client, sessions, world, body, statuses, field):
    x = world["x"]
    before = await _counts(sessions)
    r = await client.post(
        f"/api/v1/appointments/{x['id']}/reschedule", json=body, headers={"X-Manage-Token": x["manage_token"]}
    )
    assert_problem(r, *statuses, field=field)
    assert await _counts(sessions) == before
    r = await client.get(f"/api/v1/appointments/{x['id']}", headers={"X-Manage-Token": x["manage_token"]})
    assert r.json()["starts_at"] == "2026-03-09T09:00:00Z"


async def test_cancel_with_bad_body_is_rejected(client, sessions, world):
    x = world["x"]
    r = await client.post(
        f"/api/v1/appointments/{x['id']}/cancel",
        json={"reason": "x" * 500},
        headers={"X-Manage-Token": x["manage_token"]},
    )
    assert_problem(r, 400, 422, field="reason")
    r = await client.get(f"/api/v1/appointments/{x['id']}", headers={"X-Manage-Token": x["manage_token"]})
    assert r.json()["status"] == "confirmed"


# --- who may see and act ----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["manager", "front_desk"])
async def test_other_agency_staff_get_404_on_an_appointment(client, sessions, world, role):
    x = world["x"]
    other = bearer(role, world["b"]["id"])
    before = await _counts(sessions)
    assert_problem(await client.get(f"/api/v1/appointments/{x['id']}", headers=other), 404)
    assert_problem(await client.post(f"/api/v1/appointments/{x['id']}/cancel", headers=other), 404)
    r = await client.post(
        f"/api/v1/appointments/{x['id']}/reschedule",
        headers=other,
        json={"starts_at": "2026-03-09T09:30:00+01:00"},
    )
    assert_problem(r, 404)
    assert await _counts(sessions) == before
    r = await client.get(f"/api/v1/appointments/{x['id']}", headers=bearer(role, world["a"]["id"]))
    assert r.status_code == 200 and r.json()["status"] == "confirmed"


async def test_other_agency_staff_cannot_book_a_staff_only_service(client, sessions, world):
    before = await _counts(sessions)
    body = _booking(world, service_id=world["staff_only"]["id"])
    for headers in (bearer("manager", world["b"]["id"]), bearer("front_desk", world["b"]["id"]), {}):
        assert_problem(await client.post("/api/v1/appointments", json=body, headers=headers), 404)
        hold = {k: body[k] for k in ("agency_id", "service_id", "starts_at", "mode")}
        assert_problem(await client.post("/api/v1/holds", json=hold, headers=headers), 404)
    assert await _counts(sessions) == before
    r = await client.post("/api/v1/appointments", json=body, headers=bearer("front_desk", world["a"]["id"]))
    assert r.status_code == 201, r.text


async def test_a_manage_token_only_opens_its_own_appointment(client, sessions, world):
    x, y = world["x"], world["y"]
    token_x = {"X-Manage-Token": x["manage_token"]}
    before = await _counts(sessions)
    assert_problem(await client.get(f"/api/v1/appointments/{y['id']}", headers=token_x), 404)
    assert_problem(await client.post(f"/api/v1/appointments/{y['id']}/cancel", headers=token_x), 404)
    r = await client.post(
        f"/api/v1/appointments/{y['id']}/reschedule",
        headers=token_x,
        json={"starts_at": "2026-03-09T09:30:00+01:00"},
    )
    assert_problem(r, 404)
    assert_problem(await client.get(f"/api/v1/appointments/{uuid.uuid4()}", headers=token_x), 404)
    assert await _counts(sessions) == before
    r = await client.get(f"/api/v1/appointments/{y['id']}", headers={"X-Manage-Token": y["manage_token"]})
    assert r.status_code == 200 and r.json()["status"] == "confirmed"


async def test_no_credentials_is_401_and_a_bad_token_is_401(client, world):
    x = world["x"]
    assert_problem(await client.get(f"/api/v1/appointments/{x['id']}"), 401)
    assert_problem(await client.post(f"/api/v1/appointments/{x['id']}/cancel"), 401)
    assert_problem(
        await client.get(f"/api/v1/appointments/{x['id']}", headers={"Authorization": "Bearer not.a.token"}),
        401,
    )


async def test_a_kiosk_token_cannot_read_appointments(client, world):
    x = world["x"]
    assert_problem(
        await client.get(f"/api/v1/appointments/{x['id']}", headers=bearer("kiosk", world["a"]["id"])),
        401,
        403,
        404,
    )


async def test_admin_sees_every_agency(client, world):
    r = await client.get(f"/api/v1/appointments/{world['x']['id']}", headers=ADMIN)
    assert r.status_code == 200
