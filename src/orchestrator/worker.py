"""Job composition root: builds the arq worker with its dependencies in ``ctx``."""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.connections import RedisSettings
from arq.worker import Worker, func

from orchestrator import tasks
from orchestrator.db import make_engine, make_sessionmaker
from orchestrator.deps import (
    ArqEnqueuer,
    CalendarFetcher,
    Clock,
    EmailSender,
    Messaging,
    RedisPublisher,
    SmsSender,
    VoiceDialer,
    utc_now,
)
from orchestrator.services.notifications import Outbox
from orchestrator.settings import Settings

EVERY_5_SECONDS = set(range(0, 60, 5))
EVERY_30_SECONDS = {0, 30}

FUNCTIONS: list[Any] = [
    tasks.purge_expired_holds,
    tasks.purge_idempotency_keys,
    tasks.purge_message_data,
    # keep_result=0: a message's job id may be enqueued again once its run is over (the sweeper)
    func(tasks.send_notification, keep_result=0, max_tries=3, timeout=30),
    tasks.sweep_outbox,
    tasks.check_soon,
    func(tasks.plan_callbacks, keep_result=0),
    func(tasks.dial_callback, keep_result=0, max_tries=1),  # never ring someone twice on a retry
    func(tasks.sync_calendar, keep_result=0),
    tasks.sync_calendars,
    tasks.plan_capacity,
    tasks.plan_capacity_ahead,
    tasks.release_no_shows,
]


def build_worker(
    settings: Settings,
    *,
    handle_signals: bool = True,
    burst: bool = False,
    sender: SmsSender | None = None,
    dialer: VoiceDialer | None = None,
    calendars: CalendarFetcher | None = None,
    mailer: EmailSender | None = None,
    clock: Clock = utc_now,
    poll_delay: float = 0.02,
) -> Worker:
    """An arq worker wired to the settings' PostgreSQL, Redis, SMS provider (``sender``: Twilio
    through the SDK unless given) and mail server (``mailer``: SMTP unless given)."""
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError("database_url and redis_url must be resolved before building the worker")
    database_url = settings.database_url

    async def on_startup(ctx: dict[str, Any]) -> None:
        from orchestrator.channels.calendar_fetch import HttpCalendarFetcher
        from orchestrator.channels.smtp import SmtpSender
        from orchestrator.channels.twilio import TwilioSms

        engine = make_engine(database_url, pool_size=10)
        sessions = make_sessionmaker(engine)
        enqueuer = ArqEnqueuer(ctx["redis"], settings.job_queue)
        sms = sender or TwilioSms(settings)
        ctx.update(
            engine=engine,
            sessions=sessions,
            clock=clock,
            settings=settings,
            enqueuer=enqueuer,
            publisher=RedisPublisher(ctx["redis"]),
            sms=sms,
            dialer=dialer or (sms if isinstance(sms, TwilioSms) else None),
            outbox=Outbox(
                engine, sms, Messaging.from_settings(settings), enqueuer, mailer or SmtpSender(settings)
            ),
            calendars=calendars or HttpCalendarFetcher(allow_private=settings.calendar_allow_private),
        )

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        if sender is None and "sms" in ctx:
            await ctx["sms"].close()
        await ctx["engine"].dispose()

    return Worker(
        functions=FUNCTIONS,
        cron_jobs=[
            cron(tasks.purge_expired_holds, minute=set(range(0, 60, 5)), run_at_startup=True),
            cron(tasks.purge_idempotency_keys, minute=17),
            cron(tasks.purge_message_data, hour=3, minute=41),
            cron(tasks.sweep_outbox, second=EVERY_5_SECONDS, run_at_startup=True, timeout=60),
            cron(tasks.check_soon, second=EVERY_30_SECONDS, timeout=60),
            cron(tasks.plan_callbacks, second=7, timeout=60),  # every minute
            cron(tasks.sync_calendars, minute=set(range(2, 60, 5)), timeout=240),
            cron(tasks.plan_capacity, minute={4, 19, 34, 49}, run_at_startup=True, timeout=240),
            cron(tasks.plan_capacity_ahead, hour=2, minute=23, run_at_startup=True, timeout=900),
            cron(tasks.release_no_shows, second=41, timeout=60),  # every minute
        ],
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        queue_name=settings.job_queue,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        handle_signals=handle_signals,
        burst=burst,
        poll_delay=poll_delay,
        max_jobs=50,
        job_timeout=60,
    )
