"""Walk-in queue claims: the row locks and conditional updates that make call next safe.

There is no agency-wide lock: each ticket row is locked by whoever calls or changes it, and a
caller skips rows others hold (see :mod:`orchestrator.services.desk` for the whole argument).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Uuid, any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.models import Appointment, Notification, WalkInTicket
from orchestrator.scheduling.transitions import AppointmentStatus, TicketStatus


def _claim_first_waiting() -> Any:
    """Built once, parameters bound at execution (statement construction cost more than the query)."""
    ids = bindparam("ranked", type_=ARRAY(Uuid()))
    now = bindparam("now", type_=WalkInTicket.__table__.c.last_called_at.type)
    pick = (
        select(WalkInTicket.id)
        .where(WalkInTicket.id == any_(ids), WalkInTicket.status == TicketStatus.WAITING)
        .order_by(func.array_position(ids, WalkInTicket.id))
        .limit(1)
        .with_for_update(skip_locked=True, key_share=True)
        .scalar_subquery()
    )
    return (
        update(WalkInTicket)
        .where(WalkInTicket.id == pick, WalkInTicket.status == TicketStatus.WAITING)
        .values(
            status=TicketStatus.CALLED,
            counsellor_id=bindparam("counsellor_id", type_=Uuid()),
            desk=bindparam("desk", type_=WalkInTicket.__table__.c.desk.type),
            call_count=WalkInTicket.call_count + 1,
            last_called_at=now,
            called_at=func.coalesce(WalkInTicket.called_at, now),
        )
        .returning(WalkInTicket)
        .execution_options(synchronize_session=False, populate_existing=True)
    )


_CLAIM_FIRST_WAITING = _claim_first_waiting()


async def claim_first_waiting(
    session: AsyncSession,
    ranked: Sequence[uuid.UUID],
    *,
    counsellor_id: uuid.UUID,
    desk: str | None,
    now: datetime,
) -> WalkInTicket | None:
    """Call the first ticket of ``ranked`` that is still waiting and that no other transaction
    holds; None if every one of them is taken, changed or locked. One statement:

    ``UPDATE … WHERE id = (SELECT id … WHERE id = ANY(:ranked) AND status = 'waiting'
    ORDER BY array_position(:ranked, id) LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED)``.

    The row lock is the guarantee that nobody is handed out twice: the subquery locks exactly
    one row (LIMIT sits above the row locking, so skipped rows are not counted), PostgreSQL
    re-checks ``status = 'waiting'`` on the newest version of a row once it holds the lock (a
    ticket called, cancelled or transferred and committed meanwhile is passed over), and a row
    another transaction is calling or changing is skipped instead of waited for — concurrent
    callers spread over the queue instead of queueing behind one another.

    ``FOR NO KEY UPDATE`` (what an UPDATE of non-key columns takes anyway), not ``FOR UPDATE``:
    inserting an outbox row that references a ticket takes ``FOR KEY SHARE`` on it, which must
    not make the ticket look taken.
    """
    params = {"ranked": list(ranked), "counsellor_id": counsellor_id, "desk": desk, "now": now}
    return (await session.execute(_CLAIM_FIRST_WAITING, params)).scalar_one_or_none()


async def claim_appointment(
    session: AsyncSession, appointment_id: uuid.UUID, now: datetime
) -> Appointment | None:
    """Start a checked-in appointment (conditional UPDATE; None if it is no longer checked in).

    Only its own counsellor is ever offered it, and their calls are serialized by the
    counsellor lock, so waiting on its row lock (a check-in or no-show in flight) is brief."""
    statement = (
        update(Appointment)
        .where(Appointment.id == appointment_id, Appointment.status == AppointmentStatus.CHECKED_IN)
        .values(status=AppointmentStatus.IN_PROGRESS, started_at=now, updated_at=now)
        .returning(Appointment)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def lock_waiting(session: AsyncSession, ticket_ids: Sequence[uuid.UUID]) -> list[WalkInTicket]:
    """Lock those of ``ticket_ids`` that are still waiting and not held by anyone (skipped)."""
    if not ticket_ids:
        return []
    rows = await session.scalars(
        select(WalkInTicket)
        .where(WalkInTicket.id.in_(ticket_ids), WalkInTicket.status == TicketStatus.WAITING)
        .order_by(WalkInTicket.id)
        .with_for_update(skip_locked=True, key_share=True)
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def recorded_dedupe_keys(session: AsyncSession, keys: Collection[str]) -> set[str]:
    """Which of these outbox dedupe keys are already recorded (committed or ours)."""
    if not keys:
        return set()
    rows = await session.scalars(select(Notification.dedupe_key).where(Notification.dedupe_key.in_(keys)))
    return set(rows)
