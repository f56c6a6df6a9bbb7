"""plan_callbacks: windows, deadline, skills, language, gaps between appointments, desk duty."""

import itertools
from datetime import UTC, datetime, timedelta

from orchestrator.scheduling.callbacks import CallbackAsk, Placement, Unplaced, plan_callbacks
from orchestrator.scheduling.ledger import Ledger
from orchestrator.scheduling.rules import WorkingBlock
from orchestrator.scheduling.types import Interval, Mode

DAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday (times below are UTC)
NOW = DAY.replace(hour=7, minute=30)


def at(hour: int, minute: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute)


def block(start: datetime, end: datetime, *, modes=frozenset(Mode), quota=None) -> WorkingBlock:  # type: ignore[no-untyped-def]
    return WorkingBlock(Interval(start, end), frozenset(modes), quota)


def counsellor(
    cid: str, *booked: tuple[datetime, datetime], languages=("fr",), skills=("insertion",), **kw
) -> Ledger:  # type: ignore[no-untyped-def]
    working = kw.pop("working", (block(at(8), at(12)), block(at(13), at(17))))
    return Ledger.of(
        cid,
        skills=skills,
        languages=languages,
        working=working,
        booked=[Interval(a, b) for a, b in booked],
        **kw,
    )


def ask(rid: str = "r1", **kw) -> CallbackAsk:  # type: ignore[no-untyped-def]
    return CallbackAsk(rid, created_at=kw.pop("created_at", NOW), deadline=kw.pop("deadline", at(17)), **kw)


def test_a_short_gap_between_appointments_is_filled_exactly():
    # 9:00-9:45 and 10:00-12:00 booked: the 15-minute gap at 9:45 can hold nothing bookable
    ledger = counsellor("c1", (at(8), at(9, 45)), (at(10), at(12)))
    (placed,) = plan_callbacks([ask()], [ledger], NOW)
    assert isinstance(placed, Placement)
    assert (placed.start, placed.end, placed.reason, placed.wasted_minutes) == (
        at(9, 45),
        at(10),
        "fills_gap",
        0,
    )


def test_a_call_sits_at_the_edge_of_a_long_gap_not_in_its_middle():
    ledger = counsellor("c1", (at(8), at(9)))  # free from 9:00 to 12:00
    (placed,) = plan_callbacks([ask(windows=(Interval(at(10), at(11)),))], [ledger], NOW)
    assert isinstance(placed, Placement)
    # inside the window 10-11, the gap 9-12 is split either way; 10:00 leaves 60 min before, 105 after
    assert placed.start == at(10) and placed.wasted_minutes == 0


def test_windows_and_deadline_are_respected():
    ledger = counsellor("c1")
    windows = (Interval(at(14), at(15)),)
    (placed,) = plan_callbacks([ask(windows=windows)], [ledger], NOW)
    assert isinstance(placed, Placement) and at(14) <= placed.start and placed.end <= at(15)
    (late,) = plan_callbacks([ask(windows=windows, deadline=at(14, 10))], [ledger], NOW)
    assert late == Unplaced("r1", "no_time_before_deadline")


def test_only_phone_counsellors_with_the_skill():
    video_only = counsellor("v", modes=frozenset({Mode.VIDEO}))
    other_skill = counsellor("o", skills=("creation",))
    assert plan_callbacks([ask(skill="insertion")], [video_only, other_skill], NOW) == [
        Unplaced("r1", "no_phone_counsellor")
    ]


def test_the_persons_language_wins_when_someone_can_call_in_time():
    fr = counsellor("a-fr")
    ar = counsellor("b-ar", (at(8), at(11)), languages=("fr", "ar"))
    (placed,) = plan_callbacks([ask(language="ar")], [fr, ar], NOW)
    assert isinstance(placed, Placement)
    assert (placed.counsellor_id, placed.start, placed.reason) == ("b-ar", at(11), "gap_edge:language")
    (french,) = plan_callbacks([ask(language="ar", deadline=at(10))], [fr, ar], NOW)
    assert isinstance(french, Placement) and french.counsellor_id == "a-fr"  # nobody speaks it in time


def test_walk_in_desk_duty_is_not_used():
    ledger = counsellor("c1", working=(block(at(8), at(12), quota="walk_in"), block(at(13), at(17))))
    (placed,) = plan_callbacks([ask()], [ledger], NOW)
    assert isinstance(placed, Placement) and placed.start == at(13)


def test_the_most_urgent_request_is_placed_first_and_requests_never_overlap():
    ledger = counsellor("c1", (at(8), at(9, 45)), (at(10), at(17)))  # one 15-minute gap
    relaxed = ask("relaxed", deadline=at(17), created_at=NOW - timedelta(hours=2))
    urgent = ask("urgent", deadline=at(10), priority=1)
    plans = plan_callbacks([relaxed, urgent], [ledger], NOW)
    assert plans[0] == Placement("urgent", "c1", at(9, 45), at(10), "fills_gap", 0)
    assert plans[1] == Unplaced("relaxed", "no_time_before_deadline")


def test_many_requests_fill_gaps_without_overlapping_claims_or_each_other():
    ledgers = [counsellor(f"c{i}", (at(9), at(9, 30)), (at(14), at(15))) for i in range(3)]
    asks = [ask(f"r{i:02d}", created_at=NOW + timedelta(minutes=i)) for i in range(30)]
    placed = [p for p in plan_callbacks(asks, ledgers, NOW) if isinstance(p, Placement)]
    assert len(placed) == 30
    for ledger in ledgers:
        mine = sorted((p.start, p.end) for p in placed if p.counsellor_id == ledger.id)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(mine))
        for start, end in mine:
            assert not any(start < b.end and b.start < end for b in ledger.booked)


def test_a_retry_waits_for_its_not_before_time_and_nothing_starts_in_the_past():
    ledger = counsellor("c1")
    (placed,) = plan_callbacks([ask(not_before=at(15))], [ledger], NOW)
    assert isinstance(placed, Placement) and placed.start == at(15)
    (soon,) = plan_callbacks([ask()], [ledger], at(9, 2))
    assert isinstance(soon, Placement) and soon.start == at(9, 10)  # now + 5 min lead, on the 5-min grid


def test_deterministic_whatever_the_input_order():
    ledgers = [counsellor(f"c{i}", (at(9 + i), at(10 + i))) for i in range(4)]
    asks = [ask(f"r{i}", deadline=at(12 + i % 3), priority=i % 2) for i in range(12)]
    assert plan_callbacks(asks, ledgers, NOW) == plan_callbacks(
        list(reversed(asks)), list(reversed(ledgers)), NOW
    )


def test_a_placed_request_keeps_its_place_even_for_a_more_urgent_newcomer():
    ledger = counsellor("c1", (at(8), at(9, 45)), (at(10), at(17)))  # one 15-minute gap, taken by r1
    placed = ask("r1", current=("c1", at(9, 45)))
    urgent = ask("urgent", deadline=at(10), priority=1)
    plans = plan_callbacks([placed, urgent], [ledger], NOW)
    assert Placement("r1", "c1", at(9, 45), at(10), "kept", 0) in plans
    assert Unplaced("urgent", "no_time_before_deadline") in plans


def test_time_freed_earlier_moves_a_placed_request_up():
    ledger = counsellor("c1", (at(10), at(15)))  # 8:00-10:00 became free (a cancellation)
    (moved,) = plan_callbacks([ask("r1", current=("c1", at(15)))], [ledger], NOW)
    assert isinstance(moved, Placement) and (moved.start, moved.reason) == (at(8), "moved_earlier")
    (kept,) = plan_callbacks([ask("r1", current=("c1", at(8, 15)))], [ledger], NOW)
    assert isinstance(kept, Placement) and (kept.start, kept.reason) == (
        at(8, 15),
        "kept",
    )  # 15 min is no gain


def test_a_place_that_no_longer_fits_is_replanned():
    ledger = counsellor("c1", unavailable=[Interval(at(14), at(17))])  # an absence over the call
    (moved,) = plan_callbacks([ask("r1", current=("c1", at(15)))], [ledger], NOW)
    assert isinstance(moved, Placement) and moved.start == at(8) and moved.reason.endswith(":moved")


def test_an_idle_counsellor_calls_the_most_urgent_callback_they_can_make_now():
    from orchestrator.scheduling.callbacks import call_early

    fr, skills = frozenset({"fr"}), frozenset({"insertion"})
    waiting = [
        ask("late", deadline=at(16)),
        ask("soon", deadline=at(10)),
        ask("english", deadline=at(9), language="en"),  # nobody here speaks it
        ask("retry", deadline=at(9), not_before=at(8)),  # not before 8:00
        ask("vip", deadline=at(15), priority=1),  # priority needs first
    ]
    pick = call_early(waiting, skills=skills, languages=fr, now=NOW, free_until=None)
    assert pick is not None and pick.id == "vip"
    pick = call_early(waiting[:4], skills=skills, languages=fr, now=NOW, free_until=None)
    assert pick is not None and pick.id == "soon"  # then the earliest deadline
    assert call_early(waiting, skills=skills, languages=fr, now=NOW, free_until=at(7, 40)) is None  # no room
    windowed = ask("window", windows=(Interval(at(10), at(11)),))
    assert call_early([windowed], skills=skills, languages=fr, now=NOW, free_until=None) is None
    due = ask("due", current=("c2", at(7)))  # its own time has come: its counsellor calls it
    assert call_early([due], skills=skills, languages=fr, now=NOW, free_until=None) is None
    coaching = ask("coach", skill="coaching")
    assert call_early([coaching], skills=skills, languages=fr, now=NOW, free_until=None) is None
