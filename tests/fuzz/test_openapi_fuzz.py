"""Schemathesis over the whole OpenAPI, against a real `orchestrator run` process on its own
committed database: every operation, anonymous and with valid admin and front-desk tokens.

It fails on any 5xx and on any status, content type or body the schema does not document.
Path parameters are swapped for ids of real objects half of the time (decided by the generated
value, so runs stay reproducible), so the fuzzer reaches past the 404s.
``ORCHESTRATOR_FUZZ_EXAMPLES`` sets the examples per operation and caller (``make fuzz``: 300).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.helpers import SECRET, bearer

EXAMPLES = int(os.environ.get("ORCHESTRATOR_FUZZ_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# the SSE stream never ends: fuzzing it would only measure the client's timeout
SKIPPED_PATHS = ("/api/v1/agencies/{agency_id}/queue/stream",)


def _openapi() -> dict[str, Any]:
    """The app's own OpenAPI document (built without a database: it is static)."""
    from unittest.mock import MagicMock

    from orchestrator.app import create_app
    from orchestrator.deps import Deps
    from orchestrator.settings import Settings

    app = create_app(Settings(token_secret=SECRET), Deps(sessions=MagicMock(), redis=MagicMock()))
    return app.openapi_schema.to_schema()


def _has_input(operation: dict[str, Any]) -> bool:
    return bool(operation.get("parameters") or operation.get("requestBody"))


SCHEMA = schemathesis.openapi.from_dict(_openapi())
OPERATIONS = [
    (method.upper(), path)
    for path, item in SCHEMA.raw_schema["paths"].items()
    for method in item
    if method in {"get", "post", "patch", "put", "delete"} and path not in SKIPPED_PATHS
]
CASES = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode}")
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    # nothing to make invalid in an operation without parameters or body
    if mode is GenerationMode.POSITIVE or _has_input(SCHEMA.raw_schema["paths"][path][method.lower()])
]


@pytest.fixture(scope="session")
def fuzz_world(live_server) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Real objects to aim at: an agency with a counsellor, rules, a service, an absence, an
    appointment and a ticket."""
    assert SECRET  # the live server signs with the tests' secret
    admin = bearer("admin")
    with httpx.Client(base_url=live_server.base_url, headers=admin, timeout=10) as http:
        agency = _created(http.post("/api/v1/agencies", json={"name": "Fuzz", "timezone": "Europe/Paris"}))
        counsellor = _created(
            http.post(
                f"/api/v1/agencies/{agency['id']}/counsellors",
                json={"name": "Camille", "email": "c@example.org", "modes": ["in_person", "phone"]},
            )
        )
        rules = [
            _created(
                http.post(
                    f"/api/v1/counsellors/{counsellor['id']}/rules",
                    json={"weekday": day, "start": "00:00", "end": "23:45", "modes": ["in_person", "phone"]},
                )
            )
            for day in range(7)
        ]
        service = _created(
            http.post(
                f"/api/v1/agencies/{agency['id']}/services",
                json={
                    "name": "Suivi",
                    "duration_minutes": 15,
                    "modes": ["in_person", "phone"],
                    "min_notice_minutes": 0,
                },
            )
        )
        absence = _created(
            http.post(
                f"/api/v1/counsellors/{counsellor['id']}/absences",
                json={"starts_at": "2099-01-01T00:00:00+00:00", "ends_at": "2099-01-02T00:00:00+00:00"},
            )
        )
        slots = http.get(
            "/api/v1/availability",
            params={
                "agency_id": agency["id"],
                "service_id": service["id"],
                "from": _in_days(2),
                "to": _in_days(3),
            },
        ).json()["slots"]
        appointment = _created(
            http.post(
                "/api/v1/appointments",
                json={
                    "agency_id": agency["id"],
                    "service_id": service["id"],
                    "starts_at": slots[0]["starts_at"],
                    "mode": "in_person",
                    "job_seeker": {"name": "Fuzz", "phone": "+33612345678"},
                },
            )
        )
        ticket = _created(
            http.post(f"/api/v1/agencies/{agency['id']}/tickets", json={"service_id": service["id"]})
        )
    return {
        "agency_id": agency["id"],
        "counsellor_id": counsellor["id"],
        "service_id": service["id"],
        "rule_id": rules[0]["id"],
        "absence_id": absence["id"],
        "appointment_id": appointment["id"],
        "ticket_id": ticket["id"],
    }


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return dict(response.json())


def _in_days(days: int) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0).isoformat()


def test_the_served_schema_is_the_one_fuzzed(live_server):  # type: ignore[no-untyped-def]
    served = httpx.get(live_server.base_url + "/schema/openapi.json", timeout=10).json()
    assert served["paths"] == SCHEMA.raw_schema["paths"]


CALLERS = ("anonymous", "admin", "front_desk")


def _headers(caller: str, world: dict[str, str]) -> dict[str, str]:
    if caller == "admin":
        return bearer("admin")
    if caller == "front_desk":
        return bearer("front_desk", world["agency_id"])
    return {}


def _aim(case: Any, world: dict[str, str]) -> None:
    """Half of the generated ids become real ones (by the id's own parity: reproducible)."""
    for name, value in list((case.path_parameters or {}).items()):
        if name in world and isinstance(value, str) and _even(value):
            case.path_parameters[name] = world[name]
    if isinstance(case.query, dict):
        for name in ("agency_id", "service_id"):
            if _even(str(case.query.get(name, ""))):
                case.query[name] = world[name]


# Values the schema allows by type but that broke real servers: NUL and other controls, a bidi
# override, dates at the ends of the calendar with extreme offsets, a long string, SQL-ish text.
HOSTILE = (
    "\x00",
    "Jean\x00Dupont",
    "a\x1b[31mb",
    "\u202egnp.exe",
    "line\nbreak",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:45:00+00:00",
    "x" * 10_000,
    "' OR 1=1 --",
)


def _string_slots(value: Any) -> list[tuple[Any, Any]]:
    """(container, key) of every string in a JSON value."""
    slots: list[tuple[Any, Any]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(item, str):
            slots.append((value, key))
        else:
            slots.extend(_string_slots(item))
    return slots


def _make_hostile(case: Any, data: st.DataObject) -> None:
    """Maybe replace one string of the body or query with a hostile value (drawn: reproducible)."""
    slots = _string_slots(case.body) + _string_slots(case.query or {})
    if slots and data.draw(st.booleans(), label="hostile"):
        container, key = data.draw(st.sampled_from(slots), label="where")
        container[key] = data.draw(st.sampled_from(HOSTILE), label="what")


def _even(value: str) -> bool:
    try:
        return uuid.UUID(value).int % 2 == 0
    except ValueError:
        return False


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_no_5xx_and_only_documented_responses(method, path, mode, fuzz_world, live_server):  # type: ignore[no-untyped-def]
    operation = SCHEMA[path][method]

    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def fuzz(case: Any, data: st.DataObject) -> None:
        _aim(case, fuzz_world)
        _make_hostile(case, data)
        for caller in CALLERS:  # the same request anonymous, as an admin and as the agency's front desk
            headers = _headers(caller, fuzz_world)
            response = case.call(base_url=live_server.base_url, headers=headers, timeout=30)
            case.validate_response(response, checks=CHECKS, headers=headers)

    fuzz()
