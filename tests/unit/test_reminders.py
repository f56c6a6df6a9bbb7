"""Reminders at their offsets, moved out of quiet hours (on DST days too), or dropped."""

from datetime import UTC, datetime, time, timedelta

import pytest

from orchestrator.scheduling.reminders import QuietHours, reminder_times, sendable_at

PARIS = "Europe/Paris"
QUIET = QuietHours()  # 20:00-08:00


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_parse_and_wrap_midnight():
    quiet = QuietHours.parse("21:30-07:00")
    assert (quiet.start, quiet.end) == (time(21, 30), time(7, 0))
    assert quiet.contains(time(23, 0)) and quiet.contains(time(6, 59)) and not quiet.contains(time(7, 0))
    assert not QuietHours.parse("").contains(time(3, 0))
    with pytest.raises(ValueError, match="20:00-08:00"):
        QuietHours.parse("evenings")


def test_reminders_at_48h_and_2h_in_the_day():
    starts = utc(2026, 3, 12, 13, 0)  # Thursday 14:00 Paris
    got = reminder_times(starts, quiet=QUIET, tz=PARIS, now=utc(2026, 3, 2, 9, 0))
    assert got == [
        (timedelta(hours=48), utc(2026, 3, 10, 13, 0)),
        (timedelta(hours=2), utc(2026, 3, 12, 11, 0)),
    ]


def test_an_early_appointment_reminder_moves_later_to_the_morning():
    starts = utc(2026, 3, 12, 8, 30)  # 9:30 Paris: 2 h before is 7:30, in quiet hours
    got = dict(reminder_times(starts, quiet=QUIET, tz=PARIS, now=utc(2026, 3, 2, 9, 0)))
    assert got[timedelta(hours=2)] == utc(2026, 3, 12, 7, 0)  # 8:00 Paris, still 90 min before


def test_when_later_is_too_late_it_moves_to_the_evening_before():
    starts = utc(2026, 3, 12, 7, 15)  # 8:15 Paris: 8:00 leaves only 15 min
    got = dict(reminder_times(starts, quiet=QUIET, tz=PARIS, now=utc(2026, 3, 2, 9, 0)))
    assert got[timedelta(hours=2)] == utc(2026, 3, 11, 18, 30)  # 19:30 Paris the evening before
    # the 48 h reminder (8:15 two days before) is fine; the two are more than an hour apart


def test_a_reminder_with_no_useful_time_is_dropped():
    now = utc(2026, 3, 11, 22, 0)  # 23:00 Paris, the night before an 8:15 appointment
    got = reminder_times(utc(2026, 3, 12, 7, 15), quiet=QUIET, tz=PARIS, now=now)
    assert got == []


def test_reminders_already_past_are_skipped():
    got = reminder_times(utc(2026, 3, 2, 12, 0), quiet=QUIET, tz=PARIS, now=utc(2026, 3, 2, 9, 0))
    assert [offset for offset, _ in got] == [timedelta(hours=2)]


def test_quiet_hours_follow_the_clock_change():
    # Sunday 29 March 2026: Paris goes from UTC+1 to UTC+2 at 2:00; quiet ends at 8:00 local = 6:00 UTC
    moment = utc(2026, 3, 29, 4, 0)  # 6:00 Paris (summer time)
    when = sendable_at(moment, quiet=QUIET, tz=PARIS, now=moment, deadline=utc(2026, 3, 29, 12, 0))
    assert when == utc(2026, 3, 29, 6, 0)
    # and in autumn (25 October: back to UTC+1) 8:00 local is 7:00 UTC
    moment = utc(2026, 10, 25, 5, 0)
    when = sendable_at(moment, quiet=QUIET, tz=PARIS, now=moment, deadline=utc(2026, 10, 25, 12, 0))
    assert when == utc(2026, 10, 25, 7, 0)


def test_overseas_agencies_use_their_own_night():
    # Noumea is UTC+11: 22:00 UTC is 9:00 the next morning there, not quiet
    moment = utc(2026, 3, 2, 22, 0)
    assert (
        sendable_at(moment, quiet=QUIET, tz="Pacific/Noumea", now=moment, deadline=utc(2026, 3, 3, 6, 0))
        == moment
    )


def test_close_reminders_collapse_into_one():
    starts = utc(2026, 3, 4, 8, 0)  # 9:00 Paris, Wednesday
    offsets = (timedelta(hours=13), timedelta(hours=12))  # both in the night → both moved to 19:30
    got = reminder_times(starts, offsets=offsets, quiet=QUIET, tz=PARIS, now=utc(2026, 3, 2, 9, 0))
    assert len(got) == 1
