from tests.helpers import ADMIN, make_agency, make_counsellor, make_rule, make_service


async def test_create_agency_and_list_it_publicly(client):
    agency = await make_agency(client)
    r = await client.get("/api/v1/agencies")
    assert r.status_code == 200
    assert [a["id"] for a in r.json()] == [agency["id"]]


async def test_full_setup_chain(client):
    agency = await make_agency(client)
    counsellor = await make_counsellor(client, agency["id"])
    service = await make_service(client, agency["id"])
    rule = await make_rule(client, counsellor["id"])
    assert rule["start"] == "09:00" and rule["weekday"] == 0
    assert service["duration_minutes"] == 30
    r = await client.post(
        f"/api/v1/counsellors/{counsellor['id']}/absences",
        json={"starts_at": "2026-03-02T09:00:00+01:00", "ends_at": "2026-03-02T10:00:00+01:00"},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    assert r.json()["starts_at"].startswith("2026-03-02T08:00:00")


async def test_unknown_field_is_a_problem_naming_it(client):
    r = await client.post(
        "/api/v1/agencies", json={"name": "x", "timezone": "Europe/Paris", "colour": 1}, headers=ADMIN
    )
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "colour" in r.text


async def test_missing_token_is_401(client):
    r = await client.post("/api/v1/agencies", json={"name": "x", "timezone": "Europe/Paris"})
    assert r.status_code == 401
    assert r.json()["status"] == 401


async def test_demo_seed_is_realistic_and_idempotent(sessions, clock):
    from sqlalchemy import func, select

    from orchestrator.demo import seed_demo
    from orchestrator.models import Appointment, AvailabilityRule, Counsellor, Service

    first = await seed_demo(sessions, now=clock())
    assert await seed_demo(sessions, now=clock()) == first
    async with sessions() as session:
        count = lambda model: session.scalar(select(func.count()).select_from(model))  # noqa: E731
        assert await count(Counsellor) >= 5
        assert await count(Service) >= 4
        assert await count(AvailabilityRule) >= 40
        appointments = (await session.scalars(select(Appointment))).all()
    assert len(appointments) >= 10
    assert {a.channel for a in appointments} >= {"web", "sms", "voice"}
