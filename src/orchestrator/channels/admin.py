"""Admin HTTP API under /api/v1: agencies, counsellors, services, weekly rules, absences.

Handlers only parse, call a service and serialize. Listing agencies and their public
services is open to anyone; everything else needs a bearer token scoped to the agency.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Router, delete, get, patch, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from orchestrator.channels.http import Caller, Id, UoW
from orchestrator.channels.openapi import STAFF_READ, STAFF_WRITE, problems
from orchestrator.models import Agency, AvailabilityRule
from orchestrator.schemas import (
    AbsenceCreate,
    AbsenceRead,
    AgencyCreate,
    AgencyRead,
    AgencyUpdate,
    CounsellorCreate,
    CounsellorRead,
    CounsellorUpdate,
    RuleCreate,
    RuleRead,
    RuleUpdate,
    ServiceCreate,
    ServiceRead,
    ServiceUpdate,
    to_struct,
)
from orchestrator.services import admin


def _body(data: msgspec.Struct) -> dict[str, Any]:
    return msgspec.structs.asdict(data)


def _agency(agency: Agency) -> AgencyRead:
    return to_struct(AgencyRead, agency, queue_policy=admin.queue_policy_of(agency))


def _rule(rule: AvailabilityRule) -> RuleRead:
    return to_struct(
        RuleRead, rule, start=rule.start_time.strftime("%H:%M"), end=rule.end_time.strftime("%H:%M")
    )


# --- agencies -------------------------------------------------------------------------------


@post("/agencies", status_code=HTTP_201_CREATED, responses=STAFF_WRITE)
async def create_agency(data: JSONBody[AgencyCreate], uow: UoW, principal: Caller) -> AgencyRead:
    """Create an agency (admin)."""
    return _agency(await admin.create_agency(uow, principal, _body(data)))


@get("/agencies", responses=problems())
async def list_agencies(uow: UoW) -> list[AgencyRead]:
    """Active agencies (public)."""
    return [_agency(a) for a in await admin.list_agencies(uow)]


@get("/agencies/{agency_id:uuid}", responses=problems(404))
async def get_agency(agency_id: Id, uow: UoW) -> AgencyRead:
    """One active agency (public)."""
    return _agency(await admin.get_agency(uow, agency_id))


@patch("/agencies/{agency_id:uuid}", responses=STAFF_WRITE)
async def update_agency(
    agency_id: Id, data: JSONBody[AgencyUpdate], uow: UoW, principal: Caller
) -> AgencyRead:
    """Change an agency (admin, or its manager)."""
    return _agency(await admin.update_agency(uow, principal, agency_id, admin.changes(data)))


@delete("/agencies/{agency_id:uuid}", status_code=HTTP_204_NO_CONTENT, responses=STAFF_WRITE)
async def deactivate_agency(agency_id: Id, uow: UoW, principal: Caller) -> None:
    """Deactivate an agency (admin). Its data stays; it disappears from public listings."""
    await admin.deactivate_agency(uow, principal, agency_id)


# --- counsellors ----------------------------------------------------------------------------


@post("/agencies/{agency_id:uuid}/counsellors", status_code=HTTP_201_CREATED, responses=STAFF_WRITE)
async def create_counsellor(
    agency_id: Id, data: JSONBody[CounsellorCreate], uow: UoW, principal: Caller
) -> CounsellorRead:
    """Add a counsellor to an agency (admin, manager)."""
    return to_struct(CounsellorRead, await admin.create_counsellor(uow, principal, agency_id, _body(data)))


@get("/agencies/{agency_id:uuid}/counsellors", responses=STAFF_READ)
async def list_counsellors(agency_id: Id, uow: UoW, principal: Caller) -> list[CounsellorRead]:
    """The agency's counsellors (its staff)."""
    return [to_struct(CounsellorRead, c) for c in await admin.list_counsellors(uow, principal, agency_id)]


@get("/counsellors/{counsellor_id:uuid}", responses=STAFF_READ)
async def get_counsellor(counsellor_id: Id, uow: UoW, principal: Caller) -> CounsellorRead:
    """One counsellor (staff of the agency; a counsellor sees only itself)."""
    from orchestrator.auth import STAFF_ROLES

    counsellor, _ = await admin.visible_counsellor(uow, principal, counsellor_id, *STAFF_ROLES)
    return to_struct(CounsellorRead, counsellor)


@patch("/counsellors/{counsellor_id:uuid}", responses=STAFF_WRITE)
async def update_counsellor(
    counsellor_id: Id, data: JSONBody[CounsellorUpdate], uow: UoW, principal: Caller
) -> CounsellorRead:
    """Change a counsellor; ``active: false`` deactivates (admin, manager)."""
    fields = admin.changes(data)
    return to_struct(CounsellorRead, await admin.update_counsellor(uow, principal, counsellor_id, fields))


@delete("/counsellors/{counsellor_id:uuid}", status_code=HTTP_204_NO_CONTENT, responses=STAFF_WRITE)
async def deactivate_counsellor(counsellor_id: Id, uow: UoW, principal: Caller) -> None:
    """Deactivate a counsellor (admin, manager): no new slots; existing appointments stay."""
    await admin.update_counsellor(uow, principal, counsellor_id, {"active": False})


# --- services -------------------------------------------------------------------------------


@post("/agencies/{agency_id:uuid}/services", status_code=HTTP_201_CREATED, responses=STAFF_WRITE)
async def create_service(
    agency_id: Id, data: JSONBody[ServiceCreate], uow: UoW, principal: Caller
) -> ServiceRead:
    """Add a service ("motif") to an agency (admin, manager)."""
    return to_struct(ServiceRead, await admin.create_service(uow, principal, agency_id, _body(data)))


@get("/agencies/{agency_id:uuid}/services", responses=STAFF_READ)
async def list_services(agency_id: Id, uow: UoW, principal: Caller) -> list[ServiceRead]:
    """Public services of an agency (anyone); staff also see staff-only and inactive ones."""
    return [to_struct(ServiceRead, s) for s in await admin.list_services(uow, principal, agency_id)]


@get("/services/{service_id:uuid}", responses=STAFF_READ)
async def get_service(service_id: Id, uow: UoW, principal: Caller) -> ServiceRead:
    """One service (public if bookable by the public)."""
    return to_struct(ServiceRead, await admin.visible_service(uow, principal, service_id))


@patch("/services/{service_id:uuid}", responses=STAFF_WRITE)
async def update_service(
    service_id: Id, data: JSONBody[ServiceUpdate], uow: UoW, principal: Caller
) -> ServiceRead:
    """Change a service; ``active: false`` deactivates (admin, manager)."""
    return to_struct(ServiceRead, await admin.update_service(uow, principal, service_id, admin.changes(data)))


@delete("/services/{service_id:uuid}", status_code=HTTP_204_NO_CONTENT, responses=STAFF_WRITE)
async def deactivate_service(service_id: Id, uow: UoW, principal: Caller) -> None:
    """Deactivate a service (admin, manager)."""
    await admin.update_service(uow, principal, service_id, {"active": False})


# --- weekly rules ---------------------------------------------------------------------------


@post("/counsellors/{counsellor_id:uuid}/rules", status_code=HTTP_201_CREATED, responses=STAFF_WRITE)
async def create_rule(counsellor_id: Id, data: JSONBody[RuleCreate], uow: UoW, principal: Caller) -> RuleRead:
    """Add a weekly working window, local wall-clock time of the agency (admin, manager)."""
    return _rule(await admin.create_rule(uow, principal, counsellor_id, _body(data)))


@get("/counsellors/{counsellor_id:uuid}/rules", responses=STAFF_READ)
async def list_rules(counsellor_id: Id, uow: UoW, principal: Caller) -> list[RuleRead]:
    """A counsellor's weekly rules (staff of the agency)."""
    return [_rule(r) for r in await admin.list_rules(uow, principal, counsellor_id)]


@patch("/rules/{rule_id:uuid}", responses=STAFF_WRITE)
async def update_rule(rule_id: Id, data: JSONBody[RuleUpdate], uow: UoW, principal: Caller) -> RuleRead:
    """Change a weekly rule (admin, manager)."""
    return _rule(await admin.update_rule(uow, principal, rule_id, admin.changes(data)))


@delete("/rules/{rule_id:uuid}", status_code=HTTP_204_NO_CONTENT, responses=STAFF_WRITE)
async def delete_rule(rule_id: Id, uow: UoW, principal: Caller) -> None:
    """Remove a weekly rule (admin, manager)."""
    await admin.delete_rule(uow, principal, rule_id)


# --- absences -------------------------------------------------------------------------------


@post("/counsellors/{counsellor_id:uuid}/absences", status_code=HTTP_201_CREATED, responses=STAFF_WRITE)
async def create_absence(
    counsellor_id: Id, data: JSONBody[AbsenceCreate], uow: UoW, principal: Caller
) -> AbsenceRead:
    """Record an absence (admin, manager, or the counsellor itself)."""
    return to_struct(AbsenceRead, await admin.create_absence(uow, principal, counsellor_id, _body(data)))


@get("/counsellors/{counsellor_id:uuid}/absences", responses=STAFF_READ)
async def list_absences(counsellor_id: Id, uow: UoW, principal: Caller) -> list[AbsenceRead]:
    """A counsellor's absences (staff of the agency)."""
    return [to_struct(AbsenceRead, a) for a in await admin.list_absences(uow, principal, counsellor_id)]


@delete("/absences/{absence_id:uuid}", status_code=HTTP_204_NO_CONTENT, responses=STAFF_WRITE)
async def delete_absence(absence_id: Id, uow: UoW, principal: Caller) -> None:
    """Remove an absence (admin, manager, or the counsellor itself)."""
    await admin.delete_absence(uow, principal, absence_id)


HANDLERS = [
    Router(
        path="/api/v1",
        tags=["admin"],
        route_handlers=[
            create_agency,
            list_agencies,
            get_agency,
            update_agency,
            deactivate_agency,
            create_counsellor,
            list_counsellors,
            get_counsellor,
            update_counsellor,
            deactivate_counsellor,
            create_service,
            list_services,
            get_service,
            update_service,
            deactivate_service,
            create_rule,
            list_rules,
            update_rule,
            delete_rule,
            create_absence,
            list_absences,
            delete_absence,
        ],
    )
]
