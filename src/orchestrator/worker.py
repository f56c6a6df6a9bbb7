"""Job composition root: builds the arq worker with its dependencies in ``ctx``."""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.connections import RedisSettings
from arq.worker import Worker

from orchestrator import tasks
from orchestrator.db import make_engine, make_sessionmaker
from orchestrator.deps import utc_now
from orchestrator.settings import Settings

FUNCTIONS: list[Any] = [tasks.purge_expired_holds, tasks.purge_idempotency_keys]


def build_worker(settings: Settings, *, handle_signals: bool = True, burst: bool = False) -> Worker:
    """An arq worker wired to the settings' PostgreSQL and Redis."""
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError("database_url and redis_url must be resolved before building the worker")
    database_url = settings.database_url

    async def on_startup(ctx: dict[str, Any]) -> None:
        engine = make_engine(database_url, pool_size=5)
        ctx.update(engine=engine, sessions=make_sessionmaker(engine), clock=utc_now, settings=settings)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await ctx["engine"].dispose()

    return Worker(
        functions=FUNCTIONS,
        cron_jobs=[
            cron(tasks.purge_expired_holds, minute=set(range(0, 60, 5)), run_at_startup=True),
            cron(tasks.purge_idempotency_keys, minute=17),
        ],
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        handle_signals=handle_signals,
        burst=burst,
        poll_delay=0.1,
        job_timeout=60,
    )
