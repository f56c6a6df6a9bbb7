"""Wait estimates: duration statistics, forward simulation, ZMS baseline, simulated accuracy."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.scheduling.queue import (
    DeskCounsellor,
    DueAppointment,
    QueuePolicy,
    QueueState,
    ServiceInfo,
    WaitingTicket,
    next_work,
    order_queue,
)
from orchestrator.scheduling.simulation import SimConfig, simulate_day
from orchestrator.scheduling.types import Interval
from orchestrator.scheduling.waits import (
    duration_stats,
    estimate_waits,
    observed_durations,
    zms_baseline,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
POLICY = QueuePolicy()
SERVICES = {
    "info": ServiceInfo("info", None, 10 * MIN, 60 * MIN),
    "reg": ServiceInfo("reg", "registration", 20 * MIN, 60 * MIN),
}
DURATIONS = {"info": 10 * MIN, "reg": 20 * MIN}


def ticket(
    tid: str, waited_min: float, service: str = "info", priority: int = 0, seq: int = 0
) -> WaitingTicket:
    return WaitingTicket(
        id=tid,
        number=tid,
        service_id=service,
        arrived_at=NOW - timedelta(minutes=waited_min),
        priority=priority,
        seq=seq,
    )


def desk(cid: str = "c1", **kw: object) -> DeskCounsellor:
    return DeskCounsellor(id=cid, skills=frozenset({"registration"}), **kw)  # type: ignore[arg-type]


def state(
    tickets: list[WaitingTicket],
    counsellors: list[DeskCounsellor],
    appointments: tuple[DueAppointment, ...] = (),
) -> QueueState:
    return QueueState(tuple(tickets), appointments, SERVICES, tuple(counsellors))


def minutes(waits: dict[str, timedelta | None]) -> dict[str, float | None]:
    return {k: None if v is None else v / MIN for k, v in waits.items()}


# ------------------------------------------------------------------ durations


def test_observed_durations_shrink_toward_prior() -> None:
    prior = {"info": 10 * MIN, "reg": 20 * MIN}
    assert observed_durations({}, prior) == prior
    samples = {"info": [16 * MIN] * 5}
    # (5 * 10 + 5 * 16) / 10 = 13 min
    assert observed_durations(samples, prior, prior_weight=5)["info"] == 13 * MIN
    many = {"info": [16 * MIN] * 995}
    assert abs(observed_durations(many, prior, prior_weight=5)["info"] - 16 * MIN) < 5 * timedelta(seconds=1)
    assert observed_durations(samples, prior, prior_weight=0)["info"] == 16 * MIN
    assert observed_durations({"new": [4 * MIN, 6 * MIN]}, prior)["new"] == 5 * MIN


def test_duration_stats_clip_outliers_and_report() -> None:
    stats = duration_stats({"info": [10 * MIN, 10 * MIN, 10 * MIN, 300 * MIN]}, {}, prior_weight=0)["info"]
    assert stats.count == 4
    assert stats.median == 10 * MIN
    assert stats.mean == (3 * 10 + 30) * MIN / 4  # 300 clipped to 3 x median
    with pytest.raises(ValueError, match="negative"):
        duration_stats({"info": [-MIN]}, {})
    with pytest.raises(ValueError, match="prior_weight"):
        duration_stats({}, {}, prior_weight=-1)


# ------------------------------------------------------------------ estimate_waits


def test_one_desk_serves_in_order() -> None:
    s = state([ticket("a", 10), ticket("b", 5), ticket("c", 1)], [desk()])
    assert minutes(estimate_waits(s, NOW, POLICY, DURATIONS)) == {"a": 0, "b": 10, "c": 20}


def test_busy_until_and_observed_durations_are_used() -> None:
    s = state([ticket("a", 10), ticket("b", 5)], [desk(busy_until=NOW + 7 * MIN)])
    assert minutes(estimate_waits(s, NOW, POLICY, {"info": 12 * MIN})) == {"a": 7, "b": 19}


def test_no_desk_or_nobody_able_gives_none() -> None:
    tickets = [ticket("a", 10), ticket("r", 5, service="reg")]
    assert minutes(estimate_waits(state(tickets, []), NOW, POLICY, DURATIONS)) == {"a": None, "r": None}
    off = desk(on_desk=False)
    assert minutes(estimate_waits(state(tickets, [off]), NOW, POLICY, DURATIONS)) == {"a": None, "r": None}
    unskilled = DeskCounsellor(id="c1")
    assert minutes(estimate_waits(state(tickets, [unskilled]), NOW, POLICY, DURATIONS)) == {"a": 0, "r": None}


def test_commitments_block_the_calendar() -> None:
    # Free now but an appointment at +15 (30 min long, "reg" lasting 20): "info" (10 + 2) fits, then
    # the desk is busy with the appointment from 15 to 35, then the next ticket.
    booked = DueAppointment("ap", "c1", "reg", NOW + 15 * MIN, NOW + 45 * MIN)
    c = desk(commitments=(Interval(NOW + 15 * MIN, NOW + 45 * MIN),))
    s = state([ticket("a", 10), ticket("b", 5)], [c], (booked,))
    assert minutes(estimate_waits(s, NOW, POLICY, DURATIONS)) == {"a": 0, "b": 35}
    # An unknown commitment (a busy block) lasts as booked.
    s2 = state([ticket("a", 10), ticket("b", 5)], [c])
    assert minutes(estimate_waits(s2, NOW, POLICY, DURATIONS)) == {"a": 0, "b": 45}
    # A checked-in appointment starts `appointment_early` before its time.
    early = DueAppointment("ap", "c1", "reg", NOW + 15 * MIN, NOW + 45 * MIN, checked_in_at=NOW)
    s3 = state([ticket("a", 10), ticket("b", 5)], [c], (early,))
    assert minutes(estimate_waits(s3, NOW, POLICY, DURATIONS)) == {"a": 0, "b": 30}


def test_second_desk_and_skills_split_the_queue() -> None:
    s = state(
        [ticket("r1", 10, service="reg"), ticket("i1", 9), ticket("i2", 8), ticket("r2", 7, service="reg")],
        [desk("c1"), DeskCounsellor(id="c2")],
    )
    # c1 (skilled) takes r1 at 0 and r2 at 20; c2 (info only) takes i1 at 0 and i2 at 10.
    assert minutes(estimate_waits(s, NOW, POLICY, DURATIONS)) == {"r1": 0, "i1": 0, "i2": 10, "r2": 20}


def test_estimate_agrees_with_next_work_for_free_counsellor() -> None:
    s = state([ticket("a", 3), ticket("u", 1, priority=2), ticket("p", 2, priority=1)], [desk()])
    waits = estimate_waits(s, NOW, POLICY, DURATIONS)
    decision = next_work(s.counsellors[0], NOW, s, POLICY)
    assert decision is not None
    assert waits[decision.item_id] == timedelta(0)
    assert minutes(waits) == {"u": 0, "p": 10, "a": 20}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 120), st.integers(0, 5)), min_size=1, max_size=30),
    st.sampled_from(["info", "reg"]),
    st.integers(0, 1),
    st.integers(0, 30),
)
def test_monotone_in_queue_position_with_one_desk(
    arrivals: list[tuple[int, int]], service: str, priority: int, busy: int
) -> None:
    tickets = [
        ticket(f"t{i}", w, service=service, priority=priority, seq=q) for i, (w, q) in enumerate(arrivals)
    ]
    s = state(tickets, [desk(busy_until=NOW + timedelta(minutes=busy))])
    waits = estimate_waits(s, NOW, POLICY, DURATIONS)
    ordered = [waits[t.id] for t in order_queue(s, NOW, POLICY)]
    assert all(w is not None for w in ordered)
    values = [w for w in ordered if w is not None]
    assert values == sorted(values)
    assert values[0] == timedelta(minutes=busy)


# ------------------------------------------------------------------ ZMS baseline


def test_zms_baseline_is_position_times_average_over_desks() -> None:
    s = state([ticket("a", 10), ticket("b", 5), ticket("c", 1)], [desk("c1"), desk("c2")])
    # average 10 min, 2 desks: slot 5 min; the k-th (0-based) waits (k + 1) slots.
    assert minutes(dict(zms_baseline(s, NOW, DURATIONS))) == {"a": 5, "b": 10, "c": 15}
    urgent_last = state([ticket("a", 10), ticket("u", 1, priority=2)], [desk("c1")])
    assert minutes(dict(zms_baseline(urgent_last, NOW, DURATIONS))) == {"u": 10, "a": 20}
    nobody = state([ticket("a", 10)], [])
    assert minutes(dict(zms_baseline(nobody, NOW, DURATIONS))) == {"a": 10}  # ZMS counts 1 desk


def test_zms_baseline_merges_due_appointments() -> None:
    booked = DueAppointment("ap", "c1", "info", NOW + MIN, NOW + 31 * MIN)
    s = state([ticket("a", 10), ticket("b", 5)], [desk("c1")], (booked,))
    # The appointment's time is reached at now + 2 min: it takes the first slot.
    assert minutes(dict(zms_baseline(s, NOW, DURATIONS))) == {"a": 20, "b": 30}


# ------------------------------------------------------------------ simulation


def test_simulation_is_deterministic_per_seed() -> None:
    first, again, other = simulate_day(3), simulate_day(3), simulate_day(4)
    assert first == again
    assert first.outcomes != other.outcomes


def test_simulated_day_is_sane() -> None:
    result = simulate_day(1)
    assert result.walk_ins > 20
    assert result.walk_ins_served == result.walk_ins
    assert all(o.estimate is not None and o.zms is not None for o in result.outcomes)
    assert result.appointment_p90_lateness <= 10
    assert 0 <= result.idle <= SimConfig().counsellors * 240


@pytest.mark.parametrize("walk_ins_per_hour", [13.0, 18.0])
def test_our_estimate_beats_zms_baseline(walk_ins_per_hour: float) -> None:
    config = SimConfig(walk_ins_per_hour=walk_ins_per_hour)
    results = [simulate_day(seed, config) for seed in range(6)]
    ours = statistics.fmean(r.mae_ours for r in results)
    zms = statistics.fmean(r.mae_zms for r in results)
    assert ours < zms, (ours, zms)
    assert sum(r.mae_ours < r.mae_zms for r in results) >= 5


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 90),
            st.sampled_from(["info", "reg"]),
            st.integers(0, 2),
            st.sampled_from([None, "en"]),
        ),
        max_size=20,
    ),
    st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(0, 25)), min_size=1, max_size=3),
)
def test_estimate_replays_next_work(
    rows: list[tuple[int, str, int, str | None]], desks_spec: list[tuple[bool, bool, int]]
) -> None:
    """Without calendars, the estimator equals calling next_work whenever a desk frees up."""
    tickets = [
        WaitingTicket(f"t{i}", f"W{i}", svc, NOW - timedelta(minutes=w), priority=p, language=lang, seq=i)
        for i, (w, svc, p, lang) in enumerate(rows)
    ]
    counsellors = [
        DeskCounsellor(
            id=f"c{k}",
            skills=frozenset({"registration"}) if skilled else frozenset(),
            languages=frozenset({"en"}) if english else frozenset(),
            busy_until=NOW + timedelta(minutes=busy),
        )
        for k, (skilled, english, busy) in enumerate(desks_spec)
    ]
    s = state(tickets, counsellors)
    expected: dict[str, timedelta | None] = {t.id: None for t in tickets}
    free = sorted((c.busy_until or NOW, c.id) for c in counsellors)
    remaining = list(tickets)
    while free and remaining:
        moment, cid = free.pop(0)
        snapshot = state(remaining, counsellors)
        decision = next_work(next(c for c in counsellors if c.id == cid), moment, snapshot, POLICY)
        if decision is None:
            continue  # without calendars or recalls, nothing will ever suit this desk
        expected[decision.item_id] = moment - NOW
        chosen = next(t for t in remaining if t.id == decision.item_id)
        remaining.remove(chosen)
        free.append((moment + DURATIONS[chosen.service_id], cid))
        free.sort()
    assert estimate_waits(s, NOW, POLICY, DURATIONS) == expected
