"""Opening hours: open or closed at an instant, next opening, closed dates, DST days."""

from __future__ import annotations

from datetime import UTC, date, datetime

from orchestrator.scheduling.opening import is_open, next_opening, windows_on

PARIS = "Europe/Paris"
WEEKDAYS = {str(d): [("08:30", "12:30"), ("13:30", "17:00")] for d in range(5)}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_open_inside_a_window_closed_at_lunch_and_at_night() -> None:
    # Monday 2026-03-02, Paris is UTC+1
    assert is_open(WEEKDAYS, PARIS, utc(2026, 3, 2, 7, 30))  # 08:30 local: opening instant
    assert not is_open(WEEKDAYS, PARIS, utc(2026, 3, 2, 7, 29))
    assert not is_open(WEEKDAYS, PARIS, utc(2026, 3, 2, 11, 45))  # 12:45 local: lunch
    assert not is_open(WEEKDAYS, PARIS, utc(2026, 3, 2, 23, 21))  # 00:21 local on Tuesday
    assert not is_open(WEEKDAYS, PARIS, utc(2026, 3, 7, 10, 0))  # Saturday


def test_next_opening_skips_lunch_weekends_and_closed_dates() -> None:
    assert next_opening(WEEKDAYS, PARIS, utc(2026, 3, 2, 11, 45)) == utc(2026, 3, 2, 12, 30)
    assert next_opening(WEEKDAYS, PARIS, utc(2026, 3, 6, 17, 0)) == utc(2026, 3, 9, 7, 30)  # Fri → Mon
    holiday = {date(2026, 3, 9)}
    assert not is_open(WEEKDAYS, PARIS, utc(2026, 3, 9, 9, 0), holiday)
    assert next_opening(WEEKDAYS, PARIS, utc(2026, 3, 6, 17, 0), holiday) == utc(2026, 3, 10, 7, 30)


def test_no_hours_means_always_open_and_never_a_next_opening() -> None:
    assert is_open({}, PARIS, utc(2026, 3, 2, 2, 0))
    assert next_opening({}, PARIS, utc(2026, 3, 2, 2, 0)) is None


def test_windows_follow_the_local_clock_across_dst() -> None:
    sunday_hours = {"6": [("01:00", "04:00")], "5": [("08:30", "12:30")]}
    # Saturday 2026-03-28 is still UTC+1; Sunday 2026-03-29 jumps from 02:00 to 03:00
    saturday = windows_on(sunday_hours, PARIS, date(2026, 3, 28))
    assert (saturday[0].start, saturday[0].end) == (utc(2026, 3, 28, 7, 30), utc(2026, 3, 28, 11, 30))
    sunday = windows_on(sunday_hours, PARIS, date(2026, 3, 29))
    assert (sunday[0].start, sunday[0].end) == (utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 2, 0))  # 2 h, not 3
    assert is_open(sunday_hours, PARIS, utc(2026, 3, 29, 1, 59))
    assert not is_open(sunday_hours, PARIS, utc(2026, 3, 29, 2, 0))


def test_overseas_zone() -> None:
    reunion = {"0": [("07:30", "15:30")]}  # UTC+4, no DST
    assert is_open(reunion, "Indian/Reunion", utc(2026, 3, 2, 3, 30))
    assert not is_open(reunion, "Indian/Reunion", utc(2026, 3, 2, 11, 30))
