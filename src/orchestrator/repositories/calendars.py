"""Named queries that turn rows into core types, and the one way to claim counsellor time."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import Uuid, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.models import Absence, AvailabilityRule, Claim, Counsellor, Service
from orchestrator.scheduling.availability import CounsellorCalendar, ServiceSpec
from orchestrator.scheduling.rules import WeeklyRule, expand_rules, local_day_bounds, zone
from orchestrator.scheduling.types import Interval, Mode

MAX_BUFFER = timedelta(minutes=240)  # schemas cap buffer_before/after_minutes at 240
BOOKED_KINDS = ("appointment", "hold", "callback", "service")


def service_spec(service: Service) -> ServiceSpec:
    return ServiceSpec(
        id=str(service.id),
        duration=timedelta(minutes=service.duration_minutes),
        modes=frozenset(Mode(m) for m in service.modes),
        skill=service.skill,
        min_notice=timedelta(minutes=service.min_notice_minutes),
        max_horizon=timedelta(days=service.max_horizon_days),
        buffer_before=timedelta(minutes=service.buffer_before_minutes),
        buffer_after=timedelta(minutes=service.buffer_after_minutes),
    )


def live_claims(now: datetime):  # type: ignore[no-untyped-def]
    """Claims that still hold time: everything but holds that have expired."""
    return or_(Claim.kind != "hold", Claim.expires_at > now)


async def load_calendars(
    session: AsyncSession,
    *,
    agency_id: uuid.UUID,
    tz: str,
    window: Interval,
    now: datetime,
    skill: str | None = None,
    counsellor_ids: Collection[uuid.UUID] | None = None,
    exclude_claims: Collection[uuid.UUID] = (),
) -> list[CounsellorCalendar]:
    """Snapshot of active counsellors' working time, claims and absences around ``window``.

    Four queries whatever the number of counsellors. Claims and absences are loaded over the
    whole local days of the window plus the longest buffer (buffers and the per-day load of the
    counsellor choice).
    """
    # plain row tuples, not ORM entities: this runs on every availability and booking request
    query = select(Counsellor.id, Counsellor.skills, Counsellor.languages, Counsellor.modes).where(
        Counsellor.agency_id == agency_id, Counsellor.active
    )
    if skill is not None:
        query = query.where(Counsellor.skills.contains([skill]))
    if counsellor_ids is not None:
        query = query.where(Counsellor.id.in_(counsellor_ids))
    counsellors = (await session.execute(query.order_by(Counsellor.id))).all()
    if not counsellors:
        return []
    ids = [c.id for c in counsellors]
    # Whole local days around the window (a rule never crosses midnight; the counsellor choice
    # weighs each counsellor's load over the slot's local day), plus the longest service buffer.
    local = zone(tz)
    first_day = window.start.astimezone(local).date()
    last_day = (window.end - timedelta(microseconds=1)).astimezone(local).date()
    margin_start = local_day_bounds(first_day, tz).start - MAX_BUFFER
    margin_end = local_day_bounds(last_day, tz).end + MAX_BUFFER

    rules: dict[uuid.UUID, list[WeeklyRule]] = defaultdict(list)
    r = AvailabilityRule
    rule_rows = await session.execute(
        select(r.counsellor_id, r.weekday, r.start_time, r.end_time, r.modes, r.quota).where(
            r.counsellor_id.in_(ids),
            or_(r.valid_from.is_(None), r.valid_from <= last_day),
            or_(r.valid_until.is_(None), r.valid_until >= first_day),
        )
    )
    for counsellor_id, weekday, start_time, end_time, modes, quota in rule_rows:
        rules[counsellor_id].append(WeeklyRule(weekday, start_time, end_time, _modes(tuple(modes)), quota))

    unavailable: dict[uuid.UUID, list[Interval]] = defaultdict(list)
    for counsellor_id, starts_at, ends_at in await session.execute(
        select(Absence.counsellor_id, Absence.starts_at, Absence.ends_at).where(
            Absence.counsellor_id.in_(ids), Absence.starts_at < margin_end, Absence.ends_at > margin_start
        )
    ):
        unavailable[counsellor_id].append(Interval(starts_at, ends_at))

    booked: dict[uuid.UUID, list[Interval]] = defaultdict(list)
    # one row per counsellor and kind of claim, times as arrays: thousands of claims arrive in a
    # few dozen rows (per-row overhead, not data, dominated this query)
    is_booked = Claim.kind.in_(BOOKED_KINDS)
    claims = (
        select(
            Claim.counsellor_id,
            is_booked,
            func.array_agg(Claim.starts_at),
            func.array_agg(Claim.ends_at),
        )
        .where(
            Claim.counsellor_id.in_(ids),
            Claim.starts_at < margin_end,
            Claim.ends_at > margin_start,
            live_claims(now),
        )
        .group_by(Claim.counsellor_id, is_booked)
    )
    if exclude_claims:
        claims = claims.where(Claim.id.not_in(exclude_claims))
    for counsellor_id, booked_kind, starts, ends in await session.execute(claims):
        target = booked if booked_kind else unavailable
        target[counsellor_id].extend(map(Interval, starts, ends))

    return [
        CounsellorCalendar(
            id=str(c.id),
            skills=frozenset(c.skills),
            languages=frozenset(c.languages),
            modes=_modes(tuple(c.modes)),
            working=tuple(expand_rules(rules.get(c.id, []), tz, first_day, last_day)),
            booked=tuple(booked.get(c.id, [])),
            unavailable=tuple(unavailable.get(c.id, [])),
        )
        for c in counsellors
    ]


@lru_cache(maxsize=64)
def _modes(names: tuple[str, ...]) -> frozenset[Mode]:
    return frozenset(Mode(m) for m in names)


def lock_key(counsellor_id: uuid.UUID) -> int:
    """The counsellor's advisory lock key (the database's ``counsellor_lock_key`` computes it too)."""
    return int.from_bytes(counsellor_id.bytes[:8], "big", signed=True)


async def lock_counsellors(session: AsyncSession, counsellor_ids: Sequence[uuid.UUID]) -> None:
    """Serialize claims per counsellor until the transaction ends (sorted: no lock-order deadlocks).

    The exclusion constraint stays the guarantee; the lock turns concurrent inserts of the same
    range into a fast, clean 23P01 instead of deadlocks (measured, see DESIGN.md).
    """
    for counsellor_id in sorted(set(counsellor_ids)):
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(counsellor_id)})


_CLAIM_TIME = text(
    "SELECT claim_time(:agency_id, :counsellor_id, :starts_at, :ends_at, :kind, :now, :expires_at,"
    " :replacing)"
).columns(claim_time=Uuid)


async def claim_time(
    session: AsyncSession,
    *,
    agency_id: uuid.UUID,
    counsellor_id: uuid.UUID,
    starts_at: datetime,
    ends_at: datetime,
    kind: str,
    now: datetime,
    expires_at: datetime | None = None,
    replacing: uuid.UUID | None = None,
) -> uuid.UUID | None:
    """Claim ``[starts_at, ends_at)`` of the counsellor: the new claim's id, or None if it
    overlaps a live claim of theirs. One round trip (the ``claim_time`` database function).

    It takes the counsellor's advisory lock (and the replaced claim's counsellor's), deletes
    expired holds in the range (time held by a lapsed hold is free without any job having
    run), releases ``replacing`` and inserts, all in a subtransaction: the winner keeps the lock
    until commit; a loser's lock and changes are undone at once, so losers never hold up others
    while they compute alternatives, and if the new claim fails the old one is still there.
    """
    claimed: uuid.UUID | None = await session.scalar(
        _CLAIM_TIME,
        {
            "agency_id": agency_id,
            "counsellor_id": counsellor_id,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "kind": kind,
            "now": now,
            "expires_at": expires_at,
            "replacing": replacing,
        },
    )
    return claimed
