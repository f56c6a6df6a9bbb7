"""Placing phone callbacks in counsellors' real gaps: the same ledgers as booking and the queue.

:func:`plan_callbacks` takes the pending requests and the counsellors' ledgers and places each
request, most urgent first (deadline, then priority, then age), on a counsellor who works by
phone and has the skill, inside the person's windows, ending before the request's deadline. Among
the possible places it prefers, in order:

1. a counsellor who speaks the person's language (where one can call in time);
2. the place that wastes the least bookable time: putting a 15-minute call in a gap leaves
   fragments before and after it, and a fragment shorter than ``bookable_unit`` (the shortest
   bookable service) is lost to booking — so a call fills a short gap exactly, or sits at the
   edge of a long one, rather than splitting it in two unusable halves;
3. the earliest start (the person is called sooner);
4. the counsellor id (a stable tie-break).

A person with priority needs (``priority > 0``) swaps 2 and 3: called as soon as possible,
whatever bookable time that costs — priority on every channel, as in the walk-in queue.

Working blocks reserved to a pool (``quota``, e.g. walk-in desk duty) are not used: a callback
never takes the time promised to the walk-in queue. Each placement carries a reason; a request
that cannot be placed says why. Pure and deterministic: ``now`` is a parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from orchestrator.scheduling.intervals import (
    Span,
    delta_micros,
    from_micros,
    intersect_spans,
    merge_spans,
    subtract_spans,
    to_micros,
    to_span,
)
from orchestrator.scheduling.ledger import Ledger
from orchestrator.scheduling.types import Interval, Mode

CALLBACK_POOLS = frozenset({None, "callback", "phone"})  # working blocks a callback may use


@dataclass(frozen=True, slots=True)
class CallbackAsk:
    """A pending request to be called back."""

    id: str
    created_at: datetime
    deadline: datetime  # the call must end by then (the agency's service level)
    duration: timedelta = timedelta(minutes=15)
    windows: tuple[Interval, ...] = ()  # when the person can answer; empty: any working time
    skill: str | None = None
    language: str | None = None
    priority: int = 0
    not_before: datetime | None = None  # a retry after no answer: not before then
    current: tuple[str, datetime] | None = None  # already placed: (counsellor id, start)


@dataclass(frozen=True, slots=True)
class Placement:
    request_id: str
    counsellor_id: str
    start: datetime
    end: datetime
    reason: str  # "fills_gap", "gap_edge" or "splits_gap", + ":language" when it matches;
    # for a request already placed: "kept", "moved_earlier", or the new reason + ":moved" when
    # its place no longer fits (an absence, a shorter day, new windows)
    wasted_minutes: int  # bookable time lost around the call (fragments too short to book)


@dataclass(frozen=True, slots=True)
class Unplaced:
    request_id: str
    reason: str  # "no_phone_counsellor" (nobody with phone and the skill) or "no_time_before_deadline"


Plan = Placement | Unplaced


def urgency(ask: CallbackAsk) -> tuple[datetime, int, datetime, str]:
    """The order requests are placed in: earliest deadline, then priority, then oldest."""
    return (ask.deadline, -ask.priority, ask.created_at, ask.id)


def plan_callbacks(
    requests: Iterable[CallbackAsk],
    ledgers: Sequence[Ledger],
    now: datetime,
    *,
    grid: timedelta = timedelta(minutes=5),
    bookable_unit: timedelta = timedelta(minutes=30),
    lead: timedelta = timedelta(minutes=5),
    move_gain: timedelta = timedelta(minutes=30),
    move_waste: timedelta = timedelta(minutes=15),
    sealed: timedelta = timedelta(0),
) -> list[Plan]:
    """Place every request (see the module doc); the plan, in the order requests were placed.

    Requests already placed (``current``; the ledgers must not hold their own claims) keep
    their place while it still fits, so nobody is moved for a more urgent newcomer; one whose
    place no longer fits is placed again (``…:moved``); one that can be called at least
    ``move_gain`` earlier (time freed by a cancellation) moves there (``moved_earlier``) if that
    wastes at most ``move_waste`` of bookable time. Time closer than ``sealed`` to now can no
    longer be booked (the services' notice): fragments there waste nothing."""
    free = {
        ledger.id: _free(ledger, to_micros(now + lead)) for ledger in ledgers if Mode.PHONE in ledger.modes
    }
    unit, step = delta_micros(bookable_unit), delta_micros(grid)
    step_and_seal = (step, delta_micros(sealed))
    ordered = sorted(requests, key=urgency)
    kept: dict[str, Span] = {}
    for ask in ordered:  # places that still fit are reserved first
        span = _still_fits(ask, free, now + lead)
        if span is not None and ask.current is not None:
            kept[ask.id] = span
            free[ask.current[0]] = subtract_spans(free[ask.current[0]], [span])
    plans: list[Plan] = []
    for ask in ordered:
        if ask.id in kept:
            continue
        plan = _place(ask, ledgers, free, now + lead, unit, step_and_seal)
        if isinstance(plan, Placement) and ask.current is not None:
            plan = replace(plan, reason=f"{plan.reason}:moved")
        plans.append(plan)
    for ask in ordered:  # then, most urgent first, whether a kept one can come earlier
        if ask.id not in kept or ask.current is None:
            continue
        counsellor_id, start = ask.current
        sooner = replace(ask, deadline=min(ask.deadline, start - move_gain + ask.duration))
        plan = _place(
            sooner, ledgers, free, now + lead, unit, step_and_seal, max_waste=delta_micros(move_waste)
        )
        if isinstance(plan, Placement):
            plans.append(replace(plan, reason="moved_earlier"))
            free[counsellor_id] = merge_spans([*free[counsellor_id], kept[ask.id]])  # its old time
            continue
        plans.append(Placement(ask.id, counsellor_id, start, start + ask.duration, "kept", 0))
    return plans


def call_early(
    asks: Iterable[CallbackAsk],
    *,
    skills: frozenset[str],
    languages: frozenset[str],
    now: datetime,
    free_until: datetime | None,
) -> CallbackAsk | None:
    """The callback an idle counsellor (no due work, no walk-in that suits them) makes now
    instead of at its planned time, or None: one they can make — the skill, the person's
    language, inside the person's windows, not before a retry's time, ending before the
    counsellor's next commitment (``free_until``) and the request's deadline — and not already
    due with someone else. Priority needs first, then the earliest deadline, then the oldest.
    Waiting for a planned gap protects bookable time; a counsellor with nothing to do has none
    to protect, and the person is called sooner."""

    def can(ask: CallbackAsk) -> bool:
        end = now + ask.duration
        if end > ask.deadline or (free_until is not None and end > free_until):
            return False
        if ask.not_before is not None and ask.not_before > now:
            return False
        if (ask.skill and ask.skill not in skills) or (ask.language and ask.language not in languages):
            return False
        if ask.current is not None and ask.current[1] <= now:
            return False  # its own time has come: its counsellor calls it
        return not ask.windows or any(w.start <= now and end <= w.end for w in ask.windows)

    found = [ask for ask in asks if can(ask)]
    return min(found, key=lambda a: (-a.priority, a.deadline, a.created_at, a.id), default=None)


def _place(
    ask: CallbackAsk,
    ledgers: Sequence[Ledger],
    free: dict[str, list[Span]],
    earliest: datetime,
    unit: int,
    step: tuple[int, int],
    max_waste: int | None = None,
) -> Plan:
    """The best place for ``ask`` in ``free`` (which it then takes), or why there is none;
    with ``max_waste`` (µs), none that wastes more bookable time than that."""
    eligible = [
        ledger for ledger in ledgers if ledger.id in free and (not ask.skill or ask.skill in ledger.skills)
    ]
    if not eligible:
        return Unplaced(ask.id, "no_phone_counsellor")
    best = _best(ask, eligible, free, earliest, unit, step)
    if best is None or (max_waste is not None and best.wasted_minutes * 60_000_000 > max_waste):
        return Unplaced(ask.id, "no_time_before_deadline")
    span = (to_micros(best.start), to_micros(best.end))
    free[best.counsellor_id] = subtract_spans(free[best.counsellor_id], [span])
    return best


def _still_fits(ask: CallbackAsk, free: dict[str, list[Span]], earliest: datetime) -> Span | None:
    """The request's current place, if it is still free time, in its windows and on time."""
    if ask.current is None or ask.current[0] not in free:
        return None
    start = ask.current[1]
    span = (to_micros(start), to_micros(start + ask.duration))
    if start < earliest or start + ask.duration > ask.deadline:
        return None
    if ask.windows and not any(w.start <= start and start + ask.duration <= w.end for w in ask.windows):
        return None
    return span if any(a <= span[0] and span[1] <= b for a, b in free[ask.current[0]]) else None


def _free(ledger: Ledger, after: int) -> list[Span]:
    """Phone working time not yet committed, from ``after`` on."""
    working = merge_spans(
        to_span(block.interval)
        for block in ledger.working
        if Mode.PHONE in block.modes and block.quota in CALLBACK_POOLS
    )
    taken = merge_spans((*ledger.booked_spans, *ledger.unavailable_spans, *ledger.serving_spans))
    return [(max(s, after), e) for s, e in subtract_spans(working, taken) if e > after]


def _best(
    ask: CallbackAsk,
    eligible: list[Ledger],
    free: dict[str, list[Span]],
    earliest: datetime,
    unit: int,
    step_and_seal: tuple[int, int],
) -> Placement | None:
    step, sealed = step_and_seal
    length, now = delta_micros(ask.duration), to_micros(earliest) + sealed
    start_from = to_micros(max(earliest, ask.not_before or earliest))
    allowed = [(start_from, to_micros(ask.deadline))]
    if ask.windows:
        allowed = intersect_spans(merge_spans(map(to_span, ask.windows)), allowed)
    if not allowed:
        return None
    # (language mismatch, waste, start, counsellor); priority needs: (mismatch, start, waste, …)
    soonest = ask.priority > 0
    best: tuple[int, int, int, str] | None = None
    for ledger in eligible:
        mismatch = int(bool(ask.language) and ask.language not in ledger.languages)
        if best is not None and mismatch > best[0]:
            continue
        for gap in free[ledger.id]:
            if gap[0] >= allowed[-1][1]:
                break  # gaps are in time order: the rest start after the last allowed moment
            if best is not None and not soonest and (mismatch, 0) == best[:2] and gap[0] > best[2]:
                break  # nothing later can beat a zero-waste place that starts earlier
            if best is not None and soonest and mismatch == best[0] and gap[0] > best[1]:
                break  # nothing later can start sooner
            for lo, hi in allowed:
                lo, hi = max(lo, gap[0]), min(hi, gap[1])
                for start in _edges(lo, hi, length, step):
                    waste = _waste(gap, start, start + length, unit, now)[0]
                    key = (
                        (mismatch, start, waste, ledger.id)
                        if soonest
                        else (mismatch, waste, start, ledger.id)
                    )
                    if best is None or key < best:
                        best = key
    if best is None:
        return None
    mismatch, waste, start, counsellor_id = best
    if soonest:
        start, waste = waste, start
    gap = next(g for g in free[counsellor_id] if g[0] <= start and start + length <= g[1])
    shape = _waste(gap, start, start + length, unit, now)[1]
    reason = shape + ("" if mismatch or not ask.language else ":language")
    return Placement(
        ask.id, counsellor_id, from_micros(start), from_micros(start + length), reason, waste // 60_000_000
    )


def _edges(lo: int, hi: int, length: int, step: int) -> tuple[int, ...]:
    """The candidate starts in ``[lo, hi)``: as early as possible and as late as possible (on the
    grid) — the two places that leave the remaining time in one piece."""
    if hi - lo < length:
        return ()
    first = -(-lo // step) * step
    last = (hi - length) // step * step
    if first + length > hi:
        return ()
    return (first,) if last <= first else (first, last)


def _waste(gap: Span, start: int, end: int, unit: int, now: int) -> tuple[int, str]:
    """Bookable time lost by calling in ``[start, end)`` inside ``gap``: fragments left before
    and after shorter than ``unit``; and how the call sits in the gap. A gap that began before
    ``now`` (plus the sealed notice) has no fragment before the call worth keeping, and only the
    part of the one after that lies beyond it counts: that time cannot be booked any more."""
    before = 0 if gap[0] <= now else start - gap[0]
    after = max(0, gap[1] - max(end, now))
    waste = sum(fragment for fragment in (before, after) if 0 < fragment < unit)
    if before < unit and after < unit:
        return waste, "fills_gap"
    return waste, "gap_edge" if min(before, after) == 0 or waste == 0 else "splits_gap"
