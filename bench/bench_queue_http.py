"""Benchmark of the walk-in queue over HTTP: call-next and ticket-issue latency under load.

Run: ``.venv/bin/python bench/bench_queue_http.py [seconds]``. Prints JSON.

Starts a real ``orchestrator run --no-worker`` process on a scratch database: a fresh database
on the server given by ``ORCHESTRATOR_BENCH_DATABASE_URL`` (dropped afterwards), otherwise the
embedded PostgreSQL in a temporary folder; Redis from ``ORCHESTRATOR_BENCH_REDIS_URL`` or
embedded. One agency, 40 counsellors on desk, 300 waiting tickets; then 40 counsellors call
next concurrently (next → start → complete, repeatedly) while a front desk issues a new ticket
for every one handed out, so about 300 stay waiting (steady state: a drained queue would
measure cheap 204s instead of call next), for ``seconds`` (default 15). Reports p50/p95 in
milliseconds and checks that nobody was handed out twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from orchestrator.auth import Role, issue_token

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-not-for-production-0123456789"
COUNSELLORS = 40
WAITING = 300
ISSUE_CONCURRENCY = 8
LOAD_ISSUERS = 16  # enough to keep up with the callers at their rate


def _token(role: Role, agency_id: str | None = None, counsellor_id: str | None = None) -> dict[str, str]:
    token = issue_token(
        SECRET,
        role=role,
        subject=f"bench-{role}",
        agency_id=uuid.UUID(agency_id) if agency_id else None,
        counsellor_id=uuid.UUID(counsellor_id) if counsellor_id else None,
    )
    return {"Authorization": f"Bearer {token}"}


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50_ms": _pct(values, 0.5),
        "p95_ms": _pct(values, 0.95),
        "mean_ms": round(statistics.fmean(values), 2) if values else None,
    }


class Server:
    """A scratch ``orchestrator run`` process."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="orchestrator-bench-")
        self.admin_url = os.environ.get("ORCHESTRATOR_BENCH_DATABASE_URL")
        self.db_name = f"orchestrator_bench_{os.getpid()}"
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def _sql(self, statement: str) -> None:
        import asyncpg

        async def run() -> None:
            assert self.admin_url
            conn = await asyncpg.connect(self.admin_url)
            try:
                await conn.execute(statement)
            finally:
                await conn.close()

        asyncio.run(run())

    def start(self) -> None:
        env = {
            **os.environ,
            "ORCHESTRATOR_TOKEN_SECRET": SECRET,
            "ORCHESTRATOR_PORT": str(self.port),
            "ORCHESTRATOR_LOG_LEVEL": "WARNING",
            "ORCHESTRATOR_DATA_DIR": self.tmp.name,
            "ORCHESTRATOR_PUBLIC_RATE_LIMIT_PER_MINUTE": "1000000",
        }
        env.pop("ORCHESTRATOR_DATABASE_URL", None)
        env.pop("ORCHESTRATOR_REDIS_URL", None)
        if self.admin_url:
            self._sql(f'DROP DATABASE IF EXISTS "{self.db_name}"')
            self._sql(f'CREATE DATABASE "{self.db_name}"')
            parts = urlsplit(self.admin_url)
            env["ORCHESTRATOR_DATABASE_URL"] = urlunsplit(
                (parts.scheme, parts.netloc, "/" + self.db_name, parts.query, parts.fragment)
            )
        if os.environ.get("ORCHESTRATOR_BENCH_REDIS_URL"):
            env["ORCHESTRATOR_REDIS_URL"] = os.environ["ORCHESTRATOR_BENCH_REDIS_URL"]
        log = open(Path(self.tmp.name) / "server.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "run", "--no-worker"],
            env=env,
            stdout=log,
            stderr=log,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("bench server exited: " + (Path(self.tmp.name) / "server.log").read_text())
            try:
                if httpx.get(self.base_url + "/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("bench server did not become ready")
            time.sleep(0.2)

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) used by the server so far: its process and every API process
        it started (``--workers``: one per core with external servers)."""
        if self.proc is None:
            return None
        from bench_booking_http import ServerCpu

        return ServerCpu(self.proc.pid).seconds()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.admin_url:
            self._sql(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{self.db_name}'"
            )
            self._sql(f'DROP DATABASE IF EXISTS "{self.db_name}"')
        self.tmp.cleanup()


async def _load(server: Server, seconds: float) -> dict[str, Any]:
    base_url = server.base_url
    admin = _token(Role.ADMIN)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        r = await http.post(
            "/api/v1/agencies", json={"name": "Bench", "timezone": "Europe/Paris"}, headers=admin
        )
        agency_id = r.json()["id"]
        services = []
        for prefix, minutes in (("A", 15), ("B", 20), ("C", 30)):
            r = await http.post(
                f"/api/v1/agencies/{agency_id}/services",
                json={"name": f"Motif {prefix}", "duration_minutes": minutes, "ticket_prefix": prefix},
                headers=admin,
            )
            services.append(r.json()["id"])
        counsellors: list[tuple[str, dict[str, str]]] = []
        for index in range(COUNSELLORS):
            r = await http.post(
                f"/api/v1/agencies/{agency_id}/counsellors",
                json={
                    "name": f"C{index}",
                    "email": f"c{index}@example.org",
                    "languages": ["fr", "en"] if index % 3 else ["fr"],
                },
                headers=admin,
            )
            cid = r.json()["id"]
            headers = _token(Role.COUNSELLOR, agency_id, cid)
            await http.post(
                f"/api/v1/counsellors/{cid}/desk",
                json={"on_desk": True, "desk_label": str(index + 1)},
                headers=headers,
            )
            counsellors.append((cid, headers))
        front = _token(Role.FRONT_DESK, agency_id)
        issue_ms: list[float] = []
        issue_under_load_ms: list[float] = []
        counter = 0

        async def issue(target: list[float]) -> None:
            nonlocal counter
            counter += 1
            body = {
                "service_id": services[counter % len(services)],
                "language": "en" if counter % 10 == 0 else None,
                "priority": 2 if counter % 50 == 0 else 0,
            }
            started = time.perf_counter()
            r = await http.post(f"/api/v1/agencies/{agency_id}/tickets", json=body, headers=front)
            target.append((time.perf_counter() - started) * 1000)
            if r.status_code != 201:
                raise RuntimeError(f"issue failed: {r.status_code} {r.text}")

        async def issuer_batch(n: int) -> None:
            for _ in range(n):
                await issue(issue_ms)

        await asyncio.gather(*(issuer_batch(WAITING // ISSUE_CONCURRENCY) for _ in range(ISSUE_CONCURRENCY)))
        await asyncio.gather(*(issue(issue_ms) for _ in range(WAITING - len(issue_ms))))

        next_ms: list[float] = []
        empty_ms: list[float] = []
        handed: list[str] = []
        errors: list[str] = []
        stop_at = time.monotonic() + seconds

        async def caller(cid: str, headers: dict[str, str]) -> None:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                r = await http.post(f"/api/v1/counsellors/{cid}/next", headers=headers)
                elapsed = (time.perf_counter() - started) * 1000
                if r.status_code == 204:
                    empty_ms.append(elapsed)
                    continue
                if r.status_code != 200:
                    errors.append(f"next {r.status_code} {r.text[:200]}")
                    continue
                next_ms.append(elapsed)
                work = r.json()
                handed.append(work["id"])
                for action in ("start", "complete"):
                    r = await http.post(f"/api/v1/tickets/{work['id']}/{action}", headers=headers)
                    if r.status_code != 200:
                        errors.append(f"{action} {r.status_code} {r.text[:200]}")

        issued_under_load = 0

        async def keep_issuing() -> None:
            # top the queue back up: one new ticket per person handed out
            nonlocal issued_under_load
            while time.monotonic() < stop_at:
                if issued_under_load >= len(handed):
                    await asyncio.sleep(0.005)
                    continue
                issued_under_load += 1
                await issue(issue_under_load_ms)

        cpu_before = server.cpu_seconds()
        started = time.monotonic()
        await asyncio.gather(
            *(caller(cid, h) for cid, h in counsellors),
            *(keep_issuing() for _ in range(LOAD_ISSUERS)),
        )
        elapsed = time.monotonic() - started
        cpu_after = server.cpu_seconds()
        r = await http.get(f"/api/v1/agencies/{agency_id}/queue", headers=front)
        waiting_left = len(r.json()["waiting"])
    return {
        "counsellors": COUNSELLORS,
        "initial_waiting": WAITING,
        "load_seconds": round(elapsed, 1),
        "call_next_200": _summary(next_ms),
        "call_next_204": _summary(empty_ms),
        "issue_initial": _summary(issue_ms),
        "issue_under_load": _summary(issue_under_load_ms),
        "calls_per_second": round(len(next_ms) / elapsed, 1),
        # the API process is the limit: its CPU per person handed out (next + start + complete +
        # the issue that replaces them), and its CPU use over the load (1.0 = one core busy)
        "server_cpu_ms_per_handout": (
            round((cpu_after - cpu_before) * 1000 / len(next_ms), 1)
            if cpu_before is not None and cpu_after is not None and next_ms
            else None
        ),
        "server_cpu_utilization": (
            round((cpu_after - cpu_before) / elapsed, 2)
            if cpu_before is not None and cpu_after is not None
            else None
        ),
        "handed_out": len(handed),
        "double_assignments": len(handed) - len(set(handed)),
        "errors": errors[:10],
        "error_count": len(errors),
        "waiting_at_end": waiting_left,
    }


def run(seconds: float = 15.0) -> dict[str, Any]:
    server = Server()
    server.start()
    try:
        result = asyncio.run(_load(server, seconds))
    finally:
        server.stop()
    result["database"] = "external" if server.admin_url else "embedded"
    return result


if __name__ == "__main__":
    print(json.dumps(run(float(sys.argv[1]) if len(sys.argv) > 1 else 15.0), indent=2))
