"""Housekeeping jobs and the arq worker wiring, on real PostgreSQL and Redis."""

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from orchestrator import tasks
from orchestrator.models import Claim, IdempotencyKey
from orchestrator.repositories.writes import write_together
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


async def test_message_data_is_kept_thirty_days(client, sessions, clock):
    from orchestrator import outbox
    from orchestrator.db import unit_of_work
    from orchestrator.models import InboundEvent, Notification

    agency = await make_agency(client)
    old, pending = (
        outbox.message(
            agency_id=uuid.UUID(agency["id"]),
            kind="appointment.confirmed",
            channel="sms",
            recipient="+33612345678",
            dedupe_key=f"purge:{uuid.uuid4()}",
            body="Votre RDV: http://x/m/secret-token",
        )
        for _ in range(2)
    )
    async with unit_of_work(sessions) as uow:
        await write_together(uow.session, [old.row])
        await write_together(uow.session, [pending.row])
        uow.session.add_all(
            [
                InboundEvent(
                    provider="twilio",
                    external_id="SMold",
                    kind="sms",
                    received_at=clock() - timedelta(days=31),
                ),
                InboundEvent(
                    provider="twilio",
                    external_id="SMnew",
                    kind="sms",
                    received_at=clock() - timedelta(days=1),
                ),
            ]
        )
    async with unit_of_work(sessions) as uow:
        await uow.session.execute(
            Notification.__table__.update()
            .where(Notification.id.in_([old.id, pending.id]))
            .values(created_at=clock() - timedelta(days=31))
        )
        await uow.session.execute(
            Notification.__table__.update().where(Notification.id == old.id).values(status="delivered")
        )
    purged = await tasks.purge_message_data({"sessions": sessions, "clock": clock})
    assert purged == {"inbound_events": 1, "bodies": 1}
    async with sessions() as session:
        bodies = dict((await session.execute(select(Notification.id, Notification.body))).all())
        events = (await session.scalars(select(InboundEvent.external_id))).all()
    assert bodies[old.id] is None and bodies[pending.id] is not None  # a text still to send keeps its body
    assert events == ["SMnew"]
