"""Agency set-up use cases: agencies, counsellors, services, weekly rules, absences."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

import msgspec
from sqlalchemy import select

from orchestrator.auth import (
    AGENCY_ADMINS,
    STAFF_ROLES,
    Principal,
    Role,
    require,
    require_in_agency,
    staff_of,
)
from orchestrator.db import UnitOfWork
from orchestrator.errors import Conflict, NotFound
from orchestrator.models import Absence, Agency, AvailabilityRule, Counsellor, Service
from orchestrator.repositories.queue_policy import policy_document
from orchestrator.schemas import parse_hhmm
from orchestrator.services import audit, callbacks

T = TypeVar("T")


def changes(body: msgspec.Struct) -> dict[str, Any]:
    """Fields the client actually sent in a PATCH body."""
    return {f: getattr(body, f) for f in body.__struct_fields__ if getattr(body, f) is not msgspec.UNSET}


async def get_or_404(uow: UnitOfWork, model: type[T], object_id: uuid.UUID) -> T:
    found = await uow.session.get(model, object_id)
    if found is None:
        table: str = model.__tablename__  # type: ignore[attr-defined]
        name = "agency" if table == "agencies" else table[:-1].replace("_", " ")
        raise NotFound(f"no {name} {object_id}", code="not_found")
    return found


# --- agencies -------------------------------------------------------------------------------


async def create_agency(uow: UnitOfWork, principal: Principal | None, data: dict[str, Any]) -> Agency:
    caller = require(principal, Role.ADMIN)
    await _sms_number_free(uow, data.get("sms_number"), None)
    agency = Agency(**data)
    uow.session.add(agency)
    await uow.session.flush()
    audit.record(uow, actor=caller.actor, action="agency.created", entity=agency, agency_id=agency.id)
    return agency


async def _sms_number_free(uow: UnitOfWork, number: str | None, agency_id: uuid.UUID | None) -> None:
    """One agency per SMS number: inbound texts to it must belong to exactly one."""
    if number is None:
        return
    other = await uow.session.scalar(select(Agency.id).where(Agency.sms_number == number))
    if other is not None and other != agency_id:
        raise Conflict("another agency already uses this SMS number", code="sms_number_taken")


async def list_agencies(uow: UnitOfWork) -> Sequence[Agency]:
    rows = await uow.session.scalars(select(Agency).where(Agency.active).order_by(Agency.name, Agency.id))
    return rows.all()


async def get_agency(uow: UnitOfWork, agency_id: uuid.UUID, *, active_only: bool = True) -> Agency:
    agency = await get_or_404(uow, Agency, agency_id)
    if active_only and not agency.active:
        raise NotFound(f"no agency {agency_id}", code="not_found")
    return agency


def queue_policy_of(agency: Agency) -> dict[str, Any]:
    """Every queue policy key of the agency with the value in force (defaults included)."""
    return policy_document(agency.queue_policy)


async def update_agency(
    uow: UnitOfWork, principal: Principal | None, agency_id: uuid.UUID, fields: dict[str, Any]
) -> Agency:
    agency = await get_agency(uow, agency_id, active_only=False)
    caller = require_in_agency(principal, agency.id, *AGENCY_ADMINS)
    await _sms_number_free(uow, fields.get("sms_number"), agency.id)
    if isinstance(policy := fields.pop("queue_policy", None), msgspec.Struct):
        # a partial update: the keys sent replace theirs, the others stay (a new dict: JSONB)
        sent = {k: v for k, v in msgspec.structs.asdict(policy).items() if v is not msgspec.UNSET}
        agency.queue_policy = {**(agency.queue_policy or {}), **sent}
        fields_named = [*fields, *(f"queue_policy.{k}" for k in sorted(sent))]
    else:
        fields_named = list(fields)
    for key, value in fields.items():
        setattr(agency, key, value)
    audit.record(
        uow,
        actor=caller.actor,
        action="agency.updated",
        entity=agency,
        agency_id=agency.id,
        fields=sorted(fields_named),
    )
    return agency


async def deactivate_agency(uow: UnitOfWork, principal: Principal | None, agency_id: uuid.UUID) -> None:
    caller = require(principal, Role.ADMIN)
    agency = await get_agency(uow, agency_id, active_only=False)
    agency.active = False
    audit.record(uow, actor=caller.actor, action="agency.deactivated", entity=agency, agency_id=agency.id)


# --- counsellors ----------------------------------------------------------------------------


async def create_counsellor(
    uow: UnitOfWork, principal: Principal | None, agency_id: uuid.UUID, data: dict[str, Any]
) -> Counsellor:
    agency = await get_agency(uow, agency_id, active_only=False)
    caller = require_in_agency(principal, agency.id, *AGENCY_ADMINS)
    counsellor = Counsellor(agency_id=agency.id, **data)
    uow.session.add(counsellor)
    await uow.session.flush()
    audit.record(uow, actor=caller.actor, action="counsellor.created", entity=counsellor, agency_id=agency.id)
    return counsellor


async def list_counsellors(
    uow: UnitOfWork, principal: Principal | None, agency_id: uuid.UUID
) -> Sequence[Counsellor]:
    require_in_agency(principal, agency_id, *STAFF_ROLES)
    await get_agency(uow, agency_id, active_only=False)  # an unknown agency is a 404, not an empty list
    rows = await uow.session.scalars(
        select(Counsellor).where(Counsellor.agency_id == agency_id).order_by(Counsellor.name, Counsellor.id)
    )
    return rows.all()


async def visible_counsellor(
    uow: UnitOfWork, principal: Principal | None, counsellor_id: uuid.UUID, *roles: Role
) -> tuple[Counsellor, Principal]:
    """Load a counsellor the caller may act on; a counsellor token reaches only itself."""
    counsellor = await get_or_404(uow, Counsellor, counsellor_id)
    return counsellor, authorize_counsellor(principal, counsellor, *roles)


def authorize_counsellor(principal: Principal | None, counsellor: Counsellor, *roles: Role) -> Principal:
    """The caller, if they may act on ``counsellor``: staff of its agency with one of ``roles``; a
    counsellor token reaches only itself (anyone else's is a 404, like a missing one)."""
    caller = require_in_agency(principal, counsellor.agency_id, *roles)
    if caller.role is Role.COUNSELLOR and caller.counsellor_id != counsellor.id:
        raise NotFound(f"no counsellor {counsellor.id}", code="not_found")
    return caller


async def update_counsellor(
    uow: UnitOfWork, principal: Principal | None, counsellor_id: uuid.UUID, fields: dict[str, Any]
) -> Counsellor:
    counsellor, caller = await visible_counsellor(uow, principal, counsellor_id, *AGENCY_ADMINS)
    for key, value in fields.items():
        setattr(counsellor, key, value)
    audit.record(
        uow,
        actor=caller.actor,
        action="counsellor.updated",
        entity=counsellor,
        agency_id=counsellor.agency_id,
        fields=sorted(fields),
    )
    return counsellor


# --- services -------------------------------------------------------------------------------


async def create_service(
    uow: UnitOfWork, principal: Principal | None, agency_id: uuid.UUID, data: dict[str, Any]
) -> Service:
    agency = await get_agency(uow, agency_id, active_only=False)
    caller = require_in_agency(principal, agency.id, *AGENCY_ADMINS)
    data.pop("buffer_minutes", None)
    service = Service(agency_id=agency.id, **data)
    uow.session.add(service)
    await uow.session.flush()
    audit.record(uow, actor=caller.actor, action="service.created", entity=service, agency_id=agency.id)
    return service


async def list_services(
    uow: UnitOfWork, principal: Principal | None, agency_id: uuid.UUID
) -> Sequence[Service]:
    """Anyone sees an agency's active public services; its staff also see staff-only and inactive ones."""
    await get_agency(uow, agency_id)
    query = select(Service).where(Service.agency_id == agency_id)
    staff = staff_of(principal, agency_id) is not None
    if not staff:
        query = query.where(Service.active, Service.bookable_by == "public")
    rows = await uow.session.scalars(query.order_by(Service.name, Service.id))
    return rows.all()


async def visible_service(uow: UnitOfWork, principal: Principal | None, service_id: uuid.UUID) -> Service:
    service = await get_or_404(uow, Service, service_id)
    staff = staff_of(principal, service.agency_id) is not None
    if not staff and not (service.active and service.bookable_by == "public"):
        raise NotFound(f"no service {service_id}", code="not_found")
    if not staff and not (await get_agency(uow, service.agency_id, active_only=False)).active:
        raise NotFound(f"no service {service_id}", code="not_found")  # its agency was deactivated
    return service


async def update_service(
    uow: UnitOfWork, principal: Principal | None, service_id: uuid.UUID, fields: dict[str, Any]
) -> Service:
    service = await get_or_404(uow, Service, service_id)
    caller = require_in_agency(principal, service.agency_id, *AGENCY_ADMINS)
    for key, value in fields.items():
        setattr(service, key, value)
    audit.record(
        uow,
        actor=caller.actor,
        action="service.updated",
        entity=service,
        agency_id=service.agency_id,
        fields=sorted(fields),
    )
    return service


# --- weekly rules ---------------------------------------------------------------------------


def _rule_fields(fields: dict[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    if "start" in out:
        out["start_time"] = parse_hhmm(out.pop("start"))
    if "end" in out:
        out["end_time"] = parse_hhmm(out.pop("end"))
    return out


async def create_rule(
    uow: UnitOfWork, principal: Principal | None, counsellor_id: uuid.UUID, data: dict[str, Any]
) -> AvailabilityRule:
    counsellor, caller = await visible_counsellor(uow, principal, counsellor_id, *AGENCY_ADMINS)
    rule = AvailabilityRule(counsellor_id=counsellor.id, **_rule_fields(data))
    uow.session.add(rule)
    await uow.session.flush()
    audit.record(uow, actor=caller.actor, action="rule.created", entity=rule, agency_id=counsellor.agency_id)
    return rule


async def list_rules(
    uow: UnitOfWork, principal: Principal | None, counsellor_id: uuid.UUID
) -> Sequence[AvailabilityRule]:
    counsellor, _caller = await visible_counsellor(uow, principal, counsellor_id, *STAFF_ROLES)
    rows = await uow.session.scalars(
        select(AvailabilityRule)
        .where(AvailabilityRule.counsellor_id == counsellor.id)
        .order_by(AvailabilityRule.weekday, AvailabilityRule.start_time, AvailabilityRule.id)
    )
    return rows.all()


async def _owned_rule(
    uow: UnitOfWork, principal: Principal | None, rule_id: uuid.UUID
) -> tuple[AvailabilityRule, Counsellor, Principal]:
    rule = await get_or_404(uow, AvailabilityRule, rule_id)
    counsellor, caller = await visible_counsellor(uow, principal, rule.counsellor_id, *AGENCY_ADMINS)
    return rule, counsellor, caller


async def update_rule(
    uow: UnitOfWork, principal: Principal | None, rule_id: uuid.UUID, fields: dict[str, Any]
) -> AvailabilityRule:
    from orchestrator.errors import Invalid

    rule, counsellor, caller = await _owned_rule(uow, principal, rule_id)
    for key, value in _rule_fields(fields).items():
        setattr(rule, key, value)
    if rule.start_time >= rule.end_time:
        raise Invalid("end", "must be after start")
    audit.record(
        uow,
        actor=caller.actor,
        action="rule.updated",
        entity=rule,
        agency_id=counsellor.agency_id,
        fields=sorted(fields),
    )
    return rule


async def delete_rule(uow: UnitOfWork, principal: Principal | None, rule_id: uuid.UUID) -> None:
    rule, counsellor, caller = await _owned_rule(uow, principal, rule_id)
    audit.record(uow, actor=caller.actor, action="rule.deleted", entity=rule, agency_id=counsellor.agency_id)
    await uow.session.delete(rule)


# --- absences -------------------------------------------------------------------------------

ABSENCE_ROLES = (*AGENCY_ADMINS, Role.COUNSELLOR)


async def create_absence(
    uow: UnitOfWork, principal: Principal | None, counsellor_id: uuid.UUID, data: dict[str, Any]
) -> Absence:
    counsellor, caller = await visible_counsellor(uow, principal, counsellor_id, *ABSENCE_ROLES)
    absence = Absence(counsellor_id=counsellor.id, **data)
    uow.session.add(absence)
    await uow.session.flush()
    audit.record(
        uow, actor=caller.actor, action="absence.created", entity=absence, agency_id=counsellor.agency_id
    )
    callbacks.plan_soon(uow, counsellor.agency_id)  # callbacks planned in that time move
    return absence


async def list_absences(
    uow: UnitOfWork, principal: Principal | None, counsellor_id: uuid.UUID
) -> Sequence[Absence]:
    counsellor, _caller = await visible_counsellor(uow, principal, counsellor_id, *STAFF_ROLES)
    rows = await uow.session.scalars(
        select(Absence).where(Absence.counsellor_id == counsellor.id).order_by(Absence.starts_at, Absence.id)
    )
    return rows.all()


async def delete_absence(uow: UnitOfWork, principal: Principal | None, absence_id: uuid.UUID) -> None:
    absence = await get_or_404(uow, Absence, absence_id)
    counsellor, caller = await visible_counsellor(uow, principal, absence.counsellor_id, *ABSENCE_ROLES)
    audit.record(
        uow, actor=caller.actor, action="absence.deleted", entity=absence, agency_id=counsellor.agency_id
    )
    await uow.session.delete(absence)
