"""Shared vocabulary of the core: time intervals, modes and channels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class Mode(StrEnum):
    """How a counsellor meets a job seeker."""

    IN_PERSON = "in_person"
    PHONE = "phone"
    VIDEO = "video"


def require_utc(moment: datetime) -> datetime:
    """Return ``moment`` converted to UTC; raise ``ValueError`` if it is naive."""
    if moment.tzinfo is UTC:  # fast path: what the database driver returns
        return moment
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime not allowed: {moment.isoformat()}")
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """Half-open time interval ``[start, end)`` between aware UTC datetimes.

    Invariant: both ends are aware and ``start < end``.
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start, end = require_utc(self.start), require_utc(self.end)
        if not start < end:
            raise ValueError(f"empty or inverted interval {start.isoformat()} .. {end.isoformat()}")
        if start is not self.start:
            object.__setattr__(self, "start", start)
        if end is not self.end:
            object.__setattr__(self, "end", end)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end

    def contains(self, other: Interval) -> bool:
        return self.start <= other.start and other.end <= self.end
