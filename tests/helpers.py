"""Small builders shared by the integration tests."""

from __future__ import annotations

import uuid
from typing import Any

from orchestrator.auth import Role, issue_token

SECRET = "test-secret-not-for-production-0123456789"


def bearer(
    role: Role | str,
    agency_id: uuid.UUID | str | None = None,
    counsellor_id: uuid.UUID | str | None = None,
) -> dict[str, str]:
    token = issue_token(
        SECRET,
        role=Role(role),
        subject=f"test-{role}",
        agency_id=uuid.UUID(str(agency_id)) if agency_id else None,
        counsellor_id=uuid.UUID(str(counsellor_id)) if counsellor_id else None,
    )
    return {"Authorization": f"Bearer {token}"}


ADMIN = bearer(Role.ADMIN)


async def make_agency(
    client: Any, name: str = "Agence Test", timezone: str = "Europe/Paris"
) -> dict[str, Any]:
    r = await client.post("/api/v1/agencies", json={"name": name, "timezone": timezone}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def make_counsellor(client: Any, agency_id: str, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Camille Martin",
        "email": "camille@example.org",
        "skills": ["insertion"],
        "languages": ["fr"],
        "modes": ["in_person", "phone"],
        **fields,
    }
    r = await client.post(f"/api/v1/agencies/{agency_id}/counsellors", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def make_service(client: Any, agency_id: str, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Entretien de suivi",
        "duration_minutes": 30,
        "modes": ["in_person", "phone"],
        "min_notice_minutes": 60,
        **fields,
    }
    r = await client.post(f"/api/v1/agencies/{agency_id}/services", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def make_rule(
    client: Any,
    counsellor_id: str,
    weekday: int = 0,
    start: str = "09:00",
    end: str = "12:00",
    modes: list[str] | None = None,
) -> dict[str, Any]:
    body = {"weekday": weekday, "start": start, "end": end, "modes": modes or ["in_person", "phone"]}
    r = await client.post(f"/api/v1/counsellors/{counsellor_id}/rules", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return dict(r.json())


# --- added for the validation / access / operations suites ---------------------------------------

PROBLEM_JSON = "application/problem+json"
COUNTED_TABLES = ("agencies", "counsellors", "services", "availability_rules", "absences", "audit_events")


def expired_bearer(role: Role | str = Role.ADMIN, agency_id: uuid.UUID | str | None = None) -> dict[str, str]:
    """A correctly signed token that expired an hour ago (issued two days ago, 12 h ttl)."""
    from datetime import UTC, datetime, timedelta

    token = issue_token(
        SECRET,
        role=Role(role),
        subject=f"test-expired-{role}",
        agency_id=uuid.UUID(str(agency_id)) if agency_id else None,
        now=datetime.now(UTC) - timedelta(days=2),
    )
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: Any, *statuses: int, field: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem with one of ``statuses``; when ``field`` is given an error names it."""
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers["content-type"]
    body = dict(response.json())
    assert body["status"] == response.status_code, body
    assert body.get("title"), body
    if field is not None:
        named = [str(e.get("field")) for e in body.get("errors", [])]
        assert any(n == field or n.startswith((field + ".", field + "[")) for n in named), (field, body)
        assert field in response.text
    return body


async def row_counts(sessions: Any) -> dict[str, int]:
    """How many rows each admin table (and the audit trail) holds, read through the test connection."""
    from sqlalchemy import text

    async with sessions() as session:
        return {
            t: int((await session.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one())
            for t in COUNTED_TABLES
        }


async def make_absence(
    client: Any,
    counsellor_id: str,
    starts_at: str = "2026-03-03T09:00:00+01:00",
    ends_at: str = "2026-03-03T12:00:00+01:00",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    r = await client.post(
        f"/api/v1/counsellors/{counsellor_id}/absences",
        json={"starts_at": starts_at, "ends_at": ends_at},
        headers=headers or ADMIN,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def live_agency_slots(
    http: Any, *, name: str, modes: list[str], address: str | None = None, limit: int = 1
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """On a running server: an agency with one counsellor working every day 08:00-18:00 and a
    30-minute service with no notice; and its first ``limit`` free slots 3 to 6 days ahead."""
    from datetime import UTC, datetime, timedelta

    body: dict[str, Any] = {"name": name, "timezone": "Europe/Paris"}
    if address:
        body["address"] = address
    agency = (await http.post("/api/v1/agencies", json=body, headers=ADMIN)).json()
    counsellor = await make_counsellor(http, agency["id"], modes=modes)
    for day in range(7):
        await make_rule(http, counsellor["id"], weekday=day, start="08:00", end="18:00", modes=modes)
    service = await make_service(http, agency["id"], name="Suivi", modes=modes, min_notice_minutes=0)
    now = datetime.now(UTC)
    r = await http.get(
        "/api/v1/availability",
        params={
            "agency_id": agency["id"],
            "service_id": service["id"],
            "from": (now + timedelta(days=3)).isoformat(),
            "to": (now + timedelta(days=6)).isoformat(),
            "limit": limit,
        },
    )
    assert r.status_code == 200, r.text
    return agency, service, list(r.json()["slots"])
