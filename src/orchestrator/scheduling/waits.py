"""Walk-in wait estimates: duration statistics, our forward simulation, and the ZMS baseline.

:func:`estimate_waits` replays the real queue policy (:mod:`orchestrator.scheduling.queue`)
forward in time over every on-desk counsellor's calendar. :func:`zms_baseline` is Munich
ZMS's ``QueueList::withEstimatedWaitingTime`` (position * processing time average /
workstation count), kept as the yardstick the estimator must beat.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.scheduling.queue import (
    Book,
    DeskCounsellor,
    Priority,
    QueuePolicy,
    QueueState,
    SkipReason,
    arrival_key,
    static_block,
)
from orchestrator.scheduling.types import Interval, require_utc

__all__ = [
    "DEFAULT_PRIOR_WEIGHT",
    "DurationStats",
    "duration_stats",
    "estimate_waits",
    "observed_durations",
    "zms_baseline",
]

# The prior counts as this many observed samples.
DEFAULT_PRIOR_WEIGHT = 5
# Samples beyond this multiple of the median are clipped (a forgotten "finish" click).
_WINSOR_FACTOR = 3.0
# ZMS: an appointment enters the merged queue once ``now + 2 min + k·slot`` reaches its time.
_ZMS_APPOINTMENT_LEAD = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class DurationStats:
    """Observed service durations for one service and the estimate derived from them."""

    service_id: str
    count: int
    mean: timedelta | None
    median: timedelta | None
    prior: timedelta | None
    estimate: timedelta


def duration_stats(
    samples: Mapping[str, Sequence[timedelta]],
    prior: Mapping[str, timedelta],
    prior_weight: int = DEFAULT_PRIOR_WEIGHT,
) -> dict[str, DurationStats]:
    """Per-service duration statistics with shrinkage toward a prior.

    For every service in ``samples`` or ``prior``: with ``n`` samples whose mean (after
    clipping samples above 3 times the median) is ``m``, the estimate is
    ``(prior_weight·prior + n·m) / (prior_weight + n)``; with no samples it is the prior, with
    no prior it is ``m``. The mean, not the median, is used because waits add durations up.
    Raises ``ValueError`` for a negative sample or prior weight, or a non-positive prior.
    """
    if prior_weight < 0:
        raise ValueError("prior_weight must not be negative")
    result: dict[str, DurationStats] = {}
    for service_id in sorted(set(samples) | set(prior)):
        values = [s.total_seconds() for s in samples.get(service_id, ())]
        if any(v < 0 for v in values):
            raise ValueError(f"service {service_id}: negative duration sample")
        base = prior.get(service_id)
        if base is not None and base <= timedelta(0):
            raise ValueError(f"service {service_id}: prior must be positive")
        if not values:
            if base is None:
                continue
            result[service_id] = DurationStats(service_id, 0, None, None, base, base)
            continue
        median = statistics.median(values)
        cap = median * _WINSOR_FACTOR
        mean = statistics.fmean(min(v, cap) for v in values)
        n = len(values)
        if base is None or prior_weight == 0:
            estimate = mean
        else:
            estimate = (prior_weight * base.total_seconds() + n * mean) / (prior_weight + n)
        result[service_id] = DurationStats(
            service_id=service_id,
            count=n,
            mean=timedelta(seconds=mean),
            median=timedelta(seconds=median),
            prior=base,
            estimate=timedelta(seconds=estimate),
        )
    return result


def observed_durations(
    samples: Mapping[str, Sequence[timedelta]],
    prior: Mapping[str, timedelta],
    prior_weight: int = DEFAULT_PRIOR_WEIGHT,
) -> dict[str, timedelta]:
    """Expected duration per service: :func:`duration_stats` estimates only."""
    return {key: stats.estimate for key, stats in duration_stats(samples, prior, prior_weight).items()}


def estimate_waits(
    state: QueueState,
    now: datetime,
    policy: QueuePolicy,
    durations: Mapping[str, timedelta],
) -> dict[str, timedelta | None]:
    """Estimated remaining wait (from ``now`` until called) for every waiting ticket.

    Deterministic forward simulation of the snapshot, assuming no new arrivals:

    - each on-desk counsellor is free at ``max(now, busy_until)``;
    - on reaching a commitment (or ``appointment_early`` before a checked-in appointment that
      starts with it) the counsellor serves it for its booked length, starting late if they
      are late — lateness propagates;
    - otherwise they take the ticket :func:`~orchestrator.scheduling.queue.next_work` would give
      them at that simulated moment (same ranking and hard constraints, gap fit judged with
      the services' ``expected_duration`` as the live policy does); the ticket keeps them busy
      for ``durations[service]`` (default: ``expected_duration``);
    - with nothing to take, they wait for their next commitment or for a blocked ticket to
      unblock (recall interval, reservation), whichever comes first.

    The estimate is ``assigned start - now`` (never negative). It is None for a ticket no
    on-desk counsellor can ever serve in this snapshot (hence for all tickets when nobody is
    on desk) and for tickets already called ``max_calls_before_no_show`` times. Keys are all
    ticket ids of ``state``.
    """
    now = require_utc(now)
    result: dict[str, timedelta | None] = {t.id: None for t in state.tickets}
    book = Book(state, policy)
    desks: list[DeskCounsellor] = sorted((c for c in state.counsellors if c.on_desk), key=lambda c: c.id)
    if not desks or not book.tickets:
        return result
    serve_for = [durations.get(t.service_id, book.expected[i]) for i, t in enumerate(book.tickets)]
    booked = {(a.counsellor_id, a.starts_at): a for a in state.appointments}
    claims: list[list[Interval]] = [[c for c in d.commitments if c.end > now] for d in desks]
    cursor = [0] * len(desks)
    caches: list[dict[int, SkipReason | None]] = [{} for _ in desks]
    heap: list[tuple[datetime, int]] = [
        (now if d.busy_until is None else max(now, d.busy_until), k) for k, d in enumerate(desks)
    ]
    heapq.heapify(heap)
    remaining = len(book.tickets)
    shortest = min(book.expected) + policy.gap_slack
    while heap and remaining:
        moment, k = heapq.heappop(heap)
        desk = desks[k]
        gap_end: datetime | None = None
        block_start: datetime | None = None
        if cursor[k] < len(claims[k]):
            claim = claims[k][cursor[k]]
            gap_end = claim.start
            block_start = claim.start
            length = claim.duration
            appointment = booked.get((desk.id, claim.start))
            if appointment is not None:
                # A known appointment lasts as long as its service usually does, and a
                # checked-in one may start a little early.
                length = durations.get(appointment.service_id, length)
                if appointment.checked_in_at is not None:
                    block_start -= policy.appointment_early
            if moment >= block_start:
                cursor[k] += 1
                heapq.heappush(heap, (moment + length, k))
                continue
        if gap_end is not None and block_start is not None and moment + shortest > gap_end:
            # Not even the shortest service fits before the commitment, and gaps only shrink.
            heapq.heappush(heap, (block_start, k))
            continue
        cache = caches[k]

        def static(
            index: int, desk: DeskCounsellor = desk, cache: dict[int, SkipReason | None] = cache
        ) -> SkipReason | None:
            if index not in cache:
                ticket = book.tickets[index]
                cache[index] = static_block(desk, ticket, book.services[ticket.service_id], policy)
            return cache[index]

        index, _tier, wake = book.choose(desk, moment, gap_end, static=static, skips=None)
        if index is not None:
            book.discard(index)
            remaining -= 1
            result[book.tickets[index].id] = moment - now
            heapq.heappush(heap, (moment + serve_for[index], k))
            continue
        candidates = [m for m in (block_start, wake) if m is not None and m > moment]
        if candidates:
            heapq.heappush(heap, (min(candidates), k))
        # else: nothing this counsellor can ever take; they leave the simulation.
    return result


def _zms_priority(priority: int) -> int:
    # ZMS: 1 highest, 3 default for walk-ins.
    return {Priority.URGENT: 1, Priority.PRIORITY: 2}.get(Priority(priority), 3)


def zms_baseline(
    state: QueueState,
    now: datetime,
    durations: Mapping[str, timedelta],
) -> dict[str, timedelta]:
    """Munich ZMS's pessimistic wait estimate (``QueueList::withEstimatedWaitingTime``).

    ``slot = processingTimeAverage / workstationCount`` with ``processingTimeAverage`` the mean
    expected duration (``durations``, default ``expected_duration``) over the waiting tickets
    and ``workstationCount`` the number of on-desk counsellors (1 if none, as ZMS does).
    Walk-ins are ranked by ZMS priority (urgent, priority, normal) then arrival; every
    unserved appointment in ``state`` is merged in as ZMS does: priority-1 walk-ins first, a
    priority-2 walk-in before an appointment it arrived before, an appointment once
    ``now + 2 min + k·slot`` reaches its start, else the next walk-in. The k-th item
    (0-based) of the merged list waits ``(k + 1) · slot``. No calendars, skills or languages.
    """
    now = require_utc(now)
    if not state.tickets:
        return {}
    workstations = sum(1 for c in state.counsellors if c.on_desk) or 1
    average = sum(
        (durations.get(t.service_id, state.services[t.service_id].expected_duration) for t in state.tickets),
        timedelta(0),
    ) / len(state.tickets)
    slot = average / workstations
    walk_ins = sorted(state.tickets, key=lambda t: (_zms_priority(t.priority), *arrival_key(t)))
    appointments = sorted(state.appointments, key=lambda a: (a.starts_at, a.id))
    result: dict[str, timedelta] = {}
    current = now + _ZMS_APPOINTMENT_LEAD
    pessimistic = slot
    w = a = 0
    while True:
        if w == len(walk_ins):
            break  # appointments left after the last walk-in do not change its estimate
        ticket = walk_ins[w]
        appointment = appointments[a] if a < len(appointments) else None
        if (
            _zms_priority(ticket.priority) == 1
            or (
                appointment is not None
                and _zms_priority(ticket.priority) == 2
                and ticket.arrived_at < appointment.starts_at
            )
            or appointment is None
            or current < appointment.starts_at
        ):
            result[ticket.id] = pessimistic
            w += 1
        else:  # the appointment's time has come
            a += 1
        pessimistic += slot
        current += slot
    return result
