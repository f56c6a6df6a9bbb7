"""Seeded, event-driven simulation of one agency morning that runs the real queue policy.

Used by tests and benchmarks to measure what the policy does (walk-in waits, appointment
lateness, counsellor idle time) and how accurate the wait estimates are, ours
(:func:`~orchestrator.scheduling.waits.estimate_waits`) against Munich ZMS's formula
(:func:`~orchestrator.scheduling.waits.zms_baseline`). Deterministic per seed: all randomness
comes from one ``random.Random(seed)`` and is drawn up front, before the day is played.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum

from orchestrator.scheduling.ledger import Ledger
from orchestrator.scheduling.queue import (
    DeskCounsellor,
    DueAppointment,
    Priority,
    QueuePolicy,
    QueueState,
    ServiceInfo,
    WaitingTicket,
    WorkKind,
    next_work,
)
from orchestrator.scheduling.types import Interval
from orchestrator.scheduling.waits import estimate_waits, observed_durations, zms_baseline

__all__ = ["SERVICES", "DayResult", "SimConfig", "TicketOutcome", "simulate_day"]

_MINUTE = timedelta(minutes=1)

SERVICES: tuple[ServiceInfo, ...] = (
    ServiceInfo("info", None, timedelta(minutes=8), timedelta(minutes=20)),
    ServiceInfo("register", "registration", timedelta(minutes=15), timedelta(minutes=30)),
    ServiceInfo("benefits", "benefits", timedelta(minutes=20), timedelta(minutes=30)),
    ServiceInfo("coaching", "coaching", timedelta(minutes=25), timedelta(minutes=45)),
)
_SKILL_SERVICE = {"registration": "register", "benefits": "benefits", "coaching": "coaching"}
_SKILLS = ("registration", "benefits", "coaching")
_WALK_IN_MIX = (("info", 0.35), ("register", 0.25), ("benefits", 0.25), ("coaching", 0.15))
_EXTRA_LANGUAGES = (("en", 0.5), ("ar", 0.25), ("es", 0.15))
_TICKET_LANGUAGES: tuple[tuple[str | None, float], ...] = (
    (None, 0.80),
    ("en", 0.12),
    ("ar", 0.05),
    ("es", 0.03),
)
# Relative walk-in arrival rate per hour of opening (busier early in the morning).
_HOURLY_PROFILE = (1.3, 1.2, 0.9, 0.6)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Shape of the simulated morning. Defaults: 8 counsellors, 08:00-12:00 UTC, half booked."""

    start: datetime = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    opening: timedelta = timedelta(hours=4)
    counsellors: int = 8
    appointment_share: float = 0.5
    appointment_length: timedelta = timedelta(minutes=30)
    walk_ins_per_hour: float = 13.0
    urgent_share: float = 0.03
    priority_share: float = 0.10
    no_show_rate: float = 0.12
    duration_cv: float = 0.5
    no_show_grace: timedelta = timedelta(minutes=10)
    prior_weight: int = 5


@dataclass(frozen=True, slots=True)
class TicketOutcome:
    """One walk-in: actual wait and the two estimates made when it arrived."""

    ticket_id: str
    service_id: str
    priority: int
    arrived_at: datetime
    waited: timedelta | None
    estimate: timedelta | None
    zms: timedelta | None


@dataclass(frozen=True, slots=True)
class DayResult:
    """Outcome of :func:`simulate_day`. Times in minutes unless typed as ``timedelta``.

    Estimate errors cover walk-ins that were served and got an estimate. ``under_10_*`` is
    the share of those whose wait was under-predicted by more than 10 minutes.
    """

    seed: int
    walk_ins: int
    walk_ins_served: int
    appointments: int
    no_shows: int
    mae_ours: float
    mae_zms: float
    p90_error_ours: float
    p90_error_zms: float
    under_10_ours: float
    under_10_zms: float
    walk_in_mean_wait: float
    walk_in_p90_wait: float
    appointment_mean_lateness: float
    appointment_p90_lateness: float
    idle: float
    overtime: float
    outcomes: tuple[TicketOutcome, ...] = field(repr=False)


class _Event(IntEnum):
    # Order of processing at equal times: free counsellors first, arrivals last.
    FINISH = 0
    RELEASE = 1
    CHECK_IN = 2
    DUE = 3
    ARRIVAL = 4


@dataclass(slots=True)
class _Appointment:
    booking: DueAppointment
    shows_at: datetime | None  # None: no-show
    actual: timedelta
    checked_in: bool = False
    released: bool = False
    started_at: datetime | None = None


@dataclass(slots=True)
class _Walk:
    ticket: WaitingTicket
    actual: timedelta
    estimate: timedelta | None = None
    zms: timedelta | None = None
    called_at: datetime | None = None


@dataclass(slots=True)
class _Desk:
    profile: DeskCounsellor
    busy_until: datetime | None = None  # actual end of the current item (hidden from the core)
    service_id: str | None = None
    started_at: datetime | None = None
    idle_since: datetime | None = None
    worked: list[Interval] = field(default_factory=list)


def _lognormal(rng: random.Random, mean: timedelta, cv: float) -> timedelta:
    sigma2 = math.log(1.0 + cv * cv)
    mu = math.log(mean.total_seconds()) - sigma2 / 2
    return timedelta(seconds=round(rng.lognormvariate(mu, math.sqrt(sigma2))))


def _pick(rng: random.Random, table: Sequence[tuple[str, float]]) -> str:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


def _p90(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def _make_counsellors(rng: random.Random, config: SimConfig) -> list[DeskCounsellor]:
    result: list[DeskCounsellor] = []
    for i in range(config.counsellors):
        skills = set(_SKILLS) if rng.random() < 0.3 else set(_SKILLS) - {_SKILLS[i % len(_SKILLS)]}
        languages = {"fr"} | {lang for lang, p in _EXTRA_LANGUAGES if rng.random() < p}
        if i < len(_EXTRA_LANGUAGES):  # every extra language has at least one speaker
            languages.add(_EXTRA_LANGUAGES[i][0])
        result.append(
            DeskCounsellor(
                id=f"c{i:02d}", skills=frozenset(skills), languages=frozenset(languages), desk=f"D{i}"
            )
        )
    return result


def _make_appointments(
    rng: random.Random,
    config: SimConfig,
    counsellors: Sequence[DeskCounsellor],
    services: dict[str, ServiceInfo],
) -> list[_Appointment]:
    slots = int(config.opening / config.appointment_length)
    booked = round(slots * config.appointment_share)
    result: list[_Appointment] = []
    for counsellor in counsellors:
        for slot in sorted(rng.sample(range(slots), booked)):
            starts = config.start + slot * config.appointment_length
            service_id = _SKILL_SERVICE[rng.choice(sorted(counsellor.skills))]
            shows = rng.random() >= config.no_show_rate
            offset = timedelta(minutes=rng.uniform(-15, 5))
            result.append(
                _Appointment(
                    booking=DueAppointment(
                        id=f"a{len(result):03d}",
                        counsellor_id=counsellor.id,
                        service_id=service_id,
                        starts_at=starts,
                        ends_at=starts + config.appointment_length,
                    ),
                    shows_at=starts + offset if shows else None,
                    actual=_lognormal(rng, services[service_id].expected_duration, config.duration_cv),
                )
            )
    return result


def _make_walk_ins(
    rng: random.Random,
    config: SimConfig,
    counsellors: Sequence[DeskCounsellor],
    services: dict[str, ServiceInfo],
) -> list[_Walk]:
    peak = max(_HOURLY_PROFILE) * config.walk_ins_per_hour
    end = config.start + config.opening
    moment = config.start
    result: list[_Walk] = []
    while True:  # non-homogeneous Poisson process by thinning
        moment += timedelta(hours=rng.expovariate(peak))
        if moment >= end:
            return result
        hour = min(int((moment - config.start) / timedelta(hours=1)), len(_HOURLY_PROFILE) - 1)
        accept = rng.random() < _HOURLY_PROFILE[hour] * config.walk_ins_per_hour / peak
        service_id = _pick(rng, _WALK_IN_MIX)
        language = rng.choices([k for k, _ in _TICKET_LANGUAGES], weights=[w for _, w in _TICKET_LANGUAGES])[
            0
        ]
        draw = rng.random()
        priority = (
            Priority.URGENT
            if draw < config.urgent_share
            else Priority.PRIORITY
            if draw < config.urgent_share + config.priority_share
            else Priority.NORMAL
        )
        actual = _lognormal(rng, services[service_id].expected_duration, config.duration_cv)
        if not accept:
            continue
        skill = services[service_id].skill
        if language is not None and not any(
            language in c.languages and (skill is None or skill in c.skills) for c in counsellors
        ):
            language = None  # nobody could serve it: the front desk would book an interpreter
        seq = len(result)
        result.append(
            _Walk(
                ticket=WaitingTicket(
                    id=f"t{seq:03d}",
                    number=f"W{seq + 1:03d}",
                    service_id=service_id,
                    arrived_at=moment.replace(microsecond=0),
                    priority=priority,
                    language=language,
                    seq=seq,
                ),
                actual=actual,
            )
        )


def simulate_day(seed: int, config: SimConfig | None = None, policy: QueuePolicy | None = None) -> DayResult:
    """Play one morning with ``random.Random(seed)`` and the real :func:`next_work` policy.

    Generated: ``config.counsellors`` counsellors with two or three of three skills and
    extra languages; ``appointment_share`` of their 30-minute slots booked (service among
    their skills, ``no_show_rate`` no-shows released ``no_show_grace`` after the start, the
    others checking in between 15 minutes early and 5 minutes late); walk-ins arriving as a
    Poisson process whose rate falls over the morning. Actual durations are lognormal around
    the service's expected duration (``duration_cv``). Counsellors keep serving after closing
    until the queue is empty.

    Event-driven: after every batch of simultaneous events, each idle counsellor (longest idle
    first) asks :func:`next_work` on a fresh :class:`QueueState` snapshot. ``busy_until``
    in snapshots is the expected end (start + estimated duration), never the hidden actual
    one. When a walk-in arrives, the snapshot including it is given to
    :func:`estimate_waits` (with durations observed so far shrunk toward the service means)
    and to :func:`zms_baseline`; both are compared to the actual wait at the end.
    Same seed, config and policy give the same result.
    """
    config = config or SimConfig()
    policy = policy or QueuePolicy()
    rng = random.Random(seed)  # noqa: S311, RUF100 - a seeded simulation, not security
    services = {s.id: s for s in SERVICES}
    prior = {s.id: s.expected_duration for s in SERVICES}
    profiles = _make_counsellors(rng, config)
    appointments = _make_appointments(rng, config, profiles, services)
    walks = _make_walk_ins(rng, config, profiles, services)
    close = config.start + config.opening

    desks = {p.id: _Desk(profile=p, idle_since=config.start) for p in profiles}
    by_appointment = {a.booking.id: a for a in appointments}
    by_walk = {w.ticket.id: w for w in walks}
    waiting: dict[str, WaitingTicket] = {}
    samples: dict[str, list[timedelta]] = {s.id: [] for s in SERVICES}

    events: list[tuple[datetime, int, int, str]] = []
    counter = 0

    def push(moment: datetime, kind: _Event, ref: str) -> None:
        nonlocal counter
        heapq.heappush(events, (moment, kind, counter, ref))
        counter += 1

    for appointment in appointments:
        booking = appointment.booking
        if appointment.shows_at is None:
            push(booking.starts_at + config.no_show_grace, _Event.RELEASE, booking.id)
        else:
            push(appointment.shows_at, _Event.CHECK_IN, booking.id)
        push(booking.starts_at - policy.appointment_early, _Event.DUE, booking.id)
    for walk in walks:
        push(walk.ticket.arrived_at, _Event.ARRIVAL, walk.ticket.id)

    def snapshot(now: datetime) -> tuple[QueueState, dict[str, timedelta]]:
        durations = observed_durations(samples, prior, config.prior_weight)
        pending = [a for a in appointments if a.started_at is None and not a.released]
        counsellors = []
        for desk in desks.values():
            busy_until = None
            if desk.busy_until is not None and desk.started_at is not None and desk.service_id is not None:
                busy_until = max(now, desk.started_at + durations[desk.service_id])
            ledger = Ledger.of(  # the same model of counsellor time as the live queue reads
                desk.profile.id,
                desk.profile.skills,
                desk.profile.languages,
                desk.profile.modes,
                booked=[
                    Interval(a.booking.starts_at, a.booking.ends_at)
                    for a in pending
                    if a.booking.counsellor_id == desk.profile.id
                ],
            )
            counsellors.append(
                DeskCounsellor.from_ledger(ledger, now, desk=desk.profile.desk, busy_until=busy_until)
            )
        bookings = tuple(
            DueAppointment(
                id=a.booking.id,
                counsellor_id=a.booking.counsellor_id,
                service_id=a.booking.service_id,
                starts_at=a.booking.starts_at,
                ends_at=a.booking.ends_at,
                checked_in_at=a.shows_at if a.checked_in else None,
            )
            for a in pending
        )
        state = QueueState(
            tickets=tuple(waiting.values()),
            appointments=bookings,
            services=services,
            counsellors=tuple(counsellors),
        )
        return state, durations

    def start(desk: _Desk, now: datetime, service_id: str, actual: timedelta) -> None:
        desk.busy_until = now + actual
        desk.service_id = service_id
        desk.started_at = now
        desk.idle_since = None
        if actual > timedelta(0):
            desk.worked.append(Interval(now, now + actual))
        push(now + actual, _Event.FINISH, desk.profile.id)

    def poll(now: datetime) -> None:
        assigned = True
        while assigned:
            assigned = False
            idle = sorted(
                (d for d in desks.values() if d.busy_until is None),
                key=lambda d: (d.idle_since or now, d.profile.id),
            )
            for desk in idle:
                state, _ = snapshot(now)
                me = next(c for c in state.counsellors if c.id == desk.profile.id)
                decision = next_work(me, now, state, policy)
                if decision is None:
                    continue
                if decision.kind is WorkKind.APPOINTMENT:
                    appointment = by_appointment[decision.item_id]
                    appointment.started_at = now
                    start(desk, now, appointment.booking.service_id, appointment.actual)
                else:
                    walk = by_walk[decision.item_id]
                    walk.called_at = now
                    del waiting[decision.item_id]
                    start(desk, now, walk.ticket.service_id, walk.actual)
                assigned = True

    while events:
        now = events[0][0]
        while events and events[0][0] == now:
            _, kind, _, ref = heapq.heappop(events)
            if kind == _Event.FINISH:
                desk = desks[ref]
                if desk.service_id is not None and desk.started_at is not None:
                    samples[desk.service_id].append(now - desk.started_at)
                desk.busy_until = desk.service_id = desk.started_at = None
                desk.idle_since = now
            elif kind == _Event.RELEASE:
                appointment = by_appointment[ref]
                if appointment.started_at is None:
                    appointment.released = True
            elif kind == _Event.CHECK_IN:
                by_appointment[ref].checked_in = True
            elif kind == _Event.ARRIVAL:
                walk = by_walk[ref]
                waiting[ref] = walk.ticket
                state, durations = snapshot(now)
                walk.estimate = estimate_waits(state, now, policy, durations)[ref]
                walk.zms = zms_baseline(state, now, durations)[ref]
        poll(now)

    return _summarise(seed, config, desks, appointments, walks, close)


def _summarise(
    seed: int,
    config: SimConfig,
    desks: dict[str, _Desk],
    appointments: Sequence[_Appointment],
    walks: Sequence[_Walk],
    close: datetime,
) -> DayResult:
    outcomes = tuple(
        TicketOutcome(
            ticket_id=w.ticket.id,
            service_id=w.ticket.service_id,
            priority=w.ticket.priority,
            arrived_at=w.ticket.arrived_at,
            waited=None if w.called_at is None else w.called_at - w.ticket.arrived_at,
            estimate=w.estimate,
            zms=w.zms,
        )
        for w in walks
    )
    served = [o for o in outcomes if o.waited is not None]
    waits = [_minutes(o.waited) for o in served if o.waited is not None]
    ours = [
        _minutes(o.estimate - o.waited) for o in served if o.estimate is not None and o.waited is not None
    ]
    zms = [_minutes(o.zms - o.waited) for o in served if o.zms is not None and o.waited is not None]
    # Lateness counts from the later of the booked start and the person's arrival.
    lateness = [
        max(0.0, _minutes(a.started_at - max(a.booking.starts_at, a.shows_at)))
        for a in appointments
        if a.started_at is not None and a.shows_at is not None
    ]
    idle = 0.0
    overtime = 0.0
    window = Interval(config.start, close)
    for desk in desks.values():
        busy = sum(
            (min(w.end, close) - max(w.start, config.start) for w in desk.worked if w.overlaps(window)),
            timedelta(0),
        )
        idle += _minutes(window.duration - busy)
        last = max((w.end for w in desk.worked), default=close)
        overtime += max(0.0, _minutes(last - close))
    return DayResult(
        seed=seed,
        walk_ins=len(walks),
        walk_ins_served=len(served),
        appointments=len(appointments),
        no_shows=sum(1 for a in appointments if a.shows_at is None),
        mae_ours=_mean([abs(e) for e in ours]),
        mae_zms=_mean([abs(e) for e in zms]),
        p90_error_ours=_p90([abs(e) for e in ours]),
        p90_error_zms=_p90([abs(e) for e in zms]),
        under_10_ours=_mean([1.0 if e < -10 else 0.0 for e in ours]),
        under_10_zms=_mean([1.0 if e < -10 else 0.0 for e in zms]),
        walk_in_mean_wait=_mean(waits),
        walk_in_p90_wait=_p90(waits),
        appointment_mean_lateness=_mean(lateness),
        appointment_p90_lateness=_p90(lateness),
        idle=idle,
        overtime=overtime,
        outcomes=outcomes,
    )
