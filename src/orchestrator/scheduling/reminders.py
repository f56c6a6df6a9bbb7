"""When to remind: offsets before an appointment, moved out of the agency's quiet hours.

Quiet hours are local wall-clock (default 20:00-08:00, wrapping midnight) expanded with
``zoneinfo`` on the day concerned, so DST days are right. A reminder that falls in quiet hours
moves *later* (to the end of the quiet period) when that still leaves ``min_lead`` before the
appointment, else *earlier* (``early_margin`` before the quiet period starts) when that is still
in the future; otherwise it is dropped: a reminder that cannot arrive usefully is not sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_OFFSETS = (timedelta(hours=48), timedelta(hours=2))


@dataclass(frozen=True, slots=True)
class QuietHours:
    """``start`` to ``end`` local time; ``start > end`` wraps midnight; ``start == end``: never quiet."""

    start: time = time(20, 0)
    end: time = time(8, 0)

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``"20:00-08:00"`` (empty: never quiet)."""
        if not text.strip():
            return cls(time(0), time(0))
        first, _, second = text.partition("-")
        try:
            return cls(time.fromisoformat(first.strip()), time.fromisoformat(second.strip()))
        except ValueError as exc:
            raise ValueError(f"quiet hours must look like 20:00-08:00, got {text!r}") from exc

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def period_around(self, moment: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The quiet period (UTC start, UTC end) containing ``moment``, which must be quiet."""
        local = moment.astimezone(tz)
        day = local.date()
        if self.start > self.end and local.time() < self.end:
            day -= timedelta(days=1)  # after midnight: the period began the evening before
        begins = _at(day, self.start, tz)
        ends = _at(day + timedelta(days=1) if self.start > self.end else day, self.end, tz)
        return begins, ends


def _at(day: date, wall: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, wall, tzinfo=tz).astimezone(UTC)


def sendable_at(
    moment: datetime,
    *,
    quiet: QuietHours,
    tz: str,
    now: datetime,
    deadline: datetime,
    min_lead: timedelta = timedelta(minutes=30),
    early_margin: timedelta = timedelta(minutes=30),
) -> datetime | None:
    """``moment`` moved out of quiet hours (see the module doc), or None when no useful time is
    left: the message must arrive at least ``min_lead`` before ``deadline`` and not before now."""
    zone = ZoneInfo(tz)
    moment = max(moment, now)
    if not quiet.contains(moment.astimezone(zone).time()):
        return moment if moment <= deadline - min_lead else None
    begins, ends = quiet.period_around(moment, zone)
    if ends <= deadline - min_lead:
        return ends
    earlier = begins - early_margin
    return earlier if now <= earlier <= deadline - min_lead else None


def reminder_times(
    starts_at: datetime,
    *,
    offsets: tuple[timedelta, ...] = DEFAULT_OFFSETS,
    quiet: QuietHours,
    tz: str,
    now: datetime,
    min_gap: timedelta = timedelta(hours=1),
) -> list[tuple[timedelta, datetime]]:
    """(offset, when) for each reminder still worth sending, earliest first.

    A reminder whose time has passed is skipped (the booking confirmation is enough), and one
    that would land within ``min_gap`` of an earlier one is dropped as a duplicate.
    """
    kept: list[tuple[timedelta, datetime]] = []
    for offset in sorted(offsets, reverse=True):
        wanted = starts_at - offset
        if wanted < now:
            continue
        when = sendable_at(wanted, quiet=quiet, tz=tz, now=now, deadline=starts_at)
        if when is None or any(abs(when - other) < min_gap for _, other in kept):
            continue
        kept.append((offset, when))
    return kept
