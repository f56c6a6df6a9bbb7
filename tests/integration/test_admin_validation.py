"""Bad input on every admin endpoint: a problem+json 400/422 naming the field, and nothing written.

Each case is (path template, body, field the error must name). Templates use the ids of one
fully set-up agency (``{agency}``, ``{counsellor}``, ``{service}``, ``{rule}``, ``{absence}``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tests.helpers import (
    ADMIN,
    assert_problem,
    make_absence,
    make_agency,
    make_counsellor,
    make_rule,
    make_service,
    row_counts,
)


@dataclass(frozen=True)
class Raw:
    """A body sent byte for byte as application/json (for malformed JSON)."""

    content: bytes


@pytest.fixture
async def world(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    agency = await make_agency(client, "Agence Validation")
    counsellor = await make_counsellor(client, agency["id"])
    service = await make_service(client, agency["id"])
    rule = await make_rule(client, counsellor["id"])
    absence = await make_absence(client, counsellor["id"])
    return {
        "agency": agency["id"],
        "counsellor": counsellor["id"],
        "service": service["id"],
        "rule": rule["id"],
        "absence": absence["id"],
    }


async def visible_state(client: Any, world: dict[str, str]) -> dict[str, Any]:
    """Everything an admin can read about the world, to compare before and after a rejected request."""
    paths = {
        "agencies": "/api/v1/agencies",
        "agency": f"/api/v1/agencies/{world['agency']}",
        "counsellors": f"/api/v1/agencies/{world['agency']}/counsellors",
        "services": f"/api/v1/agencies/{world['agency']}/services",
        "rules": f"/api/v1/counsellors/{world['counsellor']}/rules",
        "absences": f"/api/v1/counsellors/{world['counsellor']}/absences",
    }
    state = {}
    for name, path in paths.items():
        r = await client.get(path, headers=ADMIN)
        assert r.status_code == 200, (path, r.text)
        state[name] = r.json()
    return state


async def send(client: Any, method: str, path: str, body: Any) -> Any:
    if isinstance(body, Raw):
        headers = {**ADMIN, "content-type": "application/json"}
        return await client.request(method, path, content=body.content, headers=headers)
    return await client.request(method, path, json=body, headers=ADMIN)


def case(method: str, path: str, body: Any, field: str | None, *, id: str) -> Any:
    return pytest.param(method, path, body, field, id=id)


TZ = "Europe/Paris"
AGENCIES = "/api/v1/agencies"
AGENCY = "/api/v1/agencies/{agency}"
COUNSELLORS = "/api/v1/agencies/{agency}/counsellors"
COUNSELLOR = "/api/v1/counsellors/{counsellor}"
SERVICES = "/api/v1/agencies/{agency}/services"
SERVICE = "/api/v1/services/{service}"
RULES = "/api/v1/counsellors/{counsellor}/rules"
RULE = "/api/v1/rules/{rule}"
ABSENCES = "/api/v1/counsellors/{counsellor}/absences"

NEW_COUNSELLOR = {"name": "Alex Durand", "email": "alex@example.org"}
NEW_SERVICE = {"name": "Atelier CV", "duration_minutes": 45}
NEW_RULE = {"weekday": 2, "start": "14:00", "end": "17:00"}
NEW_ABSENCE = {"starts_at": "2026-03-04T09:00:00+01:00", "ends_at": "2026-03-04T10:00:00+01:00"}

BAD_BODIES = [
    # --- any endpoint: not JSON, not an object ---
    case("POST", AGENCIES, Raw(b'{"name": "x",'), None, id="agency-malformed-json"),
    case("POST", AGENCIES, Raw(b""), None, id="agency-empty-body"),
    case("POST", AGENCIES, [{"name": "x", "timezone": TZ}], None, id="agency-array-body"),
    case("PATCH", AGENCY, Raw(b"{'name': 'single quotes'}"), None, id="agency-patch-malformed-json"),
    case("POST", COUNSELLORS, Raw(b"not json"), None, id="counsellor-malformed-json"),
    case("PATCH", COUNSELLOR, Raw(b'{"name": "x"'), None, id="counsellor-patch-truncated-json"),
    case("POST", SERVICES, Raw(b'{"name": "x", "duration_minutes": 30,}'), None, id="service-trailing-comma"),
    case("PATCH", SERVICE, Raw(b"null"), None, id="service-patch-null-body"),
    case("POST", RULES, Raw(b"[1, 2"), None, id="rule-malformed-json"),
    case("PATCH", RULE, Raw(b"42"), None, id="rule-patch-number-body"),
    case("POST", ABSENCES, Raw(b'{"starts_at": }'), None, id="absence-malformed-json"),
    # --- POST /agencies ---
    case("POST", AGENCIES, {"name": 5, "timezone": TZ}, "name", id="agency-name-int"),
    case("POST", AGENCIES, {"name": "", "timezone": TZ}, "name", id="agency-name-empty"),
    case("POST", AGENCIES, {"name": "x" * 201, "timezone": TZ}, "name", id="agency-name-too-long"),
    case("POST", AGENCIES, {"name": "a\u0000b", "timezone": TZ}, "name", id="agency-name-nul"),
    case("POST", AGENCIES, {"timezone": TZ}, "name", id="agency-missing-name"),
    case("POST", AGENCIES, {"name": "x"}, "timezone", id="agency-missing-timezone"),
    case(
        "POST", AGENCIES, {"name": "x", "timezone": TZ, "colour": "red"}, "colour", id="agency-unknown-field"
    ),
    case(
        "POST",
        AGENCIES,
        {"name": "x", "timezone": TZ, "active": False},
        "active",
        id="agency-active-not-settable",
    ),
    case("POST", AGENCIES, {"name": "x", "timezone": "Mars/Olympus"}, "timezone", id="agency-tz-mars"),
    case("POST", AGENCIES, {"name": "x", "timezone": "../etc/passwd"}, "timezone", id="agency-tz-path"),
    case("POST", AGENCIES, {"name": "x", "timezone": ""}, "timezone", id="agency-tz-empty"),
    case("POST", AGENCIES, {"name": "x", "timezone": "europe/paris"}, "timezone", id="agency-tz-wrong-case"),
    case("POST", AGENCIES, {"name": "x", "timezone": 1}, "timezone", id="agency-tz-int"),
    case(
        "POST",
        AGENCIES,
        {"name": "x", "timezone": TZ, "address": "1 rue\u0000"},
        "address",
        id="agency-address-nul",
    ),
    case(
        "POST",
        AGENCIES,
        {"name": "x", "timezone": TZ, "walk_in_enabled": "yes"},
        "walk_in_enabled",
        id="agency-walk-in-not-bool",
    ),
    case(
        "POST",
        AGENCIES,
        {"name": "x", "timezone": TZ, "opening_hours": {"0": [["12:00", "09:00"]]}},
        "opening_hours",
        id="agency-hours-end-before-start",
    ),
    case(
        "POST",
        AGENCIES,
        {"name": "x", "timezone": TZ, "opening_hours": {"0": [["09:00", "09:00"]]}},
        "opening_hours",
        id="agency-hours-empty-window",
    ),
    case(
        "POST",
        AGENCIES,
        {"name": "x", "timezone": TZ, "opening_hours": {"7": [["09:00", "12:00"]]}},
        "opening_hours",
        id="agency-hours-weekday-7",
    ),
    case(
        "POST",
        AGENCIES,
        {"name": "x", "timezone": TZ, "opening_hours": {"-1": [["09:00", "12:00"]]}},
        "opening_hours",
        id="agency-hours-weekday-minus-1",
    ),
    case(
        "POST",
        AGENCIES,
        {"name": "x", "timezone": TZ, "opening_hours": {"1": [["09:00", "25:00"]]}},
        "opening_hours",
        id="agency-hours-25h",
    ),
    case(
        "POST",
        AGENCIES,
        {"name": "x", "timezone": TZ, "opening_hours": {"1": "09:00-12:00"}},
        "opening_hours",
        id="agency-hours-not-a-list",
    ),
    case(
        "POST",
        AGENCIES,
        {"name": "x", "timezone": TZ, "opening_hours": {"1": [["09:00"]]}},
        "opening_hours",
        id="agency-hours-half-window",
    ),
    # --- PATCH /agencies/{id} ---
    case("PATCH", AGENCY, {"timezone": "Mars/Olympus"}, "timezone", id="agency-patch-tz-mars"),
    case("PATCH", AGENCY, {"timezone": "../etc/passwd"}, "timezone", id="agency-patch-tz-path"),
    case("PATCH", AGENCY, {"timezone": None}, "timezone", id="agency-patch-tz-null"),
    case("PATCH", AGENCY, {"name": None}, "name", id="agency-patch-name-null"),
    case("PATCH", AGENCY, {"name": ""}, "name", id="agency-patch-name-empty"),
    case("PATCH", AGENCY, {"bogus": 1}, "bogus", id="agency-patch-unknown-field"),
    case("PATCH", AGENCY, {"active": False}, "active", id="agency-patch-active-not-settable"),
    case(
        "PATCH",
        AGENCY,
        {"opening_hours": {"2": [["18:00", "08:00"]]}},
        "opening_hours",
        id="agency-patch-hours-end-before-start",
    ),
    case(
        "PATCH", AGENCY, {"walk_in_enabled": "maybe"}, "walk_in_enabled", id="agency-patch-walk-in-not-bool"
    ),
    # --- POST /agencies/{id}/counsellors ---
    case("POST", COUNSELLORS, {"email": "a@example.org"}, "name", id="counsellor-missing-name"),
    case("POST", COUNSELLORS, {"name": "x"}, "email", id="counsellor-missing-email"),
    case("POST", COUNSELLORS, {**NEW_COUNSELLOR, "name": 12}, "name", id="counsellor-name-int"),
    case(
        "POST", COUNSELLORS, {**NEW_COUNSELLOR, "email": "not-an-email"}, "email", id="counsellor-email-no-at"
    ),
    case("POST", COUNSELLORS, {**NEW_COUNSELLOR, "email": "a@b"}, "email", id="counsellor-email-no-dot"),
    case("POST", COUNSELLORS, {**NEW_COUNSELLOR, "email": "a b@c.fr"}, "email", id="counsellor-email-space"),
    case(
        "POST",
        COUNSELLORS,
        {**NEW_COUNSELLOR, "languages": ["French"]},
        "languages",
        id="counsellor-lang-word",
    ),
    case(
        "POST", COUNSELLORS, {**NEW_COUNSELLOR, "languages": ["f"]}, "languages", id="counsellor-lang-short"
    ),
    case(
        "POST", COUNSELLORS, {**NEW_COUNSELLOR, "languages": "fr"}, "languages", id="counsellor-lang-not-list"
    ),
    case(
        "POST",
        COUNSELLORS,
        {**NEW_COUNSELLOR, "languages": ["fr", "fr"]},
        "languages",
        id="counsellor-lang-duplicate",
    ),
    case(
        "POST", COUNSELLORS, {**NEW_COUNSELLOR, "skills": ["Has Space"]}, "skills", id="counsellor-skill-bad"
    ),
    case(
        "POST",
        COUNSELLORS,
        {**NEW_COUNSELLOR, "skills": ["cv", "cv"]},
        "skills",
        id="counsellor-skill-duplicate",
    ),
    case(
        "POST", COUNSELLORS, {**NEW_COUNSELLOR, "modes": ["teleport"]}, "modes", id="counsellor-mode-teleport"
    ),
    case("POST", COUNSELLORS, {**NEW_COUNSELLOR, "modes": []}, "modes", id="counsellor-modes-empty"),
    case("POST", COUNSELLORS, {**NEW_COUNSELLOR, "modes": "phone"}, "modes", id="counsellor-modes-not-list"),
    case(
        "POST",
        COUNSELLORS,
        {**NEW_COUNSELLOR, "modes": ["phone", "phone"]},
        "modes",
        id="counsellor-modes-duplicate",
    ),
    case(
        "POST",
        COUNSELLORS,
        {**NEW_COUNSELLOR, "fax": "+33600000000"},
        "fax",
        id="counsellor-unknown-field",
    ),
    case(
        "POST",
        COUNSELLORS,
        {**NEW_COUNSELLOR, "on_desk": True},
        "on_desk",
        id="counsellor-on-desk-not-settable",
    ),
    # --- PATCH /counsellors/{id} ---
    case("PATCH", COUNSELLOR, {"email": "bad"}, "email", id="counsellor-patch-email"),
    case("PATCH", COUNSELLOR, {"name": ""}, "name", id="counsellor-patch-name-empty"),
    case("PATCH", COUNSELLOR, {"modes": ["teleport"]}, "modes", id="counsellor-patch-mode-teleport"),
    case("PATCH", COUNSELLOR, {"modes": ["phone", "phone"]}, "modes", id="counsellor-patch-modes-duplicate"),
    case("PATCH", COUNSELLOR, {"modes": []}, "modes", id="counsellor-patch-modes-empty"),
    case("PATCH", COUNSELLOR, {"languages": ["english"]}, "languages", id="counsellor-patch-lang"),
    case("PATCH", COUNSELLOR, {"skills": ["a", "a"]}, "skills", id="counsellor-patch-skills-duplicate"),
    case("PATCH", COUNSELLOR, {"active": "no"}, "active", id="counsellor-patch-active-not-bool"),
    case(
        "PATCH", COUNSELLOR, {"agency_id": str(uuid.uuid4())}, "agency_id", id="counsellor-patch-move-agency"
    ),
    # --- POST /agencies/{id}/services ---
    case("POST", SERVICES, {"name": "x"}, "duration_minutes", id="service-missing-duration"),
    case("POST", SERVICES, {"duration_minutes": 30}, "name", id="service-missing-name"),
    case(
        "POST", SERVICES, {**NEW_SERVICE, "duration_minutes": 0}, "duration_minutes", id="service-duration-0"
    ),
    case(
        "POST", SERVICES, {**NEW_SERVICE, "duration_minutes": 4}, "duration_minutes", id="service-duration-4"
    ),
    case(
        "POST",
        SERVICES,
        {**NEW_SERVICE, "duration_minutes": 1000},
        "duration_minutes",
        id="service-duration-1000",
    ),
    case(
        "POST",
        SERVICES,
        {**NEW_SERVICE, "duration_minutes": -30},
        "duration_minutes",
        id="service-duration-negative",
    ),
    case(
        "POST",
        SERVICES,
        {**NEW_SERVICE, "duration_minutes": 30.5},
        "duration_minutes",
        id="service-duration-float",
    ),
    case(
        "POST",
        SERVICES,
        {**NEW_SERVICE, "duration_minutes": "thirty"},
        "duration_minutes",
        id="service-duration-word",
    ),
    case(
        "POST",
        SERVICES,
        {**NEW_SERVICE, "buffer_before_minutes": -1},
        "buffer_before_minutes",
        id="service-buffer-before-negative",
    ),
    case(
        "POST",
        SERVICES,
        {**NEW_SERVICE, "buffer_after_minutes": -5},
        "buffer_after_minutes",
        id="service-buffer-after-negative",
    ),
    case(
        "POST",
        SERVICES,
        {**NEW_SERVICE, "buffer_minutes": -10},
        "buffer_minutes",
        id="service-buffer-shorthand-negative",
    ),
    case(
        "POST",
        SERVICES,
        {**NEW_SERVICE, "buffer_after_minutes": 241},
        "buffer_after_minutes",
        id="service-buffer-after-too-long",
    ),
    case(
        "POST",
        SERVICES,
        {**NEW_SERVICE, "min_notice_minutes": -1},
        "min_notice_minutes",
        id="service-notice-negative",
    ),
    case(
        "POST", SERVICES, {**NEW_SERVICE, "max_horizon_days": 0}, "max_horizon_days", id="service-horizon-0"
    ),
    case(
        "POST",
        SERVICES,
        {**NEW_SERVICE, "target_wait_minutes": 0},
        "target_wait_minutes",
        id="service-target-wait-0",
    ),
    case("POST", SERVICES, {**NEW_SERVICE, "modes": ["teleport"]}, "modes", id="service-mode-teleport"),
    case(
        "POST", SERVICES, {**NEW_SERVICE, "modes": ["video", "video"]}, "modes", id="service-modes-duplicate"
    ),
    case("POST", SERVICES, {**NEW_SERVICE, "modes": []}, "modes", id="service-modes-empty"),
    case(
        "POST", SERVICES, {**NEW_SERVICE, "bookable_by": "everyone"}, "bookable_by", id="service-bookable-by"
    ),
    case(
        "POST", SERVICES, {**NEW_SERVICE, "ticket_prefix": "abc"}, "ticket_prefix", id="service-prefix-lower"
    ),
    case(
        "POST", SERVICES, {**NEW_SERVICE, "ticket_prefix": "ABC"}, "ticket_prefix", id="service-prefix-long"
    ),
    case("POST", SERVICES, {**NEW_SERVICE, "skill": "Bad Skill"}, "skill", id="service-skill-bad"),
    case("POST", SERVICES, {**NEW_SERVICE, "price": 10}, "price", id="service-unknown-field"),
    # --- PATCH /services/{id} ---
    case("PATCH", SERVICE, {"duration_minutes": 0}, "duration_minutes", id="service-patch-duration-0"),
    case("PATCH", SERVICE, {"duration_minutes": 1000}, "duration_minutes", id="service-patch-duration-1000"),
    case("PATCH", SERVICE, {"duration_minutes": None}, "duration_minutes", id="service-patch-duration-null"),
    case(
        "PATCH",
        SERVICE,
        {"buffer_before_minutes": -15},
        "buffer_before_minutes",
        id="service-patch-buffer-negative",
    ),
    case("PATCH", SERVICE, {"modes": ["teleport"]}, "modes", id="service-patch-mode-teleport"),
    case("PATCH", SERVICE, {"modes": ["phone", "phone"]}, "modes", id="service-patch-modes-duplicate"),
    case("PATCH", SERVICE, {"bookable_by": "nobody"}, "bookable_by", id="service-patch-bookable-by"),
    case("PATCH", SERVICE, {"agency_id": str(uuid.uuid4())}, "agency_id", id="service-patch-move-agency"),
    # --- POST /counsellors/{id}/rules ---
    case("POST", RULES, {**NEW_RULE, "weekday": 7}, "weekday", id="rule-weekday-7"),
    case("POST", RULES, {**NEW_RULE, "weekday": -1}, "weekday", id="rule-weekday-minus-1"),
    case("POST", RULES, {**NEW_RULE, "weekday": "monday"}, "weekday", id="rule-weekday-word"),
    case("POST", RULES, {"start": "09:00", "end": "12:00"}, "weekday", id="rule-missing-weekday"),
    case("POST", RULES, {"weekday": 1, "end": "12:00"}, "start", id="rule-missing-start"),
    case("POST", RULES, {**NEW_RULE, "start": "25:00", "end": "26:00"}, "start", id="rule-start-25h"),
    case("POST", RULES, {**NEW_RULE, "start": "9:00"}, "start", id="rule-start-one-digit-hour"),
    case("POST", RULES, {**NEW_RULE, "start": "09:60"}, "start", id="rule-start-60-minutes"),
    case("POST", RULES, {**NEW_RULE, "end": "24:00"}, "end", id="rule-end-24h"),
    case("POST", RULES, {**NEW_RULE, "start": 900}, "start", id="rule-start-int"),
    case("POST", RULES, {**NEW_RULE, "start": "12:00", "end": "09:00"}, "end", id="rule-end-before-start"),
    case("POST", RULES, {**NEW_RULE, "start": "10:00", "end": "10:00"}, "end", id="rule-end-equals-start"),
    case("POST", RULES, {**NEW_RULE, "modes": ["teleport"]}, "modes", id="rule-mode-teleport"),
    case("POST", RULES, {**NEW_RULE, "modes": ["phone", "phone"]}, "modes", id="rule-modes-duplicate"),
    case("POST", RULES, {**NEW_RULE, "modes": []}, "modes", id="rule-modes-empty"),
    case("POST", RULES, {**NEW_RULE, "quota": "lunch"}, "quota", id="rule-quota-unknown"),
    case("POST", RULES, {**NEW_RULE, "timezone": "UTC"}, "timezone", id="rule-unknown-field"),
    # --- PATCH /rules/{id} (the rule is Monday 09:00-12:00) ---
    case("PATCH", RULE, {"weekday": 7}, "weekday", id="rule-patch-weekday-7"),
    case("PATCH", RULE, {"weekday": -1}, "weekday", id="rule-patch-weekday-minus-1"),
    case("PATCH", RULE, {"start": "25:00"}, "start", id="rule-patch-start-25h"),
    case("PATCH", RULE, {"end": "08:00"}, "end", id="rule-patch-end-before-stored-start"),
    case("PATCH", RULE, {"end": "09:00"}, "end", id="rule-patch-end-equals-stored-start"),
    case("PATCH", RULE, {"start": "12:00", "end": "09:00"}, "end", id="rule-patch-end-before-start"),
    case("PATCH", RULE, {"modes": ["video", "video"]}, "modes", id="rule-patch-modes-duplicate"),
    case("PATCH", RULE, {"modes": ["teleport"]}, "modes", id="rule-patch-mode-teleport"),
    case("PATCH", RULE, {"counsellor_id": str(uuid.uuid4())}, "counsellor_id", id="rule-patch-move"),
    # --- POST /counsellors/{id}/absences ---
    case(
        "POST",
        ABSENCES,
        {**NEW_ABSENCE, "ends_at": "2026-03-04T08:00:00+01:00"},
        "ends_at",
        id="absence-end-before-start",
    ),
    case(
        "POST",
        ABSENCES,
        {**NEW_ABSENCE, "ends_at": NEW_ABSENCE["starts_at"]},
        "ends_at",
        id="absence-end-equals-start",
    ),
    case(
        "POST",
        ABSENCES,
        {**NEW_ABSENCE, "ends_at": "2026-03-04T09:30:00+02:00"},
        "ends_at",
        id="absence-end-before-start-across-offsets",
    ),
    case(
        "POST",
        ABSENCES,
        {**NEW_ABSENCE, "starts_at": "2026-03-04T09:00:00"},
        "starts_at",
        id="absence-naive-start",
    ),
    case(
        "POST", ABSENCES, {**NEW_ABSENCE, "ends_at": "2026-03-04T10:00:00"}, "ends_at", id="absence-naive-end"
    ),
    case("POST", ABSENCES, {**NEW_ABSENCE, "starts_at": "2026-03-04"}, "starts_at", id="absence-date-only"),
    case("POST", ABSENCES, {**NEW_ABSENCE, "starts_at": "tomorrow"}, "starts_at", id="absence-start-word"),
    case("POST", ABSENCES, {"starts_at": NEW_ABSENCE["starts_at"]}, "ends_at", id="absence-missing-end"),
    case(
        "POST",
        ABSENCES,
        {"starts_at": "9999-12-31T23:00:00-05:00", "ends_at": "9999-12-31T23:30:00-05:00"},
        "starts_at",
        id="absence-past-year-9999-in-utc",
    ),
    case("POST", ABSENCES, {**NEW_ABSENCE, "reason": "x" * 201}, "reason", id="absence-reason-too-long"),
    case(
        "POST",
        ABSENCES,
        {**NEW_ABSENCE, "counsellor_id": str(uuid.uuid4())},
        "counsellor_id",
        id="absence-unknown-field",
    ),
]


@pytest.mark.parametrize(("method", "template", "body", "field"), BAD_BODIES)
async def test_bad_body_is_a_problem_naming_the_field_and_writes_nothing(
    client, sessions, world, method, template, body, field
):
    before_state = await visible_state(client, world)
    before_rows = await row_counts(sessions)

    r = await send(client, method, template.format(**world), body)

    assert_problem(r, 400, 422, field=field)
    assert await row_counts(sessions) == before_rows
    assert await visible_state(client, world) == before_state


async def test_rejected_rule_patch_leaves_the_rule_as_it_was(client, world):
    """The 422 for end-before-start comes after the row was modified in the session: it must roll back."""
    r = await client.patch(
        f"/api/v1/rules/{world['rule']}", json={"weekday": 4, "end": "08:00"}, headers=ADMIN
    )
    body = assert_problem(r, 422, field="end")
    assert body["code"] == "invalid"
    rules = (await client.get(f"/api/v1/counsellors/{world['counsellor']}/rules", headers=ADMIN)).json()
    assert [(x["weekday"], x["start"], x["end"]) for x in rules] == [(0, "09:00", "12:00")]


async def test_valid_bodies_from_the_cases_above_are_accepted(client, world):
    """Guards the cases: the 'good' halves used above really are valid on their own."""
    for path, body in [
        (COUNSELLORS, NEW_COUNSELLOR),
        (SERVICES, NEW_SERVICE),
        (RULES, NEW_RULE),
        (ABSENCES, NEW_ABSENCE),
        (
            AGENCIES,
            {
                "name": "Agence OK",
                "timezone": "America/Argentina/Buenos_Aires",
                "opening_hours": {"0": [["09:00", "12:00"], ["13:30", "17:00"]]},
            },
        ),
    ]:
        r = await client.post(path.format(**world), json=body, headers=ADMIN)
        assert r.status_code == 201, (path, r.text)


# --- ids in paths ------------------------------------------------------------------------------

ID_ROUTES = [
    ("GET", "/api/v1/agencies/{id}", None),
    ("PATCH", "/api/v1/agencies/{id}", {"name": "x"}),
    ("DELETE", "/api/v1/agencies/{id}", None),
    ("POST", "/api/v1/agencies/{id}/counsellors", NEW_COUNSELLOR),
    ("GET", "/api/v1/agencies/{id}/counsellors", None),
    ("POST", "/api/v1/agencies/{id}/services", NEW_SERVICE),
    ("GET", "/api/v1/agencies/{id}/services", None),
    ("GET", "/api/v1/counsellors/{id}", None),
    ("PATCH", "/api/v1/counsellors/{id}", {"name": "x"}),
    ("DELETE", "/api/v1/counsellors/{id}", None),
    ("GET", "/api/v1/services/{id}", None),
    ("PATCH", "/api/v1/services/{id}", {"name": "x"}),
    ("DELETE", "/api/v1/services/{id}", None),
    ("POST", "/api/v1/counsellors/{id}/rules", NEW_RULE),
    ("GET", "/api/v1/counsellors/{id}/rules", None),
    ("PATCH", "/api/v1/rules/{id}", {"weekday": 1}),
    ("DELETE", "/api/v1/rules/{id}", None),
    ("POST", "/api/v1/counsellors/{id}/absences", NEW_ABSENCE),
    ("GET", "/api/v1/counsellors/{id}/absences", None),
    ("DELETE", "/api/v1/absences/{id}", None),
]
ROUTE_IDS = [f"{m} {p}" for m, p, _ in ID_ROUTES]
NOT_UUIDS = ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g", "%00", "1%20OR%201=1"]


@pytest.mark.parametrize("bad_id", NOT_UUIDS)
@pytest.mark.parametrize(("method", "template", "body"), ID_ROUTES, ids=ROUTE_IDS)
async def test_non_uuid_id_is_a_400_or_404_problem(client, sessions, world, method, template, body, bad_id):
    before = await row_counts(sessions)
    r = await client.request(method, template.format(id=bad_id), json=body, headers=ADMIN)
    assert_problem(r, 400, 404)
    assert await row_counts(sessions) == before


@pytest.mark.parametrize(("method", "template", "body"), ID_ROUTES, ids=ROUTE_IDS)
async def test_unknown_uuid_is_a_404_problem(client, sessions, world, method, template, body):
    before = await row_counts(sessions)
    r = await client.request(method, template.format(id=uuid.uuid4()), json=body, headers=ADMIN)
    problem = assert_problem(r, 404)
    assert problem["code"] == "not_found"
    assert await row_counts(sessions) == before


@pytest.mark.parametrize(("method", "template", "body"), ID_ROUTES, ids=ROUTE_IDS)
async def test_id_of_the_wrong_kind_is_a_404(client, sessions, world, method, template, body):
    """A real id of another kind of object (a service id where a counsellor id belongs) is unknown."""
    kind = template.split("/")[3]  # agencies, counsellors, services, rules, absences
    wrong = world["service"] if kind != "services" else world["counsellor"]
    before = await row_counts(sessions)
    r = await client.request(method, template.format(id=wrong), json=body, headers=ADMIN)
    assert_problem(r, 404)
    assert await row_counts(sessions) == before
