"""The capacity plan: how much of each counsellor's time, hour by hour, is kept for walk-ins,
kept for callbacks, and opened to booking (web and SMS) — sized by queueing theory from a demand
forecast, with every number saying where it came from.

**Forecast** (:func:`forecast`). Arrivals per channel and local hour of one weekday, learned
from the agency's own history and shrunk towards a prior: ``rate = (prior * k + observed) /
(k + weeks)`` with ``k = PRIOR_WEEKS``; with no history the prior alone (an agency's first
weeks), with many weeks the history dominates.

**Sizing** (:func:`plan_day`). Booking demand (appointments an hour, when forecast) is served
first — those people are known ahead and walk-ins also use the gaps between appointments — so
the reserves never take the counsellors bookings need. Walk-ins need a counsellor *now*: the
reserve is the fewest counsellors that serve ``service_level`` of arrivals within the target
wait (Erlang C, :mod:`~orchestrator.scheduling.erlang`). Callbacks can wait until their deadline:
the reserve is their offered load rounded up. What is left is opened to booking. A weekly rule's
own quota (desk duty written by a manager) is a floor the plan never lowers; otherwise at most
``max_reserved_share`` of the counsellors of an hour are kept from booking.

**Overbooking on purpose** (``Targets.no_show_rate``, 0 = off): with an agency's measured
no-show rate, the walk-in reserve shrinks by the counsellors that booked no-shows are expected
to give back (no-show backfill hands their time to walk-ins), so booking takes that time ahead.
Nobody is ever booked twice with one counsellor: the risk is a longer walk-in wait when more
people come than measured.

**Release and surge.** For an hour that starts within ``release_horizon`` of ``now``, the
walk-in reserve is sized on the walk-in arrivals observed in the last hour instead of the
forecast: a quiet morning releases reserved time to booking, a surge reserves more. Only free
time is ever relabelled: a booked appointment is never moved by a plan change, and the plan
conserves every counsellor's minutes (reserved + open = free, per hour).

Which counsellors: only those who meet people in person hold the walk-in pool, only those who
work by phone the callback pool; among them those who already hold it in the previous hour
first (fewer switches), then those with the most free time in the hour, then by id.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from orchestrator.scheduling.erlang import mean_wait, offered_load, servers_for
from orchestrator.scheduling.intervals import (
    Span,
    from_micros,
    intersect_spans,
    merge_spans,
    subtract_spans,
    to_micros,
    to_span,
)
from orchestrator.scheduling.ledger import Ledger, relabel
from orchestrator.scheduling.rules import local_day_bounds, zone
from orchestrator.scheduling.types import Mode

WALK_IN, CALLBACK, BOOKING = "walk_in", "callback", "booking"
POOLS = (WALK_IN, CALLBACK)
PRIOR_WEEKS = 4.0  # the prior weighs as much as this many weeks of history
_HOUR = 3_600_000_000  # µs
_HALF_HOUR = _HOUR // 2


@dataclass(frozen=True, slots=True)
class Prior:
    """What an agency without history is assumed to see, per open hour of a weekday."""

    walk_ins_per_hour: float = 4.0
    callbacks_per_hour: float = 1.5
    walk_in_minutes: float = 20.0
    callback_minutes: float = 12.0


@dataclass(frozen=True, slots=True)
class Observed:
    """History of one channel in one local hour of the weekday: ``arrivals`` over ``weeks``
    weeks, and (when known) the minutes those served took."""

    arrivals: int
    weeks: int
    served: int = 0
    minutes: float = 0.0


@dataclass(frozen=True, slots=True)
class Demand:
    channel: str
    hour: int  # local hour of the day
    per_hour: float
    service_minutes: float
    source: str


@dataclass(frozen=True, slots=True)
class Targets:
    walk_in_wait_minutes: float = 15.0
    service_level: float = 0.8
    release_horizon: timedelta = timedelta(hours=2)
    # at most this share of the counsellors working an hour is kept from booking (rules' own
    # desk duty aside): an agency without history still offers online slots
    max_reserved_share: float = 0.75
    # overbooking on purpose (0: off): the share of booked people measured not to come; the
    # walk-in time their no-shows give back (no-show backfill) is opened to booking ahead
    no_show_rate: float = 0.0


@dataclass(frozen=True, slots=True)
class HourPlan:
    start: datetime
    hour: int  # local
    counsellors: int  # with free working time in this hour
    free_minutes: int  # their unbooked working minutes
    walk_in: int  # counsellors kept for walk-ins
    callback: int  # kept for callbacks
    booking: int  # open to booking
    expected_walk_in_wait: float | None  # minutes, Erlang C with the walk-in reserve
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Reservation:
    counsellor_id: str
    start: datetime
    end: datetime
    pool: str  # walk_in or callback
    reason: str


@dataclass(frozen=True, slots=True)
class CapacityPlan:
    day: date
    hours: tuple[HourPlan, ...]
    reservations: tuple[Reservation, ...] = field(default=())


def forecast(history: Mapping[tuple[str, int], Observed], hours: Iterable[int], prior: Prior) -> list[Demand]:
    """Walk-in and callback demand for each local hour in ``hours`` (see the module doc)."""
    demand = []
    for hour in hours:
        for channel, base, minutes in (
            (WALK_IN, prior.walk_ins_per_hour, prior.walk_in_minutes),
            (CALLBACK, prior.callbacks_per_hour, prior.callback_minutes),
        ):
            seen = history.get((channel, hour))
            if seen is None or seen.weeks == 0:
                demand.append(
                    Demand(channel, hour, base, minutes, f"prior: {base:g}/h, {minutes:g} min each")
                )
                continue
            rate = (base * PRIOR_WEEKS + seen.arrivals) / (PRIOR_WEEKS + seen.weeks)
            service = (minutes * PRIOR_WEEKS + seen.minutes) / (PRIOR_WEEKS + seen.served)
            source = (
                f"history: {seen.arrivals} over {seen.weeks} weeks ({seen.arrivals / seen.weeks:.1f}/h), "
                f"blended with the prior {base:g}/h weighing {PRIOR_WEEKS:g} weeks"
            )
            demand.append(Demand(channel, hour, round(rate, 2), round(service, 1), source))
    return demand


def plan_day(
    ledgers: Sequence[Ledger],
    day: date,
    tz: str,
    demand: Sequence[Demand],
    *,
    now: datetime,
    targets: Targets | None = None,
    walk_ins_last_hour: int | None = None,
) -> CapacityPlan:
    """The plan of local ``day`` in ``tz`` for these counsellors (see the module doc).
    ``walk_ins_last_hour``: arrivals seen in the hour before ``now`` (None: not open yet)."""
    targets = targets or Targets()
    by_key = {(d.channel, d.hour): d for d in demand}
    bounds = local_day_bounds(day, tz)
    free = {ledger.id: _free(ledger) for ledger in ledgers}
    floors = {ledger.id: _pool_spans(ledger) for ledger in ledgers}
    serves = {ledger.id: _pools_served(ledger) for ledger in ledgers}
    hours: list[HourPlan] = []
    reservations: list[Reservation] = []
    holding: dict[str, set[str]] = {pool: set() for pool in POOLS}
    start = to_micros(bounds.start)
    while start < to_micros(bounds.end):
        hour_span = (start, start + _HOUR)
        local = from_micros(start).astimezone(zone(tz))
        available = {
            cid: minutes for cid, spans in free.items() if (minutes := _minutes(spans, hour_span)) >= 30
        }
        if available:
            plan, chosen = _hour(
                local.hour,
                from_micros(start),
                available,
                floors,
                hour_span,
                by_key,
                targets,
                now,
                walk_ins_last_hour,
                holding,
                serves,
            )
            hours.append(plan)
            for pool, ids in chosen.items():
                holding[pool] = set(ids)
                for cid in ids:
                    reservations += _reserve(
                        cid, free[cid], hour_span, pool, plan.reasons[0 if pool == WALK_IN else 1]
                    )
        else:
            holding = {pool: set() for pool in POOLS}
        start += _HOUR
    return CapacityPlan(day, tuple(hours), tuple(reservations))


def _hour(
    hour: int,
    start: datetime,
    available: dict[str, int],
    floors: dict[str, dict[str, list[Span]]],
    hour_span: Span,
    demand: Mapping[tuple[str, int], Demand],
    targets: Targets,
    now: datetime,
    walk_ins_last_hour: int | None,
    holding: dict[str, set[str]],
    serves: Mapping[str, frozenset[str]],
) -> tuple[HourPlan, dict[str, list[str]]]:
    walk = demand.get((WALK_IN, hour)) or Demand(WALK_IN, hour, 0.0, 20.0, "no demand expected")
    call = demand.get((CALLBACK, hour)) or Demand(CALLBACK, hour, 0.0, 12.0, "no demand expected")
    rate, source = walk.per_hour, walk.source
    if walk_ins_last_hour is not None and timedelta(0) <= start - now <= targets.release_horizon:
        rate = float(walk_ins_last_hour)
        verb = "surge: more" if rate > walk.per_hour else "release: fewer"
        source = (
            f"{verb} walk-ins seen in the last hour ({walk_ins_last_hour}) "
            f"than forecast ({walk.per_hour:g}/h)"
        )
    floor = {
        pool: sorted(cid for cid in available if _minutes(floors[cid].get(pool, []), hour_span) >= 30)
        for pool in POOLS
    }
    book = demand.get((BOOKING, hour))
    need_walk = servers_for(rate, walk.service_minutes, targets.walk_in_wait_minutes, targets.service_level)
    need_call = math.ceil(offered_load(call.per_hour, call.service_minutes) - 1e-9)
    need_book = math.ceil(offered_load(book.per_hour, book.service_minutes) - 1e-9) if book else 0
    returned = math.floor(need_book * targets.no_show_rate)  # overbooking on purpose: 0 when off
    need_walk = max(0, need_walk - returned)
    room = max(0, len(available) - need_book)  # booked people are known ahead: they come first
    room = min(room, math.floor(len(available) * targets.max_reserved_share))
    walk_n = min(len(available), max(len(floor[WALK_IN]), min(need_walk, room)))
    call_n = min(len(available) - walk_n, max(len(floor[CALLBACK]), min(need_call, room - walk_n)))
    order = sorted(available, key=lambda cid: (-available[cid], cid))
    chosen: dict[str, list[str]] = {}
    taken: set[str] = set()
    for pool, count in ((WALK_IN, walk_n), (CALLBACK, call_n)):
        ranked = floor[pool] + [c for c in order if c in holding[pool] and c not in floor[pool]]
        ranked += [c for c in order if c not in ranked]
        chosen[pool] = [c for c in ranked if c not in taken and pool in serves[c]][:count]
        taken |= set(chosen[pool])
    walk_n, call_n = len(chosen[WALK_IN]), len(chosen[CALLBACK])
    expected = mean_wait(rate, walk.service_minutes, walk_n) if rate > 0 and walk_n else None
    reasons = (
        f"walk-ins: {walk_n} counsellor(s) for {rate:g}/h * {walk.service_minutes:g} min to serve "
        f"{targets.service_level:.0%} within {targets.walk_in_wait_minutes:g} min (Erlang C; {source})"
        + (f"; {len(floor[WALK_IN])} on desk duty by their weekly rules" if floor[WALK_IN] else "")
        + (
            f"; {returned} fewer: measured no-shows ({targets.no_show_rate:.0%}) give that time back"
            if returned
            else ""
        ),
        f"callbacks: {call_n} counsellor(s) for {call.per_hour:g}/h * {call.service_minutes:g} min "
        f"(their load, rounded up; {call.source})",
        f"booking: the other {len(available) - walk_n - call_n} of {len(available)} "
        "counsellor(s) working this hour"
        + (
            f" (bookings need {need_book}: {book.per_hour:g}/h x {book.service_minutes:g} min; {book.source})"
            if book
            else ""
        ),
    )
    plan = HourPlan(
        start=start,
        hour=hour,
        counsellors=len(available),
        free_minutes=sum(available.values()),
        walk_in=walk_n,
        callback=call_n,
        booking=len(available) - walk_n - call_n,
        expected_walk_in_wait=None if expected is None or math.isinf(expected) else round(expected, 1),
        reasons=reasons,
    )
    return plan, chosen


def _pools_served(ledger: Ledger) -> frozenset[str]:
    """Walk-ins are met in person, callbacks made by phone: who can hold which pool."""
    return frozenset(
        pool for pool, mode in ((WALK_IN, Mode.IN_PERSON), (CALLBACK, Mode.PHONE)) if mode in ledger.modes
    )


def _free(ledger: Ledger) -> list[Span]:
    """Working time not booked, unavailable or being served."""
    working = merge_spans(to_span(b.interval) for b in ledger.working)
    taken = merge_spans((*ledger.booked_spans, *ledger.unavailable_spans, *ledger.serving_spans))
    return subtract_spans(working, taken)


def _pool_spans(ledger: Ledger) -> dict[str, list[Span]]:
    pools: dict[str, list[Span]] = {}
    for block in ledger.working:
        if block.quota in POOLS:
            pools.setdefault(block.quota, []).append(to_span(block.interval))
    return {pool: merge_spans(spans) for pool, spans in pools.items()}


def _minutes(spans: Sequence[Span], window: Span) -> int:
    return sum(e - s for s, e in intersect_spans(spans, [window])) // 60_000_000


def _reserve(cid: str, free: Sequence[Span], window: Span, pool: str, reason: str) -> list[Reservation]:
    return [
        Reservation(cid, from_micros(s), from_micros(e), pool, reason)
        for s, e in intersect_spans(free, [window])
    ]


def apply_plan(ledger: Ledger, reservations: Iterable[Reservation]) -> Ledger:
    """The ledger with its reserved time relabelled to the plan's pools (``ledger.relabel``):
    bookable working blocks are split, the reserved parts carry ``walk_in`` or ``callback`` (so
    online booking no longer offers them, and callbacks find their pool); nothing else changes.
    The loader does the same for stored plans (``LedgerRecord.reserved_*``)."""
    mine = tuple(
        (to_micros(r.start), to_micros(r.end), r.pool) for r in reservations if r.counsellor_id == ledger.id
    )
    return replace(ledger, working=relabel(ledger.working, mine)) if mine else ledger
