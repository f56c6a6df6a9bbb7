"""Free appointment slots and the counsellor chosen for each.

Contract shared by ``free_slots`` and ``pick_slot`` (the documented policy):

Eligibility (hard filters)
    A counsellor is eligible for a mode ``m`` when ``service.skill`` is ``None`` or in
    ``counsellor.skills``, and ``m`` is in ``service.modes`` and ``counsellor.modes``
    (and equals ``request.mode`` when given). ``request.counsellor_id`` restricts the
    pool to that one counsellor. Only working blocks whose ``modes`` contain ``m`` and
    whose ``quota`` equals ``request.quota`` (``None`` = ordinary bookable time) count
    as working time for ``m``; blocks of one counsellor that overlap or touch are
    merged into one working interval per mode.

Grid
    Starts are ``origin + k * service.grid`` where ``origin`` is the start of the merged
    working interval (so a block starting 09:10 local with a 15-min grid offers 09:10,
    09:25, …; alignment follows local wall clock, also across DST). The grid defaults
    to 15 min when the duration is a multiple of 15 min, else to the duration.

Fit
    ``[s, s + duration)`` must lie inside working time for the mode, and
    ``[s - buffer_before, s + duration + buffer_after)`` must not overlap any
    ``booked`` or ``unavailable`` interval of the counsellor. Buffers MAY extend
    outside working hours (a 09:00 slot with a 10-min buffer before is fine).

Window, notice, horizon
    ``window.start <= s < window.end`` (the start is in the window, so consecutive
    windows partition results), ``s >= now + min_notice`` and ``s <= now + max_horizon``.

Mode
    With ``request.mode`` set, only that mode. Otherwise each start is offered once,
    in the first mode (order in_person > phone > video) having a free eligible
    counsellor at that start.

Choice of counsellor at a (start, mode), lexicographic, fully deterministic:
    1. the referent (``request.referent_counsellor_id``) if free → reason ``"referent"``;
    2. speaks ``request.language`` (a preference, never a filter: interpreters exist);
    3. least booked load on the local day (``tz``) of the start: total length of
       ``booked`` claims (not ``unavailable``) overlapping that local day;
    4. counsellor id (string order).
    ``Slot.reason`` names the criterion that separated the chosen counsellor from the
    runner-up: ``"referent"``, ``"language_match"``, ``"least_loaded"``, ``"tie_break"``;
    ``"only_candidate"`` when no other counsellor was free; ``"requested"`` when
    ``request.counsellor_id`` was given.

Ranking
    Slots sorted by (start, mode order). With ``request.preferred_windows``, slots whose
    ``[start, end)`` lies inside a preferred window come first (each group by start).
    ``request.limit`` truncates after ranking.

Cost: per counsellor a linear sweep of merged (buffer-inflated) claims against merged
working intervals, grid enumeration inside the free gaps only, and one dict update per
(start, mode, counsellor) candidate. Arithmetic is on integer microseconds.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import pairwise

from orchestrator.scheduling.errors import SlotUnavailable
from orchestrator.scheduling.intervals import (
    Span,
    delta_micros,
    from_micros,
    grid_span_starts,
    merge_spans,
    to_micros,
    to_span,
)
from orchestrator.scheduling.ledger import Ledger
from orchestrator.scheduling.rules import WorkingBlock, local_day_bounds, zone
from orchestrator.scheduling.types import Interval, Mode, require_utc

MODE_ORDER: tuple[Mode, ...] = (Mode.IN_PERSON, Mode.PHONE, Mode.VIDEO)
"""Preference order used when a request does not name a mode."""

DEFAULT_GRID = timedelta(minutes=15)
_ZERO = timedelta(0)
_MICROSECOND = timedelta(microseconds=1)
_FOREVER = timedelta(days=365 * 200)  # no horizon (the window bounds the starts)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """What is being booked. ``step`` is the start grid; ``None`` → see ``grid``.

    ``ValueError`` if duration/step are not positive, notice/horizon/buffers negative,
    or ``modes`` empty.
    """

    id: str
    duration: timedelta
    modes: frozenset[Mode]
    skill: str | None
    min_notice: timedelta
    max_horizon: timedelta
    buffer_before: timedelta
    buffer_after: timedelta
    step: timedelta | None = None

    def __post_init__(self) -> None:
        if self.duration <= _ZERO:
            raise ValueError("duration must be positive")
        if self.step is not None and self.step <= _ZERO:
            raise ValueError("step must be positive")
        for name in ("min_notice", "max_horizon", "buffer_before", "buffer_after"):
            if getattr(self, name) < _ZERO:
                raise ValueError(f"{name} must not be negative")
        if not self.modes:
            raise ValueError("a service must be offered in at least one mode")

    @property
    def grid(self) -> timedelta:
        """Effective start grid: ``step``, else 15 min if it divides the duration, else the duration."""
        if self.step is not None:
            return self.step
        return DEFAULT_GRID if self.duration % DEFAULT_GRID == _ZERO else self.duration


@dataclass(frozen=True, slots=True)
class SlotRequest:
    """Filters and preferences of one availability query (see module docstring)."""

    mode: Mode | None = None
    language: str | None = None
    referent_counsellor_id: str | None = None
    counsellor_id: str | None = None
    preferred_windows: tuple[Interval, ...] = ()
    limit: int | None = None
    quota: str | None = None

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 0:
            raise ValueError("limit must not be negative")


@dataclass(frozen=True, slots=True)
class Slot:
    """A bookable ``[start, end)`` with the counsellor chosen and why (``reason`` code)."""

    start: datetime
    end: datetime
    counsellor_id: str
    mode: Mode
    reason: str


# A candidate's rank key: (not referent, not language match, day load µs, counsellor id).
_Key = tuple[int, int, int, str]


def free_slots(
    service: ServiceSpec,
    counsellors: Iterable[Ledger],
    window: Interval,
    now: datetime,
    request: SlotRequest,
    *,
    tz: str,
) -> list[Slot]:
    """All bookable slots of ``service`` starting in ``window``, one per (start, mode).

    Pure and deterministic: the result does not depend on the order of ``counsellors``
    or of their blocks/claims. ``tz`` is the agency's IANA zone (local-day load).
    ``ValueError`` on naive ``now``, unknown ``tz`` or duplicate counsellor ids.
    See the module docstring for the full policy. Equal to
    ``rank_slots(service, open_slots(service, counsellors, window, request, tz=tz), now, request)``.
    """
    return rank_slots(service, open_slots(service, counsellors, window, request, tz=tz), now, request)


def open_slots(
    service: ServiceSpec, counsellors: Iterable[Ledger], window: Interval, request: SlotRequest, *, tz: str
) -> list[Slot]:
    """The slots of ``free_slots`` before notice, horizon, preferences and limit, sorted by
    (start, mode order). They depend on the ledgers and the request alone, not on the time of
    asking: the choice of counsellor at a start never depends on ``now``, which only bounds the
    starts. A caller may therefore keep them while the ledgers are unchanged (the availability
    cache) and apply :func:`rank_slots` at each request."""
    unbounded = replace(service, min_notice=_ZERO, max_horizon=_FOREVER)
    return _assemble(service, _choose(unbounded, counsellors, window, window.start, request, tz), request)


def rank_slots(
    service: ServiceSpec, slots: Sequence[Slot], now: datetime, request: SlotRequest
) -> list[Slot]:
    """Keep the slots of :func:`open_slots` starting in ``[now + min_notice, now + max_horizon]``,
    put those inside a ``preferred`` window first (each group by start), keep ``limit``."""
    now = require_utc(now)
    first, last = now + service.min_notice, now + service.max_horizon
    ranked = [slot for slot in slots if first <= slot.start <= last]
    if request.preferred_windows:
        preferred = merge_spans(to_span(w) for w in request.preferred_windows)
        starts = [p[0] for p in preferred]

        def inside(slot: Slot) -> bool:
            s, e = to_micros(slot.start), to_micros(slot.end)
            i = bisect_right(starts, s) - 1
            return i >= 0 and preferred[i][1] >= e

        ranked.sort(key=lambda slot: not inside(slot))  # stable: each group stays by start
    if request.limit is not None:
        del ranked[request.limit :]
    return ranked


def pick_slot(
    service: ServiceSpec,
    counsellors: Iterable[Ledger],
    start: datetime,
    mode: Mode,
    now: datetime,
    request: SlotRequest,
    *,
    tz: str,
) -> Slot:
    """The decision for booking exactly ``start`` in ``mode``, same policy as ``free_slots``.

    ``request.mode``, ``preferred_windows`` and ``limit`` are ignored.
    Raises ``SlotUnavailable`` with, checked in this order: ``mode_not_offered``,
    ``outside_notice``, ``beyond_horizon``, ``counsellor_not_eligible``,
    ``outside_working_hours``, ``not_on_grid``, ``no_counsellor_free``.
    """
    start = require_utc(start)
    now = require_utc(now)
    counsellors = tuple(counsellors)
    if mode not in service.modes:
        raise SlotUnavailable("mode_not_offered", f"service {service.id} is not offered as {mode}")
    if start < now + service.min_notice:
        raise SlotUnavailable("outside_notice", f"earliest start is {(now + service.min_notice).isoformat()}")
    if start > now + service.max_horizon:
        raise SlotUnavailable("beyond_horizon", f"latest start is {(now + service.max_horizon).isoformat()}")
    single = replace(request, mode=mode, preferred_windows=(), limit=None)
    eligible = [c for c in counsellors if _eligible(c, service, single)]
    if not eligible:
        raise SlotUnavailable("counsellor_not_eligible", f"nobody eligible for {service.id} as {mode}")
    window = Interval(start, start + _MICROSECOND)
    slots = free_slots(service, eligible, window, now, single, tz=tz)
    if slots:
        return slots[0]
    s = to_micros(start)
    d = delta_micros(service.duration)
    g = delta_micros(service.grid)
    in_hours = False
    for counsellor in eligible:
        for ws, we in _working_spans(counsellor.working, mode, request.quota):
            if ws <= s and s + d <= we:
                in_hours = True
                if (s - ws) % g == 0:
                    raise SlotUnavailable("no_counsellor_free", "every eligible counsellor is busy then")
    if not in_hours:
        raise SlotUnavailable("outside_working_hours", "no eligible counsellor works then")
    raise SlotUnavailable("not_on_grid", f"starts are every {service.grid} from the start of working time")


# --------------------------------------------------------------------------- internals


def _eligible(counsellor: Ledger, service: ServiceSpec, request: SlotRequest) -> bool:
    if request.counsellor_id is not None and counsellor.id != request.counsellor_id:
        return False
    if service.skill is not None and service.skill not in counsellor.skills:
        return False
    modes = service.modes & counsellor.modes
    return bool(modes) and (request.mode is None or request.mode in modes)


def _working_spans(blocks: Sequence[WorkingBlock], mode: Mode, quota: str | None) -> list[Span]:
    return merge_spans(to_span(b.interval) for b in blocks if mode in b.modes and b.quota == quota)


def _choose(
    service: ServiceSpec,
    counsellors: Iterable[Ledger],
    window: Interval,
    now: datetime,
    request: SlotRequest,
    tz: str,
) -> dict[tuple[int, int], list[_Key | None]]:
    """For every feasible (start µs, mode index): [best key, runner-up key or None]."""
    now_us = to_micros(now)
    zone(tz)
    duration = delta_micros(service.duration)
    step = delta_micros(service.grid)
    before = delta_micros(service.buffer_before)
    after = delta_micros(service.buffer_after)
    first = max(to_micros(window.start), now_us + delta_micros(service.min_notice))
    last = min(to_micros(window.end) - 1, now_us + delta_micros(service.max_horizon))
    table: dict[tuple[int, int], list[_Key | None]] = {}

    pool = sorted(counsellors, key=lambda c: c.id)
    for a, b in pairwise(pool):
        if a.id == b.id:
            raise ValueError(f"duplicate counsellor id {a.id!r}")
    if first > last:
        return table
    if request.mode is not None:
        wanted = [i for i, m in enumerate(MODE_ORDER) if m == request.mode and m in service.modes]
    else:
        wanted = [i for i, m in enumerate(MODE_ORDER) if m in service.modes]
    pool = [c for c in pool if _eligible(c, service, request)]
    if not pool or not wanted:
        return table

    days = _local_days(first, last + duration, tz)
    day_starts = [d[0] for d in days]
    day_of: dict[int, int] = {}
    # A fitting slot lies in [first, last + duration); claims further than the buffers
    # from it cannot block it. Load needs every claim of the local days involved.
    reach_lo, reach_hi = first - before - after, last + duration + before + after
    load_lo, load_hi = min(reach_lo, days[0][0]), max(reach_hi, days[-1][1])

    prepared: list[tuple[int, int, str, list[Span], list[int], list[list[Span] | None]]] = []
    for c in pool:
        pref_ref = 0 if c.id == request.referent_counsellor_id else 1
        pref_lang = 0 if request.language is not None and request.language in c.languages else 1
        booked = merge_spans(sp for sp in c.load_spans() if sp[1] > load_lo and sp[0] < load_hi)
        absent = (sp for sp in c.unavailable_spans if sp[1] > reach_lo and sp[0] < reach_hi)
        # Inflated claims: "slot overlaps inflated claim" <=> "slot + buffers overlaps claim".
        busy = merge_spans((s - after, e + before) for s, e in (*booked, *absent))
        # Working time per wanted mode: merge first (adjacent blocks fuse and share one
        # grid origin), then drop what ends before the first possible start.
        blocks = [(to_span(b.interval), b.modes) for b in c.working if b.quota == request.quota]
        per_mode: list[list[Span] | None] = [None] * len(MODE_ORDER)
        for mi in wanted:
            if MODE_ORDER[mi] in c.modes:
                merged = merge_spans(sp for sp, modes in blocks if MODE_ORDER[mi] in modes)
                per_mode[mi] = [sp for sp in merged if sp[1] > first]
        prepared.append((pref_ref, pref_lang, c.id, busy, _day_loads(booked, days), per_mode))

    covered: set[int] = set()  # starts already offered in a preferred mode
    for mi in wanted:
        for pref_ref, pref_lang, cid, busy, loads, per_mode in prepared:
            working = per_mode[mi]
            if working is None:
                continue
            if request.mode is None and any(per_mode[m] == working for m in range(mi)):
                # Same working time as in a preferred mode: all its starts are covered.
                continue
            for s in _fitting_starts(working, busy, first, last, step, duration):
                if s in covered:
                    continue
                d = day_of.get(s)
                if d is None:
                    d = day_of[s] = bisect_right(day_starts, s) - 1
                key: _Key = (pref_ref, pref_lang, loads[d], cid)
                entry = table.get((s, mi))
                if entry is None:
                    table[(s, mi)] = [key, None]
                else:
                    best, second = entry
                    assert best is not None
                    if key < best:
                        entry[0], entry[1] = key, best
                    elif second is None or key < second:
                        entry[1] = key
        if request.mode is None:
            covered.update(s for s, m in table if m == mi)
    return table


def _fitting_starts(
    working: Sequence[Span], busy: Sequence[Span], first: int, last: int, step: int, duration: int
) -> list[int]:
    """Grid starts in [first, last] whose [s, s+duration) is inside a working span
    (grid origin = that span's start) and overlaps no (inflated) busy span."""
    out: list[int] = []
    j = 0
    n = len(busy)
    for ws, we in working:
        while j < n and busy[j][1] <= ws:
            j += 1
        cur = ws
        k = j
        while cur < we:
            gap_end = busy[k][0] if k < n and busy[k][0] < we else we
            if gap_end - cur >= duration:
                lo = cur if cur >= first else first
                hi = gap_end - duration
                if hi > last:
                    hi = last
                if lo <= hi:
                    out.extend(grid_span_starts((lo, hi + duration), ws, step, duration))
            if gap_end >= we:
                break
            if busy[k][1] > cur:
                cur = busy[k][1]
            k += 1
    return out


def _local_days(first: int, last: int, tz: str) -> list[Span]:
    """Consecutive local days (µs spans) covering [first, last]."""
    day = from_micros(first).astimezone(zone(tz)).date()
    out: list[Span] = []
    while True:
        span = to_span(local_day_bounds(day, tz))
        out.append(span)
        if span[1] > last:
            return out
        day += timedelta(days=1)


def _day_loads(booked: Sequence[Span], days: Sequence[Span]) -> list[int]:
    """Booked µs overlapping each day (``booked`` merged, ``days`` consecutive)."""
    loads = [0] * len(days)
    j = 0
    for i, (ds, de) in enumerate(days):
        while j < len(booked) and booked[j][1] <= ds:
            j += 1
        k = j
        total = 0
        while k < len(booked) and booked[k][0] < de:
            total += min(de, booked[k][1]) - max(ds, booked[k][0])
            k += 1
        loads[i] = total
    return loads


def _reason(best: _Key, second: _Key | None, request: SlotRequest) -> str:
    if request.counsellor_id is not None:
        return "requested"
    if best[0] == 0:
        return "referent"
    if second is None:
        return "only_candidate"
    if best[1] != second[1]:
        return "language_match"
    if best[2] != second[2]:
        return "least_loaded"
    return "tie_break"


def _assemble(
    service: ServiceSpec, table: Mapping[tuple[int, int], list[_Key | None]], request: SlotRequest
) -> list[Slot]:
    # ``_choose`` never records a start in a later mode once an earlier mode offers it,
    # so every key of ``table`` is one slot; sorting by (start, mode index) ranks them.
    slots: list[Slot] = []
    duration = service.duration
    for s, mi in sorted(table):
        best, second = table[(s, mi)]
        assert best is not None
        start = from_micros(s)
        slots.append(Slot(start, start + duration, best[3], MODE_ORDER[mi], _reason(best, second, request)))
    return slots
