"""Capacity plan and simulator: computing one day's plan for 50 counsellors (goal <= 100 ms), and
a simulated month (22 working days) of the large urban agency, both policies (goal <= 60 s).

No database: the plan and the simulator are the pure core. The month's report (siloed against
unified) is kept in the results, so the README's figures come from this run.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import report

from orchestrator.scheduling.agency_sim import PROFILES, simulate
from orchestrator.scheduling.capacity import BOOKING, CALLBACK, WALK_IN, Demand, plan_day
from orchestrator.scheduling.intervals import to_span
from orchestrator.scheduling.ledger import Ledger
from orchestrator.scheduling.rules import WorkingBlock, wall_to_utc
from orchestrator.scheduling.types import Interval, Mode

TZ = "Europe/Paris"
DAY = date(2026, 3, 3)
MODES = frozenset({Mode.IN_PERSON, Mode.PHONE})


def _ledgers(count: int) -> list[Ledger]:
    start, end = wall_to_utc(DAY, wall(8, 30), TZ), wall_to_utc(DAY, wall(17, 30), TZ)
    ledgers = []
    for i in range(count):
        booked = [
            (
                start + timedelta(minutes=30 * k + 15 * (i % 2)),
                start + timedelta(minutes=30 * k + 15 * (i % 2) + 30),
            )
            for k in range(0, 18, 3)
        ]
        ledger = Ledger.of(
            f"c{i:02d}", languages={"fr"}, modes=MODES, working=[WorkingBlock(Interval(start, end), MODES)]
        )
        ledgers.append(
            Ledger(
                ledger.id,
                ledger.skills,
                ledger.languages,
                ledger.modes,
                ledger.working,
                booked_spans=tuple(to_span(Interval(a, b)) for a, b in booked),
            )
        )
    return ledgers


def run(days: int = 22) -> dict[str, Any]:
    ledgers = _ledgers(50)
    demand = [
        Demand(channel, hour, rate, minutes, "bench")
        for hour in range(8, 18)
        for channel, rate, minutes in ((WALK_IN, 40.0, 20.0), (CALLBACK, 12.0, 12.0), (BOOKING, 30.0, 30.0))
    ]
    times = []
    for _ in range(7):
        started = time.perf_counter()
        plan = plan_day(ledgers, DAY, TZ, demand, now=datetime(2026, 3, 1, tzinfo=UTC))
        times.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    month = simulate(PROFILES["large_urban"], days=days, seed=1)
    month_s = time.perf_counter() - started
    return {
        "plan": {
            "counsellors": 50,
            "hours": len(plan.hours),
            "reservations": len(plan.reservations),
            "p50_ms": round(statistics.median(times), 1),
            "goal_ms": 100,
        },
        "simulated_month": {
            "profile": "large_urban",
            "days": days,
            "seconds": round(month_s, 1),
            "goal_s": 60,
            "p90_gain_percent": month["p90_gain_percent"],
            "report": month,
        },
    }


if __name__ == "__main__":
    report.main(run, __doc__)
