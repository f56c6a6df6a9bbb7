"""Services as the core sees them, and the one way to claim (and lock) counsellor time."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import DateTime, String, Uuid, bindparam, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.models import Claim, Service
from orchestrator.repositories.writes import NewRow, insert_guarded
from orchestrator.scheduling.availability import ServiceSpec
from orchestrator.scheduling.types import Mode


def service_spec(service: Service) -> ServiceSpec:
    return ServiceSpec(
        id=str(service.id),
        duration=timedelta(minutes=service.duration_minutes),
        modes=frozenset(Mode(m) for m in service.modes),
        skill=service.skill,
        min_notice=timedelta(minutes=service.min_notice_minutes),
        max_horizon=timedelta(days=service.max_horizon_days),
        buffer_before=timedelta(minutes=service.buffer_before_minutes),
        buffer_after=timedelta(minutes=service.buffer_after_minutes),
    )


def live_claims(now: datetime):  # type: ignore[no-untyped-def]
    """Claims that still hold time: everything but holds that have expired."""
    return or_(Claim.kind != "hold", Claim.expires_at > now)


def lock_key(counsellor_id: uuid.UUID) -> int:
    """The counsellor's advisory lock key (the database's ``counsellor_lock_key`` computes it too)."""
    return int.from_bytes(counsellor_id.bytes[:8], "big", signed=True)


async def lock_counsellors(session: AsyncSession, counsellor_ids: Sequence[uuid.UUID]) -> None:
    """Serialize claims per counsellor until the transaction ends (sorted: no lock-order deadlocks).

    The exclusion constraint stays the guarantee; the lock turns concurrent inserts of the same
    range into a fast, clean 23P01 instead of deadlocks (measured, see DESIGN.md).
    """
    for counsellor_id in sorted(set(counsellor_ids)):
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(counsellor_id)})


_ARGUMENTS = (
    ("agency_id", Uuid()),
    ("counsellor_id", Uuid()),
    ("starts_at", DateTime(timezone=True)),
    ("ends_at", DateTime(timezone=True)),
    ("kind", String()),
    ("now", DateTime(timezone=True)),
    ("expires_at", DateTime(timezone=True)),
    ("replacing", Uuid()),
)
# the call, as the guard of a write (the rows, if any, are inserted only if the claim was made)
_CLAIM_GUARD = select(
    func.claim_time(*(bindparam(name, type_=type_) for name, type_ in _ARGUMENTS), type_=Uuid).label("id")
)


async def claim_time(
    session: AsyncSession,
    *,
    agency_id: uuid.UUID,
    counsellor_id: uuid.UUID,
    starts_at: datetime,
    ends_at: datetime,
    kind: str,
    now: datetime,
    expires_at: datetime | None = None,
    replacing: uuid.UUID | None = None,
    rows: Sequence[NewRow] = (),
) -> uuid.UUID | None:
    """Claim ``[starts_at, ends_at)`` of the counsellor: the new claim's id, or None if it
    overlaps a live claim of theirs. One round trip (the ``claim_time`` database function).

    It takes the counsellor's advisory lock (and the replaced claim's counsellor's), deletes
    expired holds in the range (time held by a lapsed hold is free without any job having
    run), releases ``replacing`` and inserts, all in a subtransaction: the winner keeps the lock
    until commit; a loser's lock and changes are undone at once, so losers never hold up others
    while they compute alternatives, and if the new claim fails the old one is still there.

    ``rows`` are written in the same statement if (and only if) the claim is made; a value
    ``writes.GUARD_ID`` in them stands for the new claim's id (the booking's appointment).
    """
    params = {
        "agency_id": agency_id,
        "counsellor_id": counsellor_id,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "kind": kind,
        "now": now,
        "expires_at": expires_at,
        "replacing": replacing,
    }
    claimed: uuid.UUID | None = await insert_guarded(session, _CLAIM_GUARD, params, rows)
    return claimed
