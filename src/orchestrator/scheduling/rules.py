"""Weekly wall-clock working rules and their expansion into UTC working blocks.

This is the one place where local wall-clock time becomes UTC (``zoneinfo``).

DST policy (applies to every wall time converted here, via ``wall_to_utc``):

- **Skipped wall time** (spring forward, e.g. 02:00-02:59 in Europe/Paris on
  2026-03-29): the wall time is *clamped forward to the first valid instant*, i.e. the
  transition instant itself (02:00 and 02:30 both become 03:00 CEST = 01:00Z).
  This is deliberately NOT the naive ``fold=0`` + UTC round trip, which maps 02:30 to
  03:30 and can therefore invert a rule such as 02:30-03:15; clamping is monotone, so a
  rule's start never ends up after its end — at worst the block becomes empty.
- **Repeated wall time** (fall back, e.g. 02:00-02:59 in Europe/Paris on 2026-10-25):
  the *first occurrence* is used (``fold=0``, the summer-time offset).
  A rule 02:00-03:00 on that day therefore lasts two real hours (00:00Z-02:00Z).
- A block that becomes empty after these adjustments is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrator.scheduling.types import Interval, Mode

_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class WeeklyRule:
    """A recurring local wall-clock working period: ``weekday`` 0=Monday … 6=Sunday,
    ``[start, end)`` naive local times on that day, the modes offered, and an optional
    capacity-pool label ``quota`` (e.g. ``"walk_in"``; ``None`` = bookable time). It applies on
    local days from ``valid_from`` to ``valid_until`` inclusive (``None``: no bound).

    ``ValueError`` if weekday is outside 0..6, ``start >= end``, a time is aware, or
    ``modes`` is empty.
    """

    weekday: int
    start: time
    end: time
    modes: frozenset[Mode]
    quota: str | None = None
    valid_from: date | None = None
    valid_until: date | None = None

    def applies_on(self, day: date) -> bool:
        """The rule is in force on local ``day`` (its weekday aside)."""
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )

    def __post_init__(self) -> None:
        if isinstance(self.weekday, bool) or not isinstance(self.weekday, int) or not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be an int in 0..6 (0=Monday), got {self.weekday!r}")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("rule times are local wall-clock times and must be naive")
        if not self.start < self.end:
            raise ValueError(f"rule start {self.start} must be before end {self.end}")
        if not self.modes:
            raise ValueError("a rule must offer at least one mode")


@dataclass(frozen=True, slots=True)
class WorkingBlock:
    """A concrete period of working time in UTC, with its modes and capacity pool."""

    interval: Interval
    modes: frozenset[Mode]
    quota: str | None = None


def zone(tz: str) -> ZoneInfo:
    """The ``ZoneInfo`` for an IANA key; ``ValueError`` if unknown."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc


def wall_to_utc(day: date, wall: time, tz: str) -> datetime:
    """The UTC instant of local wall-clock ``wall`` on ``day`` in zone ``tz``.

    Skipped wall times are clamped to the transition instant (first valid instant
    after the gap); repeated wall times use the first occurrence (``fold=0``).
    See the module docstring. ``ValueError`` if ``wall`` is aware or ``tz`` unknown.
    """
    if wall.tzinfo is not None:
        raise ValueError("wall time must be naive")
    tzinfo = zone(tz)
    naive = datetime.combine(day, wall.replace(fold=0))
    utc = naive.replace(tzinfo=tzinfo).astimezone(UTC)
    if utc.astimezone(tzinfo).replace(tzinfo=None) == naive:
        return utc
    # In a gap: fold=0 uses the offset before the transition (latest candidate, at or
    # after the transition), fold=1 the offset after it (strictly before it).
    # The transition lies in (early, late]; tzdata transitions are whole seconds.
    late = utc
    early = naive.replace(tzinfo=tzinfo, fold=1).astimezone(UTC)
    offset_after = late.astimezone(tzinfo).utcoffset()
    while late - early > _SECOND:
        mid = early + max(1, (late - early) // _SECOND // 2) * _SECOND
        if mid.astimezone(tzinfo).utcoffset() == offset_after:
            late = mid
        else:
            early = mid
    return late


def local_day_bounds(day: date, tz: str) -> Interval:
    """The local calendar ``day`` in ``tz`` as a UTC interval ``[midnight, next midnight)``.

    Lasts 23 h on a spring-forward day and 25 h on a fall-back day.
    """
    return Interval(wall_to_utc(day, time(0), tz), wall_to_utc(day + timedelta(days=1), time(0), tz))


def expand_rules(rules: Iterable[WeeklyRule], tz: str, first_day: date, last_day: date) -> list[WorkingBlock]:
    """Expand weekly wall-clock ``rules`` over local days ``first_day..last_day`` (inclusive).

    Each rule yields at most one block per matching local day on which it is valid, ``[start, end)`` local
    time converted with the DST policy of this module; empty blocks are dropped.
    Blocks are NOT merged (different modes/quotas must stay distinct). The result is
    sorted by (start, end, modes, quota), so it does not depend on the order of ``rules``.
    Returns ``[]`` when ``first_day > last_day``. ``ValueError`` if ``tz`` is unknown.
    """
    zone(tz)  # validate early, even for an empty range
    by_weekday: dict[int, list[WeeklyRule]] = {}
    for rule in rules:
        by_weekday.setdefault(rule.weekday, []).append(rule)
    blocks: list[WorkingBlock] = []
    day = first_day
    while day <= last_day:
        for rule in by_weekday.get(day.weekday(), ()):
            block = _rule_on_day(rule, tz, day) if rule.applies_on(day) else None
            if block is not None:
                blocks.append(block)
        day += timedelta(days=1)
    blocks.sort(key=_block_key)
    return blocks


@lru_cache(maxsize=65_536)
def _rule_on_day(rule: WeeklyRule, tz: str, day: date) -> WorkingBlock | None:
    """One rule on one local day (memoized: a pure function of hashable, immutable inputs;
    availability asks for the same weeks over and over)."""
    start = wall_to_utc(day, rule.start, tz)
    end = wall_to_utc(day, rule.end, tz)
    return WorkingBlock(Interval(start, end), rule.modes, rule.quota) if start < end else None


def _block_key(block: WorkingBlock) -> tuple[datetime, datetime, tuple[str, ...], bool, str]:
    return (
        block.interval.start,
        block.interval.end,
        tuple(sorted(block.modes)),
        block.quota is not None,
        block.quota or "",
    )
