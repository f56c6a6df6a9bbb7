"""Simulated agency days: one scheduler over one pool of counsellors against separate silos.

A discrete-event simulation, seeded and reproducible: every random draw of a day (arrivals per
channel and hour, service times, lateness, no-shows, priority needs, languages) is made up front
from ``random.Random(seed)``, so both policies play exactly the same days.

- **siloed** — how agencies work today: a fixed share of the counsellors takes web and SMS
  bookings, another the walk-in desk, the rest the phone callbacks; each silo serves first come
  first served; a no-show's time is lost.
- **unified** — this scheduler: the real capacity plan (:func:`~orchestrator.scheduling.
  capacity.plan_day`, Erlang C) decides each hour what is kept for walk-ins and callbacks and
  opens the rest to booking (:func:`~orchestrator.scheduling.capacity.apply_plan`); bookings are
  placed by the real availability (:func:`~orchestrator.scheduling.availability.free_slots`),
  callbacks by :func:`~orchestrator.scheduling.callbacks.plan_callbacks`, and every free
  counsellor asks :func:`~orchestrator.scheduling.queue.next_work` what to take (priority needs
  first, the starvation guard, the gap before their next commitment); a person not there
  ``no_show_grace`` after the start releases the rest of the slot to the next walk-in.

Waits are in minutes. ``walk_in`` wait: arrival to call; ``callback``: request to call;
``booking`` lateness: scheduled start to actual start. Everything here is pure (no clock, no
I/O); ``orchestrator simulate`` prints it.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from orchestrator.scheduling.availability import ServiceSpec, SlotRequest, free_slots
from orchestrator.scheduling.callbacks import CallbackAsk, Placement, call_early, plan_callbacks
from orchestrator.scheduling.capacity import (
    BOOKING,
    CALLBACK,
    WALK_IN,
    CapacityPlan,
    Demand,
    Reservation,
    Targets,
    apply_plan,
    plan_day,
)
from orchestrator.scheduling.intervals import merge
from orchestrator.scheduling.ledger import Ledger
from orchestrator.scheduling.queue import (
    DeskCounsellor,
    QueuePolicy,
    QueueState,
    ServiceInfo,
    WaitingTicket,
    next_work,
)
from orchestrator.scheduling.rules import WorkingBlock, wall_to_utc, zone
from orchestrator.scheduling.types import Interval, Mode
from orchestrator.scheduling.waits import estimate_waits, zms_baseline

TZ = "Europe/Paris"
POLICIES = ("siloed", "unified")
_SERVICE = "visit"
_ALL_MODES = frozenset({Mode.IN_PERSON, Mode.PHONE})
SEALED = timedelta(hours=1)  # time this close can no longer be booked online (services' notice)


@dataclass(frozen=True, slots=True)
class Profile:
    """An agency to simulate: staff, hours, demand per channel and hour, and the silo split."""

    name: str
    counsellors: int
    hours: tuple[tuple[int, int], ...]  # open periods, local hours [start, end)
    walk_ins: tuple[float, ...]  # arrivals per open hour, in order
    callbacks: tuple[float, ...]
    bookings_per_day: int
    walk_in_minutes: float = 20.0
    callback_minutes: float = 12.0
    appointment_minutes: int = 30
    service_cv: float = 0.6  # lognormal service times (1.0 would be exponential-like spread)
    no_show_rate: float = 0.15
    lateness_minutes: float = 4.0  # mean, exponential; some people come early
    priority_share: float = 0.1
    english_share: float = 0.1  # people who need an English speaker
    english_speakers: float = 0.3  # share of counsellors who speak English
    callback_deadline: timedelta = timedelta(hours=2)
    priority_callback_deadline: timedelta = timedelta(minutes=30)  # priority needs: called sooner
    walk_in_target: float = 15.0  # minutes
    no_show_grace: timedelta = timedelta(minutes=10)
    # what walk-ins come for: (service, share, relative length, skill needed); lengths are scaled
    # so that their mean is ``walk_in_minutes``
    walk_in_services: tuple[tuple[str, float, float, str | None], ...] = (
        ("info", 0.4, 10.0, None),
        ("registration", 0.35, 20.0, "registration"),
        ("coaching", 0.25, 35.0, "coaching"),
    )
    coaching_share: float = 0.5  # counsellors who can coach (all can register)
    part_time_share: float = 0.0  # counsellors who work the first open period only
    sms_bookings_per_day: int = 0  # texted during the day for a slot later the same day
    gap_slack: timedelta = timedelta(
        minutes=2
    )  # the queue policy's margin before an appointment (its default)

    def open_hours(self) -> list[int]:
        return [h for start, end in self.hours for h in range(start, end)]

    def service_minutes(self) -> dict[str, float]:
        """Each walk-in service's mean length, scaled to a weighted mean of ``walk_in_minutes``."""
        mean = sum(share * length for _, share, length, _ in self.walk_in_services)
        return {name: length * self.walk_in_minutes / mean for name, _, length, _ in self.walk_in_services}

    def silos(self) -> tuple[int, int, int]:
        """(booking, walk-in, callback) counsellors when siloed: each channel's share of the
        staff in proportion to its load (largest remainders, at least one each) — the split a
        manager would make from the same numbers, not a straw man."""
        hours = len(self.open_hours())
        loads = (
            (self.bookings_per_day + self.sms_bookings_per_day)
            * (1 - self.no_show_rate)
            * self.appointment_minutes
            / 60
            / hours,
            sum(self.walk_ins) * self.walk_in_minutes / 60 / hours,
            sum(self.callbacks) * self.callback_minutes / 60 / hours,
        )
        spare = self.counsellors - 3
        exact = [spare * load / sum(loads) for load in loads]
        split = [1 + math.floor(x) for x in exact]
        for i in sorted(range(3), key=lambda i: -(exact[i] - math.floor(exact[i])))[
            : self.counsellors - sum(split)
        ]:
            split[i] += 1
        return split[0], split[1], split[2]


PROFILES: dict[str, Profile] = {
    "small_rural": Profile(
        name="small_rural",
        counsellors=4,
        hours=((9, 12), (13, 16)),
        walk_ins=(4, 3, 2, 3, 2, 2),
        callbacks=(2, 1.5, 1, 1.5, 1, 1),
        bookings_per_day=14,
        sms_bookings_per_day=4,
    ),
    "large_urban": Profile(
        name="large_urban",
        counsellors=20,
        hours=((9, 12), (13, 17)),
        walk_ins=(30, 26, 20, 22, 20, 16, 12),
        callbacks=(10, 9, 8, 9, 8, 7, 6),
        bookings_per_day=120,
        sms_bookings_per_day=20,
    ),
    "walk_in_heavy": Profile(
        name="walk_in_heavy",
        counsellors=8,
        hours=((9, 12), (13, 16)),
        walk_ins=(14, 12, 9, 10, 8, 6),
        callbacks=(3, 2, 2, 2, 2, 1),
        bookings_per_day=16,
        sms_bookings_per_day=6,
    ),
}


# --- one day's draws ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    channel: str  # walk_in, callback, booking
    at: datetime  # arrival / request / wished start
    minutes: float  # service time
    priority: bool
    language: str | None
    late: float = 0.0  # bookings: minutes after the start the person arrives (negative: early)
    shows: bool = True
    service: str = "visit"  # walk-ins: what they come for (skills)
    by_sms: bool = False  # a booking texted during the day


def draw_day(profile: Profile, day: date, rng: random.Random) -> list[Person]:
    """Everyone who comes on ``day`` (both policies play this same list)."""
    people: list[Person] = []
    hours = profile.open_hours()
    for index, hour in enumerate(hours):
        start = wall_to_utc(day, time(hour), TZ)
        for channel, rates, mean in (
            (WALK_IN, profile.walk_ins, profile.walk_in_minutes),
            (CALLBACK, profile.callbacks, profile.callback_minutes),
        ):
            moment = 0.0
            while True:
                moment += rng.expovariate(rates[index] / 60.0) if rates[index] > 0 else math.inf
                if moment >= 60:
                    break
                at = start + timedelta(minutes=moment)
                if channel == WALK_IN:
                    service = rng.choices(
                        [name for name, *_ in profile.walk_in_services],
                        weights=[share for _, share, *_ in profile.walk_in_services],
                    )[0]
                    person = _person(profile, rng, channel, at, profile.service_minutes()[service])
                    people.append(replace(person, service=service))
                else:
                    people.append(_person(profile, rng, channel, at, mean))
    for _ in range(profile.bookings_per_day):
        hour = rng.choice(hours)
        wished = wall_to_utc(day, time(hour, rng.choice((0, 30))), TZ)
        person = _person(profile, rng, "booking", wished, profile.appointment_minutes * 0.8)
        late = rng.expovariate(1 / profile.lateness_minutes) - 2.0
        people.append(replace(person, late=late, shows=rng.random() >= profile.no_show_rate))
    opening, closing = wall_to_utc(day, time(hours[0]), TZ), wall_to_utc(day, time(hours[-1]), TZ)
    for _ in range(profile.sms_bookings_per_day):  # texted between opening and the last hour
        texted = opening + (closing - opening) * rng.random()
        person = _person(profile, rng, "booking", texted, profile.appointment_minutes * 0.8)
        late = rng.expovariate(1 / profile.lateness_minutes) - 2.0
        shows = rng.random() >= profile.no_show_rate
        people.append(replace(person, late=late, shows=shows, by_sms=True))
    people.sort(key=lambda p: (p.at, p.id))
    return people


def _person(profile: Profile, rng: random.Random, channel: str, at: datetime, mean: float) -> Person:
    sigma2 = math.log(1 + profile.service_cv**2)
    minutes = rng.lognormvariate(math.log(mean) - sigma2 / 2, math.sqrt(sigma2))
    return Person(
        id=f"{channel}-{rng.getrandbits(48):012x}",
        channel=channel,
        at=at,
        minutes=max(2.0, minutes),
        priority=rng.random() < profile.priority_share,
        language="en" if rng.random() < profile.english_share else None,
    )


# --- results ------------------------------------------------------------------------------------


@dataclass
class Served:
    person: Person
    started: datetime | None  # None: never served that day
    counsellor: str | None = None
    on_time: bool = True  # callbacks: ended before the deadline; bookings: got a slot


@dataclass
class DayLog:
    served: list[Served] = field(default_factory=list)
    # walk-ins (unified): (actual wait, our estimate, ZMS's estimate) in minutes, at arrival
    estimates: list[tuple[float, float, float]] = field(default_factory=list)
    busy_minutes: float = 0.0
    working_minutes: float = 0.0


def _working(
    periods: Sequence[tuple[int, int]], day: date, modes: frozenset[Mode], quota: str | None = None
) -> list[WorkingBlock]:
    return [
        WorkingBlock(Interval(wall_to_utc(day, time(a), TZ), wall_to_utc(day, time(b), TZ)), modes, quota)
        for a, b in periods
    ]


def _languages(profile: Profile, index: int) -> frozenset[str]:
    english = index < round(profile.counsellors * profile.english_speakers)
    return frozenset({"fr", "en"} if english else {"fr"})


# --- the engine ---------------------------------------------------------------------------------


@dataclass
class _Desk:
    id: str
    languages: frozenset[str]
    skills: frozenset[str]
    serves: frozenset[str]  # channels this counsellor takes
    free_at: datetime
    periods: tuple[tuple[int, int], ...]  # when they work (local hours)
    off_at: datetime  # the end of their day: no new work after it
    appointments: list[tuple[datetime, datetime, Person]] = field(default_factory=list)
    calls: list[tuple[datetime, Person]] = field(default_factory=list)  # placed callbacks


class _Day:
    """One policy playing one day: an event loop over arrivals, check-ins and finishes."""

    def __init__(self, profile: Profile, day: date, people: Sequence[Person], policy: str) -> None:
        self.profile, self.day, self.policy = profile, day, policy
        self.log = DayLog()
        self.events: list[tuple[datetime, int, str, Any]] = []
        self.seq = 0
        self.waiting: list[Person] = []  # walk-ins
        self.pending_calls: list[Person] = []  # callbacks not yet served
        self.close = wall_to_utc(day, time(profile.hours[-1][1]), TZ)
        self.desks = self._desks()
        self.people = people
        self.queue_policy = QueuePolicy(
            default_target_wait=timedelta(minutes=profile.walk_in_target * 2), gap_slack=profile.gap_slack
        )
        lengths = profile.service_minutes()
        self.services = {
            name: ServiceInfo(name, skill, timedelta(minutes=lengths[name]))
            for name, _, _, skill in profile.walk_in_services
        }
        self.placed: dict[str, tuple[str, datetime]] = {}
        self.pending_estimates: dict[str, tuple[float, float]] = {}
        self.next_replan = datetime.min.replace(tzinfo=UTC)
        self.reservations: tuple[Reservation, ...] = ()
        self.spec = ServiceSpec(
            _SERVICE,
            timedelta(minutes=profile.appointment_minutes),
            _ALL_MODES,
            None,
            timedelta(0),
            timedelta(days=60),
            timedelta(0),
            timedelta(0),
        )

    def _desks(self) -> list[_Desk]:
        p = self.profile
        opening = wall_to_utc(self.day, time(p.hours[0][0]), TZ)
        desks = []
        booking, walk_in, callback = p.silos()
        split = [BOOKING] * booking + [WALK_IN] * walk_in + [CALLBACK] * callback
        for i in range(p.counsellors):
            serves = (
                frozenset({split[i]}) if self.policy == "siloed" else frozenset({BOOKING, WALK_IN, CALLBACK})
            )
            coach = math.floor((i + 1) * p.coaching_share) > math.floor(i * p.coaching_share)
            skills = frozenset({"registration", "coaching"} if coach else {"registration"})
            part_time = math.floor((p.counsellors - i) * p.part_time_share) > math.floor(
                (p.counsellors - i - 1) * p.part_time_share
            )
            periods = p.hours[:1] if part_time and len(p.hours) > 1 else p.hours
            off_at = wall_to_utc(self.day, time(periods[-1][1]), TZ)
            desks.append(_Desk(f"c{i:02d}", _languages(p, i), skills, serves, opening, periods, off_at))
        return desks

    def deadline(self, person: Person) -> timedelta:
        p = self.profile
        return p.priority_callback_deadline if person.priority else p.callback_deadline

    def push(self, at: datetime, kind: str, payload: Any) -> None:
        self.seq += 1
        heapq.heappush(self.events, (at, self.seq, kind, payload))

    # -- bookings, made ahead ------------------------------------------------------------------

    def book(self) -> None:
        """Web bookings, made ahead: placed the week before, in the order they were asked."""
        desks = [d for d in self.desks if BOOKING in d.serves]
        if self.policy == "unified":
            self.reservations = self.plan([self._ledger(d) for d in desks]).reservations
        ahead = wall_to_utc(self.day, time(0), TZ) - timedelta(days=7)
        for person in (x for x in self.people if x.channel == BOOKING and not x.by_sms):
            self.place(person, ahead, person.at)

    def place(self, person: Person, now: datetime, earliest: datetime) -> None:
        """Book ``person`` at the first free slot from ``earliest`` on (the real ``free_slots``
        on the booking counsellors' ledgers, with the plan's reservations when unified)."""
        p = self.profile
        desks = [d for d in self.desks if BOOKING in d.serves]
        ledgers = [apply_plan(self._ledger(d, now), self.reservations) for d in desks]
        request = SlotRequest(language=person.language, limit=1)
        slots = free_slots(self.spec, ledgers, Interval(earliest, self.close), now, request, tz=TZ)
        if not slots:
            self.log.served.append(Served(person, None, on_time=False))
            return
        slot = slots[0]
        desk = next(d for d in desks if d.id == slot.counsellor_id)
        desk.appointments.append((slot.start, slot.end, person))
        desk.appointments.sort(key=lambda a: a[0])
        if person.shows:
            self.push(slot.start + timedelta(minutes=person.late), "check_in", (desk.id, slot.start))
        else:  # booked, never came
            self.log.served.append(Served(person, None, desk.id, on_time=True))
        grace = p.no_show_grace if self.policy == "unified" else timedelta(0)
        self.push(slot.start + grace, "due", desk.id)

    def plan(self, ledgers: list[Ledger]) -> CapacityPlan:
        p = self.profile
        hours = p.open_hours()
        booked = (p.bookings_per_day + p.sms_bookings_per_day) / len(hours)
        demand = [
            Demand(channel, hour, rates[i], minutes, "the profile's rates")
            for i, hour in enumerate(hours)
            for channel, rates, minutes in (
                (WALK_IN, p.walk_ins, p.walk_in_minutes),
                (CALLBACK, p.callbacks, p.callback_minutes),
                (BOOKING, [booked] * len(hours), float(p.appointment_minutes)),
            )
        ]
        now = wall_to_utc(self.day, time(0), TZ) - timedelta(days=7)
        return plan_day(
            ledgers, self.day, TZ, demand, now=now, targets=Targets(walk_in_wait_minutes=p.walk_in_target)
        )

    def _ledger(self, desk: _Desk, now: datetime | None = None) -> Ledger:
        serving = [Interval(now, desk.free_at)] if now is not None and desk.free_at > now else []
        return Ledger.of(
            desk.id,
            languages=desk.languages,
            modes=_ALL_MODES,
            working=_working(desk.periods, self.day, _ALL_MODES),
            booked=merge(
                [Interval(s, e) for s, e, _ in desk.appointments]
                + [Interval(s, s + timedelta(minutes=x.minutes)) for s, x in desk.calls]
            ),
            serving=serving,
        )

    # -- the day -------------------------------------------------------------------------------

    def run(self) -> DayLog:
        self.book()
        for person in self.people:
            if person.channel != BOOKING:
                self.push(person.at, person.channel, person)
            elif person.by_sms:
                self.push(person.at, "sms_booking", person)
        self.log.working_minutes = sum(b - a for d in self.desks for a, b in d.periods) * 60.0
        arrived: set[tuple[str, datetime]] = set()
        while self.events:
            now, _, kind, payload = heapq.heappop(self.events)
            if kind == WALK_IN:
                self.waiting.append(payload)
                if self.policy == "unified":
                    self.estimate(payload, now)
            elif kind == CALLBACK:
                self.pending_calls.append(payload)
                if self.policy == "unified":
                    self.place_calls(now)
            elif kind == "check_in":
                arrived.add(payload)
            elif kind == "sms_booking":  # a slot at least half an hour ahead, the same day
                self.place(payload, now, now + timedelta(minutes=30))
            elif kind == "replan" and self.pending_calls:
                self.place_calls(now)
            if self.policy == "unified" and self.pending_calls and self.next_replan <= now < self.close:
                self.next_replan = now + timedelta(minutes=1)
                self.push(self.next_replan, "replan", None)
            self.dispatch(now, arrived)
        for person in self.waiting + self.pending_calls:
            self.log.served.append(Served(person, None, on_time=False))
        return self.log

    def estimate(self, person: Person, now: datetime) -> None:
        """Both wait estimators on the queue as it stands when ``person`` arrives (the real
        ``estimate_waits`` against Munich ZMS's formula); compared with the wait once served."""
        state = self.queue_state(now, [self.desk_view(d, now) for d in self.desks])
        durations = {name: info.expected_duration for name, info in self.services.items()}
        ours = estimate_waits(state, now, self.queue_policy, durations).get(person.id)
        zms = zms_baseline(state, now, durations).get(person.id)
        if ours is not None and zms is not None:
            self.pending_estimates[person.id] = (_minutes(ours), _minutes(zms))

    def desk_view(self, desk: _Desk, now: datetime) -> DeskCounsellor:
        commitments = [
            Interval(s, e) for s, e, _ in desk.appointments if e > now and not self.released(desk, s, now)
        ] + [Interval(s, s + timedelta(minutes=x.minutes)) for s, x in desk.calls]
        if desk.off_at < self.close:  # a part-timer's afternoon: nothing may run into it
            commitments.append(Interval(desk.off_at, self.close + timedelta(hours=1)))
        return DeskCounsellor(
            desk.id,
            skills=desk.skills,
            languages=desk.languages,
            modes=_ALL_MODES,
            commitments=tuple(merge(commitments)),
            busy_until=desk.free_at if desk.free_at > now else None,
        )

    def queue_state(self, now: datetime, counsellors: list[DeskCounsellor]) -> QueueState:
        return QueueState(
            tickets=tuple(
                WaitingTicket(
                    p.id, p.id, p.service, p.at, priority=int(p.priority), language=p.language, seq=i
                )
                for i, p in enumerate(self.waiting)
            ),
            appointments=(),
            services=self.services,
            counsellors=tuple(counsellors),
        )

    def dispatch(self, now: datetime, arrived: set[tuple[str, datetime]]) -> None:
        for desk in self.desks:
            if desk.free_at > now:
                continue
            job = self.choose(desk, now, arrived)
            if job is None:
                continue
            person, minutes, scheduled = job
            start = now
            end = start + timedelta(minutes=minutes)
            desk.free_at = end
            self.log.busy_minutes += minutes
            if scheduled is not None:  # a booking: its wait is its lateness after the booked start
                person = replace(person, at=scheduled)
            on_time = person.channel != CALLBACK or end <= person.at + self.deadline(person)
            self.log.served.append(Served(person, start, desk.id, on_time))
            if person.id in self.pending_estimates:
                ours, zms = self.pending_estimates.pop(person.id)
                self.log.estimates.append((_minutes(start - person.at), ours, zms))
            self.push(end, "finish", desk.id)

    def choose(
        self, desk: _Desk, now: datetime, arrived: set[tuple[str, datetime]]
    ) -> tuple[Person, float, datetime | None] | None:
        if desk.off_at < self.close <= now or desk.off_at <= now < self.close:
            return None  # a part-timer's day is over (at closing, everyone finishes the queue)
        # 1. their own appointment, once the person is there
        for start, end, person in desk.appointments:
            if (desk.id, start) in arrived and start - timedelta(minutes=5) <= now < end:
                desk.appointments.remove((start, end, person))
                arrived.discard((desk.id, start))
                return person, person.minutes, start
        # 2. a callback placed for them (unified) or the phone team's first in line (siloed)
        if CALLBACK in desk.serves:
            call = self.take_call(desk, now)
            if call is not None:
                return call, call.minutes, None
        if WALK_IN not in desk.serves:
            return None
        # 3. a walk-in: the real queue policy (unified) or first come first served (siloed)
        ticket = self.take_walk_in(desk, now)
        if ticket is not None:
            return ticket, ticket.minutes, None
        # 4. unified, nothing else to do: a waiting callback now (the real ``call_early``)
        early = self.call_early(desk, now) if self.policy == "unified" else None
        return (early, early.minutes, None) if early is not None else None

    def take_call(self, desk: _Desk, now: datetime) -> Person | None:
        if self.policy == "siloed":
            if self.pending_calls and self.appointment_gap(desk, now) is None:
                return self.pending_calls.pop(0)
            return None
        for start, person in sorted(desk.calls, key=lambda c: c[0]):
            if start <= now:
                desk.calls.remove((start, person))
                self.pending_calls.remove(person)
                return person
        return None

    def appointment_gap(self, desk: _Desk, now: datetime) -> datetime | None:
        """The start of the counsellor's next appointment still to come (None: none)."""
        upcoming = [s for s, e, _ in desk.appointments if e > now and not self.released(desk, s, now)]
        return min(upcoming, default=None)

    def released(self, desk: _Desk, start: datetime, now: datetime) -> bool:
        return self.policy == "unified" and now >= start + self.profile.no_show_grace

    def take_walk_in(self, desk: _Desk, now: datetime) -> Person | None:
        if not self.waiting:
            return None
        if self.policy == "siloed":
            for person in self.waiting:  # first come first served, among those they can serve
                skill = self.services[person.service].skill
                if (person.language is None or person.language in desk.languages) and (
                    skill is None or skill in desk.skills
                ):
                    self.waiting.remove(person)
                    return person
            return None
        counsellor = replace(self.desk_view(desk, now), busy_until=None)
        by_id = {p.id: p for p in self.waiting}
        state = self.queue_state(now, [counsellor])
        decision = next_work(counsellor, now, state, self.queue_policy)
        if decision is None:
            return None
        person = by_id[decision.item_id]
        self.waiting.remove(person)
        return person

    def call_early(self, desk: _Desk, now: datetime) -> Person | None:
        if not self.pending_calls:
            return None
        pick = call_early(
            self.asks(),
            skills=desk.skills,
            languages=desk.languages,
            now=now,
            free_until=self.desk_view(desk, now).next_commitment(now),
        )
        if pick is None:
            return None
        person = next(p for p in self.pending_calls if p.id == pick.id)
        self.pending_calls.remove(person)
        self.placed.pop(person.id, None)
        for other in self.desks:
            other.calls = [(start, x) for start, x in other.calls if x.id != person.id]
        return person

    def asks(self) -> list[CallbackAsk]:
        return [
            CallbackAsk(
                person.id,
                person.at,
                min(person.at + self.deadline(person), self.close),
                timedelta(minutes=math.ceil(person.minutes)),
                language=person.language,
                priority=int(person.priority),
                current=self.placed.get(person.id),
            )
            for person in self.pending_calls
        ]

    def place_calls(self, now: datetime) -> None:
        """Re-plan the callbacks not yet called (the real ``plan_callbacks``), keeping places."""
        asks = self.asks()
        for desk in self.desks:
            desk.calls = []
        ledgers = [self._ledger(d, now) for d in self.desks]
        by_id = {p.id: p for p in self.pending_calls}
        desks = {d.id: d for d in self.desks}
        for plan in plan_callbacks(asks, ledgers, now, lead=timedelta(0), sealed=SEALED):
            if isinstance(plan, Placement):
                self.placed[plan.request_id] = (plan.counsellor_id, plan.start)
                desks[plan.counsellor_id].calls.append((plan.start, by_id[plan.request_id]))
                self.push(plan.start, "call_due", plan.request_id)


# --- many days, both policies, the report -------------------------------------------------------


def simulate(
    profile: Profile,
    *,
    days: int = 5,
    seed: int = 1,
    start: date = date(2026, 3, 2),
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Both policies on the same ``days`` working days (Monday to Friday from ``start``);
    the report ``orchestrator simulate`` prints (see the README for its keys)."""
    rng = random.Random(seed)  # noqa: S311 (a simulation, not a secret)
    logs: dict[str, list[DayLog]] = {policy: [] for policy in POLICIES}
    day, done = start, 0
    while done < days:
        if day.weekday() < 5:
            people = draw_day(profile, day, rng)
            for policy in POLICIES:
                logs[policy].append(_Day(profile, day, people, policy).run())
            done += 1
            if progress is not None:
                progress(done, days)
        day += timedelta(days=1)
    report = {policy: summarise(profile, logs[policy]) for policy in POLICIES}
    siloed = report["siloed"]["p90_wait_minutes_walkin_callback"]
    unified = report["unified"]["p90_wait_minutes_walkin_callback"]
    gain = None if not siloed else round(100 * (siloed - unified) / siloed, 1)
    return {"profile": profile.name, "days": days, "seed": seed, "policies": report, "p90_gain_percent": gain}


def summarise(profile: Profile, logs: Sequence[DayLog]) -> dict[str, Any]:
    served = [s for log in logs for s in log.served]

    def waits(channel: str, *, priority: bool | None = None) -> list[float]:
        return [
            _minutes(s.started - s.person.at)
            for s in served
            if s.person.channel == channel
            and s.started is not None
            and (priority is None or s.person.priority == priority)
        ]

    walk, call, booked = waits(WALK_IN), waits(CALLBACK), waits(BOOKING)
    both = walk + call
    priority = waits(WALK_IN, priority=True) + waits(CALLBACK, priority=True)
    others = waits(WALK_IN, priority=False) + waits(CALLBACK, priority=False)
    calls = [s for s in served if s.person.channel == CALLBACK]
    bookings = [s for s in served if s.person.channel == BOOKING]
    # everyone who came for a service (a booked no-show did not)
    everyone = [s for s in served if s.person.shows or s.person.channel != BOOKING]
    busy = sum(log.busy_minutes for log in logs)
    estimates = [e for log in logs for e in log.estimates]
    working = sum(log.working_minutes for log in logs)
    by_hour: dict[int, list[float]] = {}
    for item in served:
        if item.person.channel != BOOKING and item.started is not None:
            hour = item.person.at.astimezone(zone(TZ)).hour
            by_hour.setdefault(hour, []).append(_minutes(item.started - item.person.at))
    return {
        "walk_in": _stats(walk, profile.walk_in_target),
        "callback": {
            **_stats(call, None),
            "within_deadline": _share(s.started is not None and s.on_time for s in calls),
        },
        "booking": {
            "mean_lateness_minutes": _round(_mean(booked)),
            "p90_lateness_minutes": _round(_p90(booked)),
            "booked": _share(s.on_time for s in bookings),
        },
        "priority": {
            "p90_wait_minutes": _round(_p90(priority)),
            "others_p90_wait_minutes": _round(_p90(others)),
        },
        "p90_wait_minutes_walkin_callback": _round(_p90(both)),
        "mean_wait_minutes_walkin_callback": _round(_mean(both)),
        "served_in_preferred_mode": _share(s.started is not None for s in everyone),
        "utilisation": _round(busy / working if working else 0.0, 3),
        "idle_hours": _round((working - busy) / 60.0),
        "wait_estimate_error_minutes": {
            "ours_mean_abs": _round(_mean([abs(a - o) for a, o, _ in estimates])) if estimates else None,
            "zms_mean_abs": _round(_mean([abs(a - z) for a, _, z in estimates])) if estimates else None,
        },
        "mean_wait_by_hour_walkin_callback": {str(h): _round(_mean(v)) for h, v in sorted(by_hour.items())},
    }


def _stats(values: list[float], target: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "served": len(values),
        "mean_wait_minutes": _round(_mean(values)),
        "p90_wait_minutes": _round(_p90(values)),
    }
    if target is not None:
        out["within_target"] = _share(v <= target for v in values)
    return out


def _share(flags: Any) -> float:
    values = list(flags)
    return round(sum(1 for v in values if v) / len(values), 3) if values else 1.0


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60.0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _p90(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def _round(value: float, digits: int = 1) -> float:
    return round(value, digits)


# --- theory check ---------------------------------------------------------------------------


def fcfs_mean_wait(
    arrival_rate: float, service_minutes: float, servers: int, *, customers: int, seed: int
) -> float:
    """Mean wait (minutes) of ``customers`` Poisson arrivals served first come first served by
    ``servers`` counsellors with exponential service: the siloed engine's rule, for the
    Erlang C check (:func:`~orchestrator.scheduling.erlang.mean_wait`)."""
    rng = random.Random(seed)  # noqa: S311 (a simulation, not a secret)
    free = [0.0] * servers
    heapq.heapify(free)
    clock, total = 0.0, 0.0
    warmup = customers // 10
    for n in range(customers + warmup):
        clock += rng.expovariate(arrival_rate / 60.0)
        earliest = heapq.heappop(free)
        start = max(clock, earliest)
        if n >= warmup:
            total += start - clock
        heapq.heappush(free, start + rng.expovariate(1.0 / service_minutes))
    return total / customers


__all__ = ["PROFILES", "Profile", "draw_day", "fcfs_mean_wait", "simulate"]
