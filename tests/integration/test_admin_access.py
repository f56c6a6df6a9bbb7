"""Who may do what on the admin API: every endpoint x every role, on its own agency and another one.

Two agencies, A and B, are set up identically. Callers are agency A's staff (and an admin).
``OWN`` requests target agency A's objects, ``OTHER`` requests agency B's: another agency's
object must answer 404 (its existence is never revealed) and a role that may not act at all 403.
Every denied request must leave the database exactly as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from tests.helpers import (
    ADMIN,
    SECRET,
    assert_problem,
    bearer,
    expired_bearer,
    make_absence,
    make_agency,
    make_counsellor,
    make_rule,
    make_service,
    row_counts,
)

OWN, OTHER = "A", "B"
ROLES = ("admin", "manager", "front_desk", "kiosk", "counsellor")


async def build_agency(client: Any, label: str) -> dict[str, str]:
    agency = await make_agency(client, f"Agence {label}")
    counsellor = await make_counsellor(
        client, agency["id"], name=f"Conseiller {label}1", email=f"c1-{label.lower()}@example.org"
    )
    colleague = await make_counsellor(
        client, agency["id"], name=f"Conseiller {label}2", email=f"c2-{label.lower()}@example.org"
    )
    public = await make_service(client, agency["id"], name=f"Public {label}")
    staff_only = await make_service(client, agency["id"], name=f"Staff {label}", bookable_by="staff")
    inactive = await make_service(client, agency["id"], name=f"Inactive {label}")
    r = await client.delete(f"/api/v1/services/{inactive['id']}", headers=ADMIN)
    assert r.status_code == 204, r.text
    rule = await make_rule(client, counsellor["id"])
    absence = await make_absence(client, counsellor["id"])
    return {
        "agency": agency["id"],
        "counsellor": counsellor["id"],
        "colleague": colleague["id"],
        "service": public["id"],
        "staff_service": staff_only["id"],
        "inactive_service": inactive["id"],
        "rule": rule["id"],
        "absence": absence["id"],
    }


@pytest.fixture
async def world(client) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    return {OWN: await build_agency(client, OWN), OTHER: await build_agency(client, OTHER)}


def headers_for(role: str, world: dict[str, dict[str, str]]) -> dict[str, str]:
    """Agency A's caller of ``role`` (the counsellor token is A's first counsellor)."""
    own = world[OWN]
    if role == "admin":
        return ADMIN
    if role == "counsellor":
        return bearer(role, own["agency"], own["counsellor"])
    return bearer(role, own["agency"])


async def snapshot(client: Any, sessions: Any, world: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Row counts plus everything an admin can read about both agencies."""
    state: dict[str, Any] = {"rows": await row_counts(sessions)}
    r = await client.get("/api/v1/agencies", headers=ADMIN)
    state["agencies"] = r.json()
    for side, ids in world.items():
        paths = [
            f"/api/v1/agencies/{ids['agency']}/counsellors",
            f"/api/v1/agencies/{ids['agency']}/services",
            f"/api/v1/counsellors/{ids['counsellor']}/rules",
            f"/api/v1/counsellors/{ids['counsellor']}/absences",
            f"/api/v1/counsellors/{ids['colleague']}/absences",
        ]
        for path in paths:
            r = await client.get(path, headers=ADMIN)
            state[f"{side} {path}"] = (r.status_code, r.json())
    return state


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str  # template over one agency's ids
    body: dict[str, Any] | None
    ok: int  # status of an allowed call
    # expected status per role: (on agency A's objects, on agency B's objects); "ok" = allowed
    expect: dict[str, tuple[int | str, int | str]]
    public: bool = False
    anonymous: int = 401  # status without any token


ALLOWED = ("ok", "ok")
HIDDEN = ("ok", 404)  # allowed at home, another agency's object is not found
FORBIDDEN = (403, 403)
NOT_FOUND = (404, 404)

ADMINS_ONLY = {
    "admin": ALLOWED,
    "manager": FORBIDDEN,
    "front_desk": FORBIDDEN,
    "kiosk": FORBIDDEN,
    "counsellor": FORBIDDEN,
}
AGENCY_ADMINS = {
    "admin": ALLOWED,
    "manager": HIDDEN,
    "front_desk": FORBIDDEN,
    "kiosk": FORBIDDEN,
    "counsellor": FORBIDDEN,
}
STAFF_READ = {
    "admin": ALLOWED,
    "manager": HIDDEN,
    "front_desk": HIDDEN,
    "kiosk": FORBIDDEN,
    "counsellor": HIDDEN,
}
PUBLIC = dict.fromkeys(ROLES, ALLOWED)

NEW_AGENCY = {"name": "Agence Nouvelle", "timezone": "Europe/Paris"}
NEW_COUNSELLOR = {"name": "Nouvelle Recrue", "email": "recrue@example.org"}
NEW_SERVICE = {"name": "Atelier", "duration_minutes": 60}
NEW_RULE = {"weekday": 3, "start": "13:30", "end": "17:00"}
NEW_ABSENCE = {"starts_at": "2026-03-05T09:00:00+01:00", "ends_at": "2026-03-05T18:00:00+01:00"}

ENDPOINTS = [
    Endpoint("create agency", "POST", "/api/v1/agencies", NEW_AGENCY, 201, ADMINS_ONLY),
    Endpoint("list agencies", "GET", "/api/v1/agencies", None, 200, PUBLIC, public=True),
    Endpoint("get agency", "GET", "/api/v1/agencies/{agency}", None, 200, PUBLIC, public=True),
    Endpoint("update agency", "PATCH", "/api/v1/agencies/{agency}", {"name": "Renommée"}, 200, AGENCY_ADMINS),
    Endpoint("deactivate agency", "DELETE", "/api/v1/agencies/{agency}", None, 204, ADMINS_ONLY),
    Endpoint(
        "create counsellor",
        "POST",
        "/api/v1/agencies/{agency}/counsellors",
        NEW_COUNSELLOR,
        201,
        AGENCY_ADMINS,
    ),
    Endpoint("list counsellors", "GET", "/api/v1/agencies/{agency}/counsellors", None, 200, STAFF_READ),
    Endpoint("get counsellor (self)", "GET", "/api/v1/counsellors/{counsellor}", None, 200, STAFF_READ),
    Endpoint(
        "get colleague",
        "GET",
        "/api/v1/counsellors/{colleague}",
        None,
        200,
        {**STAFF_READ, "counsellor": NOT_FOUND},
    ),
    Endpoint(
        "update counsellor",
        "PATCH",
        "/api/v1/counsellors/{counsellor}",
        {"skills": ["cv"]},
        200,
        AGENCY_ADMINS,
    ),
    Endpoint("deactivate counsellor", "DELETE", "/api/v1/counsellors/{colleague}", None, 204, AGENCY_ADMINS),
    Endpoint("create service", "POST", "/api/v1/agencies/{agency}/services", NEW_SERVICE, 201, AGENCY_ADMINS),
    Endpoint("list services", "GET", "/api/v1/agencies/{agency}/services", None, 200, PUBLIC, public=True),
    Endpoint("get public service", "GET", "/api/v1/services/{service}", None, 200, PUBLIC, public=True),
    # anyone may ask for a service by id; one the public may not see is simply not found
    Endpoint(
        "get staff-only service",
        "GET",
        "/api/v1/services/{staff_service}",
        None,
        200,
        {**STAFF_READ, "kiosk": NOT_FOUND},
        anonymous=404,
    ),
    Endpoint(
        "get inactive service",
        "GET",
        "/api/v1/services/{inactive_service}",
        None,
        200,
        {**STAFF_READ, "kiosk": NOT_FOUND},
        anonymous=404,
    ),
    Endpoint(
        "update service", "PATCH", "/api/v1/services/{service}", {"duration_minutes": 45}, 200, AGENCY_ADMINS
    ),
    Endpoint("deactivate service", "DELETE", "/api/v1/services/{service}", None, 204, AGENCY_ADMINS),
    Endpoint(
        "create rule (own)", "POST", "/api/v1/counsellors/{counsellor}/rules", NEW_RULE, 201, AGENCY_ADMINS
    ),
    Endpoint("list rules (own)", "GET", "/api/v1/counsellors/{counsellor}/rules", None, 200, STAFF_READ),
    Endpoint(
        "list colleague's rules",
        "GET",
        "/api/v1/counsellors/{colleague}/rules",
        None,
        200,
        {**STAFF_READ, "counsellor": NOT_FOUND},
    ),
    Endpoint("update rule (own)", "PATCH", "/api/v1/rules/{rule}", {"end": "12:30"}, 200, AGENCY_ADMINS),
    Endpoint("delete rule (own)", "DELETE", "/api/v1/rules/{rule}", None, 204, AGENCY_ADMINS),
    Endpoint(
        "create absence (own)",
        "POST",
        "/api/v1/counsellors/{counsellor}/absences",
        NEW_ABSENCE,
        201,
        {**AGENCY_ADMINS, "counsellor": HIDDEN},
    ),
    Endpoint(
        "create colleague's absence",
        "POST",
        "/api/v1/counsellors/{colleague}/absences",
        NEW_ABSENCE,
        201,
        {**AGENCY_ADMINS, "counsellor": NOT_FOUND},
    ),
    Endpoint(
        "list absences (own)", "GET", "/api/v1/counsellors/{counsellor}/absences", None, 200, STAFF_READ
    ),
    Endpoint(
        "list colleague's absences",
        "GET",
        "/api/v1/counsellors/{colleague}/absences",
        None,
        200,
        {**STAFF_READ, "counsellor": NOT_FOUND},
    ),
    Endpoint(
        "delete absence (own)",
        "DELETE",
        "/api/v1/absences/{absence}",
        None,
        204,
        {**AGENCY_ADMINS, "counsellor": HIDDEN},
    ),
]

MATRIX = [
    pytest.param(endpoint, role, side, id=f"{endpoint.name}-{role}-{'own' if side == OWN else 'other'}")
    for endpoint in ENDPOINTS
    for role in ROLES
    for side in ((OWN,) if "{" not in endpoint.path else (OWN, OTHER))
]


@pytest.mark.parametrize(("endpoint", "role", "side"), MATRIX)
async def test_role_matrix(client, sessions, world, endpoint: Endpoint, role: str, side: str):
    expected = endpoint.expect[role][0 if side == OWN else 1]
    path = endpoint.path.format(**world[side])
    before = None if expected == "ok" else await snapshot(client, sessions, world)

    r = await client.request(endpoint.method, path, json=endpoint.body, headers=headers_for(role, world))

    if expected == "ok":
        assert r.status_code == endpoint.ok, r.text
        return
    problem = assert_problem(r, expected)  # type: ignore[arg-type]
    if expected == 404:  # indistinguishable from an id that does not exist
        assert problem["code"] == "not_found"
    assert await snapshot(client, sessions, world) == before


# --- authentication ----------------------------------------------------------------------------


def _token(claims: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> dict[str, str]:
    base = {"sub": "x", "role": "admin", "aud": "orchestrator", "exp": int(time.time()) + 600}
    return {"Authorization": f"Bearer {jwt.encode({**base, **claims}, secret, algorithm=algorithm)}"}


BAD_CREDENTIALS = {
    "no token": {},
    "garbage token": {"Authorization": "Bearer not.a.jwt"},
    "empty bearer": {"Authorization": "Bearer "},
    "basic scheme": {"Authorization": "Basic YWRtaW46YWRtaW4="},
    "expired admin": expired_bearer("admin"),
    "wrong secret": _token({}, secret="another-secret-of-sufficient-length-123456"),
    "wrong audience": _token({"aud": "someone-else"}),
    "unsigned (alg none)": {
        "Authorization": "Bearer "
        + jwt.encode(
            {"sub": "x", "role": "admin", "aud": "orchestrator", "exp": int(time.time()) + 600},
            None,
            algorithm="none",
        )
    },
    "unknown role": _token({"role": "superuser"}),
    "manager without agency": _token({"role": "manager"}),
}

PROTECTED = [e for e in ENDPOINTS if not e.public]


@pytest.mark.parametrize("endpoint", PROTECTED, ids=[e.name for e in PROTECTED])
async def test_missing_or_invalid_credentials_are_401(client, sessions, world, endpoint: Endpoint):
    path = endpoint.path.format(**world[OWN])
    before = await snapshot(client, sessions, world)
    for label, credentials in BAD_CREDENTIALS.items():
        r = await client.request(endpoint.method, path, json=endpoint.body, headers=credentials)
        expected = endpoint.anonymous if label == "no token" else 401
        assert r.status_code == expected, (label, r.text)
        assert_problem(r, expected)
    assert await snapshot(client, sessions, world) == before


async def test_expired_token_of_each_role_is_401(client, world):
    own = world[OWN]
    for role in ("manager", "front_desk", "kiosk"):
        r = await client.get(
            f"/api/v1/agencies/{own['agency']}/counsellors", headers=expired_bearer(role, own["agency"])
        )
        assert_problem(r, 401)


# --- what each role sees -----------------------------------------------------------------------


async def test_front_desk_lists_only_its_agency_and_cannot_add_counsellors(client, sessions, world):
    own, other = world[OWN], world[OTHER]
    desk = bearer("front_desk", own["agency"])
    r = await client.get(f"/api/v1/agencies/{own['agency']}/counsellors", headers=desk)
    assert r.status_code == 200
    assert sorted(c["id"] for c in r.json()) == sorted([own["counsellor"], own["colleague"]])
    assert {c["agency_id"] for c in r.json()} == {own["agency"]}

    before = await row_counts(sessions)
    r = await client.post(f"/api/v1/agencies/{own['agency']}/counsellors", json=NEW_COUNSELLOR, headers=desk)
    assert_problem(r, 403)
    r = await client.get(f"/api/v1/agencies/{other['agency']}/counsellors", headers=desk)
    assert_problem(r, 404)
    assert await row_counts(sessions) == before


async def test_counsellor_sees_itself_and_records_its_own_absence(client, world):
    own = world[OWN]
    me = bearer("counsellor", own["agency"], own["counsellor"])
    r = await client.get(f"/api/v1/counsellors/{own['counsellor']}", headers=me)
    assert r.status_code == 200 and r.json()["id"] == own["counsellor"]
    assert_problem(await client.get(f"/api/v1/counsellors/{own['colleague']}", headers=me), 404)

    r = await client.post(f"/api/v1/counsellors/{own['counsellor']}/absences", json=NEW_ABSENCE, headers=me)
    assert r.status_code == 201, r.text
    created = r.json()["id"]
    listed = (await client.get(f"/api/v1/counsellors/{own['counsellor']}/absences", headers=ADMIN)).json()
    assert created in [a["id"] for a in listed]

    r = await client.post(f"/api/v1/counsellors/{own['counsellor']}/rules", json=NEW_RULE, headers=me)
    assert_problem(r, 403)


async def test_kiosk_is_refused_every_admin_read(client, world):
    own = world[OWN]
    kiosk = bearer("kiosk", own["agency"])
    for path in (
        f"/api/v1/agencies/{own['agency']}/counsellors",
        f"/api/v1/counsellors/{own['counsellor']}",
        f"/api/v1/counsellors/{own['counsellor']}/rules",
        f"/api/v1/counsellors/{own['counsellor']}/absences",
    ):
        assert_problem(await client.get(path, headers=kiosk), 403)


# --- public catalogue --------------------------------------------------------------------------


async def test_agencies_and_public_services_need_no_token(client, world):
    own = world[OWN]
    r = await client.get("/api/v1/agencies")
    assert r.status_code == 200
    assert {a["id"] for a in r.json()} == {world[OWN]["agency"], world[OTHER]["agency"]}
    r = await client.get(f"/api/v1/agencies/{own['agency']}")
    assert r.status_code == 200 and r.json()["name"] == "Agence A"
    r = await client.get(f"/api/v1/agencies/{own['agency']}/services")
    assert r.status_code == 200
    assert [s["id"] for s in r.json()] == [own["service"]]


@pytest.mark.parametrize(
    ("caller", "sees_all"),
    [
        ("anonymous", False),
        ("kiosk A", False),
        ("manager B", False),
        ("counsellor B", False),
        ("front_desk A", True),
        ("counsellor A", True),
        ("manager A", True),
        ("admin", True),
    ],
)
async def test_staff_only_and_inactive_services_are_visible_to_the_agency_staff_only(
    client, world, caller, sees_all
):
    own, other = world[OWN], world[OTHER]
    headers = {
        "anonymous": {},
        "kiosk A": bearer("kiosk", own["agency"]),
        "manager B": bearer("manager", other["agency"]),
        "counsellor B": bearer("counsellor", other["agency"], other["counsellor"]),
        "front_desk A": bearer("front_desk", own["agency"]),
        "counsellor A": bearer("counsellor", own["agency"], own["counsellor"]),
        "manager A": bearer("manager", own["agency"]),
        "admin": ADMIN,
    }[caller]
    r = await client.get(f"/api/v1/agencies/{own['agency']}/services", headers=headers)
    assert r.status_code == 200
    listed = {s["id"] for s in r.json()}
    hidden = {own["staff_service"], own["inactive_service"]}
    if sees_all:
        assert listed == {own["service"], *hidden}
    else:
        assert listed == {own["service"]}
    for service_id in hidden:
        r = await client.get(f"/api/v1/services/{service_id}", headers=headers)
        if sees_all:
            assert r.status_code == 200
        else:
            assert_problem(r, 404)


async def test_deactivated_agency_disappears_from_the_public(client, sessions, world):
    own, other = world[OWN], world[OTHER]
    r = await client.delete(f"/api/v1/agencies/{other['agency']}", headers=ADMIN)
    assert r.status_code == 204
    r = await client.get("/api/v1/agencies")
    assert [a["id"] for a in r.json()] == [own["agency"]]
    assert_problem(await client.get(f"/api/v1/agencies/{other['agency']}"), 404)
    assert_problem(await client.get(f"/api/v1/agencies/{other['agency']}/services"), 404)
    assert_problem(await client.get(f"/api/v1/services/{other['service']}"), 404)
    # its data is kept: the admin still reaches its counsellors
    r = await client.get(f"/api/v1/agencies/{other['agency']}/counsellors", headers=ADMIN)
    assert r.status_code == 200 and len(r.json()) == 2
    rows = await row_counts(sessions)
    assert rows["agencies"] == 2
