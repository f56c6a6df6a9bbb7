"""Run every benchmark in one go (``make bench``): writes bench/results.json and prints a table.

Side-by-side rule (see the performance anchors): each peer/baseline technique runs in the same
process, on the same machine, in the same run as ours, and the table reports the ratio.
A benchmark that fails is recorded with its error; the others still run.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "src"))

MODULES = (
    "bench_core_availability",
    "bench_core_queue",
    "bench_booking_http",
    "bench_queue_http",
    "bench_pgbench",
    "profile_paths",
    "bench_sms",
    "bench_callbacks",
    "bench_calendar",
    "bench_capacity",
)


def _machine() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def _get(d: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _ratio(ours: Any, peer: Any) -> str:
    try:
        return f"{float(ours) / float(peer):.3g}"
    except (TypeError, ValueError, ZeroDivisionError):
        return ""


Row = tuple[str, str, Any, str, Any, str]  # benchmark, metric, ours, peer name, peer value, ratio


def _rows(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    core = results.get("bench_core_availability") or {}
    if "error" not in core and core:
        rows.append(
            (
                "core availability (50 c x 28 d)",
                "free_slots p50 ms",
                core.get("core_ms_p50"),
                "naive minute scan",
                core.get("naive_ms_p50"),
                _ratio(core.get("core_ms_p50"), core.get("naive_ms_p50")),
            )
        )
        rows.append(
            (
                "core availability (50 c x 28 d)",
                "free_slots p50 ms",
                core.get("core_ms_p50"),
                "interval subtraction per counsellor",
                core.get("subtraction_ms_p50"),
                _ratio(core.get("core_ms_p50"), core.get("subtraction_ms_p50")),
            )
        )
    queue = results.get("bench_core_queue") or {}
    if "error" not in queue and queue:
        rows.append(
            ("core queue (40 c x 300 t)", "next_work p50 ms", _get(queue, "next_work", "p50_ms"), "", "", "")
        )
        rows.append(
            (
                "core queue",
                "estimate_waits p50 ms",
                _get(queue, "estimate_waits", "p50_ms"),
                "ZMS baseline",
                _get(queue, "zms_baseline", "p50_ms"),
                _ratio(_get(queue, "estimate_waits", "p50_ms"), _get(queue, "zms_baseline", "p50_ms")),
            )
        )
        for load, acc in (_get(queue, "accuracy") or {}).items():
            rows.append(
                (
                    "core queue accuracy " + load,
                    "wait MAE min",
                    acc.get("mae_ours_min"),
                    "ZMS baseline",
                    acc.get("mae_zms_min"),
                    _ratio(acc.get("mae_ours_min"), acc.get("mae_zms_min")),
                )
            )
    http = results.get("bench_booking_http") or {}
    if "error" not in http and http:
        core_p50 = _get(http, "layers", "core", "p50_ms")
        for label, key in (("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms")):
            value = _get(http, "availability", "sequential", key)
            rows.append(
                (
                    "GET availability 28 d (HTTP, sequential)",
                    f"{label} ms",
                    value,
                    "core alone (same snapshot)" if label == "p50" else "",
                    core_p50 if label == "p50" else "",
                    _ratio(value, core_p50) if label == "p50" else "",
                )
            )
        rows.append(
            (
                "GET availability 28 d (HTTP)",
                "snapshot load p50 ms (SQL)",
                _get(http, "layers", "snapshot_load", "p50_ms"),
                "",
                "",
                "",
            )
        )
        conc = _get(http, "availability", "concurrent") or {}
        rows.append(
            (
                f"GET availability 28 d ({conc.get('clients')} clients)",
                "requests/s",
                conc.get("rps"),
                "",
                "",
                "",
            )
        )
        rows.append(
            (
                f"GET availability 28 d ({conc.get('clients')} clients)",
                "p99 ms",
                conc.get("p99_ms"),
                "",
                "",
                "",
            )
        )
        rnd = _get(http, "booking", "random") or {}
        rows.append(
            (
                f"POST appointments, random race ({rnd.get('clients')} clients)",
                "bookings/s",
                rnd.get("bookings_per_s"),
                "",
                "",
                "",
            )
        )
        rows.append(
            (
                "POST appointments, random race",
                "201 / 409 / shed 503 / other 5xx",
                f"{rnd.get('created_201')} / {rnd.get('conflict_409')} / {rnd.get('server_errors_5xx')}",
                "",
                "",
                "",
            )
        )
        rows.append(
            (
                "POST appointments, random race",
                "p50 / p99 ms",
                f"{_get(rnd, 'latency', 'p50_ms')} / {_get(rnd, 'latency', 'p99_ms')}",
                "",
                "",
                "",
            )
        )
        flash = _get(http, "booking", "flash") or {}
        rows.append(
            (
                f"POST appointments, flash crowd ({flash.get('requests')} on {flash.get('slots')} slots)",
                "201 / 409 / shed 503 / other 5xx",
                " / ".join(
                    str(flash.get(k))
                    for k in ("created_201", "conflict_409", "shed_503", "server_errors_5xx")
                ),
                "",
                "",
                "",
            )
        )
        rows.append(
            (
                "POST appointments, flash crowd",
                "p50 / p99 ms",
                f"{_get(flash, 'latency', 'p50_ms')} / {_get(flash, 'latency', 'p99_ms')}",
                "",
                "",
                "",
            )
        )
        rows.append(
            ("booking races", "overlapping claims (SQL)", _get(http, "booking", "overlaps"), "must be", 0, "")
        )
        rows.extend(_processes_rows(http))
    pg = results.get("bench_pgbench") or {}
    if "error" not in pg and pg:
        booked = _get(http, "processes", "2", "booking", "random", "attempts_per_s")
        rows.append(
            (
                "booking attempts/s (API, 2 processes)",
                "vs pgbench, same insert",
                booked,
                f"pgbench tps, {pg.get('clients')} clients",
                pg.get("tps"),
                _ratio(booked, pg.get("tps")),
            )
        )
    qhttp = results.get("bench_queue_http") or {}
    if "error" not in qhttp and qhttp:
        rows.append(
            (
                "walk-in call-next (HTTP)",
                "p50 / p95 ms",
                f"{_get(qhttp, 'call_next_200', 'p50_ms')} / {_get(qhttp, 'call_next_200', 'p95_ms')}",
                "",
                "",
                "",
            )
        )
        rows.append(("walk-in call-next (HTTP)", "calls/s", qhttp.get("calls_per_second"), "", "", ""))
        rows.append(
            (
                "walk-in call-next (HTTP)",
                "double assignments",
                qhttp.get("double_assignments"),
                "must be",
                0,
                "",
            )
        )
    loop = _get(http, "booking_open_loop") or {}
    if loop:
        rows.append(
            (
                f"POST appointments, open loop {loop.get('offered_per_s')}/s",
                "answered/s · p50 / p99 ms · 201 / 409 / shed 503 / other 5xx",
                f"{loop.get('achieved_per_s')} · {_get(loop, 'latency', 'p50_ms')} / "
                f"{_get(loop, 'latency', 'p99_ms')} · {loop.get('created_201')} / "
                f"{loop.get('conflict_409')} / {loop.get('shed_503')} / {loop.get('server_errors_5xx')}",
                "",
                "",
                "",
            )
        )
    paths = results.get("profile_paths") or {}
    if "error" not in paths:
        floor = _get(paths, "health", "cpu_ms_p50")
        for path, measured in paths.items():
            rows.append(
                (
                    f"server CPU per request: {path}",
                    "CPU ms p50 · round trips",
                    f"{measured.get('cpu_ms_p50')} · {measured.get('round_trips')}",
                    "/health (framework floor)",
                    floor,
                    _ratio(measured.get("cpu_ms_p50"), floor),
                )
            )
            for step, part in (measured.get("steps") or {}).items():  # a handout's three requests
                rows.append(
                    (
                        f"  of which {step}",
                        "CPU ms p50 · round trips",
                        f"{part.get('cpu_ms_p50')} · {part.get('round_trips')}",
                        "",
                        "",
                        "",
                    )
                )
    sms = results.get("bench_sms") or {}
    if "error" not in sms and sms:
        relay = _get(sms, "relay_baseline", "messages_per_s")
        for key, label in (
            ("throughput_job_per_message", "SMS out, a job per message"),
            ("throughput_sweeper_batches", "SMS out, sweeper jobs of 50"),
        ):
            ours = _get(sms, key, "messages_per_s")
            cpu = _get(sms, key, "worker_cpu_ms_per_message")
            rows.append(
                (
                    label,
                    "messages/s · worker CPU ms/msg",
                    f"{ours} · {cpu}",
                    "outbox relay loop, no Redis",
                    relay,
                    _ratio(ours, relay),
                )
            )
        rows.append(
            (
                "SMS out, commit to provider",
                "p50 / p99 ms",
                f"{_get(sms, 'delay', 'p50_ms')} / {_get(sms, 'delay', 'p99_ms')}",
                "",
                "",
                "",
            )
        )
    cb = results.get("bench_callbacks") or {}
    if "error" not in cb and cb:
        rows.append(("plan_callbacks 200 req x 50 c", "p50 ms", _get(cb, "speed", "p50_ms"), "goal", 50, ""))
        day = cb.get("simulated_day") or {}
        for team in (2, 3, 4):
            silo = day.get(f"siloed_{team}_on_phone") or {}
            rows.append(
                (
                    "callbacks on time (shared) · appointments refused",
                    "share · count",
                    f"{_get(day, 'shared', 'callbacks_on_time')} · "
                    f"{_get(day, 'shared', 'appointments_refused')}",
                    f"silo, {team} on the phone",
                    f"{silo.get('callbacks_on_time')} · {silo.get('appointments_refused')}",
                    "",
                )
            )
    cal = results.get("bench_calendar") or {}
    if "error" not in cal and cal:
        rows.append(
            (
                "calendar import, 5,000 events x 8 weeks",
                "p50 ms",
                _get(cal, "import", "p50_ms"),
                "goal",
                2000,
                "",
            )
        )
        rows.append(
            ("calendar feed, 500 items, polled again", "p50 ms", _get(cal, "feed", "p50_ms"), "goal", 50, "")
        )
        cold = _get(cal, "feed", "cold_p50_ms")
        rows.append(("calendar feed, 500 items, first render", "p50 ms", cold, "goal", 50, ""))
    cap = results.get("bench_capacity") or {}
    if "error" not in cap and cap:
        rows.append(
            ("capacity plan, 50 counsellors x 1 day", "p50 ms", _get(cap, "plan", "p50_ms"), "goal", 100, "")
        )
        month = _get(cap, "simulated_month", "seconds")
        rows.append(("simulated month, large urban, both policies", "s", month, "goal", 60, ""))
        gain = _get(cap, "simulated_month", "p90_gain_percent")
        rows.append(("  unified vs siloed: p90 wait walk-ins + callbacks", "% lower", gain, "goal", 30, ""))
    for name, result in results.items():
        if isinstance(result, dict) and "error" in result:
            rows.append((name, "FAILED", result["error"].splitlines()[-1][:80], "", "", ""))
    return rows


def _processes_rows(http: dict[str, Any]) -> list[Row]:
    """Server CPU per request and throughput with 1 and 2 API processes, side by side."""
    runs = http.get("processes") or {}
    one, two = runs.get("1") or {}, runs.get("2") or {}
    rows: list[Row] = []
    for label, path in (
        ("GET availability, server CPU ms/request", ("availability", "server_cpu_ms_per_request")),
        ("POST appointments race, server CPU ms/attempt", ("booking", "random", "server_cpu_ms_per_attempt")),
        ("POST appointments race, bookings/s", ("booking", "random", "bookings_per_s")),
        ("POST appointments race, attempts/s", ("booking", "random", "attempts_per_s")),
    ):
        ours, other = _get(two, *path), _get(one, *path)
        rows.append((label, "2 API processes", ours, "1 API process", other, _ratio(ours, other)))
    return rows


def table(results: dict[str, Any]) -> str:
    lines = [
        "| benchmark | metric | ours | baseline / peer (same run) | baseline | ours / baseline |",
        "|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in _rows(results)]
    return "\n".join(lines)


def main() -> None:
    results: dict[str, Any] = {}
    timings: dict[str, float] = {}
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # an optional benchmark not written yet
            raise
        run: Callable[[], dict[str, Any]] = module.run
        print(f"running {name} …", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            results[name] = run()
        except Exception:
            results[name] = {"error": traceback.format_exc()}
        timings[name] = round(time.perf_counter() - t0, 1)
    output = {"machine": _machine(), "seconds": timings, "results": results}
    (BENCH / "results.json").write_text(json.dumps(output, indent=2, default=str) + "\n")
    m = output["machine"]
    print(
        f"\n{m['date']} · {m['nproc']} CPUs · Python {m['python']} · load {m['load_average_1m']} · "
        f"seconds per benchmark {timings}\n"
    )
    print(table(results))


if __name__ == "__main__":
    main()
