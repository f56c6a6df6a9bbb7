"""The capacity plan: Erlang C sizing, forecasts that say where they come from, conservation of
counsellor time, booked time untouched, reserves released (or raised) as the hour approaches."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta

import pytest

from orchestrator.scheduling.availability import ServiceSpec, SlotRequest, free_slots
from orchestrator.scheduling.capacity import (
    BOOKING,
    CALLBACK,
    WALK_IN,
    Demand,
    Observed,
    Prior,
    Targets,
    apply_plan,
    forecast,
    plan_day,
)
from orchestrator.scheduling.erlang import erlang_c, mean_wait, servers_for, wait_within
from orchestrator.scheduling.intervals import intersect_spans, to_span
from orchestrator.scheduling.ledger import Ledger
from orchestrator.scheduling.rules import WorkingBlock, wall_to_utc
from orchestrator.scheduling.types import Interval, Mode

TZ = "Europe/Paris"
DAY = date(2026, 3, 3)  # a Tuesday
MODES = frozenset({Mode.IN_PERSON, Mode.PHONE})


def local(hour: int, minute: int = 0) -> datetime:
    return wall_to_utc(DAY, time(hour, minute), TZ)


def counsellor(cid: str, *booked: tuple[datetime, datetime], quota: str | None = None) -> Ledger:
    return Ledger.of(
        cid,
        languages={"fr"},
        modes=MODES,
        working=[WorkingBlock(Interval(local(9), local(17)), MODES, quota)],
        booked=[Interval(a, b) for a, b in booked],
    )


def demand(walk: float, call: float, book: float = 0.0) -> list[Demand]:
    return [
        Demand(channel, hour, rate, minutes, "test")
        for hour in range(9, 17)
        for channel, rate, minutes in ((WALK_IN, walk, 20.0), (CALLBACK, call, 12.0), (BOOKING, book, 30.0))
    ]


# --- Erlang C -----------------------------------------------------------------------------------


def test_erlang_c_matches_the_single_counsellor_formula_and_known_values():
    # M/M/1: the mean wait is rho * service / (1 - rho); 2 an hour, 20 minutes each: rho = 2/3
    assert mean_wait(2, 20, 1) == pytest.approx(40.0)
    assert erlang_c(1, 2 / 3) == pytest.approx(2 / 3)
    # 2 Erlangs on 3 counsellors: C = 4/9 (the textbook value)
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9)
    assert mean_wait(6, 20, 2) == math.inf  # 2 Erlangs on 2 counsellors never catches up
    assert wait_within(0, 20, 1, 5) == 1.0


def test_servers_for_is_the_fewest_that_meet_the_target():
    n = servers_for(12, 20, 15, 0.8)  # 4 Erlangs
    assert wait_within(12, 20, n, 15) >= 0.8 > wait_within(12, 20, n - 1, 15)
    assert servers_for(0, 20, 15) == 0


# --- forecast -----------------------------------------------------------------------------------


def test_forecasts_blend_history_with_a_prior_and_say_so():
    prior = Prior(walk_ins_per_hour=4.0)
    history = {(WALK_IN, 9): Observed(arrivals=120, weeks=12, served=120, minutes=120 * 15.0)}
    by_key = {(d.channel, d.hour): d for d in forecast(history, [9, 10], prior)}
    nine = by_key[(WALK_IN, 9)]
    assert nine.per_hour == pytest.approx((4.0 * 4 + 120) / 16, abs=0.01)  # 8.5/h: history dominates
    assert nine.service_minutes == pytest.approx((20 * 4 + 1800) / 124, abs=0.1)
    assert nine.source.startswith("history: 120 over 12 weeks")
    assert by_key[(WALK_IN, 10)].source.startswith("prior")  # no history for 10:00


# --- the plan -----------------------------------------------------------------------------------


def _reserved_minutes(plan, cid: str, hour_start: datetime) -> int:  # type: ignore[no-untyped-def]
    window = [(to_span(Interval(hour_start, hour_start + timedelta(hours=1))))]
    spans = [to_span(Interval(r.start, r.end)) for r in plan.reservations if r.counsellor_id == cid]
    return sum(e - s for s, e in intersect_spans(sorted(spans), window)) // 60_000_000


def test_the_plan_conserves_counsellor_time_and_never_touches_booked_time():
    ledgers = [counsellor(f"c{i}", (local(9 + i), local(9 + i, 30))) for i in range(6)]
    plan = plan_day(ledgers, DAY, TZ, demand(walk=4, call=4, book=2), now=local(0) - timedelta(days=2))
    assert [h.hour for h in plan.hours] == list(range(9, 17))
    for hour in plan.hours:
        assert hour.walk_in + hour.callback + hour.booking == hour.counsellors == 6
        assert hour.walk_in >= 1 and hour.callback >= 1 and all(hour.reasons)
    for ledger in ledgers:
        booked = list(ledger.booked_spans)
        for r in plan.reservations:
            if r.counsellor_id == ledger.id:
                assert not intersect_spans([to_span(Interval(r.start, r.end))], booked)
        relabelled = apply_plan(ledger, plan.reservations)
        assert relabelled.booked_spans == ledger.booked_spans
        total = sum((b.interval.end - b.interval.start for b in relabelled.working), timedelta())
        assert total == timedelta(hours=8)  # split and relabelled, not one minute more or less
    for hour in plan.hours:  # a reserved counsellor's whole free hour goes to its pool
        for cid in {
            r.counsellor_id
            for r in plan.reservations
            if r.start >= hour.start and r.start < hour.start + timedelta(hours=1)
        }:
            assert _reserved_minutes(plan, cid, hour.start) in (30, 60)


def test_reserved_time_is_not_offered_to_online_booking():
    ledgers = [counsellor("c0"), counsellor("c1")]
    plan = plan_day(ledgers, DAY, TZ, demand(walk=0.5, call=0), now=local(0) - timedelta(days=2))
    assert all(h.walk_in == 1 and h.booking == 1 for h in plan.hours)
    spec = ServiceSpec(
        "s", timedelta(minutes=30), MODES, None, timedelta(0), timedelta(days=30), timedelta(0), timedelta(0)
    )
    window = Interval(local(9), local(10))
    planned = [apply_plan(x, plan.reservations) for x in ledgers]
    reserved = {r.counsellor_id for r in plan.reservations if r.start == local(9)}
    assert len(reserved) == 1
    for cid in ("c0", "c1"):
        mine = SlotRequest(counsellor_id=cid)
        before = free_slots(spec, ledgers, window, local(0), mine, tz=TZ)
        offered = free_slots(spec, planned, window, local(0), mine, tz=TZ)
        assert before and offered == ([] if cid in reserved else before)


def test_reserves_follow_what_is_seen_as_the_hour_approaches():
    ledgers = [counsellor(f"c{i}") for i in range(8)]
    ahead = plan_day(ledgers, DAY, TZ, demand(walk=9, call=0), now=local(0) - timedelta(days=2))
    quiet = plan_day(ledgers, DAY, TZ, demand(walk=9, call=0), now=local(10), walk_ins_last_hour=1)
    surge = plan_day(ledgers, DAY, TZ, demand(walk=9, call=0), now=local(10), walk_ins_last_hour=20)
    by_hour = lambda plan: {h.hour: h.walk_in for h in plan.hours}  # noqa: E731
    assert by_hour(quiet)[11] < by_hour(ahead)[11]  # released to booking within the horizon
    assert by_hour(surge)[11] > by_hour(ahead)[11]  # reserved again when walk-ins surge
    assert by_hour(quiet)[14] == by_hour(ahead)[14] == by_hour(surge)[14]  # beyond it: the forecast
    assert "release" in quiet.hours[2].reasons[0] and "surge" in surge.hours[2].reasons[0]


def test_desk_duty_written_in_the_rules_is_a_floor_and_bookings_are_served_first():
    ledgers = [counsellor("desk", quota=WALK_IN), counsellor("c1"), counsellor("c2")]
    plan = plan_day(ledgers, DAY, TZ, demand(walk=0.5, call=20, book=4), now=local(0) - timedelta(days=2))
    for hour in plan.hours:
        assert hour.walk_in >= 1  # the rule's desk duty stays
        assert hour.booking >= 2 or hour.callback == 0  # 2 counsellors' worth of bookings first
    assert all(r.counsellor_id == "desk" for r in plan.reservations if r.pool == WALK_IN)


def test_the_plan_is_computed_fast_for_fifty_counsellors():
    ledgers = [counsellor(f"c{i:02d}", (local(10), local(10, 30))) for i in range(50)]
    plan = plan_day(ledgers, DAY, TZ, demand(walk=40, call=10, book=20), now=datetime(2026, 3, 1, tzinfo=UTC))
    assert len(plan.hours) == 8 and all(h.counsellors == 50 for h in plan.hours)


def test_an_agency_without_history_still_offers_online_slots():
    ledgers = [counsellor(f"c{i}") for i in range(4)]
    prior = forecast({}, range(9, 17), Prior())  # no history at all: the prior alone
    plan = plan_day(ledgers, DAY, TZ, prior, now=local(0) - timedelta(days=2))
    assert all(h.walk_in + h.callback <= 3 and h.booking >= 1 for h in plan.hours)  # at most 75 % kept
    assert all("prior" in h.reasons[0] for h in plan.hours)


def test_overbooking_on_purpose_is_off_unless_asked_and_follows_measured_no_shows():
    ledgers = [counsellor(f"c{i}") for i in range(12)]
    busy = demand(walk=9, call=0, book=8)  # bookings need 4 counsellors an hour
    off = plan_day(ledgers, DAY, TZ, busy, now=local(0) - timedelta(days=2))
    on = plan_day(
        ledgers, DAY, TZ, busy, now=local(0) - timedelta(days=2), targets=Targets(no_show_rate=0.25)
    )
    assert all(a.walk_in == b.walk_in + 1 for a, b in zip(off.hours, on.hours, strict=True))
    assert all(b.booking == a.booking + 1 for a, b in zip(off.hours, on.hours, strict=True))
    assert "measured no-shows (25%)" in on.hours[0].reasons[0]
    assert "no-shows" not in off.hours[0].reasons[0]
