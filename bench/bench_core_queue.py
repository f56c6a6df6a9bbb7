"""Benchmark of the pure queue core: next_work and estimate_waits latency, and wait accuracy.

Run: ``PYTHONPATH=src python bench/bench_core_queue.py [repeats]``. Prints JSON.

- Latency: one agency snapshot with 40 counsellors (skills, languages, half-booked calendars)
  and 300 waiting tickets; ``next_work`` is timed for every counsellor, ``estimate_waits`` and
  ``order_queue`` for the whole snapshot; p50/p95 in milliseconds.
- Accuracy: ``simulate_day`` over 20 seeds at two loads; mean absolute error of our estimate
  and of the ZMS baseline against the simulated actual waits (minutes).
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from orchestrator.scheduling.queue import (
    DeskCounsellor,
    DueAppointment,
    QueuePolicy,
    QueueState,
    WaitingTicket,
    next_work,
    order_queue,
)
from orchestrator.scheduling.simulation import SERVICES, SimConfig, simulate_day
from orchestrator.scheduling.types import Interval
from orchestrator.scheduling.waits import estimate_waits, zms_baseline

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SKILLS = ("registration", "benefits", "coaching")
SERVICE_SKILL = {"registration": "register", "benefits": "benefits", "coaching": "coaching"}


def build_state(seed: int = 7, counsellors: int = 40, tickets: int = 300) -> QueueState:
    rng = random.Random(seed)
    services = {s.id: s for s in SERVICES}
    desks: list[DeskCounsellor] = []
    appointments: list[DueAppointment] = []
    for i in range(counsellors):
        skills = frozenset(rng.sample(SKILLS, rng.randint(1, 3)))
        languages = frozenset({"fr"} | {lang for lang in ("en", "ar", "es") if rng.random() < 0.3})
        claims = []
        for slot in range(8):  # 30-minute slots from 10:00, about half booked
            if rng.random() < 0.5:
                starts = NOW + timedelta(minutes=30 * slot + 10)
                claims.append(Interval(starts, starts + timedelta(minutes=30)))
                appointments.append(
                    DueAppointment(
                        id=f"a{i}-{slot}",
                        counsellor_id=f"c{i:02d}",
                        service_id=SERVICE_SKILL[sorted(skills)[0]],
                        starts_at=starts,
                        ends_at=starts + timedelta(minutes=30),
                        checked_in_at=NOW if slot == 0 and rng.random() < 0.5 else None,
                    )
                )
        busy = rng.random() < 0.7
        desks.append(
            DeskCounsellor(
                id=f"c{i:02d}",
                skills=skills,
                languages=languages,
                on_desk=rng.random() < 0.9,
                commitments=tuple(claims),
                busy_until=NOW + timedelta(minutes=rng.randint(1, 20)) if busy else None,
            )
        )
    waiting = [
        WaitingTicket(
            id=f"t{k:03d}",
            number=f"W{k:03d}",
            service_id=rng.choice(sorted(services)),
            arrived_at=NOW - timedelta(minutes=rng.uniform(0, 120)),
            priority=rng.choices([0, 1, 2], weights=[85, 12, 3])[0],
            language=rng.choices([None, "en", "ar", "es"], weights=[80, 10, 6, 4])[0],
            preferred_counsellor_id=f"c{rng.randrange(counsellors):02d}" if rng.random() < 0.05 else None,
            seq=k,
        )
        for k in range(tickets)
    ]
    return QueueState(tuple(waiting), tuple(appointments), services, tuple(desks))


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    cut = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {"p50_ms": round(cut[49], 4), "p95_ms": round(cut[94], 4), "n": len(ordered)}


def _time(call: Callable[[], object], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def run(repeats: int = 20) -> dict[str, object]:
    """Time the core on a 40 x 300 snapshot and compare estimators on 20 simulated days."""
    state = build_state()
    policy = QueuePolicy()
    durations = {s.id: s.expected_duration for s in SERVICES}
    next_work_ms: list[float] = []
    for _ in range(repeats):
        for counsellor in state.counsellors:
            start = time.perf_counter()
            next_work(counsellor, NOW, state, policy)
            next_work_ms.append((time.perf_counter() - start) * 1000)
    result: dict[str, object] = {
        "snapshot": {
            "counsellors": len(state.counsellors),
            "on_desk": sum(c.on_desk for c in state.counsellors),
            "tickets": len(state.tickets),
            "appointments": len(state.appointments),
        },
        "next_work": _percentiles(next_work_ms),
        "estimate_waits": _percentiles(_time(lambda: estimate_waits(state, NOW, policy, durations), repeats)),
        "order_queue": _percentiles(_time(lambda: order_queue(state, NOW, policy), repeats)),
        "zms_baseline": _percentiles(_time(lambda: zms_baseline(state, NOW, durations), repeats)),
    }
    accuracy: dict[str, object] = {}
    for rate in (13.0, 18.0):
        days = [simulate_day(seed, SimConfig(walk_ins_per_hour=rate)) for seed in range(20)]
        mae_ours = statistics.fmean(d.mae_ours for d in days)
        mae_zms = statistics.fmean(d.mae_zms for d in days)
        accuracy[f"walk_ins_per_hour_{rate:g}"] = {
            "seeds": len(days),
            "walk_ins_per_day": statistics.fmean(d.walk_ins for d in days),
            "mae_ours_min": round(mae_ours, 2),
            "mae_zms_min": round(mae_zms, 2),
            "mae_reduction_pct": round(100 * (1 - mae_ours / mae_zms), 1),
            "days_ours_better": sum(d.mae_ours < d.mae_zms for d in days),
            "p90_abs_error_ours_min": round(statistics.fmean(d.p90_error_ours for d in days), 2),
            "p90_abs_error_zms_min": round(statistics.fmean(d.p90_error_zms for d in days), 2),
            "under_predicted_10min_ours": round(statistics.fmean(d.under_10_ours for d in days), 3),
            "under_predicted_10min_zms": round(statistics.fmean(d.under_10_zms for d in days), 3),
            "walk_in_mean_wait_min": round(statistics.fmean(d.walk_in_mean_wait for d in days), 2),
            "walk_in_p90_wait_min": round(statistics.fmean(d.walk_in_p90_wait for d in days), 2),
            "appointment_mean_lateness_min": round(
                statistics.fmean(d.appointment_mean_lateness for d in days), 2
            ),
            "appointment_p90_lateness_min": round(
                statistics.fmean(d.appointment_p90_lateness for d in days), 2
            ),
            "counsellor_idle_min_per_day": round(statistics.fmean(d.idle for d in days), 1),
            "overtime_min_per_day": round(statistics.fmean(d.overtime for d in days), 1),
        }
    result["accuracy"] = accuracy
    return result


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 20), indent=2))
