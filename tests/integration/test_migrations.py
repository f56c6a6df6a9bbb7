"""The real migrations: they go down and up again, match the models, and keep the guarantee."""

import asyncio
import os

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from orchestrator.migrate import downgrade, upgrade
from orchestrator.models import Base
from tests.conftest import _drop_database, _recreate_database, _with_database

SCRATCH = f"orchestrator_migrations_{os.getpid()}"


def _sync_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


async def _constraint_names(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT conname FROM pg_constraint WHERE contype = 'x'")
        return {r["conname"] for r in rows}
    finally:
        await conn.close()


def test_upgrade_downgrade_upgrade_and_no_drift(servers):
    url = _with_database(servers.admin_url, SCRATCH)
    asyncio.run(_recreate_database(servers.admin_url, SCRATCH))
    upgrade(url)
    downgrade(url, "base")
    assert asyncio.run(_constraint_names(url)) == set()
    upgrade(url)
    assert "claims_no_overlap" in asyncio.run(_constraint_names(url))

    from sqlalchemy.ext.asyncio import create_async_engine

    async def diff() -> list:
        engine = create_async_engine(_sync_url(url))
        async with engine.connect() as conn:
            result = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
        await engine.dispose()
        return result

    try:
        assert asyncio.run(diff()) == []
    finally:
        asyncio.run(_drop_database(servers.admin_url, SCRATCH))
