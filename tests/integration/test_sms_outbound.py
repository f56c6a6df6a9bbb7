"""Outbox → real arq worker → the official SDK → the local Twilio over HTTP, on committed data.

The worker is the production one (``build_worker``), run in burst mode on the test's Redis; the
local Twilio is a real HTTP server in a thread; the SDK is ``twilio.rest.Client``. Status
callbacks are posted signed with ``RequestValidator``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update
from twilio.request_validator import RequestValidator

from orchestrator import outbox
from orchestrator.channels.local_twilio import LocalTwilio
from orchestrator.channels.twilio import LOCAL_AUTH_TOKEN, TwilioSms
from orchestrator.db import make_engine, make_sessionmaker, unit_of_work
from orchestrator.deps import Messaging
from orchestrator.models import Agency, Notification, PhoneContact
from orchestrator.repositories.writes import write_together
from orchestrator.services.notifications import Outbox, send_notification, sweep_outbox
from orchestrator.settings import Settings

PHONE = "+33612345678"


@pytest.fixture
def twilio(local_twilio: tuple[LocalTwilio, str]) -> tuple[LocalTwilio, str]:
    return local_twilio


@pytest.fixture
def outbox_settings(committed_url, servers, twilio) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(
        database_url=committed_url,
        redis_url=servers.redis_url,
        token_secret="test-secret-not-for-production-0123456789",
        twilio_api_url=twilio[1],
        outbox_grace_seconds=0,
        outbox_stale_seconds=60,
        job_queue=f"test:sms:{uuid.uuid4().hex}",  # no other worker (the live server's) takes these jobs
    )


@pytest.fixture
async def box(outbox_settings) -> AsyncIterator[Outbox]:  # type: ignore[no-untyped-def]
    engine = make_engine(outbox_settings.database_url, pool_size=5)
    sender = TwilioSms(outbox_settings)
    yield Outbox(engine, sender, Messaging.from_settings(outbox_settings))
    await sender.close()
    await engine.dispose()


def _sessions(box: Outbox) -> Any:
    return make_sessionmaker(box.engine)


async def _agency(box: Outbox, **fields: Any) -> uuid.UUID:
    async with unit_of_work(_sessions(box)) as uow:
        agency = Agency(id=uuid.uuid4(), name="Agence", timezone="Europe/Paris", **fields)
        uow.session.add(agency)
    return agency.id


async def _queue(
    box: Outbox,
    agency_id: uuid.UUID,
    count: int,
    *,
    to: str = PHONE,
    kind: str = "appointment.confirmed",
    **fields: Any,
) -> list[uuid.UUID]:
    rows = [
        outbox.message(
            agency_id=agency_id,
            kind=kind,
            channel="sms",
            recipient=to,
            dedupe_key=f"test:{uuid.uuid4()}",
            body=f"Message {i} pour vous, à bientôt",
            **fields,
        )
        for i in range(count)
    ]
    async with unit_of_work(_sessions(box)) as uow:
        for row in rows:
            await write_together(uow.session, [row.row])
    return [row.id for row in rows]


async def _rows(box: Outbox, ids: list[uuid.UUID]) -> list[Notification]:
    async with _sessions(box)() as session:
        found = (await session.scalars(select(Notification).where(Notification.id.in_(ids)))).all()
    return sorted(found, key=lambda n: ids.index(n.id))


async def test_outbox_through_a_real_worker_reaches_the_provider_exactly_once(outbox_settings, box, twilio):
    from arq import create_pool
    from arq.connections import RedisSettings

    from orchestrator.worker import build_worker

    fake, _ = twilio
    agency = await _agency(box)
    ids = [row for i in range(12) for row in await _queue(box, agency, 1, to=f"+336110001{i:02d}")]
    pool = await create_pool(RedisSettings.from_dsn(outbox_settings.redis_url))
    try:
        for row_id in ids + ids[:5]:  # some jobs enqueued twice (after-commit hook and sweeper)
            await pool.enqueue_job(
                outbox.SEND_JOB, str(row_id), _job_id=f"{outbox.job_id(row_id, 0)}:{uuid.uuid4()}"
            )
        worker = build_worker(outbox_settings, handle_signals=False, burst=True)
        try:
            await worker.main()
        finally:
            await worker.close()
    finally:
        await pool.aclose()
    taken = [m for m in fake.messages if m["to"].startswith("+336110001")]
    assert sorted(m["to"] for m in taken) == [f"+336110001{i:02d}" for i in range(12)]  # each once
    rows = await _rows(box, ids)
    assert {row.provider_sid for row in rows} == {m["sid"] for m in taken}
    # "bientôt": the ô makes every one of these UCS-2 (counted when the row was written)
    assert {(row.status, row.encoding, row.segments) for row in rows} == {("queued", "UCS-2", 1)}
    assert all(row.sent_at is not None and row.attempts == 1 for row in rows)


@pytest.fixture
async def client(outbox_settings) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    """The app on the committed database (the one the worker and ``box`` use)."""
    from orchestrator.app import create_app

    app = create_app(outbox_settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver.local"
    ) as c:
        yield c


async def test_status_callbacks_move_forward_only_and_record_a_lost_sid(client, box, twilio):
    fake, _ = twilio
    agency = await _agency(box)
    sent, lost = await _queue(box, agency, 2, to="+33611000002")
    assert await send_notification(box, str(sent), now=datetime.now(UTC)) == "sent"
    (message,) = [m for m in fake.messages if m["to"] == "+33611000002"]
    for status in ("sent", "delivered", "sent"):  # the late 'sent' must not undo 'delivered'
        r = await _callback(client, sent, {"MessageSid": message["sid"], "MessageStatus": status})
        assert r.status_code == 204, r.text
    # a send whose SID we never recorded (crash after the provider's 201): the callback names the row
    async with unit_of_work(_sessions(box)) as uow:
        await uow.session.execute(
            update(Notification).where(Notification.id == lost).values(status="sending")
        )
    r = await _callback(client, lost, {"MessageSid": "SM" + "f" * 32, "MessageStatus": "sent"})
    assert r.status_code == 204
    first, second = await _rows(box, [sent, lost])
    assert (first.status, first.delivered_at is not None) == ("delivered", True)
    assert (second.status, second.provider_sid) == ("sent", "SM" + "f" * 32)
    forged = await client.post(
        f"/webhooks/twilio/status?n={sent}",
        data={"MessageSid": message["sid"], "MessageStatus": "failed"},
        headers={"X-Twilio-Signature": "Zm9yZ2Vk"},
    )
    assert forged.status_code == 403
    assert (await _rows(box, [sent]))[0].status == "delivered"


async def _callback(client: Any, row_id: uuid.UUID, params: dict[str, str]) -> httpx.Response:
    path = f"/webhooks/twilio/status?n={row_id}"
    signature = RequestValidator(LOCAL_AUTH_TOKEN).compute_signature("http://127.0.0.1:8000" + path, params)
    return await client.post(path, data=params, headers={"X-Twilio-Signature": signature})


@pytest.mark.parametrize(
    ("number", "code"), [("+15005550001", 21211), ("+15005550004", 21610), ("+15005550009", 21614)]
)
async def test_permanent_errors_are_final_and_mark_the_number_unreachable(box, twilio, number, code):
    agency = await _agency(box)
    first, second = await _queue(box, agency, 2, to=number)
    now = datetime.now(UTC)
    assert await send_notification(box, str(first), now=now) == f"failed:{code}"
    # 21610 is the carrier's STOP: the number is opted out as well as unreachable
    reason = "opted_out" if code == 21610 else "unreachable"
    assert await send_notification(box, str(second), now=now) == f"skipped:{reason}"
    rows = await _rows(box, [first, second])
    assert [(r.status, r.error_code) for r in rows] == [("failed", code), ("skipped", None)]
    async with _sessions(box)() as session:
        contact = await session.get(PhoneContact, number)
    assert contact is not None and contact.unreachable_code == code
    assert (contact.opted_out_at is not None) == (code == 21610)
    assert not [m for m in twilio[0].messages if m["to"] == number]


async def test_transient_errors_retry_with_backoff_until_sent(box, twilio):
    fake, _ = twilio
    agency = await _agency(box)
    (row_id,) = await _queue(box, agency, 1, to="+33611000003")
    fake.faults = [429, 503]
    now = datetime.now(UTC)
    assert await send_notification(box, str(row_id), now=now) == "pending:20429"
    assert await send_notification(box, str(row_id), now=now) == "not_due"  # backing off
    row = (await _rows(box, [row_id]))[0]
    assert row.next_attempt_at == now + timedelta(seconds=5)
    assert await send_notification(box, str(row_id), now=now + timedelta(seconds=5)) == "pending:20500"
    assert (await _rows(box, [row_id]))[0].next_attempt_at == now + timedelta(seconds=15)
    assert await send_notification(box, str(row_id), now=now + timedelta(seconds=15)) == "sent"
    assert [m["to"] for m in fake.messages].count("+33611000003") == 1


async def test_a_transient_error_past_the_deadline_expires_the_message(box, twilio):
    agency = await _agency(box)
    (row_id,) = await _queue(
        box, agency, 1, to="+33611000004", expires_at=datetime.now(UTC) + timedelta(seconds=3)
    )
    now = datetime.now(UTC)
    twilio[0].faults = [500]
    assert await send_notification(box, str(row_id), now=now) == "expired:20500"
    assert (await _rows(box, [row_id]))[0].status == "expired"


async def test_the_sweeper_settles_a_crashed_send_without_sending_twice(box, twilio):
    fake, _ = twilio
    agency = await _agency(box)
    reached, lost = await _queue(box, agency, 2, to="+33611000005")
    claimed_at = datetime.now(UTC) - timedelta(minutes=5)
    # a sender claimed both and died: the first reached the provider, the second never left
    await box.sender.send("+33611000005", "Message 0 pour vous, à bientôt", status_callback=None)
    async with unit_of_work(_sessions(box)) as uow:
        await uow.session.execute(
            update(Notification)
            .where(Notification.id.in_([reached, lost]))
            .values(status="sending", claimed_at=claimed_at, attempts=1)
        )
    swept = await sweep_outbox(box, now=datetime.now(UTC))
    assert swept["settled"] == 2
    first, second = await _rows(box, [reached, lost])
    assert first.status == "queued" and first.provider_sid is not None
    assert (second.status, second.provider_sid) == ("pending", None)
    assert await send_notification(box, str(lost), now=datetime.now(UTC)) == "sent"
    bodies = sorted(m["body"] for m in fake.messages if m["to"] == "+33611000005")
    assert bodies == ["Message 0 pour vous, à bientôt", "Message 1 pour vous, à bientôt"]


async def test_the_sweeper_expires_late_messages_and_enqueues_due_ones(box, twilio):
    agency = await _agency(box)
    (late,) = await _queue(
        box, agency, 1, to="+33611000006", expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    (due,) = await _queue(box, agency, 1, to="+33611000006")
    now = datetime.now(UTC)
    enqueued: list[tuple[str, str | None]] = []

    class Recorder:
        async def enqueue(self, job: str, *args: Any, job_id: str | None = None) -> None:
            enqueued.append((args[0], job_id))

    swept = await sweep_outbox(Outbox(box.engine, box.sender, box.messaging, Recorder()), now=now)
    assert swept["expired"] >= 1
    assert (str(due), outbox.job_id(due, 0)) in enqueued
    assert str(late) not in [row for row, _ in enqueued]
    assert (await _rows(box, [late]))[0].status == "expired"


async def test_reminders_wait_out_quiet_hours_and_budgets_hold_messages(box, twilio):
    agency = await _agency(box, sms_daily_budget=1)
    night = datetime(2030, 3, 4, 21, 30, tzinfo=UTC)  # 22:30 Paris
    (reminder,) = await _queue(
        box, agency, 1, to="+33611000007", kind="appointment.reminder", expires_at=night + timedelta(hours=12)
    )
    assert await send_notification(box, str(reminder), now=night) == "wait:quiet_hours"
    assert (await _rows(box, [reminder]))[0].next_attempt_at == datetime(2030, 3, 5, 7, 0, tzinfo=UTC)
    morning = datetime(2030, 3, 5, 7, 0, tzinfo=UTC)
    assert await send_notification(box, str(reminder), now=morning) == "sent"
    (second,) = await _queue(box, agency, 1, to="+33611000008")
    assert await send_notification(box, str(second), now=morning) == "wait:daily_budget"
    assert (await _rows(box, [second]))[0].next_attempt_at == datetime(2030, 3, 6, 7, 0, tzinfo=UTC)


async def test_an_opted_out_number_gets_nothing(box, twilio):
    agency = await _agency(box)
    async with unit_of_work(_sessions(box)) as uow:
        await uow.session.execute(
            text("INSERT INTO phone_contacts (phone, opted_out_at) VALUES ('+33611000009', now())")
        )
    (row_id,) = await _queue(box, agency, 1, to="+33611000009")
    assert await send_notification(box, str(row_id), now=datetime.now(UTC)) == "skipped:opted_out"
