"""The job seeker's path: find a slot, hold it, book it, reschedule it, cancel it."""

from tests.helpers import ADMIN, make_agency, make_counsellor, make_rule, make_service

DAY = {"from": "2026-03-02T00:00:00+01:00", "to": "2026-03-03T00:00:00+01:00"}
SEEKER = {"name": "Nadia", "phone": "06 12 34 56 78", "language": "fr", "preferred_channel": "sms"}


async def _setup(client):
    agency = await make_agency(client)
    counsellor = await make_counsellor(client, agency["id"])
    service = await make_service(client, agency["id"])
    await make_rule(client, counsellor["id"], weekday=0, start="09:00", end="12:00")
    return agency, counsellor, service


async def _slots(client, agency, service, **extra):
    r = await client.get(
        "/api/v1/availability",
        params={"agency_id": agency["id"], "service_id": service["id"], **DAY, **extra},
    )
    assert r.status_code == 200, r.text
    return r.json()["slots"]


async def test_availability_lists_grid_slots_after_notice(client):
    agency, counsellor, service = await _setup(client)
    slots = await _slots(client, agency, service)
    starts = [s["starts_at"] for s in slots]
    assert starts[0] == "2026-03-02T08:00:00Z"  # 09:00 Paris, exactly now + 60 min notice
    assert starts[-1] == "2026-03-02T10:30:00Z"  # last 30-min slot ends at 12:00 Paris
    assert len(starts) == 11
    assert {s["counsellor_id"] for s in slots} == {counsellor["id"]}


async def test_book_then_slot_disappears_and_manage_token_works(client):
    agency, _, service = await _setup(client)
    body = {
        "agency_id": agency["id"],
        "service_id": service["id"],
        "starts_at": "2026-03-02T10:00:00+01:00",
        "mode": "in_person",
        "job_seeker": SEEKER,
    }
    r = await client.post("/api/v1/appointments", json=body)
    assert r.status_code == 201, r.text
    appt = r.json()
    assert appt["status"] == "confirmed" and appt["channel"] == "web" and appt["manage_token"]
    starts = [s["starts_at"] for s in await _slots(client, agency, service)]
    assert "2026-03-02T09:00:00Z" not in starts and "2026-03-02T08:45:00Z" not in starts
    r = await client.get(
        f"/api/v1/appointments/{appt['id']}", headers={"X-Manage-Token": appt["manage_token"]}
    )
    assert r.status_code == 200 and "manage_token" not in r.json()
    r = await client.get(f"/api/v1/appointments/{appt['id']}", headers={"X-Manage-Token": "wrong"})
    assert r.status_code == 404
    r = await client.post("/api/v1/appointments", json=body)
    assert r.status_code == 409
    assert r.json()["alternatives"], r.text


async def test_hold_then_book_then_reschedule_then_cancel(client):
    agency, _, service = await _setup(client)
    r = await client.post(
        "/api/v1/holds",
        json={
            "agency_id": agency["id"],
            "service_id": service["id"],
            "starts_at": "2026-03-09T09:30:00+01:00",
            "mode": "phone",
        },
    )
    assert r.status_code == 201, r.text
    hold = r.json()
    assert hold["expires_at"] == "2026-03-02T07:10:00Z"
    r = await client.post(
        "/api/v1/appointments",
        json={
            "agency_id": agency["id"],
            "service_id": service["id"],
            "starts_at": "2026-03-09T09:30:00+01:00",
            "mode": "phone",
            "hold_id": hold["id"],
            "job_seeker": SEEKER,
        },
    )
    assert r.status_code == 201, r.text
    appt = r.json()
    token = {"X-Manage-Token": appt["manage_token"]}
    r = await client.post(
        f"/api/v1/appointments/{appt['id']}/reschedule",
        headers=token,
        json={"starts_at": "2026-03-09T09:45:00+01:00"},
    )  # overlaps its own old time
    assert r.status_code == 200, r.text
    assert r.json()["starts_at"] == "2026-03-09T08:45:00Z"
    r = await client.post(
        f"/api/v1/appointments/{appt['id']}/cancel", headers=token, json={"reason": "found a job"}
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    starts = [
        s["starts_at"]
        for s in await _slots(
            client,
            agency,
            service,
            **{"from": "2026-03-09T00:00:00+01:00", "to": "2026-03-10T00:00:00+01:00"},
        )
    ]
    assert "2026-03-09T08:45:00Z" in starts


async def test_staff_books_on_behalf_with_channel(client):
    agency, _, service = await _setup(client)
    r = await client.post(
        "/api/v1/appointments",
        headers=ADMIN,
        json={
            "agency_id": agency["id"],
            "service_id": service["id"],
            "starts_at": "2026-03-02T11:00:00+01:00",
            "mode": "phone",
            "channel": "voice",
            "job_seeker": {"name": "Jo"},
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["channel"] == "voice" and r.json()["created_by"] == "admin:test-admin"


async def test_preferred_times_come_first_and_limit_keeps_the_best(client):
    agency, _, service = await _setup(client)
    slots = await _slots(
        client, agency, service, prefer="2026-03-02T11:00:00+01:00/2026-03-02T12:00:00+01:00", limit=3
    )
    assert [s["starts_at"] for s in slots] == [
        "2026-03-02T10:00:00Z",
        "2026-03-02T10:15:00Z",
        "2026-03-02T10:30:00Z",
    ]
    r = await client.get(
        "/api/v1/availability",
        params={
            "agency_id": agency["id"],
            "service_id": service["id"],
            **DAY,
            "prefer": "2026-03-02T11:00:00+01:00",
        },
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "prefer"


async def test_holds_are_audited_without_personal_data(client, sessions):
    from sqlalchemy import select

    from orchestrator.models import AuditEvent

    agency, _, service = await _setup(client)
    r = await client.post(
        "/api/v1/holds",
        json={
            "agency_id": agency["id"],
            "service_id": service["id"],
            "starts_at": "2026-03-02T10:00:00+01:00",
            "mode": "phone",
        },
    )
    assert r.status_code == 201, r.text
    async with sessions() as session:
        event = (await session.scalars(select(AuditEvent).where(AuditEvent.action == "hold.placed"))).one()
    assert (event.actor, str(event.entity_id)) == ("public", r.json()["id"])
    assert event.data["starts_at"] == "2026-03-02T09:00:00+00:00"
