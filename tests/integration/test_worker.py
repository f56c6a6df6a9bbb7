"""Housekeeping jobs and the arq worker wiring, on real PostgreSQL and Redis."""

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from orchestrator import tasks
from orchestrator.models import Claim, IdempotencyKey
from tests.helpers import make_agency, make_counsellor


async def test_purge_expired_holds_keeps_live_claims(client, sessions, clock):
    agency = await make_agency(client)
    counsellor = await make_counsellor(client, agency["id"])
    now = clock()
    async with sessions() as session:
        for offset, kind, expires in [
            (0, "hold", now - timedelta(minutes=1)),
            (1, "hold", now + timedelta(minutes=5)),
            (2, "appointment", None),
        ]:
            start = now + timedelta(hours=offset + 1)
            session.add(
                Claim(
                    agency_id=uuid.UUID(agency["id"]),
                    counsellor_id=uuid.UUID(counsellor["id"]),
                    starts_at=start,
                    ends_at=start + timedelta(minutes=30),
                    kind=kind,
                    expires_at=expires,
                )
            )
        await session.commit()
    assert await tasks.purge_expired_holds({"sessions": sessions, "clock": clock}) == 1
    async with sessions() as session:
        kinds = sorted((await session.scalars(select(Claim.kind))).all())
    assert kinds == ["appointment", "hold"]


async def test_purge_idempotency_keys_after_24_hours(sessions, clock):
    async with sessions() as session:
        session.add_all(
            [
                IdempotencyKey(
                    principal="anonymous",
                    key="old",
                    request_hash="h",
                    response_status=201,
                    response_body={},
                    created_at=clock() - timedelta(hours=25),
                ),
                IdempotencyKey(
                    principal="anonymous",
                    key="new",
                    request_hash="h",
                    response_status=201,
                    response_body={},
                    created_at=clock() - timedelta(hours=1),
                ),
            ]
        )
        await session.commit()
    assert await tasks.purge_idempotency_keys({"sessions": sessions, "clock": clock}) == 1
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1


async def test_real_worker_runs_jobs_from_redis(settings, redis):
    from arq import create_pool
    from arq.connections import RedisSettings

    from orchestrator.worker import build_worker

    pool = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    try:
        job = await pool.enqueue_job("purge_expired_holds", _job_id=f"test-purge-{uuid.uuid4()}")
        assert job is not None
        worker = build_worker(settings, handle_signals=False, burst=True)
        try:
            await worker.main()
        finally:
            await worker.close()
        assert isinstance(await job.result(timeout=5), int)
    finally:
        await pool.aclose()
