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


async def make_agency(client: Any, name: str = "Agence Test", timezone: str = "Europe/Paris") -> dict[str, Any]:
    r = await client.post("/api/v1/agencies", json={"name": name, "timezone": timezone}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def make_counsellor(client: Any, agency_id: str, **fields: Any) -> dict[str, Any]:
    body = {"name": "Camille Martin", "email": "camille@example.org", "skills": ["insertion"],
            "languages": ["fr"], "modes": ["in_person", "phone"], **fields}
    r = await client.post(f"/api/v1/agencies/{agency_id}/counsellors", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def make_service(client: Any, agency_id: str, **fields: Any) -> dict[str, Any]:
    body = {"name": "Entretien de suivi", "duration_minutes": 30, "modes": ["in_person", "phone"],
            "min_notice_minutes": 60, **fields}
    r = await client.post(f"/api/v1/agencies/{agency_id}/services", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def make_rule(client: Any, counsellor_id: str, weekday: int = 0, start: str = "09:00",
                    end: str = "12:00", modes: list[str] | None = None) -> dict[str, Any]:
    body = {"weekday": weekday, "start": start, "end": end, "modes": modes or ["in_person", "phone"]}
    r = await client.post(f"/api/v1/counsellors/{counsellor_id}/rules", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return dict(r.json())
