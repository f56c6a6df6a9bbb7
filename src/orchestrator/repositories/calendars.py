"""Services as the core sees them, and the one way to claim (and lock) counsellor time."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    CTE,
    DateTime,
    String,
    Table,
    Uuid,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.models import Claim, Service
from orchestrator.repositories.writes import Write, insert_guarded
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
# the call, as the guard of a write (the rows, if any, are written only if the claim was made);
# its parameters are named ``claim_…``, never like a column a guarded ``RowChange`` sets
_CLAIM_GUARD = select(
    func.claim_time(
        *(bindparam(f"claim_{name}", type_=type_) for name, type_ in _ARGUMENTS), type_=Uuid
    ).label("id")
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
    rows: Sequence[Write] = (),
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
        "claim_agency_id": agency_id,
        "claim_counsellor_id": counsellor_id,
        "claim_starts_at": starts_at,
        "claim_ends_at": ends_at,
        "claim_kind": kind,
        "claim_now": now,
        "claim_expires_at": expires_at,
        "claim_replacing": replacing,
    }
    claimed: uuid.UUID | None = await insert_guarded(session, _CLAIM_GUARD, params, rows)
    return claimed


def releasing(claim_id: Any, now: Any) -> tuple[CTE, CTE]:
    """Give back the unused part of claim ``claim_id`` at ``now``, as two data-modifying clauses
    of one statement (SQL expressions in, bound parameters usually): delete it if it has not
    started yet, else end it now. The first (``gone``) returns the id if it was deleted; a row
    referring to a deleted claim loses the reference (``ON DELETE SET NULL``)."""
    claims = cast(Table, Claim.__table__)
    gone = delete(claims).where(claims.c.id == claim_id, claims.c.starts_at >= now).returning(claims.c.id)
    cut = (
        update(claims)
        .where(claims.c.id == claim_id, claims.c.starts_at < now, claims.c.ends_at > now)
        .values(ends_at=now)
        .returning(claims.c.id)
    )
    return gone.cte("gone"), cut.cte("cut")


def _release_claim() -> Any:
    gone, cut = releasing(
        bindparam("claim_id", type_=Uuid()), bindparam("now", type_=DateTime(timezone=True))
    )
    return select(exists(select(gone.c.id)).label("deleted")).add_cte(gone, cut)


_RELEASE_CLAIM = _release_claim()


async def release_claim(session: AsyncSession, claim_id: uuid.UUID | None, now: datetime) -> bool:
    """Give back the unused part of a claim, in one statement (:func:`releasing`); True if it was
    deleted (it had not started: the caller clears its reference)."""
    if claim_id is None:
        return False
    return bool(await session.scalar(_RELEASE_CLAIM, {"claim_id": claim_id, "now": now}))
