"""End-to-end benchmark of the booking API against a real server process.

    python bench/bench_booking_http.py [--json out.json]

Starts ``python -m orchestrator.cli run --no-worker`` on a scratch database it creates and drops
(server from ``ORCHESTRATOR_BENCH_DATABASE_URL`` / ``ORCHESTRATOR_BENCH_REDIS_URL``, else the
embedded servers under ``.data/bench``). Seeds one agency shaped like the core benchmark: 50
counsellors, Mon-Fri 09:00-12:30 / 13:30-17:00 Europe/Paris, 28 days, ~60 % of working time
booked (claims + appointments inserted with asyncpg, for speed).

Measures, in one run:
- ``GET /api/v1/availability`` over the 28 days: p50/p95/p99 of sequential requests after a
  warm-up, and requests/s with concurrent clients;
- the same snapshot through the layers: loading it from PostgreSQL (``load_ledger_records``, then
  ``build_ledgers``) and the pure core (``free_slots``): HTTP time read as DB + core + framework;
- booking under a race: concurrent clients booking random slots (named counsellor), and a flash
  crowd on 4 slots: bookings/s, 201/409 counts, latency, 5xx, and the overlap count from SQL (0).

The client (httpx) runs on the same machine and its cost is inside every latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import psutil  # noqa: E402

from orchestrator.auth import Role, issue_token  # noqa: E402
from orchestrator.scheduling.rules import WeeklyRule, expand_rules, local_day_bounds  # noqa: E402
from orchestrator.scheduling.types import Mode  # noqa: E402

TZ = "Europe/Paris"
COUNSELLORS = 50
DAYS = 28
SECRET = "bench-secret-not-for-production-0123456789"
BLOCKS = (("09:00", "12:30"), ("13:30", "17:00"))
SEQUENTIAL = 100
WARMUP = 10
CONCURRENT_CLIENTS = 8
CONCURRENT_REQUESTS = 64
RACE_CLIENTS = 16
RACE_SECONDS = 8.0
FLASH_PER_SLOT = 30


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2)

    return {"p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99), "n": len(ordered)}


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _admin_execute(admin_url: str, *statements: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


def _servers() -> tuple[str, str, Any]:
    """(server URL, redis URL, handle keeping embedded servers alive or None)."""
    db, redis = (
        os.environ.get("ORCHESTRATOR_BENCH_DATABASE_URL"),
        os.environ.get("ORCHESTRATOR_BENCH_REDIS_URL"),
    )
    embedded = None
    if not db or not redis:
        from orchestrator.embedded import EmbeddedServers

        embedded = EmbeddedServers(ROOT / ".data" / "bench")
        db = db or embedded.start_postgres("postgres")
        redis = redis or embedded.start_redis()
    return db, redis, embedded


def _start_server(database_url: str, redis_url: str, port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ORCHESTRATOR_DATABASE_URL": database_url,
        "ORCHESTRATOR_REDIS_URL": redis_url,
        "ORCHESTRATOR_TOKEN_SECRET": SECRET,
        "ORCHESTRATOR_PORT": str(port),
        "ORCHESTRATOR_PUBLIC_RATE_LIMIT_PER_MINUTE": "1000000",
        "ORCHESTRATOR_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    log = open(ROOT / ".data" / "bench-server.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "run", "--no-worker", "--workers", str(workers)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 90
    while True:  # poll readiness
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log.name}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.terminate()
            raise RuntimeError("server did not become ready in 90 s")
        time.sleep(0.1)


# --- seeding ----------------------------------------------------------------------------------


def _first_monday() -> date:
    today = datetime.now(UTC).date()
    return today + timedelta(days=7 - today.weekday())  # next Monday (never today)


async def _seed(http: httpx.AsyncClient, database_url: str, seed: int = 42) -> dict[str, Any]:
    admin = {"Authorization": "Bearer " + issue_token(SECRET, role=Role.ADMIN, subject="bench")}

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await http.post(path, json=body, headers=admin)
        if r.status_code != 201:
            raise RuntimeError(f"{path}: {r.status_code} {r.text}")
        return dict(r.json())

    rng = random.Random(seed)
    agency = await post("/api/v1/agencies", {"name": "Bench agency", "timezone": TZ})
    counsellors = []
    for n in range(COUNSELLORS):
        languages = ["fr"] + [lang for lang in ("en", "es", "ar") if rng.random() < 0.25]
        counsellors.append(
            await post(
                f"/api/v1/agencies/{agency['id']}/counsellors",
                {
                    "name": f"Counsellor {n:02d}",
                    "email": f"c{n:02d}@example.org",
                    "skills": ["accompaniment"],
                    "languages": languages,
                    "modes": ["in_person", "phone"],
                },
            )
        )
    gate = asyncio.Semaphore(8)

    async def rule(counsellor_id: str, weekday: int, start: str, end: str) -> None:
        async with gate:
            await post(
                f"/api/v1/counsellors/{counsellor_id}/rules",
                {"weekday": weekday, "start": start, "end": end, "modes": ["in_person", "phone"]},
            )

    await asyncio.gather(
        *(rule(c["id"], wd, s, e) for c in counsellors for wd in range(5) for s, e in BLOCKS)
    )
    service = await post(
        f"/api/v1/agencies/{agency['id']}/services",
        {
            "name": "Accompagnement",
            "duration_minutes": 30,
            "modes": ["in_person", "phone"],
            "skill": "accompaniment",
            "min_notice_minutes": 60,
            "max_horizon_days": 60,
            "buffer_after_minutes": 5,
        },
    )

    first = _first_monday()
    last = first + timedelta(days=DAYS - 1)
    rules = [
        WeeklyRule(wd, wall.fromisoformat(s), wall.fromisoformat(e), frozenset(Mode))
        for wd in range(5)
        for s, e in BLOCKS
    ]
    blocks = expand_rules(rules, TZ, first, last)
    claims: list[tuple[Any, ...]] = []
    appointments: list[tuple[Any, ...]] = []
    seeker = uuid.uuid4()
    booked = working = timedelta(0)
    for c in counsellors:
        cid = uuid.UUID(c["id"])
        for block in blocks:
            working += block.interval.duration
            t = block.interval.start
            while t < block.interval.end:
                length = timedelta(minutes=rng.choice((30, 60)))
                if rng.random() < 0.6 and t + length <= block.interval.end:
                    claim = uuid.uuid4()
                    claims.append((claim, uuid.UUID(agency["id"]), cid, t, t + length, "appointment"))
                    appointments.append(
                        (
                            uuid.uuid4(),
                            uuid.UUID(agency["id"]),
                            uuid.UUID(service["id"]),
                            cid,
                            seeker,
                            claim,
                            t,
                            t + length,
                            "in_person",
                            "confirmed",
                            "web",
                            "bench",
                            uuid.uuid4().hex + uuid.uuid4().hex,
                        )
                    )
                    booked += length
                    t += length
                else:
                    t += timedelta(minutes=rng.choice((15, 30)))
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO job_seekers (id, agency_id, name) VALUES ($1, $2, 'bench')",
                seeker,
                uuid.UUID(agency["id"]),
            )
            await conn.copy_records_to_table(
                "claims",
                records=claims,
                columns=["id", "agency_id", "counsellor_id", "starts_at", "ends_at", "kind"],
            )
            await conn.copy_records_to_table(
                "appointments",
                records=appointments,
                columns=[
                    "id",
                    "agency_id",
                    "service_id",
                    "counsellor_id",
                    "job_seeker_id",
                    "claim_id",
                    "starts_at",
                    "ends_at",
                    "mode",
                    "status",
                    "channel",
                    "created_by",
                    "manage_token_hash",
                ],
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    window = (local_day_bounds(first, TZ).start, local_day_bounds(last, TZ).end)
    return {
        "agency": agency,
        "service": service,
        "counsellors": counsellors,
        "window": window,
        "claims": len(claims),
        "booked_ratio": round(booked / working, 3),
    }


# --- measurements -----------------------------------------------------------------------------


class ServerCpu:
    """CPU seconds (user + system) used by the server: its process and every child (the API
    processes of ``--workers N``), read from the kernel's per-process counters."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)

    def seconds(self) -> float:
        total = 0.0
        for process in (self.root, *self.root.children(recursive=True)):
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total


SERVER: ServerCpu | None = None  # set by run() for the measurements below


def _cpu_now() -> float:
    return SERVER.seconds() if SERVER is not None else 0.0


async def _timed(call: Callable[[], Awaitable[httpx.Response]]) -> tuple[float, httpx.Response]:
    t0 = time.perf_counter()
    r = await call()
    return (time.perf_counter() - t0) * 1000, r


async def _availability(http: httpx.AsyncClient, world: dict[str, Any]) -> dict[str, Any]:
    start, end = world["window"]
    params = {
        "agency_id": world["agency"]["id"],
        "service_id": world["service"]["id"],
        "from": start.isoformat(),
        "to": end.isoformat(),
        "language": "es",
    }

    async def call() -> httpx.Response:
        return await http.get("/api/v1/availability", params=params)

    for _ in range(WARMUP):
        r = await call()
        r.raise_for_status()
    sequential = []
    cpu_before = _cpu_now()
    for _ in range(SEQUENTIAL):
        ms, r = await _timed(call)
        r.raise_for_status()
        sequential.append(ms)
    cpu_ms_per_request = (_cpu_now() - cpu_before) * 1000 / SEQUENTIAL
    body = r.json()
    per_client = CONCURRENT_REQUESTS // CONCURRENT_CLIENTS
    concurrent: list[float] = []

    async def client() -> None:
        for _ in range(per_client):
            ms, resp = await _timed(call)
            resp.raise_for_status()
            concurrent.append(ms)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONCURRENT_CLIENTS)))
    elapsed = time.perf_counter() - t0
    return {
        "slots": len(body["slots"]),
        "response_kib": round(len(r.content) / 1024, 1),
        "sequential": _percentiles(sequential),
        "sequential_rps": round(1000 / statistics.fmean(sequential), 1),
        "server_cpu_ms_per_request": round(cpu_ms_per_request, 2),
        "concurrent": {
            **_percentiles(concurrent),
            "clients": CONCURRENT_CLIENTS,
            "rps": round(len(concurrent) / elapsed, 1),
        },
    }


async def _layers(database_url: str, world: dict[str, Any], repeats: int = 20) -> dict[str, Any]:
    """The same request's snapshot load (SQL) and core computation, timed apart."""
    from orchestrator.db import make_engine, make_sessionmaker
    from orchestrator.repositories.ledgers import ledger_params, load_ledger_records
    from orchestrator.scheduling.availability import ServiceSpec, SlotRequest, free_slots
    from orchestrator.scheduling.ledger import build_ledgers, ledger_range
    from orchestrator.scheduling.types import Interval

    engine = make_engine(database_url, pool_size=1)
    sessions = make_sessionmaker(engine)
    start, end = world["window"]
    window = Interval(start, end)
    now = datetime.now(UTC)
    svc = world["service"]
    spec = ServiceSpec(
        id=svc["id"],
        duration=timedelta(minutes=30),
        modes=frozenset({Mode.IN_PERSON, Mode.PHONE}),
        skill="accompaniment",
        min_notice=timedelta(minutes=60),
        max_horizon=timedelta(days=60),
        buffer_before=timedelta(0),
        buffer_after=timedelta(minutes=5),
    )
    load_ms, core_ms = [], []
    slots = []
    try:
        for _ in range(repeats):
            async with sessions() as session:
                t0 = time.perf_counter()
                span = ledger_range(window, TZ)
                records = await load_ledger_records(
                    session,
                    ledger_params(
                        agency_id=uuid.UUID(world["agency"]["id"]),
                        span=span,
                        now=now,
                        skill="accompaniment",
                    ),
                )
                calendars = build_ledgers(records.records(), TZ, span.first_day, span.last_day)
                load_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            slots = free_slots(spec, calendars, window, now, SlotRequest(language="es"), tz=TZ)
            core_ms.append((time.perf_counter() - t0) * 1000)
    finally:
        await engine.dispose()
    return {"snapshot_load": _percentiles(load_ms), "core": _percentiles(core_ms), "slots": len(slots)}


async def _race(http: httpx.AsyncClient, world: dict[str, Any], database_url: str) -> dict[str, Any]:
    start, end = world["window"]
    r = await http.get(
        "/api/v1/availability",
        params={
            "agency_id": world["agency"]["id"],
            "service_id": world["service"]["id"],
            "from": start.isoformat(),
            "to": end.isoformat(),
        },
    )
    r.raise_for_status()
    free = r.json()["slots"]
    rng = random.Random(7)

    def body(slot: dict[str, Any], n: int) -> dict[str, Any]:
        return {
            "agency_id": world["agency"]["id"],
            "service_id": world["service"]["id"],
            "starts_at": slot["starts_at"],
            "mode": slot["mode"],
            "counsellor_id": slot["counsellor_id"],
            "job_seeker": {"name": f"Seeker {n}"},
        }

    # 1. random: clients book random free slots (named counsellor) for RACE_SECONDS
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.perf_counter() + RACE_SECONDS

    async def client(k: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            payload = body(rng.choice(free), k * 100_000 + n)
            ms, resp = await _timed(lambda payload=payload: http.post("/api/v1/appointments", json=payload))
            latencies.append(ms)
            statuses[resp.status_code] += 1

    t0, cpu_before = time.perf_counter(), _cpu_now()
    await asyncio.gather(*(client(k) for k in range(RACE_CLIENTS)))
    elapsed, cpu_seconds = time.perf_counter() - t0, _cpu_now() - cpu_before
    random_run = {
        "clients": RACE_CLIENTS,
        "seconds": round(elapsed, 1),
        "attempts": sum(statuses.values()),
        "created_201": statuses[201],
        "conflict_409": statuses[409],
        "server_errors_5xx": sum(v for s, v in statuses.items() if s >= 500),
        "other": {str(s): v for s, v in statuses.items() if s not in (201, 409) and s < 500},
        "bookings_per_s": round(statuses[201] / elapsed, 1),
        "attempts_per_s": round(sum(statuses.values()) / elapsed, 1),
        "conflict_rate": round(statuses[409] / max(1, sum(statuses.values())), 3),
        "latency": _percentiles(latencies),
        "server_cpu_ms_per_attempt": round(cpu_seconds * 1000 / max(1, sum(statuses.values())), 2),
    }

    # 2. flash crowd: FLASH_PER_SLOT clients for each of 4 still-free slots, all at once
    r = await http.get(
        "/api/v1/availability",
        params={
            "agency_id": world["agency"]["id"],
            "service_id": world["service"]["id"],
            "from": start.isoformat(),
            "to": end.isoformat(),
            "limit": 200,
        },
    )
    fresh = r.json()["slots"]
    targets = [fresh[i] for i in range(0, min(len(fresh), 200), 50)][:4]
    flash_latencies: list[float] = []

    async def one(slot: dict[str, Any], n: int) -> int:
        ms, resp = await _timed(lambda: http.post("/api/v1/appointments", json=body(slot, n)))
        flash_latencies.append(ms)
        return resp.status_code

    t0 = time.perf_counter()
    codes = await asyncio.gather(*(one(s, n) for n in range(FLASH_PER_SLOT) for s in targets))
    flash_elapsed = time.perf_counter() - t0
    flash_status = Counter(codes)
    flash = {
        "slots": len(targets),
        "requests": len(codes),
        "created_201": flash_status[201],
        "conflict_409": flash_status[409],
        "shed_503": flash_status[503],  # load shedding (ORCHESTRATOR_MAX_IN_FLIGHT), by design
        "server_errors_5xx": sum(v for s, v in flash_status.items() if s >= 500 and s != 503),
        "seconds": round(flash_elapsed, 2),
        "latency": _percentiles(flash_latencies),
    }

    conn = await asyncpg.connect(database_url)
    try:
        overlaps = await conn.fetchval(
            """SELECT count(*) FROM claims a JOIN claims b
                 ON a.counsellor_id = b.counsellor_id AND a.id < b.id
                AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at"""
        )
    finally:
        await conn.close()
    return {"random": random_run, "flash": flash, "overlaps": int(overlaps)}


OPEN_LOOP_RATE = 200  # bookings offered per second, whatever the answers' speed
OPEN_LOOP_SECONDS = 5.0


async def _open_loop(http: httpx.AsyncClient, world: dict[str, Any]) -> dict[str, Any]:
    """Bookings sent at a fixed rate (an open loop: request i leaves at t0 + i / rate, however slow
    the answers), each for a free start with no counsellor named. Latency is counted from the
    planned send time, so a server falling behind shows it (no coordinated omission)."""
    start, end = world["window"]
    params = {"agency_id": world["agency"]["id"], "service_id": world["service"]["id"]}
    r = await http.get(
        "/api/v1/availability", params={**params, "from": start.isoformat(), "to": end.isoformat()}
    )
    free = r.json()["slots"]
    total = int(OPEN_LOOP_RATE * OPEN_LOOP_SECONDS)
    latencies: list[float] = []
    booked_ms: list[float] = []
    statuses: Counter[int] = Counter()
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def one(i: int) -> None:
        planned = t0 + i / OPEN_LOOP_RATE
        await asyncio.sleep(max(0.0, planned - loop.time()))  # pacing the load, not synchronizing
        slot = free[(i * 7) % len(free)]
        body = {
            **params,
            "starts_at": slot["starts_at"],
            "mode": slot["mode"],
            "job_seeker": {"name": f"O{i}"},
        }
        try:
            resp = await http.post("/api/v1/appointments", json=body)
        except httpx.HTTPError:  # e.g. a kept-alive connection the server closed while we queued
            statuses[0] += 1
            return
        latencies.append((loop.time() - planned) * 1000)
        if resp.status_code == 201:
            booked_ms.append(latencies[-1])
        statuses[resp.status_code] += 1

    cpu_before = _cpu_now()
    await asyncio.gather(*(one(i) for i in range(total)))
    elapsed, cpu_seconds = loop.time() - t0, _cpu_now() - cpu_before
    return {
        "offered_per_s": OPEN_LOOP_RATE,
        "requests": total,
        "achieved_per_s": round(total / elapsed, 1),
        "created_201": statuses[201],
        "conflict_409": statuses[409],
        "shed_503": statuses[503],  # load shedding: an immediate "retry in a second"
        "server_errors_5xx": sum(v for k, v in statuses.items() if k >= 500 and k != 503),
        "transport_errors": statuses[0],
        "latency": _percentiles(latencies) if latencies else None,
        "latency_201": _percentiles(booked_ms) if booked_ms else None,
        "server_cpu_ms_per_request": round(cpu_seconds * 1000 / total, 2),
    }


async def _measure(base_url: str, database_url: str) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120) as http:
        world = await _seed(http, database_url)
        availability = await _availability(http, world)
        layers = await _layers(database_url, world)
        race = await _race(http, world, database_url)
        open_loop = await _open_loop(http, world)
    return {
        "counsellors": COUNSELLORS,
        "days": DAYS,
        "claims": world["claims"],
        "booked_ratio": world["booked_ratio"],
        "availability": availability,
        "layers": layers,
        "booking": race,
        "booking_open_loop": open_loop,
    }


def run(workers: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    """For each number of API processes: a server on a scratch database, seeded, measured, torn
    down. The first is the main result; every one is under ``processes`` (side by side)."""
    runs = {str(n): _run_once(n) for n in workers}
    first = runs[str(workers[0])]
    return {**first, "processes": runs}


def _run_once(workers: int) -> dict[str, Any]:
    global SERVER
    server_url, redis_url, embedded = _servers()
    name = f"orchestrator_bench_booking_{os.getpid()}"
    drop = (
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
        "AND pid <> pg_backend_pid()",
        f'DROP DATABASE IF EXISTS "{name}"',
    )
    asyncio.run(_admin_execute(server_url, *drop, f'CREATE DATABASE "{name}"'))
    database_url = _with_database(server_url, name)
    (ROOT / ".data").mkdir(exist_ok=True)
    port = _free_port()
    proc = None
    try:
        proc = _start_server(database_url, redis_url, port, workers)
        SERVER = ServerCpu(proc.pid)
        result = asyncio.run(_measure(f"http://127.0.0.1:{port}", database_url))
        result["server"] = "external" if embedded is None else "embedded"
        result["api_processes"] = workers
        return result
    finally:
        SERVER = None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        asyncio.run(_admin_execute(server_url, *drop))
        del embedded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the result dict to this file")
    ns = parser.parse_args()
    result = run()
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if ns.json:
        ns.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
