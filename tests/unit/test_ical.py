"""Our VTIMEZONEs as yearly rules: an independent reader (vobject, on dateutil) finds the same
instants as zoneinfo, on and around every change of clocks, in zones north and south, with
half-hour shifts, without daylight saving time, and where the rules changed (listed instead)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import vobject
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.ical import CalendarEvent, calendar_ics, vtimezone

ZONES = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Sao_Paulo"]


def _read_back(start: datetime, tz: str) -> datetime:
    event = CalendarEvent("u@test", start, start + timedelta(minutes=30), "s", "", 0, start)
    return vobject.readOne(calendar_ics([event], tz=tz).decode()).vevent.dtstart.value  # type: ignore[no-any-return]


@settings(max_examples=150, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    start=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
)
def test_an_independent_reader_finds_the_same_instant(zone: str, start: datetime) -> None:
    start = start.replace(second=0, microsecond=0)
    read = _read_back(start, zone)
    assert read == start
    local = start.astimezone(ZoneInfo(zone))
    ambiguous = local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset()
    assert read.utcoffset() == (timedelta(0) if ambiguous else local.utcoffset())


@pytest.mark.parametrize(
    ("zone", "local"),
    [
        ("Europe/Paris", datetime(2026, 3, 29, 9, 0)),  # the first morning of summer time
        ("Europe/Paris", datetime(2026, 3, 27, 9, 0)),
        ("Europe/Paris", datetime(2026, 10, 25, 9, 0)),  # the first morning of winter time
        ("Europe/Paris", datetime(2026, 10, 26, 9, 0)),
        ("America/New_York", datetime(2026, 11, 1, 9, 0)),
    ],
)
def test_mornings_around_the_changes_of_clocks(zone: str, local: datetime) -> None:
    start = local.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    assert _read_back(start, zone).replace(tzinfo=None) == local


def test_rules_are_written_as_yearly_rules_and_changed_rules_are_listed() -> None:
    paris = vtimezone("Europe/Paris", 2026, 2026)
    assert paris is not None
    text = paris.to_ical().decode()
    assert "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3" in text and "DTSTART:19700329T020000" in text
    assert "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10" in text and "DTSTART:19701025T030000" in text
    assert vtimezone("Europe/Moscow", 2011, 2011) is None  # Moscow stopped changing clocks in 2011
    moscow = datetime(2011, 1, 10, 6, 0, tzinfo=UTC)
    assert _read_back(moscow, "Europe/Moscow") == moscow  # listed transitions, still right


def test_a_time_that_happens_twice_is_written_in_utc() -> None:
    first = datetime(2025, 11, 2, 5, 0, tzinfo=UTC)  # 1:00 EDT; an hour later it is 1:00 EST again
    assert _read_back(first, "America/New_York") == first
    assert _read_back(first + timedelta(hours=1), "America/New_York") == first + timedelta(hours=1)
    text = calendar_ics(
        [CalendarEvent("u@test", first, first + timedelta(minutes=30), "s", "", 0, first)],
        tz="America/New_York",
    )
    assert b"DTSTART:20251102T050000Z" in text
