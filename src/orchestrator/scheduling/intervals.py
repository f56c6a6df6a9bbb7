"""Interval algebra on lists of half-open UTC intervals.

Two layers with the same semantics:

- ``Interval`` functions (``merge``, ``subtract``, ``intersect``, ``clip``, ``split``,
  ``grid_starts``, ``total_duration``) for callers and tests;
- ``Span`` functions (``merge_spans``, ``subtract_spans``, ``intersect_spans``) on
  ``(start_us, end_us)`` integer pairs (microseconds since the Unix epoch), used by
  hot loops such as availability, where building thousands of ``Interval`` objects
  would dominate the cost.

Every list returned is sorted, non-overlapping and merged: two intervals that touch
(``a.end == b.start``) are fused, because ``[a, b) + [b, c) = [a, c)``.
All sweeps are O(n log n) (sorting) followed by linear passes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from orchestrator.scheduling.types import Interval, require_utc

Span = tuple[int, int]
"""``(start, end)`` in integer microseconds since 1970-01-01T00:00Z, ``start < end``."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


# --------------------------------------------------------------------------- conversions


def to_micros(moment: datetime) -> int:
    """Exact microseconds since the epoch of an aware datetime (``ValueError`` if naive)."""
    return (require_utc(moment) - EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """Inverse of ``to_micros``: an aware UTC datetime."""
    return EPOCH + timedelta(microseconds=micros)


def delta_micros(delta: timedelta) -> int:
    """Exact length of ``delta`` in microseconds."""
    return delta // _MICROSECOND


def to_span(interval: Interval) -> Span:
    """``Interval`` → ``Span`` (exact)."""
    # Hot path (thousands of claims per query): Interval guarantees aware UTC ends, so
    # skip require_utc, and integer field arithmetic beats timedelta floor division.
    a = interval.start - EPOCH
    b = interval.end - EPOCH
    return (
        (a.days * 86_400 + a.seconds) * 1_000_000 + a.microseconds,
        (b.days * 86_400 + b.seconds) * 1_000_000 + b.microseconds,
    )


def from_span(span: Span) -> Interval:
    """``Span`` → ``Interval`` (exact)."""
    return Interval(from_micros(span[0]), from_micros(span[1]))


# --------------------------------------------------------------------------- spans


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Sort and fuse overlapping or touching spans. Empty/inverted spans are ignored."""
    out: list[Span] = []
    cur_start = cur_end = 0
    started = False
    for start, end in sorted(spans):
        if start >= end:
            continue
        if not started:
            cur_start, cur_end, started = start, end, True
        elif start <= cur_end:
            if end > cur_end:
                cur_end = end
        else:
            out.append((cur_start, cur_end))
            cur_start, cur_end = start, end
    if started:
        out.append((cur_start, cur_end))
    return out


def subtract_spans(base: Sequence[Span], cuts: Sequence[Span]) -> list[Span]:
    """``base \\ cuts``. Both inputs MUST already be merged (sorted, disjoint).

    Linear in ``len(base) + len(cuts)``: the cut pointer only moves forward, except
    that a cut straddling the end of one base span is re-examined for the next one.
    """
    out: list[Span] = []
    j = 0
    n = len(cuts)
    for base_start, base_end in base:
        while j < n and cuts[j][1] <= base_start:
            j += 1
        cur = base_start
        k = j
        while k < n:
            cut_start, cut_end = cuts[k]
            if cut_start >= base_end:
                break
            if cut_start > cur:
                out.append((cur, cut_start))
            if cut_end > cur:
                cur = cut_end
            if cur >= base_end:
                break
            k += 1
        if cur < base_end:
            out.append((cur, base_end))
    return out


def intersect_spans(left: Sequence[Span], right: Sequence[Span]) -> list[Span]:
    """``left ∩ right``. Both inputs MUST already be merged (sorted, disjoint)."""
    out: list[Span] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i][0], right[j][0])
        end = min(left[i][1], right[j][1])
        if start < end:
            out.append((start, end))
        if left[i][1] <= right[j][1]:
            i += 1
        else:
            j += 1
    return out


# --------------------------------------------------------------------------- intervals


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Union of ``intervals``: sorted, disjoint, touching intervals fused."""
    return [from_span(s) for s in merge_spans(to_span(i) for i in intervals)]


def subtract(base: Iterable[Interval], cuts: Iterable[Interval]) -> list[Interval]:
    """Points of ``base`` not covered by any of ``cuts`` (inputs in any order, may overlap)."""
    spans = subtract_spans(merge_spans(to_span(i) for i in base), merge_spans(to_span(i) for i in cuts))
    return [from_span(s) for s in spans]


def intersect(left: Iterable[Interval], right: Iterable[Interval]) -> list[Interval]:
    """Points covered by both ``left`` and ``right`` (inputs in any order, may overlap)."""
    spans = intersect_spans(merge_spans(to_span(i) for i in left), merge_spans(to_span(i) for i in right))
    return [from_span(s) for s in spans]


def clip(intervals: Iterable[Interval], window: Interval) -> list[Interval]:
    """The parts of ``intervals`` inside ``window`` (merged)."""
    return intersect(intervals, (window,))


def total_duration(intervals: Iterable[Interval]) -> timedelta:
    """Length of the union of ``intervals`` (overlaps counted once)."""
    return timedelta(microseconds=sum(e - s for s, e in merge_spans(to_span(i) for i in intervals)))


def split(interval: Interval, step: timedelta) -> list[Interval]:
    """Cut ``interval`` into consecutive pieces of length ``step`` from its start.

    The last piece is shorter when ``step`` does not divide the duration.
    ``ValueError`` if ``step`` is not positive.
    """
    if step <= timedelta(0):
        raise ValueError("step must be positive")
    out: list[Interval] = []
    cur = interval.start
    while cur < interval.end:
        nxt = min(cur + step, interval.end)
        out.append(Interval(cur, nxt))
        cur = nxt
    return out


def grid_span_starts(span: Span, origin: int, step: int, length: int) -> range:
    """Integer version of ``grid_starts`` (all values in microseconds)."""
    first = origin - ((origin - span[0]) // step) * step  # smallest origin + k*step >= span start
    return range(first, span[1] - length + 1, step)


def grid_starts(interval: Interval, origin: datetime, step: timedelta, length: timedelta) -> list[datetime]:
    """Starts ``s = origin + k*step`` (k any integer) with ``[s, s + length)`` inside ``interval``.

    ``ValueError`` if ``step`` or ``length`` is not positive.
    """
    if step <= timedelta(0) or length <= timedelta(0):
        raise ValueError("step and length must be positive")
    starts = grid_span_starts(to_span(interval), to_micros(origin), delta_micros(step), delta_micros(length))
    return [from_micros(s) for s in starts]
