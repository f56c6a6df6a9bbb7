"""Walk-in queue: what a counsellor at the desk takes next, and the display order.

The service layer loads a :class:`QueueState` snapshot, calls :func:`next_work` for the
counsellor who pressed "call next" and persists the :class:`WorkDecision`. The same
selection code drives :func:`orchestrator.scheduling.waits.estimate_waits`, so the
estimates shown to people follow exactly the policy that will call them.

Policy, in this order (see :func:`next_work` for the contract):

1. a checked-in appointment of this counsellor that is due (``starts_at - appointment_early
   <= now``), earliest first;
2. urgent tickets (priority 2);
3. starving tickets: any non-urgent ticket that has waited at least
   ``target_wait * starvation_factor`` (the service's target, or the policy default);
4. priority tickets (priority 1);
5. ordinary tickets.

Within a tier tickets go first come, first served by ``(arrived_at, seq, id)``. A ticket is
only offered to a counsellor who can serve it (hard constraints) and only if it fits in the
counsellor's gap before their next commitment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from itertools import pairwise
from types import MappingProxyType

from orchestrator.scheduling.ledger import Ledger
from orchestrator.scheduling.types import Interval, Mode, require_utc

__all__ = [
    "DeskCounsellor",
    "DueAppointment",
    "Priority",
    "QueuePolicy",
    "QueueState",
    "Reason",
    "ServiceInfo",
    "Skip",
    "SkipReason",
    "WaitingTicket",
    "WorkDecision",
    "WorkKind",
    "next_work",
    "order_queue",
]

# At most this many skipped tickets are recorded in a decision: enough to explain it.
MAX_SKIPS_RECORDED = 20


class Priority(IntEnum):
    """Ticket priority levels, set at the front desk."""

    NORMAL = 0
    PRIORITY = 1
    URGENT = 2


class WorkKind(StrEnum):
    APPOINTMENT = "appointment"
    TICKET = "ticket"
    CALLBACK = "callback"  # a phone callback placed on the counsellor's time, now due


class Reason(StrEnum):
    """Why an item was chosen: the tier it was taken from (machine-readable)."""

    APPOINTMENT_DUE = "appointment_due"
    CALLBACK_DUE = "callback_due"  # its reserved time has come: like an appointment, it goes first
    CALLBACK_EARLY = "callback_early"  # nothing else suits an idle counsellor: a waiting call, now
    URGENT = "urgent"
    STARVATION = "starvation"
    PRIORITY = "priority"
    FIFO = "fifo"


class SkipReason(StrEnum):
    """Why a ticket ahead of the chosen one was not offered to this counsellor."""

    MODE = "mode"
    SKILL = "missing_skill"
    NEEDS = "missing_need"
    LANGUAGE = "language"
    RECALL_TOO_SOON = "recall_too_soon"
    RESERVED = "reserved_for_preferred"
    GAP_TOO_SMALL = "gap_too_small"


class _Tier(IntEnum):
    URGENT = 0
    STARVATION = 1
    PRIORITY = 2
    FIFO = 3


_TIER_REASON = {
    _Tier.URGENT: Reason.URGENT,
    _Tier.STARVATION: Reason.STARVATION,
    _Tier.PRIORITY: Reason.PRIORITY,
    _Tier.FIFO: Reason.FIFO,
}


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    """Per-agency queue policy (data, not code).

    - ``appointment_early``: a checked-in appointment may be taken this long before it starts.
    - ``starvation_factor``: a non-urgent ticket is *starving* once it has waited
      ``target_wait * starvation_factor``; it then ranks above priority-1 tickets.
    - ``default_target_wait``: used for services without their own ``target_wait``.
    - ``gap_slack``: margin a ticket must leave before the counsellor's next commitment.
    - ``recall_min_interval``: a ticket called without answer is not offered again sooner.
    - ``max_calls_before_no_show``: a ticket called this many times is out of the queue
      (the service layer marks it as a no-show).
    - ``language_is_soft``: when true, a ticket's language is not a hard constraint
      (the agency has interpreters); when false (default) the counsellor must speak it.
    - ``honour_preferred_counsellor``: when true, a ticket that prefers another counsellor who
      is on desk and able to serve it is left for that counsellor until it becomes urgent or
      starving; after that anyone may take it.
    """

    appointment_early: timedelta = timedelta(minutes=5)
    starvation_factor: float = 1.0
    default_target_wait: timedelta = timedelta(minutes=30)
    gap_slack: timedelta = timedelta(minutes=2)
    recall_min_interval: timedelta = timedelta(minutes=5)
    max_calls_before_no_show: int = 3
    language_is_soft: bool = False
    honour_preferred_counsellor: bool = True

    def __post_init__(self) -> None:
        for name in ("appointment_early", "default_target_wait", "gap_slack", "recall_min_interval"):
            if getattr(self, name) < timedelta(0):
                raise ValueError(f"{name} must not be negative")
        if not self.starvation_factor > 0:
            raise ValueError("starvation_factor must be positive")
        if self.max_calls_before_no_show < 1:
            raise ValueError("max_calls_before_no_show must be at least 1")


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """A service (motif): required skill, expected duration and target wait.

    ``skill`` None means every counsellor can serve it. ``target_wait`` None means the
    policy's ``default_target_wait``.
    """

    id: str
    skill: str | None
    expected_duration: timedelta
    target_wait: timedelta | None = None

    def __post_init__(self) -> None:
        if self.expected_duration <= timedelta(0):
            raise ValueError(f"service {self.id}: expected_duration must be positive")
        if self.target_wait is not None and self.target_wait < timedelta(0):
            raise ValueError(f"service {self.id}: target_wait must not be negative")


@dataclass(frozen=True, slots=True)
class DeskCounsellor:
    """A counsellor as the queue sees them.

    ``commitments`` are this counsellor's claims on their time that have not started yet
    (appointments, scheduled callbacks, busy blocks), as non-overlapping intervals; they are
    stored sorted. A commitment whose end is not after ``now`` is ignored; one that has
    started but not ended (e.g. an appointment whose person has not shown up yet) closes the
    gap: no ticket fits until the service layer releases it (no-show) or it ends.
    ``busy_until`` is the expected end of what the counsellor is doing right now (None: free).
    :func:`next_work` ignores it (the caller is free by definition); the wait estimator uses it.
    """

    id: str
    skills: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    modes: frozenset[Mode] = frozenset({Mode.IN_PERSON})
    on_desk: bool = True
    desk: str | None = None
    commitments: tuple[Interval, ...] = ()
    busy_until: datetime | None = None

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.commitments))
        for before, after in pairwise(ordered):
            if before.overlaps(after):
                raise ValueError(f"counsellor {self.id}: overlapping commitments {before} and {after}")
        object.__setattr__(self, "commitments", ordered)
        if self.busy_until is not None:
            object.__setattr__(self, "busy_until", require_utc(self.busy_until))

    @classmethod
    def from_ledger(
        cls,
        ledger: Ledger,
        now: datetime,
        *,
        on_desk: bool = True,
        desk: str | None = None,
        busy_until: datetime | None = None,
    ) -> DeskCounsellor:
        """The queue's view of a counsellor's :class:`~orchestrator.scheduling.ledger.Ledger` at
        ``now``: their commitments are the ledger's, and a walk-in service in progress keeps
        them busy until it ends (or until ``busy_until``, the caller's estimate, if later)."""
        serving = ledger.serving_until(now)
        if serving is not None and (busy_until is None or serving > busy_until):
            busy_until = serving
        return cls(
            id=ledger.id,
            skills=ledger.skills,
            languages=ledger.languages,
            modes=ledger.modes,
            on_desk=on_desk,
            desk=desk,
            commitments=ledger.commitments(now),
            busy_until=busy_until,
        )

    def next_commitment(self, now: datetime) -> datetime | None:
        """Start of the first commitment that ends after ``now`` (the end of the gap), or None."""
        for claim in self.commitments:
            if claim.end > now:
                return claim.start
        return None


@dataclass(frozen=True, slots=True)
class WaitingTicket:
    """A walk-in ticket waiting to be called.

    ``priority``: 0 normal, 1 priority, 2 urgent. ``language``: language the person needs
    (None: any). ``needs``: capabilities the counsellor must have, matched against the
    counsellor's ``skills`` (e.g. ``"sign_language"``). ``seq``: arrival sequence number, the
    tie-break for equal arrival times. ``call_count``/``last_called_at``: calls without answer.
    """

    id: str
    number: str
    service_id: str
    arrived_at: datetime
    priority: int = Priority.NORMAL
    language: str | None = None
    needs: frozenset[str] = frozenset()
    mode: Mode = Mode.IN_PERSON
    preferred_counsellor_id: str | None = None
    seq: int = 0
    call_count: int = 0
    last_called_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "arrived_at", require_utc(self.arrived_at))
        if self.last_called_at is not None:
            object.__setattr__(self, "last_called_at", require_utc(self.last_called_at))
        if self.priority not in (Priority.NORMAL, Priority.PRIORITY, Priority.URGENT):
            raise ValueError(f"ticket {self.id}: priority must be 0, 1 or 2, got {self.priority}")
        if self.call_count < 0:
            raise ValueError(f"ticket {self.id}: call_count must not be negative")


@dataclass(frozen=True, slots=True)
class DueAppointment:
    """An appointment booked with ``counsellor_id`` that has not been served yet.

    Only its own counsellor serves it (no reassignment in this version). It is offered once
    ``checked_in_at`` is set and ``starts_at - appointment_early <= now``.
    """

    id: str
    counsellor_id: str
    service_id: str
    starts_at: datetime
    ends_at: datetime
    checked_in_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "starts_at", require_utc(self.starts_at))
        object.__setattr__(self, "ends_at", require_utc(self.ends_at))
        if self.checked_in_at is not None:
            object.__setattr__(self, "checked_in_at", require_utc(self.checked_in_at))
        if not self.starts_at < self.ends_at:
            raise ValueError(f"appointment {self.id}: starts_at must be before ends_at")


@dataclass(frozen=True, slots=True)
class QueueState:
    """Snapshot of one agency's queue. Validated on construction.

    Invariants: ticket, appointment and counsellor ids are unique; every ticket and
    appointment refers to a known service; ``services`` is keyed by service id.
    """

    tickets: tuple[WaitingTicket, ...]
    appointments: tuple[DueAppointment, ...]
    services: Mapping[str, ServiceInfo]
    counsellors: tuple[DeskCounsellor, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "tickets", tuple(self.tickets))
        object.__setattr__(self, "appointments", tuple(self.appointments))
        object.__setattr__(self, "counsellors", tuple(self.counsellors))
        object.__setattr__(self, "services", MappingProxyType(dict(self.services)))
        for key, service in self.services.items():
            if key != service.id:
                raise ValueError(f"services key {key!r} does not match service id {service.id!r}")
        _require_unique("ticket", (t.id for t in self.tickets))
        _require_unique("appointment", (a.id for a in self.appointments))
        _require_unique("counsellor", (c.id for c in self.counsellors))
        for item_id, service_id in (
            *((t.id, t.service_id) for t in self.tickets),
            *((a.id, a.service_id) for a in self.appointments),
        ):
            if service_id not in self.services:
                raise ValueError(f"{item_id}: unknown service {service_id!r}")

    def without(self, item_ids: Set[str]) -> QueueState:
        """This state without these tickets and appointments.

        Removing items keeps every invariant, so the result is not validated again: a queue of
        hundreds is cut this way on every call next, where validation cost more than the cut."""
        state = object.__new__(QueueState)
        object.__setattr__(state, "tickets", tuple(t for t in self.tickets if t.id not in item_ids))
        object.__setattr__(state, "appointments", tuple(a for a in self.appointments if a.id not in item_ids))
        object.__setattr__(state, "services", self.services)
        object.__setattr__(state, "counsellors", self.counsellors)
        return state


@dataclass(frozen=True, slots=True)
class Skip:
    ticket_id: str
    reason: SkipReason


@dataclass(frozen=True, slots=True)
class WorkDecision:
    """What the counsellor should take next, and why.

    ``detail`` holds facts as ``(name, value)`` string pairs (durations in whole seconds);
    ``skipped`` lists tickets ranked ahead of the chosen item that this counsellor could not
    take, with the reason (at most ``MAX_SKIPS_RECORDED``).
    """

    kind: WorkKind
    item_id: str
    reason: Reason
    detail: tuple[tuple[str, str], ...] = ()
    skipped: tuple[Skip, ...] = field(default=())


def _require_unique(kind: str, ids: Iterable[str]) -> None:
    seen: set[str] = set()
    for item_id in ids:
        if item_id in seen:
            raise ValueError(f"duplicate {kind} id {item_id!r}")
        seen.add(item_id)


def _seconds(delta: timedelta) -> str:
    return str(int(delta.total_seconds()))


# --------------------------------------------------------------------------------------
# Selection machinery shared by next_work, order_queue and the wait estimator.


def arrival_key(ticket: WaitingTicket) -> tuple[datetime, int, str]:
    """First-come-first-served key, total because ticket ids are unique."""
    return (ticket.arrived_at, ticket.seq, ticket.id)


def static_block(
    counsellor: DeskCounsellor, ticket: WaitingTicket, service: ServiceInfo, policy: QueuePolicy
) -> SkipReason | None:
    """Time-independent hard constraint that stops ``counsellor`` serving ``ticket``, or None."""
    if ticket.mode not in counsellor.modes:
        return SkipReason.MODE
    if service.skill is not None and service.skill not in counsellor.skills:
        return SkipReason.SKILL
    if ticket.needs and not ticket.needs <= counsellor.skills:
        return SkipReason.NEEDS
    language = ticket.language
    if language is not None and not policy.language_is_soft and language not in counsellor.languages:
        return SkipReason.LANGUAGE
    return None


class Book:
    """Precomputed view of a :class:`QueueState` for repeated selections.

    Internal to the core (used by ``waits``); not part of the service-layer API. Tickets are
    referred to by index into ``tickets``; lists are kept in arrival order.
    """

    __slots__ = (
        "counsellor_ids",
        "expected",
        "max_starve_delay",
        "min_starve_delay",
        "nonurgent",
        "ordinary",
        "policy",
        "priority",
        "reserved_for",
        "services",
        "starve_at",
        "tickets",
        "urgent",
    )

    def __init__(self, state: QueueState, policy: QueuePolicy) -> None:
        self.policy = policy
        self.services = state.services
        limit = policy.max_calls_before_no_show
        self.tickets: list[WaitingTicket] = sorted(
            (t for t in state.tickets if t.call_count < limit), key=arrival_key
        )
        self.expected: list[timedelta] = [self.services[t.service_id].expected_duration for t in self.tickets]
        delays = [self._starve_delay(t) for t in self.tickets]
        self.starve_at: list[datetime] = [t.arrived_at + d for t, d in zip(self.tickets, delays, strict=True)]
        self.max_starve_delay = max(delays, default=timedelta(0))
        self.min_starve_delay = min(delays, default=timedelta(0))
        self.urgent: list[int] = []
        self.nonurgent: list[int] = []
        self.priority: list[int] = []
        self.ordinary: list[int] = []
        for index, ticket in enumerate(self.tickets):
            if ticket.priority == Priority.URGENT:
                self.urgent.append(index)
                continue
            self.nonurgent.append(index)
            (self.priority if ticket.priority == Priority.PRIORITY else self.ordinary).append(index)
        # A ticket is reserved for its preferred counsellor only if that counsellor is on desk
        # and could serve it; otherwise the preference is moot.
        by_id = {c.id: c for c in state.counsellors}
        self.reserved_for: dict[int, str] = {}
        if policy.honour_preferred_counsellor:
            for index, ticket in enumerate(self.tickets):
                preferred = by_id.get(ticket.preferred_counsellor_id or "")
                if (
                    preferred is not None
                    and preferred.on_desk
                    and static_block(preferred, ticket, self.services[ticket.service_id], policy) is None
                ):
                    self.reserved_for[index] = preferred.id
        self.counsellor_ids = frozenset(by_id)

    def _starve_delay(self, ticket: WaitingTicket) -> timedelta:
        target = self.services[ticket.service_id].target_wait
        if target is None:
            target = self.policy.default_target_wait
        return target * self.policy.starvation_factor

    def tier(self, index: int, now: datetime) -> _Tier:
        ticket = self.tickets[index]
        if ticket.priority == Priority.URGENT:
            return _Tier.URGENT
        if now >= self.starve_at[index]:
            return _Tier.STARVATION
        if ticket.priority == Priority.PRIORITY:
            return _Tier.PRIORITY
        return _Tier.FIFO

    def rank_key(self, index: int, now: datetime) -> tuple[int, datetime, int, str]:
        return (self.tier(index, now), *arrival_key(self.tickets[index]))

    def discard(self, index: int) -> None:
        """Take a ticket out of the rank lists (it has been assigned)."""
        ticket = self.tickets[index]
        if ticket.priority == Priority.URGENT:
            self.urgent.remove(index)
            return
        self.nonurgent.remove(index)
        (self.priority if ticket.priority == Priority.PRIORITY else self.ordinary).remove(index)

    def dynamic_block(
        self, counsellor_id: str, index: int, now: datetime, gap_end: datetime | None
    ) -> tuple[SkipReason | None, datetime | None]:
        """Time-dependent constraint and, when it lifts by itself, the moment it does."""
        ticket = self.tickets[index]
        policy = self.policy
        if ticket.last_called_at is not None:
            ready = ticket.last_called_at + policy.recall_min_interval
            if now < ready:
                return SkipReason.RECALL_TOO_SOON, ready
        owner = self.reserved_for.get(index)
        if (
            owner is not None
            and owner != counsellor_id
            and ticket.priority != Priority.URGENT
            and now < self.starve_at[index]
        ):
            return SkipReason.RESERVED, self.starve_at[index]
        if gap_end is not None and now + self.expected[index] + policy.gap_slack > gap_end:
            return SkipReason.GAP_TOO_SMALL, None
        return None, None

    def choose(
        self,
        counsellor: DeskCounsellor,
        now: datetime,
        gap_end: datetime | None,
        static: Callable[[int], SkipReason | None],
        skips: list[Skip] | None,
    ) -> tuple[int | None, _Tier, datetime | None]:
        """First ticket in rank order this counsellor may take now.

        Returns ``(index or None, tier, wake)`` where ``wake`` is the earliest moment a
        currently blocked ticket unblocks by itself (only meaningful when nothing was chosen).
        Scans the tiers in order; each tier in arrival order; records skips if asked.
        """
        wake: datetime | None = None

        def blocked(index: int) -> bool:
            nonlocal wake
            reason = static(index)
            lifts: datetime | None = None
            if reason is None:
                reason, lifts = self.dynamic_block(counsellor.id, index, now, gap_end)
            if reason is None:
                return False
            if lifts is not None and (wake is None or lifts < wake):
                wake = lifts
            if skips is not None and len(skips) < MAX_SKIPS_RECORDED:
                skips.append(Skip(self.tickets[index].id, reason))
            return True

        for index in self.urgent:
            if not blocked(index):
                return index, _Tier.URGENT, None
        # Starving tickets arrived at least ``min_starve_delay`` ago: stop scanning there.
        horizon = now - self.min_starve_delay
        for index in self.nonurgent:
            if self.tickets[index].arrived_at > horizon:
                break
            if now >= self.starve_at[index] and not blocked(index):
                return index, _Tier.STARVATION, None
        for tier, indices in ((_Tier.PRIORITY, self.priority), (_Tier.FIFO, self.ordinary)):
            for index in indices:
                if now < self.starve_at[index] and not blocked(index):
                    return index, tier, None
        return None, _Tier.FIFO, wake


def _due_appointment(
    counsellor: DeskCounsellor, now: datetime, state: QueueState, policy: QueuePolicy
) -> DueAppointment | None:
    due = [
        a
        for a in state.appointments
        if a.counsellor_id == counsellor.id
        and a.checked_in_at is not None
        and a.starts_at - policy.appointment_early <= now
    ]
    return min(due, key=lambda a: (a.starts_at, a.id), default=None)


def next_work(
    counsellor: DeskCounsellor, now: datetime, state: QueueState, policy: QueuePolicy
) -> WorkDecision | None:
    """Decide what ``counsellor`` should take at ``now``, or None if nothing suits them.

    Contract:

    - None if the counsellor is not on desk.
    - First, their own checked-in appointment with ``starts_at - policy.appointment_early <= now``
      (earliest ``starts_at``, then id): reason ``appointment_due``.
    - Otherwise the first ticket in :func:`order_queue` order that passes every hard
      constraint: the counsellor serves the ticket's mode, has the service's skill and every
      one of the ticket's ``needs`` (among ``skills``), speaks its language (unless
      ``policy.language_is_soft``), the ticket was not called within ``recall_min_interval``,
      it is not reserved for another on-desk counsellor it prefers (until urgent/starving),
      and it fits the gap: ``now + expected_duration + gap_slack <= next_commitment(now)``.
      Reason is the ticket's tier (``urgent``, ``starvation``, ``priority``, ``fifo``).
    - Tickets called ``max_calls_before_no_show`` times are never offered.
    - Deterministic: the result does not depend on the order of any input collection.
    - The counsellor's ``busy_until`` is ignored: whoever asks is free.
    """
    works = next_works(counsellor, now, state, policy, 1)
    return works[0] if works else None


def next_works(
    counsellor: DeskCounsellor, now: datetime, state: QueueState, policy: QueuePolicy, count: int
) -> list[WorkDecision]:
    """The counsellor's next ``count`` choices, best first: the same as calling :func:`next_work`
    again and again on ``state`` without the previous choices, but ranking the queue once (call
    next claims the first of them nobody else holds). A due appointment comes first and alone."""
    now = require_utc(now)
    if not counsellor.on_desk:
        return []
    appointment = _due_appointment(counsellor, now, state, policy)
    if appointment is not None:
        return [
            WorkDecision(
                kind=WorkKind.APPOINTMENT,
                item_id=appointment.id,
                reason=Reason.APPOINTMENT_DUE,
                detail=(
                    ("service_id", appointment.service_id),
                    ("starts_at", appointment.starts_at.isoformat()),
                    ("late_s", _seconds(max(now - appointment.starts_at, timedelta(0)))),
                ),
            )
        ]
    return _ticket_choices(counsellor, now, state, policy, count)


def _ticket_choices(
    counsellor: DeskCounsellor, now: datetime, state: QueueState, policy: QueuePolicy, count: int
) -> list[WorkDecision]:
    """Up to ``count`` tickets for the counsellor in :func:`next_work` order, each one chosen as
    if the previous ones were gone (choices depend on each ticket alone, never on the others)."""
    book = Book(state, policy)
    gap_end = counsellor.next_commitment(now)
    decisions: list[WorkDecision] = []
    while len(decisions) < count:
        skips: list[Skip] = []
        index, tier, _ = book.choose(
            counsellor,
            now,
            gap_end,
            static=lambda i: static_block(
                counsellor, book.tickets[i], book.services[book.tickets[i].service_id], policy
            ),
            skips=skips,
        )
        if index is None:
            break
        book.discard(index)
        ticket = book.tickets[index]
        decisions.append(
            WorkDecision(
                kind=WorkKind.TICKET,
                item_id=ticket.id,
                reason=_TIER_REASON[tier],
                detail=(
                    ("number", ticket.number),
                    ("service_id", ticket.service_id),
                    ("priority", str(ticket.priority)),
                    ("waited_s", _seconds(now - ticket.arrived_at)),
                    ("starves_after_s", _seconds(book.starve_at[index] - ticket.arrived_at)),
                    ("gap_s", "none" if gap_end is None else _seconds(gap_end - now)),
                ),
                skipped=tuple(skips),
            )
        )
    return decisions


def order_queue(state: QueueState, now: datetime, policy: QueuePolicy) -> list[WaitingTicket]:
    """Global display order of the waiting tickets at ``now``.

    Sorted by ``(tier, arrived_at, seq, id)`` with tiers urgent < starving < priority <
    ordinary, i.e. the order :func:`next_work` offers tickets before counsellor-specific
    constraints. Total and stable (ids are unique), independent of input order. Tickets called
    ``max_calls_before_no_show`` times are left out; every other ticket appears exactly once.
    """
    now = require_utc(now)
    book = Book(state, policy)
    order = sorted(range(len(book.tickets)), key=lambda i: book.rank_key(i, now))
    return [book.tickets[i] for i in order]
