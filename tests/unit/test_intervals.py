"""Interval algebra: examples, properties, and the core's import purity."""

from __future__ import annotations

import ast
import sys
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.scheduling.intervals import (
    clip,
    from_micros,
    grid_starts,
    intersect,
    merge,
    split,
    subtract,
    to_micros,
    total_duration,
)
from orchestrator.scheduling.types import Interval

BASE = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return BASE + timedelta(minutes=minutes)


def iv(a: int, b: int) -> Interval:
    return Interval(at(a), at(b))


def minutes_of(intervals: list[Interval]) -> set[int]:
    out: set[int] = set()
    for i in intervals:
        out.update(range((i.start - BASE) // timedelta(minutes=1), (i.end - BASE) // timedelta(minutes=1)))
    return out


def assert_normalised(intervals: list[Interval]) -> None:
    for a, b in pairwise(intervals):
        assert a.end < b.start  # sorted, disjoint and not touching (touching ones are fused)


# --------------------------------------------------------------------------- examples


def test_merge_fuses_overlapping_and_touching_in_any_order() -> None:
    assert merge([iv(30, 40), iv(0, 10), iv(10, 20), iv(5, 8), iv(50, 60), iv(55, 70)]) == [
        iv(0, 20),
        iv(30, 40),
        iv(50, 70),
    ]
    assert merge([]) == []


def test_subtract_cuts_middle_edges_and_straddling() -> None:
    assert subtract([iv(0, 60)], [iv(10, 20), iv(30, 40)]) == [iv(0, 10), iv(20, 30), iv(40, 60)]
    assert subtract([iv(0, 60)], [iv(-10, 70)]) == []
    # One cut straddling two base intervals cuts both.
    assert subtract([iv(0, 10), iv(20, 30)], [iv(5, 25)]) == [iv(0, 5), iv(25, 30)]
    assert subtract([iv(0, 10)], []) == [iv(0, 10)]
    assert subtract([], [iv(0, 10)]) == []


def test_intersect_and_clip() -> None:
    assert intersect([iv(0, 10), iv(20, 30)], [iv(5, 25)]) == [iv(5, 10), iv(20, 25)]
    assert clip([iv(0, 10), iv(20, 30), iv(40, 50)], iv(5, 45)) == [iv(5, 10), iv(20, 30), iv(40, 45)]
    assert clip([iv(0, 10)], iv(10, 20)) == []


def test_total_duration_counts_overlap_once() -> None:
    assert total_duration([iv(0, 30), iv(15, 45), iv(60, 70)]) == timedelta(minutes=55)
    assert total_duration([]) == timedelta(0)


def test_split_even_and_uneven() -> None:
    assert split(iv(0, 60), timedelta(minutes=20)) == [iv(0, 20), iv(20, 40), iv(40, 60)]
    assert split(iv(0, 50), timedelta(minutes=20)) == [iv(0, 20), iv(20, 40), iv(40, 50)]
    with pytest.raises(ValueError, match="positive"):
        split(iv(0, 50), timedelta(0))


def test_grid_starts_are_aligned_to_origin_and_fit() -> None:
    step, length = timedelta(minutes=15), timedelta(minutes=30)
    assert grid_starts(iv(10, 70), at(10), step, length) == [at(10), at(25), at(40)]
    # Origin before the interval: first grid point at or after its start.
    assert grid_starts(iv(12, 70), at(10), step, length) == [at(25), at(40)]
    # Origin after the interval works the same (k may be negative).
    assert grid_starts(iv(0, 45), at(100), step, length) == [at(10)]
    assert grid_starts(iv(0, 20), at(0), step, length) == []
    with pytest.raises(ValueError, match="positive"):
        grid_starts(iv(0, 20), at(0), timedelta(0), length)


def test_micros_round_trip_and_naive_rejected() -> None:
    moment = datetime(2026, 3, 29, 1, 0, 0, 123456, tzinfo=UTC)
    assert from_micros(to_micros(moment)) == moment
    with pytest.raises(ValueError, match="naive"):
        to_micros(datetime(2026, 1, 1))


# --------------------------------------------------------------------------- properties

spans = st.lists(
    st.tuples(st.integers(0, 500), st.integers(1, 120)).map(lambda t: iv(t[0], t[0] + t[1])), max_size=12
)


@given(spans)
def test_merge_is_normalised_union(intervals: list[Interval]) -> None:
    merged = merge(intervals)
    assert_normalised(merged)
    assert minutes_of(merged) == minutes_of(intervals)


@given(spans, spans)
def test_free_plus_busy_within_working_is_working(working: list[Interval], busy: list[Interval]) -> None:
    free = subtract(working, busy)
    busy_in_working = intersect(busy, working)
    assert_normalised(free)
    assert_normalised(busy_in_working)
    assert merge(free + busy_in_working) == merge(working)
    assert intersect(free, busy) == []
    assert total_duration(working) == total_duration(free) + total_duration(busy_in_working)
    assert minutes_of(free) == minutes_of(working) - minutes_of(busy)


@given(spans, st.tuples(st.integers(0, 600), st.integers(1, 200)))
def test_clip_stays_inside_window(intervals: list[Interval], w: tuple[int, int]) -> None:
    window = iv(w[0], w[0] + w[1])
    clipped = clip(intervals, window)
    assert all(window.contains(c) for c in clipped)
    assert minutes_of(clipped) == minutes_of(intervals) & minutes_of([window])


# --------------------------------------------------------------------------- purity


def test_scheduling_imports_only_stdlib_and_itself() -> None:
    package = Path(__file__).resolve().parents[2] / "src" / "orchestrator" / "scheduling"
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                ok = name.split(".")[0] in allowed or name.startswith("orchestrator.scheduling")
                assert ok, f"{path.name} imports {name}"
