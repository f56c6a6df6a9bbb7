"""arq job functions. Jobs carry ids, reload state, and skip work already done."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, text

from orchestrator.db import unit_of_work
from orchestrator.models import Claim, IdempotencyKey
from orchestrator.services import notifications
from orchestrator.services.queue_refresh import refresh_queue

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


MESSAGE_RETENTION = timedelta(days=30)


async def purge_message_data(ctx: dict[str, Any]) -> dict[str, int]:
    """Daily, GDPR minimisation: inbound texts' records (a phone number each) and the bodies of
    settled outbox texts (a manage link each) are kept 30 days; the rows' status stays."""
    cutoff = ctx["clock"]() - MESSAGE_RETENTION
    async with unit_of_work(ctx["sessions"]) as uow:
        inbound = await uow.session.execute(
            text("DELETE FROM inbound_events WHERE received_at < :cutoff"), {"cutoff": cutoff}
        )
        bodies = await uow.session.execute(
            text(
                "UPDATE notifications SET body = NULL, payload = '{}'::jsonb WHERE created_at < :cutoff "
                "AND body IS NOT NULL AND status NOT IN ('pending', 'sending')"
            ),
            {"cutoff": cutoff},
        )
    return {"inbound_events": int(inbound.rowcount or 0), "bodies": int(bodies.rowcount or 0)}  # type: ignore[attr-defined]


async def send_notification(ctx: dict[str, Any], *notification_ids: str) -> dict[str, str]:
    """Send outbox SMS rows (a no-op for those not due, already sent, or claimed elsewhere)."""
    return await notifications.send_notifications(ctx["outbox"], notification_ids, now=ctx["clock"]())


async def sweep_outbox(ctx: dict[str, Any]) -> dict[str, int]:
    """Every few seconds: expire late messages, settle stale sends, enqueue what is due."""
    return await notifications.sweep_outbox(ctx["outbox"], now=ctx["clock"]())


_AGENCIES_WAITING_FOR_CALLS = text(
    "SELECT DISTINCT agency_id FROM callback_requests WHERE status = 'requested' AND deadline_at > :now"
)


async def plan_callbacks(ctx: dict[str, Any], agency_id: str | None = None) -> int:
    """Place waiting callback requests (one agency's, after a change that freed time; or, every
    minute, every agency's: retries coming due, requests that lost a race)."""
    from orchestrator.models import Agency
    from orchestrator.services.callbacks import plan_agency

    now = ctx["clock"]()
    async with unit_of_work(ctx["sessions"]) as uow:
        ids = (
            [uuid.UUID(agency_id)]
            if agency_id
            else list(await uow.session.scalars(_AGENCIES_WAITING_FOR_CALLS, {"now": now}))
        )
    placed = 0
    for one in ids:
        async with unit_of_work(ctx["sessions"], ctx.get("publisher"), ctx.get("enqueuer")) as uow:
            agency = await uow.session.get(Agency, one)
            if agency is not None and agency.active:
                placed += await plan_agency(uow, agency, now=now)
    return placed


async def plan_capacity(ctx: dict[str, Any], days: int = 2) -> int:
    """Every 15 minutes, today and tomorrow of every active agency (release and surge need fresh
    numbers); every night (``days=DAYS_AHEAD``) the weeks ahead. One transaction per agency-day."""
    from orchestrator.models import Agency
    from orchestrator.scheduling.rules import zone
    from orchestrator.services.capacity import active_agencies, compute_plan

    now = ctx["clock"]()
    async with unit_of_work(ctx["sessions"]) as uow:
        ids = await active_agencies(uow)
    planned = 0
    for agency_id in ids:
        for offset in range(days):
            async with unit_of_work(ctx["sessions"]) as uow:
                agency = await uow.session.get(Agency, agency_id)
                if agency is None:
                    break
                day = now.astimezone(zone(agency.timezone)).date() + timedelta(days=offset)
                await compute_plan(uow, agency, day, now=now)
                planned += 1
    return planned


async def plan_capacity_ahead(ctx: dict[str, Any]) -> int:
    from orchestrator.services.capacity import DAYS_AHEAD

    return await plan_capacity(ctx, DAYS_AHEAD)


async def release_no_shows(ctx: dict[str, Any]) -> int:
    """Every minute: booked people not checked in after their agency's grace are no-shows, and
    the rest of their slot goes to the next walk-in or callback."""
    from orchestrator.services.arrivals import release_no_shows as release
    from orchestrator.services.capacity import active_agencies

    now = ctx["clock"]()
    async with unit_of_work(ctx["sessions"]) as uow:
        ids = await active_agencies(uow)
    released = 0
    for agency_id in ids:
        async with unit_of_work(ctx["sessions"], ctx.get("publisher"), ctx.get("enqueuer")) as uow:
            released += await release(uow, agency_id, now=now)
    return released


async def dial_callback(ctx: dict[str, Any], callback_id: str) -> str | None:
    """Click-to-call: ring the counsellor, then bridge to the person (``services.callbacks``)."""
    from orchestrator.services.callbacks import place_call

    async with unit_of_work(ctx["sessions"]) as uow:
        return await place_call(
            uow, ctx["dialer"], uuid.UUID(callback_id), base_url=ctx["outbox"].messaging.public_base_url
        )


async def sync_calendar(ctx: dict[str, Any], calendar_id: str) -> str:
    """Import one counsellor calendar's busy time (right after it is added)."""
    from orchestrator.services.calendar_import import sync_calendar as sync

    async with unit_of_work(ctx["sessions"], ctx.get("publisher"), ctx.get("enqueuer")) as uow:
        return await sync(uow, ctx["calendars"], uuid.UUID(calendar_id), now=ctx["clock"]())


async def sync_calendars(ctx: dict[str, Any]) -> dict[str, int]:
    """Every 5 minutes: import every external calendar (one transaction each)."""
    from orchestrator.models import ExternalCalendar

    async with unit_of_work(ctx["sessions"]) as uow:
        ids = list(
            await uow.session.scalars(
                select(ExternalCalendar.id).where(ExternalCalendar.url.not_like("upload:%"))
            )
        )
    outcomes: dict[str, int] = {}
    for calendar_id in ids:
        outcome = (await sync_calendar(ctx, str(calendar_id))).split(":")[0]
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


_QUEUES_WITH_PHONES = text(
    "SELECT DISTINCT agency_id FROM walk_in_tickets WHERE status = 'waiting' AND job_seeker_id IS NOT NULL"
)


async def check_soon(ctx: dict[str, Any]) -> int:
    """Every 30 s: re-estimate the waits of queues with people reachable by SMS, so a person
    who stepped out gets "soon" when their wait falls under the threshold even if nobody was
    called meanwhile (waits shrink with time, not only when the queue moves)."""
    async with unit_of_work(ctx["sessions"]) as uow:
        agencies = list(await uow.session.scalars(_QUEUES_WITH_PHONES))
    recorded = 0
    for agency_id in agencies:
        async with unit_of_work(ctx["sessions"], ctx["publisher"], ctx["enqueuer"]) as uow:
            recorded += await refresh_queue(uow, agency_id, now=ctx["clock"]())
    return recorded
