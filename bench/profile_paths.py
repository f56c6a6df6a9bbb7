"""Server CPU and database round trips per request, path by path, in one process.

    python bench/profile_paths.py [--json out.json] [--requests N]

Runs the app in this process on a scratch database (``ORCHESTRATOR_BENCH_DATABASE_URL`` /
``ORCHESTRATOR_BENCH_REDIS_URL``, else the embedded servers), seeded like
``bench_booking_http.py`` (50 counsellors x 28 days, ~60 % booked), and sends requests one at a
time to the ASGI app through httpx's ASGI transport (no socket; the client's own small share is
in ``/health``, the floor every other path includes).

Per path: median CPU time of this process per request (``time.process_time``), and the
statements and transaction-control calls (BEGIN/COMMIT/SAVEPOINT…) the request sent to
PostgreSQL, counted with SQLAlchemy's engine events: each is one round trip with asyncpg.
``/health`` is the framework's floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import bench_booking_http as world_of  # noqa: E402
import httpx  # noqa: E402
from sqlalchemy import event  # noqa: E402

from orchestrator import migrate  # noqa: E402
from orchestrator.app import create_app  # noqa: E402
from orchestrator.auth import Role, issue_token  # noqa: E402
from orchestrator.deps import Deps  # noqa: E402
from orchestrator.settings import Settings  # noqa: E402


class RoundTrips:
    """Statements and transaction-control calls sent on the engine (asyncpg: one trip each)."""

    def __init__(self, engine: Any) -> None:
        self.statements = 0
        self.control = 0
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._statement)
        for name in ("begin", "commit", "rollback", "savepoint", "release_savepoint", "rollback_savepoint"):
            event.listen(sync, name, self._control)

    def _statement(self, *_: Any) -> None:
        self.statements += 1

    def _control(self, conn: Any, *_: Any) -> None:
        # an autocommit connection (a read-only request) sends no BEGIN, COMMIT or ROLLBACK
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            self.control += 1

    def now(self) -> tuple[int, int]:
        return self.statements, self.control


async def _measure(
    trips: RoundTrips,
    call: Callable[[int], Awaitable[httpx.Response]],
    n: int,
    expect: int,
    after: Callable[[int], Awaitable[Any]] | None = None,
) -> dict[str, Any]:
    """``call`` n times, one at a time; ``after`` (not measured) runs between calls."""
    cpu: list[float] = []
    statements: list[int] = []
    control: list[int] = []
    for i in range(n):
        s0, c0 = trips.now()
        t0 = time.process_time()
        response = await call(i)
        cpu.append((time.process_time() - t0) * 1000)
        s1, c1 = trips.now()
        if response.status_code != expect:
            raise RuntimeError(f"expected {expect}, got {response.status_code}: {response.text[:300]}")
        statements.append(s1 - s0)
        control.append(c1 - c0)
        if after is not None:
            await after(i)
    return {
        "requests": n,
        "cpu_ms_p50": round(statistics.median(cpu), 3),
        "cpu_ms_mean": round(statistics.fmean(cpu), 3),
        "statements": statistics.median(statements),
        "round_trips": statistics.median(s + c for s, c in zip(statements, control, strict=True)),
    }


async def _profile(database_url: str, redis_url: str, n: int) -> dict[str, Any]:
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        token_secret=world_of.SECRET,
        public_rate_limit_per_minute=1_000_000,
        log_json=False,
    )
    deps = Deps.from_settings(settings)
    # the queue refresh is measured on its own (below): never in the middle of another request
    deps.board_refresh_seconds = 3600.0
    assert deps.engine is not None
    trips = RoundTrips(deps.engine)
    app = create_app(settings, deps)
    try:  # what a server process does once started (absent from older commits)
        from orchestrator.cli import freeze_startup_heap
    except ImportError:
        pass
    else:
        freeze_startup_heap()
    transport = httpx.ASGITransport(app=app)
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench.local", timeout=60) as http:
        world = await world_of._seed(http, database_url)
        agency, service = world["agency"]["id"], world["service"]["id"]
        start, end = world["window"]
        search = {
            "agency_id": agency,
            "service_id": service,
            "from": start.isoformat(),
            "to": end.isoformat(),
        }
        free = (await http.get("/api/v1/availability", params=search)).json()["slots"]
        picks = _apart(free, 4 * n + 10)

        def place(slot: dict[str, Any]) -> dict[str, Any]:
            keys = ("starts_at", "mode", "counsellor_id")
            return {"agency_id": agency, "service_id": service, **{key: slot[key] for key in keys}}

        def book(slot: dict[str, Any], k: int) -> Awaitable[httpx.Response]:
            body = {**place(slot), "job_seeker": {"name": f"Seeker {k}"}}
            return http.post("/api/v1/appointments", json=body)

        for _ in range(5):  # warm-up: caches, prepared statements
            await http.get("/health")
            await http.get("/api/v1/availability", params=search)
        results["health"] = await _measure(trips, lambda _: http.get("/health"), n, 200)
        results["availability_28_days"] = await _measure(
            trips, lambda _: http.get("/api/v1/availability", params=search), n, 200
        )
        for k in range(10):
            await book(picks[n + k], k)  # warm-up
        booked: list[dict[str, Any]] = []

        async def book_201(i: int) -> httpx.Response:
            response = await book(picks[i], i)
            booked.append(response.json())
            return response

        results["booking_201"] = await _measure(trips, book_201, n, 201)
        results["booking_409"] = await _measure(trips, lambda i: book(picks[i], 1000 + i), n, 409)
        results.update(await _appointments(http, deps, trips, picks[n + 10 :], booked, place, book))
        for waiting in QUEUE_SIZES:
            results.update(await _queue(http, deps, trips, n, waiting))
    await deps.close()
    return results


def _apart(free: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """``count`` slots spread over ``free``, no two of one counsellor within an hour (buffers)."""
    taken: dict[str, list[datetime]] = {}
    picks = []
    for slot in free:
        mine = taken.setdefault(slot["counsellor_id"], [])
        start = datetime.fromisoformat(slot["starts_at"])
        if all(abs(start - other) >= timedelta(hours=1) for other in mine):
            mine.append(start)
            picks.append(slot)
    assert len(picks) >= count, f"the seeded world has {len(picks)} slots apart, not {count}"
    return picks[:: len(picks) // count][:count]


async def _appointments(
    http: httpx.AsyncClient,
    deps: Deps,
    trips: RoundTrips,
    slots: list[dict[str, Any]],
    booked: list[dict[str, Any]],
    place: Callable[[dict[str, Any]], dict[str, Any]],
    book: Callable[[dict[str, Any], int], Awaitable[httpx.Response]],
) -> dict[str, Any]:
    """A hold; a job seeker's cancel (manage token) of appointments booked beforehand
    (unmeasured), then a reschedule of others into the time freed; a check-in at the desk half an
    hour before the start of the ``booked`` ones."""
    n = len(booked)
    holds, moved, cancelled = (slots[k * n : (k + 1) * n] for k in range(3))
    admin = {"Authorization": "Bearer " + issue_token(world_of.SECRET, role=Role.ADMIN, subject="b")}
    results = {
        "hold_201": await _measure(trips, lambda i: http.post("/api/v1/holds", json=place(holds[i])), n, 201)
    }

    async def book_all(slots: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [(await book(slot, 2000 + k)).json() for k, slot in enumerate(slots)]

    def by_token(appointment: dict[str, Any]) -> dict[str, str]:
        return {"X-Manage-Token": appointment["manage_token"]}

    def url(appointment: dict[str, Any], action: str) -> str:
        return f"/api/v1/appointments/{appointment['id']}/{action}"

    to_cancel, to_move = await book_all(cancelled), await book_all(moved)
    results["cancel_200"] = await _measure(
        trips, lambda i: http.post(url(to_cancel[i], "cancel"), headers=by_token(to_cancel[i])), n, 200
    )

    def reschedule(i: int) -> Awaitable[httpx.Response]:
        body = {key: cancelled[i][key] for key in ("starts_at", "counsellor_id", "mode")}
        return http.post(url(to_move[i], "reschedule"), json=body, headers=by_token(to_move[i]))

    results["reschedule_200"] = await _measure(trips, reschedule, n, 200)
    clock = deps.clock

    def check_in(i: int) -> Awaitable[httpx.Response]:
        arrival = datetime.fromisoformat(booked[i]["starts_at"]) - timedelta(minutes=30)
        deps.clock = lambda: arrival
        return http.post(url(booked[i], "check-in"), headers=admin)

    try:
        results["check_in_200"] = await _measure(trips, check_in, n, 200)
    finally:
        deps.clock = clock
    return results


QUEUE_COUNSELLORS = 40
QUEUE_SIZES = (10, 300, 1000)


async def _queue(
    http: httpx.AsyncClient, deps: Deps, trips: RoundTrips, n: int, waiting: int
) -> dict[str, Any]:
    """A walk-in agency with 40 counsellors on desk and ``waiting`` people waiting: one handout is
    call next, start and complete (a new ticket is issued after each, unmeasured, so the queue
    keeps its size); then ticket issue (300 only) and the queue refresh at that size."""
    admin = {"Authorization": "Bearer " + issue_token(world_of.SECRET, role=Role.ADMIN, subject="b")}
    agency = (
        await http.post(
            "/api/v1/agencies", json={"name": "Walk-ins", "timezone": "Europe/Paris"}, headers=admin
        )
    ).json()["id"]
    services = []
    for prefix, minutes in (("A", 15), ("B", 20), ("C", 30)):
        body = {"name": f"Motif {prefix}", "duration_minutes": minutes, "ticket_prefix": prefix}
        services.append(
            (await http.post(f"/api/v1/agencies/{agency}/services", json=body, headers=admin)).json()["id"]
        )
    counsellors = []
    for k in range(QUEUE_COUNSELLORS):
        body = {"name": f"C{k}", "email": f"c{k}@example.org", "languages": ["fr", "en"] if k % 3 else ["fr"]}
        cid = (await http.post(f"/api/v1/agencies/{agency}/counsellors", json=body, headers=admin)).json()[
            "id"
        ]
        await http.post(
            f"/api/v1/counsellors/{cid}/desk", json={"on_desk": True, "desk_label": str(k + 1)}, headers=admin
        )
        counsellors.append(cid)

    def issue(k: int) -> Awaitable[httpx.Response]:
        body = {"service_id": services[k % 3], "language": "en" if k % 10 == 0 else None}
        return http.post(f"/api/v1/agencies/{agency}/tickets", json=body, headers=admin)

    for k in range(waiting):
        await issue(k)

    steps: dict[str, list[tuple[float, int]]] = {"call_next": [], "start": [], "complete": []}

    async def step(name: str, url: str) -> httpx.Response:
        """One of a handout's requests, its CPU and round trips kept apart."""
        s0, c0 = trips.now()
        t0 = time.process_time()
        response = await http.post(url, headers=admin)
        s1, c1 = trips.now()
        steps[name].append(((time.process_time() - t0) * 1000, s1 - s0 + c1 - c0))
        return response

    async def handout(i: int) -> httpx.Response:
        cid = counsellors[i % QUEUE_COUNSELLORS]
        work = await step("call_next", f"/api/v1/counsellors/{cid}/next")
        if work.status_code != 200:
            return work
        ticket = work.json()["id"]
        started = await step("start", f"/api/v1/tickets/{ticket}/start")
        if started.status_code != 200:
            return started
        return await step("complete", f"/api/v1/tickets/{ticket}/complete")

    async def replenish(i: int) -> None:
        await issue(waiting + i)

    result = {f"queue_handout_{waiting}_waiting": await _measure(trips, handout, n, 200, after=replenish)}
    result[f"queue_handout_{waiting}_waiting"]["steps"] = {
        name: {
            "cpu_ms_p50": round(statistics.median(cpu for cpu, _ in taken), 3),
            "round_trips": statistics.median(trips for _, trips in taken),
        }
        for name, taken in steps.items()
    }
    if waiting == 300:
        result["queue_issue_300_waiting"] = await _measure(trips, lambda k: issue(waiting + n + k), n, 201)
    try:
        import orchestrator.services.queue_refresh  # noqa: F401 - absent before the refresh existed
    except ImportError:
        return result  # (an older commit, for a before/after comparison: the work was in the requests)
    refresh = await _measure(trips, lambda _: _refresh(deps, uuid.UUID(agency)), n, 200)
    result[f"queue_refresh_{waiting}_waiting"] = refresh
    return result


async def _refresh(deps: Deps, agency_id: uuid.UUID) -> httpx.Response:
    """One run of the debounced queue refresh (typical wait, "soon" SMS), as the app runs it."""
    from orchestrator.db import unit_of_work
    from orchestrator.services.queue_refresh import refresh_queue

    async with unit_of_work(deps.sessions, deps.publisher, deps.enqueuer) as uow:
        await refresh_queue(uow, agency_id, now=deps.clock())
    return httpx.Response(200)


def run(n: int = 50) -> dict[str, Any]:
    server_url, redis_url, embedded = world_of._servers()
    name = f"orchestrator_bench_profile_{uuid.uuid4().hex[:8]}"
    asyncio.run(world_of._admin_execute(server_url, f'CREATE DATABASE "{name}"'))
    database_url = world_of._with_database(server_url, name)
    try:
        migrate.upgrade(database_url)
        return asyncio.run(_profile(database_url, redis_url, n))
    finally:
        asyncio.run(world_of._admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        del embedded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the result dict to this file")
    parser.add_argument("--requests", type=int, default=50)
    ns = parser.parse_args()
    result = run(ns.requests)
    text = json.dumps(result, indent=2)
    if ns.json:
        ns.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
