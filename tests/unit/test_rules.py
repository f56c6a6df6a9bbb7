"""Weekly rules → UTC working blocks, across DST and in overseas zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.scheduling.rules import (
    WeeklyRule,
    WorkingBlock,
    expand_rules,
    local_day_bounds,
    wall_to_utc,
)
from orchestrator.scheduling.types import Interval, Mode

ALL = frozenset(Mode)
PARIS = "Europe/Paris"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def spans(blocks: list[WorkingBlock]) -> list[tuple[datetime, datetime]]:
    return [(b.interval.start, b.interval.end) for b in blocks]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("weekday", "start", "end"),
    [(0, time(12), time(9)), (0, time(9), time(9)), (7, time(9), time(10)), (-1, time(9), time(10))],
)
def test_invalid_rules_are_rejected(weekday: int, start: time, end: time) -> None:
    with pytest.raises(ValueError, match=r"weekday|before"):
        WeeklyRule(weekday, start, end, ALL)


def test_rule_rejects_bool_weekday_aware_times_and_no_modes() -> None:
    with pytest.raises(ValueError, match="weekday"):
        WeeklyRule(True, time(9), time(10), ALL)
    with pytest.raises(ValueError, match="naive"):
        WeeklyRule(0, time(9, tzinfo=UTC), time(10, tzinfo=UTC), ALL)
    with pytest.raises(ValueError, match="mode"):
        WeeklyRule(0, time(9), time(10), frozenset())


def test_unknown_zone_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        expand_rules([], "Mars/Olympus_Mons", date(2026, 1, 1), date(2026, 1, 2))


# --------------------------------------------------------------------------- expansion


def test_expand_basic_sorted_and_order_independent() -> None:
    rules = [
        WeeklyRule(2, time(14), time(16), frozenset({Mode.PHONE})),
        WeeklyRule(0, time(9), time(12), ALL, quota="walk_in"),
    ]
    blocks = expand_rules(rules, PARIS, date(2026, 6, 1), date(2026, 6, 14))
    assert spans(blocks) == [
        (utc(2026, 6, 1, 7), utc(2026, 6, 1, 10)),
        (utc(2026, 6, 3, 12), utc(2026, 6, 3, 14)),
        (utc(2026, 6, 8, 7), utc(2026, 6, 8, 10)),
        (utc(2026, 6, 10, 12), utc(2026, 6, 10, 14)),
    ]
    assert blocks[0].quota == "walk_in"
    assert blocks[1].modes == frozenset({Mode.PHONE})
    assert expand_rules(list(reversed(rules)), PARIS, date(2026, 6, 1), date(2026, 6, 14)) == blocks
    assert expand_rules(rules, PARIS, date(2026, 6, 2), date(2026, 6, 1)) == []


def test_paris_monday_morning_is_local_on_both_sides_of_spring_forward() -> None:
    rule = WeeklyRule(0, time(9), time(12), ALL)
    blocks = expand_rules([rule], PARIS, date(2026, 3, 23), date(2026, 3, 30))
    assert spans(blocks) == [
        (utc(2026, 3, 23, 8), utc(2026, 3, 23, 11)),  # CET +01:00
        (utc(2026, 3, 30, 7), utc(2026, 3, 30, 10)),  # CEST +02:00
    ]


def test_paris_monday_morning_is_local_on_both_sides_of_fall_back() -> None:
    rule = WeeklyRule(0, time(9), time(12), ALL)
    blocks = expand_rules([rule], PARIS, date(2026, 10, 19), date(2026, 10, 26))
    assert spans(blocks) == [
        (utc(2026, 10, 19, 7), utc(2026, 10, 19, 10)),
        (utc(2026, 10, 26, 8), utc(2026, 10, 26, 11)),
    ]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # 02:00-02:59 does not exist on 2026-03-29 in Paris: clamped to 03:00 CEST = 01:00Z.
        (time(2), time(4), (utc(2026, 3, 29, 1), utc(2026, 3, 29, 2))),
        (time(1, 30), time(2, 30), (utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1))),
        # Clamping, not the fold=0 round trip (which would give 03:30 and invert the rule).
        (time(2, 30), time(3, 15), (utc(2026, 3, 29, 1), utc(2026, 3, 29, 1, 15))),
        (time(2, 15), time(2, 45), None),  # entirely skipped: dropped
    ],
)
def test_spring_forward_skipped_hour(
    start: time, end: time, expected: tuple[datetime, datetime] | None
) -> None:
    day = date(2026, 3, 29)  # a Sunday
    blocks = expand_rules([WeeklyRule(6, start, end, ALL)], PARIS, day, day)
    assert spans(blocks) == ([] if expected is None else [expected])


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # 02:00-02:59 happens twice on 2026-10-25: the first occurrence (CEST) is used,
        # so 02:00-03:00 lasts two real hours.
        (time(2), time(3), (utc(2026, 10, 25, 0), utc(2026, 10, 25, 2))),
        (time(2, 30), time(2, 45), (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 0, 45))),
        (time(1), time(2, 30), (utc(2026, 10, 24, 23), utc(2026, 10, 25, 0, 30))),
        (time(9), time(12), (utc(2026, 10, 25, 8), utc(2026, 10, 25, 11))),
    ],
)
def test_fall_back_repeated_hour_uses_first_occurrence(
    start: time, end: time, expected: tuple[datetime, datetime]
) -> None:
    day = date(2026, 10, 25)
    assert spans(expand_rules([WeeklyRule(6, start, end, ALL)], PARIS, day, day)) == [expected]


def test_local_day_bounds_paris_23h_24h_25h() -> None:
    assert local_day_bounds(date(2026, 3, 29), PARIS) == Interval(utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))
    assert local_day_bounds(date(2026, 3, 29), PARIS).duration == timedelta(hours=23)
    assert local_day_bounds(date(2026, 6, 1), PARIS).duration == timedelta(hours=24)
    assert local_day_bounds(date(2026, 10, 25), PARIS).duration == timedelta(hours=25)


def test_local_day_bounds_when_midnight_is_skipped() -> None:
    # Cuba springs forward at 00:00: the day starts at 01:00 CDT (05:00Z).
    assert local_day_bounds(date(2026, 3, 8), "America/Havana").start == utc(2026, 3, 8, 5)


@pytest.mark.parametrize(
    ("tz", "offset_hours"),
    [("America/Cayenne", -3), ("Indian/Reunion", 4), ("Pacific/Noumea", 11)],
)
def test_overseas_zones_without_dst_keep_their_offset_all_year(tz: str, offset_hours: int) -> None:
    rule = WeeklyRule(0, time(9), time(12), ALL)
    offset = timezone(timedelta(hours=offset_hours))
    for monday in (date(2026, 1, 5), date(2026, 3, 30), date(2026, 7, 6), date(2026, 10, 26)):
        (block,) = expand_rules([rule], tz, monday, monday)
        assert block.interval.start == datetime.combine(monday, time(9), offset)
        assert block.interval.end == datetime.combine(monday, time(12), offset)
        assert local_day_bounds(monday, tz).duration == timedelta(hours=24)


def test_noumea_morning_is_previous_utc_day() -> None:
    (block,) = expand_rules(
        [WeeklyRule(0, time(9), time(12), ALL)], "Pacific/Noumea", date(2026, 6, 1), date(2026, 6, 1)
    )
    assert block.interval == Interval(utc(2026, 5, 31, 22), utc(2026, 6, 1, 1))


# --------------------------------------------------------------------------- properties

days_2026 = st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31))
walls = st.times().map(lambda t: t.replace(microsecond=0))


@given(days_2026, walls, walls)
def test_wall_to_utc_is_monotone_within_a_day(day: date, a: time, b: time) -> None:
    lo, hi = min(a, b), max(a, b)
    assert wall_to_utc(day, lo, PARIS) <= wall_to_utc(day, hi, PARIS)


@given(days_2026, walls)
def test_wall_to_utc_round_trips_existing_wall_times(day: date, wall: time) -> None:
    result = wall_to_utc(day, wall, PARIS).astimezone(ZoneInfo(PARIS))
    naive = datetime.combine(day, wall)
    if (
        naive.replace(tzinfo=ZoneInfo(PARIS)).astimezone(UTC).astimezone(ZoneInfo(PARIS)).replace(tzinfo=None)
        == naive
    ):
        assert result.replace(tzinfo=None) == naive
        assert result.fold == 0
    else:  # skipped: clamped to the first instant after the gap
        assert result.replace(tzinfo=None) > naive
        assert result.replace(tzinfo=None).time() == time(3)


def test_a_rule_applies_only_on_the_days_it_is_valid() -> None:
    rule = WeeklyRule(
        0,
        time(9),
        time(12),
        frozenset({Mode.IN_PERSON}),
        valid_from=date(2026, 3, 9),
        valid_until=date(2026, 3, 16),
    )
    blocks = expand_rules([rule], "Europe/Paris", date(2026, 3, 2), date(2026, 3, 29))
    assert [b.interval.start.date() for b in blocks] == [date(2026, 3, 9), date(2026, 3, 16)]
