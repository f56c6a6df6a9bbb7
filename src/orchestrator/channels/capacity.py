"""The capacity plan for staff: ``GET /api/v1/agencies/{id}/plan?date=`` (the stored plan, computed
if there is none yet) and ``POST`` on the same path (a manager asks for it to be computed now)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec
from litestar import get, post
from litestar.params import QueryParameter

from orchestrator.channels.http import Caller, Clock, Id, UoW
from orchestrator.channels.openapi import problems
from orchestrator.errors import Invalid
from orchestrator.services import capacity


class PlanHour(msgspec.Struct):
    starts_at: datetime
    hour: int  # local
    counsellors: int  # with free working time in this hour
    free_minutes: int
    walk_in: int  # counsellors kept for walk-ins
    callback: int  # kept for callbacks
    booking: int  # open to web and SMS booking
    expected_walk_in_wait_minutes: float | None
    reasons: list[str]  # where each number comes from


class PlanReservation(msgspec.Struct):
    counsellor_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    pool: str  # walk_in or callback


class PlanDemand(msgspec.Struct):
    channel: str
    hour: int
    per_hour: float
    service_minutes: float
    source: str


class PlanRead(msgspec.Struct):
    agency_id: uuid.UUID
    date: date
    computed_at: datetime
    hours: list[PlanHour]
    reservations: list[PlanReservation]
    demand: list[PlanDemand]


Day = Annotated[
    str | None, QueryParameter(name="date", required=False, pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
]


async def _plan(
    agency_id: uuid.UUID, day: str | None, uow: UoW, principal: Caller, clock: Clock, *, fresh: bool
) -> PlanRead:
    try:
        wanted = date.fromisoformat(day) if day is not None else None
    except ValueError:
        raise Invalid("date", "a date as YYYY-MM-DD") from None
    document = await capacity.plan_for(uow, principal, agency_id, wanted, now=clock(), fresh=fresh)
    return msgspec.convert(document, PlanRead)


@get("/api/v1/agencies/{agency_id:uuid}/plan", responses=problems(400, 401, 403, 404, 422))
async def get_plan(agency_id: Id, uow: UoW, principal: Caller, clock: Clock, date: Day = None) -> PlanRead:
    """The agency's capacity plan of a local day (default today): per hour, how many counsellors
    are kept for walk-ins and callbacks and how many are open to booking, and why. Staff."""
    return await _plan(agency_id, date, uow, principal, clock, fresh=False)


@post("/api/v1/agencies/{agency_id:uuid}/plan", status_code=200, responses=problems(400, 401, 403, 404, 422))
async def compute_plan(
    agency_id: Id, uow: UoW, principal: Caller, clock: Clock, date: Day = None
) -> PlanRead:
    """Compute the plan now (managers), e.g. after changing rosters; it replaces the stored one."""
    return await _plan(agency_id, date, uow, principal, clock, fresh=True)


HANDLERS = [get_plan, compute_plan]
