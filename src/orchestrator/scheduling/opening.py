"""An agency's opening hours: is it open at an instant, and when does it open next.

Hours are local wall-clock windows per weekday (``{"0": [("08:30", "12:00"), ...]}``, Monday
= "0"), expanded in the agency's zone with :func:`~orchestrator.scheduling.rules.wall_to_utc`
(DST-safe). A weekday without windows is a closed day, and so is any date in ``closed_dates``
(public holidays, exceptional closures). An agency with no hours at all is always open: hours are
opt-in, so an agency that has not entered them is never locked out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime, time, timedelta

from orchestrator.scheduling.rules import wall_to_utc, zone
from orchestrator.scheduling.types import Interval, require_utc

OpeningHours = Mapping[str, Sequence[Sequence[str]]]
LOOKAHEAD_DAYS = 31


def _wall(hhmm: str) -> time:
    return time(int(hhmm[:2]), int(hhmm[3:5]))


def windows_on(
    hours: OpeningHours, tz: str, day: date, closed_dates: Collection[date] = ()
) -> list[Interval]:
    """The opening windows of local ``day`` as UTC intervals, in order (none on a closed day)."""
    if day in closed_dates:
        return []
    return [
        Interval(wall_to_utc(day, _wall(start), tz), wall_to_utc(day, _wall(end), tz))
        for start, end in sorted(hours.get(str(day.weekday()), ()), key=lambda window: window[0])
    ]


def is_open(hours: OpeningHours, tz: str, now: datetime, closed_dates: Collection[date] = ()) -> bool:
    """Whether the agency is open at ``now`` (always, if it has no hours)."""
    if not hours:
        return True
    now = require_utc(now)
    today = now.astimezone(zone(tz)).date()
    return any(w.start <= now < w.end for w in windows_on(hours, tz, today, closed_dates))


def next_opening(
    hours: OpeningHours, tz: str, now: datetime, closed_dates: Collection[date] = ()
) -> datetime | None:
    """The start of the first opening window after ``now`` within a month; None if there is none."""
    now = require_utc(now)
    today = now.astimezone(zone(tz)).date()
    for offset in range(LOOKAHEAD_DAYS + 1):
        for window in windows_on(hours, tz, today + timedelta(days=offset), closed_dates):
            if window.start > now:
                return window.start
    return None
