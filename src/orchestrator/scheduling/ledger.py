"""The one model of a counsellor's time: their ledger.

Availability (:mod:`orchestrator.scheduling.availability`), the walk-in queue's choice of work
(:mod:`orchestrator.scheduling.queue`, through :meth:`Ledger.commitments`), the wait estimator
and the simulator all read the same ledger, loaded by one query
(``repositories.ledgers.load_ledgers``). Times are integer microseconds since the epoch
(:data:`~orchestrator.scheduling.intervals.Span`), as PostgreSQL sends them: thousands of claims
cost no ``datetime`` objects on the hot paths.

Three kinds of entries, because they weigh differently:

- ``booked``: committed claims on the counsellor's time (appointments, live holds, callbacks)
  — they block time and count as the counsellor's load;
- ``serving``: the walk-in being served right now (claims of kind ``service``) — load too, but
  to the queue it means "busy until", not a commitment to fit around;
- ``unavailable``: absences and busy blocks (imported from an external calendar or entered
  by hand) — they block time but are not load.

``working`` holds the counsellor's working blocks with their modes and quota labels
(``None`` = ordinary bookable time, ``"walk_in"``… = a capacity pool).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from orchestrator.scheduling.intervals import (
    Span,
    from_micros,
    intersect_spans,
    merge_spans,
    subtract_spans,
    to_micros,
    to_span,
)
from orchestrator.scheduling.rules import WeeklyRule, WorkingBlock, expand_rules, local_day_bounds, zone
from orchestrator.scheduling.types import Interval, Mode


@dataclass(frozen=True, slots=True)
class Ledger:
    """One counsellor's time: who they are (skills, languages, modes), when they work, and
    what is already committed. Build it with :meth:`of` from ``Interval``\\ s, or directly with
    spans (the loader does)."""

    id: str
    skills: frozenset[str]
    languages: frozenset[str]
    modes: frozenset[Mode]
    working: tuple[WorkingBlock, ...] = ()
    booked_spans: tuple[Span, ...] = ()
    unavailable_spans: tuple[Span, ...] = ()
    serving_spans: tuple[Span, ...] = ()

    @classmethod
    def of(
        cls,
        id: str,
        skills: Iterable[str] = (),
        languages: Iterable[str] = (),
        modes: Iterable[Mode] = frozenset(Mode),
        working: Iterable[WorkingBlock] = (),
        booked: Iterable[Interval] = (),
        unavailable: Iterable[Interval] = (),
        serving: Iterable[Interval] = (),
    ) -> Ledger:
        """A ledger from ``Interval``\\ s (tests, the simulator, callers outside the hot path)."""
        return cls(
            id=id,
            skills=frozenset(skills),
            languages=frozenset(languages),
            modes=frozenset(modes),
            working=tuple(working),
            booked_spans=tuple(map(to_span, booked)),
            unavailable_spans=tuple(map(to_span, unavailable)),
            serving_spans=tuple(map(to_span, serving)),
        )

    @property
    def booked(self) -> tuple[Interval, ...]:
        return tuple(Interval(from_micros(s), from_micros(e)) for s, e in self.booked_spans)

    @property
    def unavailable(self) -> tuple[Interval, ...]:
        return tuple(Interval(from_micros(s), from_micros(e)) for s, e in self.unavailable_spans)

    def load_spans(self) -> tuple[Span, ...]:
        """What counts as the counsellor's load: booked and serving time."""
        return (*self.booked_spans, *self.serving_spans) if self.serving_spans else self.booked_spans

    def serving_until(self, now: datetime) -> datetime | None:
        """The end of the walk-in service in progress at ``now`` (None: not serving)."""
        after = to_micros(now)
        ends = [e for _, e in self.serving_spans if e > after]
        return from_micros(max(ends)) if ends else None

    def commitments(self, now: datetime) -> tuple[Interval, ...]:
        """What the walk-in queue must fit new work around, merged, ending after ``now``:
        booked and unavailable time (the service in progress is :meth:`serving_until`)."""
        after = to_micros(now)
        spans = merge_spans(sp for sp in (*self.booked_spans, *self.unavailable_spans) if sp[1] > after)
        return tuple(Interval(from_micros(s), from_micros(e)) for s, e in spans)


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """A counsellor's time as stored: weekly rules not yet expanded, claims and absences as
    parallel tuples of epoch-µs starts and ends (the loader's row, before :func:`build_ledgers`)."""

    id: str
    skills: frozenset[str]
    languages: frozenset[str]
    modes: frozenset[Mode]
    rules: tuple[WeeklyRule, ...]
    booked_starts: tuple[int, ...]
    booked_ends: tuple[int, ...]
    unavailable_starts: tuple[int, ...]
    unavailable_ends: tuple[int, ...]
    serving_starts: tuple[int, ...] = ()
    serving_ends: tuple[int, ...] = ()
    # the capacity plan's reservations of this counsellor's free time (walk_in, callback)
    reserved_starts: tuple[int, ...] = ()
    reserved_ends: tuple[int, ...] = ()
    reserved_pools: tuple[str, ...] = ()


def build_ledgers(records: Iterable[LedgerRecord], tz: str, first_day: date, last_day: date) -> list[Ledger]:
    """Ledgers of the local days ``first_day..last_day`` in ``tz``: each record's rules expanded
    (identical weekly schedules, the common case, are expanded once), claims as loaded."""
    return [
        Ledger(
            id=r.id,
            skills=r.skills,
            languages=r.languages,
            modes=r.modes,
            working=relabel(
                _expanded(r.rules, tz, first_day, last_day),
                tuple(zip(r.reserved_starts, r.reserved_ends, r.reserved_pools, strict=True)),
            ),
            booked_spans=tuple(zip(r.booked_starts, r.booked_ends, strict=True)),
            unavailable_spans=tuple(zip(r.unavailable_starts, r.unavailable_ends, strict=True)),
            serving_spans=tuple(zip(r.serving_starts, r.serving_ends, strict=True)),
        )
        for r in records
    ]


def relabel(
    working: tuple[WorkingBlock, ...], reserved: Sequence[tuple[int, int, str]]
) -> tuple[WorkingBlock, ...]:
    """``working`` with the reserved spans of bookable blocks (quota ``None``) relabelled to
    their pool (``walk_in``, ``callback``): the capacity plan as the ledger carries it. Blocks a
    rule already labels keep their label; no minute is added or lost."""
    if not reserved:
        return working
    pools: dict[str, list[Span]] = {}
    for start, end, pool in reserved:
        pools.setdefault(pool, []).append((start, end))
    by_pool = {pool: merge_spans(spans) for pool, spans in pools.items()}
    every = merge_spans(span for spans in by_pool.values() for span in spans)
    out: list[WorkingBlock] = []
    for block in working:
        if block.quota is not None:
            out.append(block)
            continue
        span = [to_span(block.interval)]
        out += [_part(block, s, e, None) for s, e in subtract_spans(span, every)]
        for pool, spans in by_pool.items():
            out += [_part(block, s, e, pool) for s, e in intersect_spans(span, spans)]
    out.sort(key=lambda b: (b.interval.start, b.interval.end, b.quota or ""))
    return tuple(out)


def _part(block: WorkingBlock, start: int, end: int, quota: str | None) -> WorkingBlock:
    return WorkingBlock(Interval(from_micros(start), from_micros(end)), block.modes, quota)


@lru_cache(maxsize=1024)
def _expanded(
    rules: tuple[WeeklyRule, ...], tz: str, first_day: date, last_day: date
) -> tuple[WorkingBlock, ...]:
    return tuple(expand_rules(rules, tz, first_day, last_day))


MAX_BUFFER = timedelta(minutes=240)
"""The longest buffer a service may have before or after (the API caps both at 240 minutes)."""


@dataclass(frozen=True, slots=True)
class LedgerRange:
    """What to load for decisions about starts in a window: the whole local days it touches
    (a rule never crosses midnight; the counsellor choice weighs each counsellor's load over
    the slot's local day), and claims over those days widened by the longest buffer."""

    first_day: date
    last_day: date
    since: datetime
    until: datetime


def ledger_range(window: Interval, tz: str) -> LedgerRange:
    """The :class:`LedgerRange` of ``window`` in the agency's zone ``tz``."""
    local = zone(tz)
    first_day = window.start.astimezone(local).date()
    last_day = (window.end - timedelta(microseconds=1)).astimezone(local).date()
    return LedgerRange(
        first_day,
        last_day,
        local_day_bounds(first_day, tz).start - MAX_BUFFER,
        local_day_bounds(last_day, tz).end + MAX_BUFFER,
    )


def ledger_day_window(span: LedgerRange, tz: str) -> Interval:
    """The local days of ``span`` as one window (starts a ledger of that range can decide)."""
    return Interval(local_day_bounds(span.first_day, tz).start, local_day_bounds(span.last_day, tz).end)
