"""Benchmark of the pure availability core against two baselines, in the same run.

- the best simple alternative: interval subtraction per counsellor (claims widened by the
  buffers, subtracted from each working block, then the grid stepped inside each free interval);
- a deliberately naive minute-by-minute scan (what a first attempt often looks like).

    python bench/bench_core_availability.py [--repeats 30] [--json out.json]

Deterministic agency (``random.Random(42)``): 50 counsellors, 28 days (including the
Europe/Paris spring-forward day), weekly rules Mon-Fri 09:00-12:30 & 13:30-17:00,
~60 % of working time booked with 30/60-min claims, a few absence days. Service of
30 min on the 15-min grid with a 5-min buffer after, two modes, a language
preference and a referent, so every branch of the choice policy runs.

``run(repeats)`` returns a dict (times in ms); all three implementations must give the same
(start, mode, counsellor) answers or it raises.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time as clock
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from orchestrator.scheduling.availability import (
    MODE_ORDER,
    ServiceSpec,
    SlotRequest,
    free_slots,
)
from orchestrator.scheduling.ledger import Ledger
from orchestrator.scheduling.rules import WeeklyRule, expand_rules, local_day_bounds
from orchestrator.scheduling.types import Interval, Mode

TZ = "Europe/Paris"
FIRST_DAY = date(2026, 3, 2)  # a Monday; the window includes 2026-03-29 (DST)
DAYS = 28
COUNSELLORS = 50
ALL_MODES = frozenset(Mode)


def build_agency(seed: int = 42) -> dict[str, Any]:
    """The deterministic agency snapshot used by the benchmark."""
    rng = random.Random(seed)
    last_day = FIRST_DAY + timedelta(days=DAYS - 1)
    rules = [
        WeeklyRule(wd, start, end, ALL_MODES)
        for wd in range(5)
        for start, end in ((time(9), time(12, 30)), (time(13, 30), time(17)))
    ]
    working = tuple(expand_rules(rules, TZ, FIRST_DAY, last_day))
    counsellors: list[Ledger] = []
    booked_us = working_us = 0
    for n in range(COUNSELLORS):
        booked: list[Interval] = []
        for block in working:
            working_us += block.interval.duration // timedelta(microseconds=1)
            t = block.interval.start
            while t < block.interval.end:
                length = timedelta(minutes=rng.choice((30, 60)))
                if rng.random() < 0.5 and t + length <= block.interval.end:
                    booked.append(Interval(t, t + length))
                    booked_us += length // timedelta(microseconds=1)
                    t += length
                else:
                    t += timedelta(minutes=rng.choice((15, 30)))
        unavailable: list[Interval] = []
        if rng.random() < 0.2:
            unavailable.append(local_day_bounds(FIRST_DAY + timedelta(days=rng.randrange(DAYS)), TZ))
        languages = {"fr"} | {lang for lang in ("en", "es", "ar") if rng.random() < 0.25}
        modes = ALL_MODES if rng.random() < 0.8 else frozenset({Mode.PHONE, Mode.VIDEO})
        rng.shuffle(booked)  # the core must not rely on input order
        counsellors.append(
            Ledger.of(
                id=f"c{n:02d}",
                skills=frozenset({"accompaniment"}),
                languages=frozenset(languages),
                modes=modes,
                working=working,
                booked=tuple(booked),
                unavailable=tuple(unavailable),
            )
        )
    service = ServiceSpec(
        id="accompaniment-30",
        duration=timedelta(minutes=30),
        modes=frozenset({Mode.IN_PERSON, Mode.PHONE}),
        skill="accompaniment",
        min_notice=timedelta(hours=2),
        max_horizon=timedelta(days=60),
        buffer_before=timedelta(0),
        buffer_after=timedelta(minutes=5),
    )
    window = Interval(local_day_bounds(FIRST_DAY, TZ).start, local_day_bounds(last_day, TZ).end)
    return {
        "service": service,
        "counsellors": counsellors,
        "window": window,
        "now": datetime(2026, 3, 2, 6, 0, tzinfo=UTC),
        "request": SlotRequest(language="es", referent_counsellor_id="c07"),
        "booked_ratio": booked_us / working_us,
    }


@dataclass(frozen=True)
class PlainCalendar:
    """A counsellor's time as the baselines naturally hold it: ``Interval`` objects, built once
    before timing (the core's ledger keeps integer spans instead)."""

    id: str
    skills: frozenset[str]
    languages: frozenset[str]
    modes: frozenset[Mode]
    working: tuple[Any, ...]
    booked: tuple[Interval, ...]
    unavailable: tuple[Interval, ...]

    @classmethod
    def of(cls, ledger: Ledger) -> PlainCalendar:
        return cls(
            ledger.id,
            ledger.skills,
            ledger.languages,
            ledger.modes,
            ledger.working,
            ledger.booked,
            ledger.unavailable,
        )


def naive_slots(
    service: ServiceSpec,
    counsellors: Sequence[PlainCalendar],
    window: Interval,
    now: datetime,
    request: SlotRequest,
    tz: str,
) -> list[tuple[datetime, Mode, str]]:
    """Deliberately naive: every counsellor, every minute of the window, every block and
    every claim checked again; same policy as the core (no preferred windows/limit/quota)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    minute = timedelta(minutes=1)
    earliest, latest = now + service.min_notice, now + service.max_horizon
    free: dict[tuple[datetime, Mode], list[PlainCalendar]] = {}
    for c in counsellors:
        if service.skill is not None and service.skill not in c.skills:
            continue
        claims = list(c.booked) + list(c.unavailable)
        t = window.start
        while t < window.end:
            if earliest <= t <= latest:
                for mode in MODE_ORDER:
                    if mode not in service.modes or mode not in c.modes:
                        continue
                    if request.mode is not None and mode != request.mode:
                        continue
                    end = t + service.duration
                    on_grid = any(
                        mode in b.modes
                        and b.interval.start <= t
                        and end <= b.interval.end
                        and (t - b.interval.start) % service.grid == timedelta(0)
                        for b in c.working
                    )
                    if on_grid and not any(
                        cl.start < end + service.buffer_after and t - service.buffer_before < cl.end
                        for cl in claims
                    ):
                        free.setdefault((t, mode), []).append(c)
            t += minute
    out: list[tuple[datetime, Mode, str]] = []
    seen: set[datetime] = set()
    for (t, mode), cands in sorted(free.items(), key=lambda kv: (kv[0][0], MODE_ORDER.index(kv[0][1]))):
        if t in seen:
            continue
        seen.add(t)
        day = t.astimezone(zone).date()
        bounds = local_day_bounds(day, tz)

        def rank(c: PlainCalendar, bounds: Interval = bounds) -> tuple[int, int, timedelta, str]:
            load = sum(
                (min(b.end, bounds.end) - max(b.start, bounds.start) for b in c.booked if b.overlaps(bounds)),
                timedelta(0),
            )
            return (
                0 if c.id == request.referent_counsellor_id else 1,
                0 if request.language in c.languages else 1,
                load,
                c.id,
            )

        out.append((t, mode, min(cands, key=rank).id))
    return out


def subtraction_slots(
    service: ServiceSpec,
    counsellors: Sequence[PlainCalendar],
    window: Interval,
    now: datetime,
    request: SlotRequest,
    tz: str,
) -> list[tuple[datetime, Mode, str]]:
    """The best simple alternative: per counsellor, subtract the claims (widened by the service
    buffers) from each working block and step the grid inside what is left. Same policy."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    earliest, latest = now + service.min_notice, now + service.max_horizon
    free: dict[tuple[datetime, Mode], list[PlainCalendar]] = {}
    for c in counsellors:
        if service.skill is not None and service.skill not in c.skills:
            continue
        # a slot [t, t + d) may not overlap [claim.start - buffer_after, claim.end + buffer_before)
        blocked = sorted(
            (cl.start - service.buffer_after, cl.end + service.buffer_before)
            for cl in (*c.booked, *c.unavailable)
        )
        for block in c.working:
            modes = [
                m
                for m in MODE_ORDER
                if m in service.modes and m in c.modes and m in block.modes and request.mode in (None, m)
            ]
            if not modes or not block.interval.overlaps(window):
                continue
            for start, end in _subtract(block.interval.start, block.interval.end, blocked):
                offset = (start - block.interval.start) % service.grid
                t = start if offset == timedelta(0) else start + service.grid - offset
                while t + service.duration <= end:
                    if earliest <= t <= latest and window.start <= t < window.end:
                        for mode in modes:
                            free.setdefault((t, mode), []).append(c)
                    t += service.grid
    out: list[tuple[datetime, Mode, str]] = []
    seen: set[datetime] = set()
    loads: dict[tuple[str, date], timedelta] = {}
    for (t, mode), cands in sorted(free.items(), key=lambda kv: (kv[0][0], MODE_ORDER.index(kv[0][1]))):
        if t in seen:
            continue
        seen.add(t)
        day = t.astimezone(zone).date()
        bounds = local_day_bounds(day, tz)

        def rank(
            c: PlainCalendar, day: date = day, bounds: Interval = bounds
        ) -> tuple[int, int, timedelta, str]:
            if (c.id, day) not in loads:
                loads[c.id, day] = sum(
                    (
                        min(b.end, bounds.end) - max(b.start, bounds.start)
                        for b in c.booked
                        if b.overlaps(bounds)
                    ),
                    timedelta(0),
                )
            return (
                0 if c.id == request.referent_counsellor_id else 1,
                0 if request.language in c.languages else 1,
                loads[c.id, day],
                c.id,
            )

        out.append((t, mode, min(cands, key=rank).id))
    return out


def _subtract(
    start: datetime, end: datetime, blocked: Sequence[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """[start, end) minus the sorted ``blocked`` spans."""
    free: list[tuple[datetime, datetime]] = []
    cursor = start
    for b_start, b_end in blocked:
        if b_end <= cursor:
            continue
        if b_start >= end:
            break
        if b_start > cursor:
            free.append((cursor, b_start))
        cursor = max(cursor, b_end)
    if cursor < end:
        free.append((cursor, end))
    return free


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def run(repeats: int = 30, naive_repeats: int = 1) -> dict[str, Any]:
    """Time ``free_slots`` (``repeats`` runs) and the naive baseline; verify equal answers."""
    agency = build_agency()
    args = (agency["service"], agency["counsellors"], agency["window"], agency["now"], agency["request"])
    plain = [PlainCalendar.of(c) for c in agency["counsellors"]]  # the baselines' natural input
    plain_args = (agency["service"], plain, agency["window"], agency["now"], agency["request"])
    core_times: list[float] = []
    slots = []
    for _ in range(repeats):
        t0 = clock.perf_counter()
        slots = free_slots(*args, tz=TZ)
        core_times.append(clock.perf_counter() - t0)
    naive_times: list[float] = []
    naive: list[tuple[datetime, Mode, str]] = []
    for _ in range(naive_repeats):
        t0 = clock.perf_counter()
        naive = naive_slots(*plain_args, tz=TZ)
        naive_times.append(clock.perf_counter() - t0)
    subtraction_times: list[float] = []
    subtraction: list[tuple[datetime, Mode, str]] = []
    for _ in range(repeats):
        t0 = clock.perf_counter()
        subtraction = subtraction_slots(*plain_args, tz=TZ)
        subtraction_times.append(clock.perf_counter() - t0)
    core = [(s.start, s.mode, s.counsellor_id) for s in slots]
    for name, other in (("naive", naive), ("subtraction", subtraction)):
        if core != other:
            diff = sorted(set(core) ^ set(other))[:5]
            raise AssertionError(f"core and {name} disagree ({len(core)} vs {len(other)}): {diff}")
    core_p50, core_p95 = _ms(core_times)
    naive_p50, _ = _ms(naive_times)
    subtraction_p50, _ = _ms(subtraction_times)
    reasons: dict[str, int] = {}
    for s in slots:
        reasons[s.reason] = reasons.get(s.reason, 0) + 1
    return {
        "counsellors": COUNSELLORS,
        "days": DAYS,
        "booked_ratio": round(agency["booked_ratio"], 3),
        "claims": sum(len(c.booked) for c in agency["counsellors"]),
        "slots": len(slots),
        "reasons": reasons,
        "repeats": repeats,
        "core_ms_p50": round(core_p50, 3),
        "core_ms_p95": round(core_p95, 3),
        "naive_ms_p50": round(naive_p50, 1),
        "speedup": round(naive_p50 / core_p50, 1),
        "subtraction_ms_p50": round(subtraction_p50, 3),
        "speedup_vs_subtraction": round(subtraction_p50 / core_p50, 2),
        "python": sys.version.split()[0],
        "answers_match": True,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--naive-repeats", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the result dict to this file")
    ns = parser.parse_args(argv)
    result = run(ns.repeats, ns.naive_repeats)
    text = json.dumps(result, indent=2, sort_keys=True)
    print(text)
    if ns.json:
        ns.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
