"""SMS out: messages per second through outbox → arq → the twilio SDK → the local Twilio, and the
delay from a commit to the provider receiving the message.

    python bench/bench_sms.py [--json out.json]

Three processes besides this one: the real worker (``orchestrator worker``), the local Twilio
(its HTTP server, stamping each message on arrival) and PostgreSQL; Redis too. This process only
writes outbox rows and enqueues their jobs, as a request's after-commit hook does.

- **throughput**: 2,000 rows committed, their jobs enqueued at once — one job per message (as
  each request's after-commit hook does) or jobs of 50 (as the sweeper does for a wave of
  reminders or a backlog); messages/s until the last one has its SID recorded; the worker's CPU
  per message (kernel counters of its process).
- **delay**: rows committed one at a time at a steady 25/s for 8 s, each job enqueued right after
  its commit; delay = the local Twilio's arrival stamp minus the commit time (same machine clock).
- **baseline, same run**: the best simple alternative to a job per message — one loop that claims
  batches of due rows (``FOR UPDATE SKIP LOCKED``), sends them concurrently with the same SDK
  client and records the SIDs, with no Redis at all (the classic outbox relay).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import report

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
import httpx
from bench_booking_http import ROOT, _admin_execute, _free_port, _servers, _with_database

from orchestrator.migrate import upgrade

THROUGHPUT_MESSAGES = 2000
RATE_PER_S = 25
RATE_SECONDS = 8
BASELINE_MESSAGES = 2000


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    full = {**os.environ, **env, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen([sys.executable, *args], env=full, cwd=ROOT)


def _local_twilio(port: int) -> subprocess.Popen[bytes]:
    code = (
        "import uvicorn;"
        "from orchestrator.channels.local_twilio import LocalTwilio, create_local_twilio_app;"
        "from orchestrator.channels.twilio import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN;"
        "twilio = LocalTwilio(LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN, callbacks=False);"
        f"uvicorn.run(create_local_twilio_app(twilio), host='127.0.0.1', port={port}, log_level='warning')"
    )
    return _spawn(["-c", code], {})


async def _wait_http(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                await client.get(url)
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


async def _agency(conn: asyncpg.Connection) -> uuid.UUID:
    return await conn.fetchval(  # type: ignore[no-any-return]
        "INSERT INTO agencies (id, name, timezone, sms_daily_budget) "
        "VALUES (gen_random_uuid(), 'bench', 'Europe/Paris', 10000000) RETURNING id"
    )


INSERT = (
    "INSERT INTO notifications (id, agency_id, kind, channel, recipient, dedupe_key, body, encoding, "
    "segments) VALUES ($1, $2, 'appointment.confirmed', 'sms', $3, $4, $5, 'GSM-7', 1)"
)


def _row(agency: uuid.UUID, i: int, tag: str) -> tuple[Any, ...]:
    # a distinct number per message: the per-number limit is not what is measured
    return (uuid.uuid4(), agency, f"+3360{i:07d}", f"bench:{tag}:{uuid.uuid4()}", f"Bench {tag} {i}")


async def _settled(conn: asyncpg.Connection, agency: uuid.UUID, total: int, deadline: float) -> None:
    while (
        await conn.fetchval(
            "SELECT count(*) FROM notifications WHERE agency_id = $1 AND provider_sid IS NOT NULL", agency
        )
        < total
    ):
        if time.monotonic() > deadline:
            raise RuntimeError("messages were not all sent in time")
        await asyncio.sleep(0.02)


async def _throughput(conn: asyncpg.Connection, pool: Any, worker_pid: int, batch: int) -> dict[str, Any]:
    """``batch`` 1: a job per message (each request's after-commit hook); 50: the sweeper's
    chunks (a wave of reminders coming due, a backlog after an outage)."""
    agency = await _agency(conn)
    rows = [_row(agency, i, f"throughput{batch}") for i in range(THROUGHPUT_MESSAGES)]
    await conn.executemany(INSERT, rows)
    cpu_before, started = _cpu_seconds(worker_pid), time.monotonic()
    for start in range(0, len(rows), batch):
        ids = [str(row[0]) for row in rows[start : start + batch]]
        await pool.enqueue_job("send_notification", *ids, _job_id=f"notify:{ids[0]}:0")
    await _settled(conn, agency, len(rows), started + 300)
    elapsed, cpu = time.monotonic() - started, _cpu_seconds(worker_pid) - cpu_before
    return {
        "messages": len(rows),
        "messages_per_job": batch,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(len(rows) / elapsed, 1),
        "worker_cpu_ms_per_message": round(cpu * 1000 / len(rows), 2),
    }


async def _delay(conn: asyncpg.Connection, pool: Any, twilio_url: str) -> dict[str, Any]:
    agency = await _agency(conn)
    committed: dict[str, datetime] = {}
    interval = 1 / RATE_PER_S
    next_at = time.monotonic()
    for i in range(RATE_PER_S * RATE_SECONDS):
        row = _row(agency, i, "delay")
        await conn.execute(INSERT, *row)  # autocommit: the commit is this statement's end
        committed[row[4]] = datetime.now(UTC)
        await pool.enqueue_job("send_notification", str(row[0]), _job_id=f"notify:{row[0]}:0")
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await _settled(conn, agency, len(committed), time.monotonic() + 120)
    async with httpx.AsyncClient() as client:
        taken = (await client.get(twilio_url + "/_local/messages")).json()
    delays = sorted(
        (datetime.fromisoformat(m["created"]) - committed[m["body"]]).total_seconds() * 1000
        for m in taken
        if m["body"] in committed
    )
    return {
        "messages": len(delays),
        "rate_per_s": RATE_PER_S,
        "p50_ms": round(statistics.median(delays), 1),
        "p99_ms": round(delays[int(len(delays) * 0.99) - 1], 1),
        "max_ms": round(delays[-1], 1),
    }


RELAY_CLAIM = """
UPDATE notifications SET status = 'sending', claimed_at = now(), attempts = attempts + 1
 WHERE id IN (SELECT id FROM notifications WHERE agency_id = $1 AND status = 'pending'
               ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING id, recipient, body
"""


async def _relay_baseline(conn: asyncpg.Connection, database_url: str, twilio_url: str) -> dict[str, Any]:
    """The classic outbox relay, same SDK client, no Redis: claim a batch, send it, record."""
    from orchestrator.channels.twilio import TwilioSms
    from orchestrator.settings import Settings

    agency = await _agency(conn)
    await conn.executemany(INSERT, [_row(agency, i, "relay") for i in range(BASELINE_MESSAGES)])
    sender = TwilioSms(Settings(database_url=database_url, twilio_api_url=twilio_url))
    cpu_before, started = time.process_time(), time.monotonic()
    try:
        while batch := await conn.fetch(RELAY_CLAIM, agency, 50):
            sent = await asyncio.gather(
                *(sender.send(r["recipient"], r["body"], status_callback=None) for r in batch)
            )
            await conn.executemany(
                "UPDATE notifications SET provider_sid = $2, status = 'queued', sent_at = now() "
                "WHERE id = $1",
                [(r["id"], s.sid) for r, s in zip(batch, sent, strict=True)],
            )
    finally:
        await sender.close()
    elapsed = time.monotonic() - started
    return {
        "messages": BASELINE_MESSAGES,
        "messages_per_s": round(BASELINE_MESSAGES / elapsed, 1),
        "cpu_ms_per_message": round((time.process_time() - cpu_before) * 1000 / BASELINE_MESSAGES, 2),
        "note": "no per-message job, no Redis; what a job per message costs is the difference",
    }


async def _measure(database_url: str, redis_url: str, twilio_url: str, worker_pid: int) -> dict[str, Any]:
    from arq import create_pool
    from arq.connections import RedisSettings

    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    conn = await asyncpg.connect(database_url)
    try:
        result = {
            "throughput_job_per_message": await _throughput(conn, pool, worker_pid, 1),
            "throughput_sweeper_batches": await _throughput(conn, pool, worker_pid, 50),
            "delay": await _delay(conn, pool, twilio_url),
            "relay_baseline": await _relay_baseline(conn, database_url, twilio_url),
        }
    finally:
        await conn.close()
        await pool.aclose()
    return result


def run() -> dict[str, Any]:
    server_url, redis_url, embedded = _servers()
    name = f"orchestrator_bench_sms_{os.getpid()}"
    drop = (
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
        "AND pid <> pg_backend_pid()",
        f'DROP DATABASE IF EXISTS "{name}"',
    )
    asyncio.run(_admin_execute(server_url, *drop, f'CREATE DATABASE "{name}"'))
    database_url = _with_database(server_url, name)
    twilio_port = _free_port()
    twilio_url = f"http://127.0.0.1:{twilio_port}"
    twilio = worker = None
    try:
        upgrade(database_url)
        import redis as redis_sync

        redis_sync.Redis.from_url(redis_url).flushdb()  # the bench's own Redis database: no stale jobs
        twilio = _local_twilio(twilio_port)
        asyncio.run(_wait_http(twilio_url + "/_local/messages"))
        worker = _spawn(
            ["-m", "orchestrator.cli", "worker"],
            {
                "ORCHESTRATOR_DATABASE_URL": database_url,
                "ORCHESTRATOR_REDIS_URL": redis_url,
                "ORCHESTRATOR_TWILIO_API_URL": twilio_url,
                "ORCHESTRATOR_LOG_LEVEL": "WARNING",
                "ORCHESTRATOR_TOKEN_SECRET": "bench-secret-not-for-production-0123456789",
            },
        )
        result = asyncio.run(_measure(database_url, redis_url, twilio_url, worker.pid))
        result["machine_note"] = "worker, local Twilio, PostgreSQL, Redis and this client share the cores"
        return result
    finally:
        for process in (worker, twilio):
            if process is not None:
                process.terminate()
                process.wait(20)
        asyncio.run(_admin_execute(server_url, *drop))
        del embedded


if __name__ == "__main__":
    report.main(run, __doc__)
