"""Queue policy: what a counsellor takes next, and the display order."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.scheduling.queue import (
    DeskCounsellor,
    DueAppointment,
    QueuePolicy,
    QueueState,
    Reason,
    ServiceInfo,
    SkipReason,
    WaitingTicket,
    WorkDecision,
    WorkKind,
    next_work,
    next_works,
    order_queue,
)
from orchestrator.scheduling.types import Interval, Mode

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
POLICY = QueuePolicy()
SERVICES = {
    "info": ServiceInfo("info", None, 10 * MIN, 20 * MIN),
    "reg": ServiceInfo("reg", "registration", 20 * MIN, 30 * MIN),
    "long": ServiceInfo("long", "registration", 60 * MIN, None),
}


def ticket(
    tid: str,
    waited_min: float = 1,
    service: str = "info",
    priority: int = 0,
    seq: int = 0,
    **kw: object,
) -> WaitingTicket:
    return WaitingTicket(
        id=tid,
        number=tid.upper(),
        service_id=service,
        arrived_at=NOW - timedelta(minutes=waited_min),
        priority=priority,
        seq=seq,
        **kw,  # type: ignore[arg-type]
    )


def counsellor(cid: str = "c1", **kw: object) -> DeskCounsellor:
    base: dict[str, object] = {
        "skills": frozenset({"registration"}),
        "languages": frozenset({"fr", "en"}),
    }
    base.update(kw)
    return DeskCounsellor(id=cid, **base)  # type: ignore[arg-type]


def state(
    tickets: list[WaitingTicket],
    counsellors: list[DeskCounsellor] | None = None,
    appointments: list[DueAppointment] | None = None,
) -> QueueState:
    return QueueState(
        tickets=tuple(tickets),
        appointments=tuple(appointments or ()),
        services=SERVICES,
        counsellors=tuple(counsellors or [counsellor()]),
    )


def appointment(aid: str, starts_in_min: float, cid: str = "c1", checked_in: bool = True) -> DueAppointment:
    starts = NOW + timedelta(minutes=starts_in_min)
    return DueAppointment(
        id=aid,
        counsellor_id=cid,
        service_id="reg",
        starts_at=starts,
        ends_at=starts + 30 * MIN,
        checked_in_at=NOW - 10 * MIN if checked_in else None,
    )


def pick(s: QueueState, c: DeskCounsellor | None = None, policy: QueuePolicy = POLICY) -> str | None:
    decision = next_work(c or s.counsellors[0], NOW, s, policy)
    return None if decision is None else decision.item_id


# ------------------------------------------------------------------ policy order


def test_off_desk_counsellor_gets_nothing() -> None:
    c = counsellor(on_desk=False)
    assert next_work(c, NOW, state([ticket("t1")], [c]), POLICY) is None


def test_empty_queue_gives_none() -> None:
    assert pick(state([])) is None


def test_due_checked_in_appointment_beats_urgent_ticket() -> None:
    s = state([ticket("t1", priority=2, waited_min=90)], appointments=[appointment("a1", 3)])
    decision = next_work(s.counsellors[0], NOW, s, POLICY)
    assert decision is not None
    assert (decision.kind, decision.item_id, decision.reason) == (
        WorkKind.APPOINTMENT,
        "a1",
        Reason.APPOINTMENT_DUE,
    )


def test_appointment_early_window_and_check_in_are_required() -> None:
    not_yet = state([ticket("t1")], appointments=[appointment("a1", 6)])
    assert pick(not_yet) == "t1"
    at_edge = state([ticket("t1")], appointments=[appointment("a1", 5)])
    assert pick(at_edge) == "a1"
    absent = state([ticket("t1")], appointments=[appointment("a1", -2, checked_in=False)])
    assert pick(absent) == "t1"  # no commitments on the calendar here, so the ticket fits


def test_earliest_due_appointment_first_and_only_own() -> None:
    s = state(
        [],
        [counsellor("c1"), counsellor("c2")],
        [appointment("a2", 0), appointment("a1", -10), appointment("a0", -20, cid="c2")],
    )
    assert pick(s, s.counsellors[0]) == "a1"
    assert pick(s, s.counsellors[1]) == "a0"


def test_urgent_beats_priority_beats_ordinary() -> None:
    tickets = [ticket("ord", 10), ticket("pri", 5, priority=1), ticket("urg", 1, priority=2)]
    s = state(tickets)
    decision = next_work(s.counsellors[0], NOW, s, POLICY)
    assert decision is not None
    assert (decision.item_id, decision.reason) == ("urg", Reason.URGENT)
    assert pick(state(tickets[:2])) == "pri"
    assert pick(state(tickets[:1])) == "ord"
    assert [t.id for t in order_queue(s, NOW, POLICY)] == ["urg", "pri", "ord"]


def test_starvation_lifts_ordinary_ticket_above_priority_but_not_urgent() -> None:
    # "info" has target_wait 20 min: from 20 min of waiting (inclusive) the ticket is starving.
    starving = ticket("old", 20, service="info")
    fresh_priority = ticket("pri", 1, priority=1)
    s = state([fresh_priority, starving])
    decision = next_work(s.counsellors[0], NOW, s, POLICY)
    assert decision is not None
    assert (decision.item_id, decision.reason) == ("old", Reason.STARVATION)
    assert pick(state([fresh_priority, ticket("old", 19.9)])) == "pri"
    assert pick(state([starving, ticket("urg", 0, priority=2)])) == "urg"


def test_service_without_target_uses_policy_default_and_factor() -> None:
    # "long" has no target: default 30 min, times starvation_factor.
    long_wait = ticket("old", 45, service="long")
    s = state([ticket("pri", 1, priority=1), long_wait])
    assert pick(s) == "old"
    assert pick(s, policy=QueuePolicy(starvation_factor=2.0)) == "pri"
    assert pick(s, policy=QueuePolicy(default_target_wait=60 * MIN)) == "pri"


def test_starving_tickets_go_oldest_first() -> None:
    s = state([ticket("a", 25, priority=1), ticket("b", 40), ticket("c", 30, service="reg")])
    assert [t.id for t in order_queue(s, NOW, POLICY)] == ["b", "c", "a"]


def test_fifo_tie_break_by_arrival_then_seq_then_id() -> None:
    s = state([ticket("b", 5, seq=2), ticket("a", 5, seq=2), ticket("z", 5, seq=1), ticket("y", 6, seq=9)])
    assert [t.id for t in order_queue(s, NOW, POLICY)] == ["y", "z", "a", "b"]
    assert pick(s) == "y"


# ------------------------------------------------------------------ hard constraints


def test_skill_is_required() -> None:
    c = counsellor(skills=frozenset())
    s = state([ticket("reg", 10, service="reg"), ticket("info", 1)], [c])
    decision = next_work(c, NOW, s, POLICY)
    assert decision is not None
    assert decision.item_id == "info"
    assert [(k.ticket_id, k.reason) for k in decision.skipped] == [("reg", SkipReason.SKILL)]
    assert pick(state([ticket("reg", service="reg")], [c])) is None


def test_language_is_hard_unless_policy_says_soft() -> None:
    s = state([ticket("t1", language="ar")])
    assert pick(s) is None
    assert pick(s, policy=QueuePolicy(language_is_soft=True)) == "t1"
    assert pick(state([ticket("t1", language="en")])) == "t1"


def test_mode_and_needs_are_required() -> None:
    phone = ticket("t1", mode=Mode.PHONE)
    assert pick(state([phone])) is None
    c = counsellor(modes=frozenset({Mode.PHONE}))
    assert pick(state([phone], [c])) == "t1"
    needy = ticket("t2", needs=frozenset({"sign_language"}))
    assert pick(state([needy])) is None
    signer = counsellor(skills=frozenset({"sign_language"}))
    assert pick(state([needy], [signer])) == "t2"


def test_recall_interval_and_max_calls() -> None:
    recalled = ticket("t1", 30, call_count=1, last_called_at=NOW - 4 * MIN)
    assert pick(state([recalled, ticket("t2", 1)])) == "t2"
    assert pick(state([ticket("t1", 30, call_count=1, last_called_at=NOW - 5 * MIN)])) == "t1"
    exhausted = ticket("t1", 30, call_count=3, last_called_at=NOW - 60 * MIN)
    s = state([exhausted])
    assert pick(s) is None
    assert order_queue(s, NOW, POLICY) == []


def test_gap_too_small_skips_to_a_shorter_ticket() -> None:
    # Next commitment in 25 min; "reg" needs 20 + 2 slack = fits, "long" (60) does not.
    c = counsellor(commitments=(Interval(NOW + 25 * MIN, NOW + 55 * MIN),))
    s = state([ticket("long", 30, service="long"), ticket("reg", 5, service="reg")], [c])
    decision = next_work(c, NOW, s, POLICY)
    assert decision is not None
    assert decision.item_id == "reg"
    assert [(k.ticket_id, k.reason) for k in decision.skipped] == [("long", SkipReason.GAP_TOO_SMALL)]
    assert ("gap_s", "1500") in decision.detail


def test_gap_boundary_is_inclusive_and_none_when_nothing_fits() -> None:
    exact = counsellor(commitments=(Interval(NOW + 22 * MIN, NOW + 40 * MIN),))
    assert pick(state([ticket("reg", service="reg")], [exact])) == "reg"
    short = counsellor(commitments=(Interval(NOW + 21 * MIN, NOW + 40 * MIN),))
    assert pick(state([ticket("reg", service="reg")], [short])) is None
    past = counsellor(commitments=(Interval(NOW - 40 * MIN, NOW),))  # already over: ignored
    assert pick(state([ticket("reg", service="reg")], [past])) == "reg"


def test_preferred_counsellor_reservation() -> None:
    mine, other = counsellor("c1"), counsellor("c2")
    t = ticket("t1", 5, preferred_counsellor_id="c1")
    s = state([t], [mine, other])
    assert pick(s, other) is None
    assert pick(s, mine) == "t1"
    # Off-desk preferred counsellor: the preference is moot.
    assert pick(state([t], [counsellor("c1", on_desk=False), other]), other) == "t1"
    # Starving (20 min for info) or urgent: anyone takes it.
    assert pick(state([ticket("t1", 20, preferred_counsellor_id="c1")], [mine, other]), other) == "t1"
    assert (
        pick(state([ticket("t1", 1, priority=2, preferred_counsellor_id="c1")], [mine, other]), other) == "t1"
    )
    assert pick(s, other, QueuePolicy(honour_preferred_counsellor=False)) == "t1"


def test_decision_detail_is_machine_readable() -> None:
    s = state([ticket("t1", 7)])
    decision = next_work(s.counsellors[0], NOW, s, POLICY)
    assert decision is not None
    facts = dict(decision.detail)
    assert facts["waited_s"] == "420"
    assert facts["starves_after_s"] == "1200"
    assert facts["gap_s"] == "none"
    assert decision.reason == Reason.FIFO


# ------------------------------------------------------------------ validation


def test_invalid_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="naive"):
        WaitingTicket("t", "T", "info", datetime(2026, 3, 2, 9, 0))
    with pytest.raises(ValueError, match="priority"):
        ticket("t", priority=3)
    with pytest.raises(ValueError, match="duplicate ticket"):
        state([ticket("t"), ticket("t")])
    with pytest.raises(ValueError, match="unknown service"):
        state([ticket("t", service="nope")])
    with pytest.raises(ValueError, match="overlapping"):
        counsellor(commitments=(Interval(NOW, NOW + 30 * MIN), Interval(NOW + 10 * MIN, NOW + 20 * MIN)))
    with pytest.raises(ValueError, match="starvation_factor"):
        QueuePolicy(starvation_factor=0)
    with pytest.raises(ValueError, match="naive"):
        next_work(counsellor(), datetime(2026, 3, 2, 9, 0), state([]), POLICY)


# ------------------------------------------------------------------ properties

_SKILLS = ("registration", "benefits")
_LANGS = ("fr", "en", "ar")

tickets_st = st.lists(
    st.builds(
        lambda i, waited, service, priority, language, mode, seq, pref, calls: WaitingTicket(
            id=f"t{i}",
            number=f"W{i}",
            service_id=service,
            arrived_at=NOW - timedelta(minutes=waited),
            priority=priority,
            language=language,
            mode=mode,
            seq=seq,
            preferred_counsellor_id=pref,
            call_count=calls,
            last_called_at=None if calls == 0 else NOW - timedelta(minutes=waited / 2),
        ),
        i=st.integers(0, 10_000),
        waited=st.integers(0, 90),
        service=st.sampled_from(sorted(SERVICES)),
        priority=st.integers(0, 2),
        language=st.sampled_from([None, *_LANGS]),
        mode=st.sampled_from(list(Mode)),
        seq=st.integers(0, 3),
        pref=st.sampled_from([None, "c0", "c1", "c9"]),
        calls=st.integers(0, 3),
    ),
    max_size=25,
    unique_by=lambda t: t.id,
)
counsellors_st = st.lists(
    st.builds(
        lambda i, skills, langs, modes, on_desk, gap: DeskCounsellor(
            id=f"c{i}",
            skills=frozenset(skills),
            languages=frozenset(langs),
            modes=frozenset(modes),
            on_desk=on_desk,
            commitments=() if gap is None else (Interval(NOW + timedelta(minutes=gap), NOW + 300 * MIN),),
        ),
        i=st.integers(0, 3),
        skills=st.sets(st.sampled_from(_SKILLS)),
        langs=st.sets(st.sampled_from(_LANGS)),
        modes=st.sets(st.sampled_from(list(Mode)), min_size=1),
        on_desk=st.booleans(),
        gap=st.one_of(st.none(), st.integers(-10, 70)),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda c: c.id,
)
appointments_st = st.lists(
    st.builds(
        lambda i, cid, start, checked: DueAppointment(
            id=f"a{i}",
            counsellor_id=cid,
            service_id="reg",
            starts_at=NOW + timedelta(minutes=start),
            ends_at=NOW + timedelta(minutes=start + 30),
            checked_in_at=NOW if checked else None,
        ),
        i=st.integers(0, 50),
        cid=st.sampled_from(["c0", "c1", "c2", "c3"]),
        start=st.integers(-30, 30),
        checked=st.booleans(),
    ),
    max_size=4,
    unique_by=lambda a: a.id,
)


def _can_serve(c: DeskCounsellor, t: WaitingTicket, s: QueueState, policy: QueuePolicy) -> bool:
    """Independent statement of the hard constraints (a reference, not the implementation)."""
    service = s.services[t.service_id]
    gap_end = next((x.start for x in c.commitments if x.end > NOW), None)
    return (
        c.on_desk
        and t.mode in c.modes
        and (service.skill is None or service.skill in c.skills)
        and (t.language is None or t.language in c.languages)
        and t.call_count < policy.max_calls_before_no_show
        and (t.last_called_at is None or NOW - t.last_called_at >= policy.recall_min_interval)
        and (gap_end is None or NOW + service.expected_duration + policy.gap_slack <= gap_end)
    )


def _reserved_elsewhere(c: DeskCounsellor, t: WaitingTicket, s: QueueState, starving: bool) -> bool:
    owner = next((x for x in s.counsellors if x.id == t.preferred_counsellor_id), None)
    if owner is None or owner.id == c.id or not owner.on_desk or t.priority == 2 or starving:
        return False
    service = s.services[t.service_id]
    return (
        t.mode in owner.modes
        and (service.skill is None or service.skill in owner.skills)
        and (t.language is None or t.language in owner.languages)
    )


@settings(max_examples=300, deadline=None)
@given(tickets_st, counsellors_st, appointments_st, st.randoms(use_true_random=False))
def test_decision_is_deterministic_feasible_and_follows_order(
    tickets: list[WaitingTicket],
    counsellors: list[DeskCounsellor],
    appointments: list[DueAppointment],
    rnd: random.Random,
) -> None:
    s = state(tickets, counsellors, appointments)
    tickets2, counsellors2, appointments2 = tickets[:], counsellors[:], appointments[:]
    rnd.shuffle(tickets2)
    rnd.shuffle(counsellors2)
    rnd.shuffle(appointments2)
    s2 = state(tickets2, counsellors2, appointments2)
    order = order_queue(s, NOW, POLICY)
    assert order == order_queue(s2, NOW, POLICY)
    callable_ids = {t.id for t in tickets if t.call_count < POLICY.max_calls_before_no_show}
    assert sorted(t.id for t in order) == sorted(callable_ids)
    for c in counsellors:
        decision = next_work(c, NOW, s, POLICY)
        assert decision == next_work(c, NOW, s2, POLICY)
        if not c.on_desk:
            assert decision is None
            continue
        due = [
            a
            for a in appointments
            if a.counsellor_id == c.id and a.checked_in_at and a.starts_at <= NOW + 5 * MIN
        ]
        if due:
            assert decision is not None
            assert decision.kind is WorkKind.APPOINTMENT
            assert decision.item_id == min(due, key=lambda a: (a.starts_at, a.id)).id
            continue
        # The decision is the first ticket in display order that the counsellor may take.
        expected = _first_takeable(c, order, s)
        assert (None if decision is None else decision.item_id) == (None if expected is None else expected.id)


def _first_takeable(c: DeskCounsellor, order: list[WaitingTicket], s: QueueState) -> WaitingTicket | None:
    for t in order:
        target = s.services[t.service_id].target_wait or POLICY.default_target_wait
        starving = NOW - t.arrived_at >= target * POLICY.starvation_factor
        if _can_serve(c, t, s, POLICY) and not _reserved_elsewhere(c, t, s, starving):
            return t
    return None


@settings(max_examples=200, deadline=None)
@given(tickets_st, counsellors_st, appointments_st, st.integers(min_value=1, max_value=6))
def test_next_works_is_next_work_again_and_again_without_the_previous_choices(
    tickets: list[WaitingTicket],
    counsellors: list[DeskCounsellor],
    appointments: list[DueAppointment],
    count: int,
) -> None:
    """Call next ranks the queue once for its candidates: the same answers as asking the core
    again on the queue without the tickets already chosen."""
    s = state(tickets, counsellors, appointments)
    for c in counsellors:
        expected: list[WorkDecision] = []
        rest = s
        while len(expected) < count:
            decision = next_work(c, NOW, rest, POLICY)
            if decision is None:
                break
            expected.append(decision)
            if decision.kind is WorkKind.APPOINTMENT:
                break
            rest = replace(rest, tickets=tuple(t for t in rest.tickets if t.id != decision.item_id))
        assert next_works(c, NOW, s, POLICY, count) == expected


def test_without_equals_a_validated_state_of_the_rest() -> None:
    full = state(
        [ticket("t1", seq=1), ticket("t2", seq=2), ticket("t3", service="reg", seq=3)],
        appointments=[appointment("a1", 3), appointment("a2", 20)],
    )
    cut = full.without({"t2", "a1", "unknown"})
    rest = state(
        [ticket("t1", seq=1), ticket("t3", service="reg", seq=3)], appointments=[appointment("a2", 20)]
    )
    assert cut == rest
    assert pick(full) == "a1" and pick(cut) == pick(rest) == "t1"
    assert [t.id for t in full.tickets] == ["t1", "t2", "t3"]  # the original is unchanged
