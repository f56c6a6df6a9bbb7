"""The live agency's capacity plan: the pure core's plan (``scheduling.capacity``) on the agency's
own ledgers and history, stored where the one ledger loader reads it.

For a local day: the counsellors' ledgers *without* the previous plan, a forecast per channel
and hour from the same weekday of the last ``HISTORY_WEEKS`` weeks (walk-in tickets with their
service times, callback requests, appointments booked), blended with the prior; for today, the
walk-ins of the last hour (release and surge). The reservations replace the day's previous ones
in one transaction and the plan (hours, numbers, reasons) is kept for staff. From then on
availability, callback planning and the queue read the reserved time through the ledger loader:
booking no longer offers it; booked appointments are never moved (only free time is reserved).

The ``plan_capacity`` job replans today and tomorrow every 15 minutes (release and surge need
fresh numbers) and the next ``DAYS_AHEAD`` days when the worker starts and every night.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, text
from sqlalchemy.dialects.postgresql import insert as upsert

from orchestrator.auth import STAFF_ROLES, Principal, Role, require_in_agency
from orchestrator.db import UnitOfWork
from orchestrator.errors import NotFound
from orchestrator.models import Agency, CapacityPlan, PlanReservation
from orchestrator.repositories.ledgers import ledger_params, load_ledger_records
from orchestrator.repositories.queue_policy import queue_settings
from orchestrator.scheduling.capacity import (
    BOOKING,
    CALLBACK,
    WALK_IN,
    Demand,
    Observed,
    Prior,
    Targets,
    forecast,
    plan_day,
)
from orchestrator.scheduling.capacity import CapacityPlan as Plan
from orchestrator.scheduling.ledger import LedgerRange, build_ledgers
from orchestrator.scheduling.rules import local_day_bounds, zone
from orchestrator.services import audit

HISTORY_WEEKS = 8
DAYS_AHEAD = 28
PRIOR = Prior()

# arrivals per channel and local hour on the same weekday over the history window, with the
# minutes walk-ins took (started → completed) and how many were timed
_HISTORY = text(
    """
SELECT 'walk_in' AS channel, extract(hour FROM arrived_at AT TIME ZONE :tz)::int AS hour,
       count(*) AS arrivals, count(completed_at) AS served,
       coalesce(sum(extract(epoch FROM completed_at - started_at)) FILTER (WHERE completed_at IS NOT NULL), 0)
         / 60.0 AS minutes
  FROM walk_in_tickets
 WHERE agency_id = :agency AND arrived_at >= :since AND arrived_at < :until
   AND extract(isodow FROM arrived_at AT TIME ZONE :tz) = :isodow
 GROUP BY 2
UNION ALL
SELECT 'callback', extract(hour FROM created_at AT TIME ZONE :tz)::int, count(*), 0, 0
  FROM callback_requests
 WHERE agency_id = :agency AND created_at >= :since AND created_at < :until
   AND extract(isodow FROM created_at AT TIME ZONE :tz) = :isodow
 GROUP BY 2
UNION ALL
SELECT 'booking', extract(hour FROM starts_at AT TIME ZONE :tz)::int, count(*), 0, 0
  FROM appointments
 WHERE agency_id = :agency AND starts_at >= :since AND starts_at < :until AND status <> 'cancelled'
   AND extract(isodow FROM starts_at AT TIME ZONE :tz) = :isodow
 GROUP BY 2
"""
)
_LAST_HOUR = text(
    "SELECT count(*) FROM walk_in_tickets "
    "WHERE agency_id = :agency AND arrived_at >= :since AND arrived_at < :now"
)


async def compute_plan(uow: UnitOfWork, agency: Agency, day: date, *, now: datetime) -> dict[str, Any]:
    """Plan ``day`` (the agency's local date) now, store it, and return it as staff see it."""
    tz = agency.timezone
    bounds = local_day_bounds(day, tz)
    rows = await load_ledger_records(
        uow.session,
        ledger_params(
            agency_id=agency.id,
            span=LedgerRange(day, day, bounds.start, bounds.end),
            now=now,
            with_plan=False,
        ),
    )
    ledgers = build_ledgers(rows.records(), tz, day, day)
    hours = sorted(
        {
            hour
            for ledger in ledgers
            for block in ledger.working
            for hour in _local_hours(block.interval.start, block.interval.end, tz)
        }
    )
    history = await _history(uow, agency, day, now)
    demand = forecast(history, hours, PRIOR)
    demand += _booking_demand(history, hours)
    today = now.astimezone(zone(tz)).date() == day
    last_hour = (
        int(
            await uow.session.scalar(
                _LAST_HOUR, {"agency": agency.id, "since": now - timedelta(hours=1), "now": now}
            )
            or 0
        )
        if today
        else None
    )
    plan = plan_day(
        ledgers,
        day,
        tz,
        demand,
        now=now,
        walk_ins_last_hour=last_hour,
        targets=await _targets(uow, agency, now),
    )
    document = _document(agency, plan, demand, now)
    await _store(uow, agency, plan, document, now)
    return document


_NO_SHOW_RATE = text(
    """
SELECT count(*) FILTER (WHERE status = 'no_show')::float / nullif(count(*), 0) FROM appointments
 WHERE agency_id = :agency AND starts_at >= :since AND starts_at < :until
   AND status IN ('completed', 'no_show')
"""
)


async def _targets(uow: UnitOfWork, agency: Agency, now: datetime) -> Targets:
    """The agency's plan settings (queue policy), with its measured no-show rate when it asked
    for overbooking on purpose."""
    settings = queue_settings(agency.queue_policy)
    rate = 0.0
    if settings.plan_overbook_on_no_shows:
        params = {"agency": agency.id, "since": now - timedelta(weeks=HISTORY_WEEKS), "until": now}
        rate = float(await uow.session.scalar(_NO_SHOW_RATE, params) or 0.0)
    return Targets(
        walk_in_wait_minutes=float(settings.plan_walk_in_target_minutes),
        release_horizon=timedelta(minutes=settings.plan_release_horizon_minutes),
        no_show_rate=rate,
    )


async def plan_for(
    uow: UnitOfWork,
    principal: Principal | None,
    agency_id: uuid.UUID,
    day: date | None,
    *,
    now: datetime,
    fresh: bool,
) -> dict[str, Any]:
    """The agency's plan of local ``day`` (None: today in the agency's zone) for its staff: the
    stored one, or (none yet, or ``fresh``: a manager asked) computed now."""
    if fresh:
        require_in_agency(principal, agency_id, Role.ADMIN, Role.MANAGER)
    else:
        require_in_agency(principal, agency_id, *STAFF_ROLES)
    agency = await uow.session.get(Agency, agency_id)
    if agency is None or not agency.active:
        raise NotFound(f"no agency {agency_id}", code="not_found")
    day = day or now.astimezone(zone(agency.timezone)).date()
    if not fresh:
        stored = await uow.session.get(CapacityPlan, (agency_id, day))
        if stored is not None:
            return dict(stored.plan)
    document = await compute_plan(uow, agency, day, now=now)
    if fresh and principal is not None:
        audit.record(
            uow,
            actor=principal.actor,
            action="plan.computed",
            entity=agency,
            agency_id=agency.id,
            day=day.isoformat(),
        )
    return document


async def _history(
    uow: UnitOfWork, agency: Agency, day: date, now: datetime
) -> dict[tuple[str, int], Observed]:
    until = min(now, local_day_bounds(day, agency.timezone).start)
    since = until - timedelta(weeks=HISTORY_WEEKS)
    created = agency.created_at or since
    weeks = max(0, min(HISTORY_WEEKS, (until - max(since, created)) // timedelta(weeks=1)))
    params = {
        "agency": agency.id,
        "tz": agency.timezone,
        "since": since,
        "until": until,
        "isodow": day.isoweekday(),
    }
    found: dict[tuple[str, int], Observed] = {}
    for channel, hour, arrivals, served, minutes in await uow.session.execute(_HISTORY, params):
        found[(channel, int(hour))] = Observed(int(arrivals), max(weeks, 1), int(served), float(minutes))
    return found


def _booking_demand(history: dict[tuple[str, int], Observed], hours: list[int]) -> list[Demand]:
    """Appointments an hour, from history only (no prior: an agency without bookings needs no
    room kept for them)."""
    out = []
    for hour in hours:
        seen = history.get((BOOKING, hour))
        if seen is not None:
            rate = seen.arrivals / seen.weeks
            out.append(
                Demand(
                    BOOKING,
                    hour,
                    round(rate, 2),
                    30.0,
                    f"history: {seen.arrivals} booked over {seen.weeks} weeks",
                )
            )
    return out


def _local_hours(start: datetime, end: datetime, tz: str) -> range:
    local_start, local_end = start.astimezone(zone(tz)), end.astimezone(zone(tz))
    return range(local_start.hour, local_end.hour + (1 if local_end.minute else 0))


def _document(agency: Agency, plan: Plan, demand: list[Any], now: datetime) -> dict[str, Any]:
    return {
        "agency_id": str(agency.id),
        "date": plan.day.isoformat(),
        "computed_at": now.isoformat(),
        "hours": [
            {
                "starts_at": h.start.isoformat(),
                "hour": h.hour,
                "counsellors": h.counsellors,
                "free_minutes": h.free_minutes,
                "walk_in": h.walk_in,
                "callback": h.callback,
                "booking": h.booking,
                "expected_walk_in_wait_minutes": h.expected_walk_in_wait,
                "reasons": list(h.reasons),
            }
            for h in plan.hours
        ],
        "reservations": [
            {
                "counsellor_id": r.counsellor_id,
                "starts_at": r.start.isoformat(),
                "ends_at": r.end.isoformat(),
                "pool": r.pool,
            }
            for r in plan.reservations
        ],
        "demand": [
            {
                "channel": d.channel,
                "hour": d.hour,
                "per_hour": d.per_hour,
                "service_minutes": d.service_minutes,
                "source": d.source,
            }
            for d in demand
            if d.channel in (WALK_IN, CALLBACK, BOOKING)
        ],
    }


async def _store(
    uow: UnitOfWork, agency: Agency, plan: Plan, document: dict[str, Any], now: datetime
) -> None:
    await uow.session.execute(
        delete(PlanReservation).where(PlanReservation.agency_id == agency.id, PlanReservation.day == plan.day)
    )
    if plan.reservations:
        await uow.session.execute(
            insert(PlanReservation),
            [
                {
                    "id": uuid.uuid4(),
                    "agency_id": agency.id,
                    "day": plan.day,
                    "counsellor_id": uuid.UUID(r.counsellor_id),
                    "starts_at": r.start,
                    "ends_at": r.end,
                    "pool": r.pool,
                }
                for r in plan.reservations
            ],
        )
    statement = upsert(CapacityPlan).values(agency_id=agency.id, day=plan.day, computed_at=now, plan=document)
    await uow.session.execute(
        statement.on_conflict_do_update(
            index_elements=["agency_id", "day"], set_={"computed_at": now, "plan": document}
        )
    )


async def active_agencies(uow: UnitOfWork) -> list[uuid.UUID]:
    return list(await uow.session.scalars(select(Agency.id).where(Agency.active)))


# --- a simulator profile from the agency's own history ----------------------------------------

_PROFILE = text(
    """
SELECT
  (SELECT count(*) FROM counsellors WHERE agency_id = :agency AND active) AS counsellors,
  (SELECT count(*) FROM appointments WHERE agency_id = :agency AND starts_at >= :since
      AND starts_at < :until AND status <> 'cancelled') AS bookings,
  (SELECT count(*) FILTER (WHERE status = 'no_show')::float / greatest(count(*), 1) FROM appointments
    WHERE agency_id = :agency AND starts_at >= :since AND starts_at < :until
      AND status IN ('completed', 'no_show')) AS no_show_rate,
  (SELECT avg(extract(epoch FROM completed_at - started_at)) / 60 FROM walk_in_tickets
    WHERE agency_id = :agency AND arrived_at >= :since AND completed_at IS NOT NULL) AS walk_in_minutes
"""
)
_BY_HOUR = text(
    """
SELECT 'walk_in', extract(hour FROM arrived_at AT TIME ZONE :tz)::int, count(*) FROM walk_in_tickets
 WHERE agency_id = :agency AND arrived_at >= :since AND arrived_at < :until GROUP BY 2
UNION ALL
SELECT 'callback', extract(hour FROM created_at AT TIME ZONE :tz)::int, count(*) FROM callback_requests
 WHERE agency_id = :agency AND created_at >= :since AND created_at < :until GROUP BY 2
"""
)


async def simulation_profile(uow: UnitOfWork, agency_id: uuid.UUID, *, now: datetime) -> dict[str, Any]:
    """The fields of a simulator ``Profile`` learned from the agency's last ``HISTORY_WEEKS``
    weeks (weekdays): staff, opening hours (Monday's), arrivals per hour, bookings a day,
    no-show rate and walk-in service time; the prior where history is silent."""
    agency = await uow.session.get(Agency, agency_id)
    if agency is None:
        raise NotFound(f"no agency {agency_id}", code="not_found")
    since, until = now - timedelta(weeks=HISTORY_WEEKS), now
    days = max(1, HISTORY_WEEKS * 5)
    params = {"agency": agency.id, "since": since, "until": until, "tz": agency.timezone}
    row = (await uow.session.execute(_PROFILE, params)).one()
    periods = [
        (int(start[:2]), int(end[:2]) + (1 if end[3:] != "00" else 0))
        for start, end in (agency.opening_hours or {}).get("0", [])
    ] or [(9, 12), (13, 17)]
    hours = [h for a, b in periods for h in range(a, b)]
    counts = {(c, int(h)): int(n) for c, h, n in await uow.session.execute(_BY_HOUR, params)}
    observed = any(counts.values())
    return {
        "name": f"agency {agency.name}",
        "counsellors": max(3, int(row.counsellors)),
        "hours": periods,
        "walk_ins": [
            counts.get((WALK_IN, h), 0) / days if observed else PRIOR.walk_ins_per_hour for h in hours
        ],
        "callbacks": [
            counts.get((CALLBACK, h), 0) / days if observed else PRIOR.callbacks_per_hour for h in hours
        ],
        "bookings_per_day": round(int(row.bookings) / days),
        "no_show_rate": round(float(row.no_show_rate or 0.15), 3),
        "walk_in_minutes": round(float(row.walk_in_minutes or PRIOR.walk_in_minutes), 1),
    }
