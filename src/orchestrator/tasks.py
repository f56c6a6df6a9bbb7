"""arq job functions. Jobs carry ids, reload state, and skip work already done."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import delete

from orchestrator.db import unit_of_work
from orchestrator.models import Claim, IdempotencyKey

log = logging.getLogger(__name__)


async def purge_expired_holds(ctx: dict[str, Any]) -> int:
    """Housekeeping only: expired holds are already ignored by availability and replaced by new claims."""
    async with unit_of_work(ctx["sessions"]) as uow:
        result = await uow.session.execute(
            delete(Claim).where(Claim.kind == "hold", Claim.expires_at <= ctx["clock"]())
        )
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        log.info("purged expired holds", extra={"count": count})
    return count


IDEMPOTENCY_RETENTION = timedelta(hours=24)


async def purge_idempotency_keys(ctx: dict[str, Any]) -> int:
    """Stored replay responses (which contain manage tokens) live 24 hours, as Stripe's do."""
    async with unit_of_work(ctx["sessions"]) as uow:
        result = await uow.session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.created_at < ctx["clock"]() - IDEMPOTENCY_RETENTION)
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
