"""Walk-in queue claims: the row locks and conditional updates that make call next safe.

There is no agency-wide lock: each ticket row is locked by whoever calls or changes it, and a
caller skips rows others hold (see :mod:`orchestrator.services.desk` for the whole argument).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    DateTime,
    String,
    Table,
    Uuid,
    any_,
    bindparam,
    case,
    exists,
    func,
    null,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.models import Appointment, Notification, WalkInTicket
from orchestrator.repositories.calendars import releasing
from orchestrator.repositories.queue import ServiceRows, sample_params, services_sql
from orchestrator.repositories.writes import NewRow, insert_guarded
from orchestrator.scheduling.transitions import AppointmentStatus, TicketStatus

TICKETS = cast(Table, WalkInTicket.__table__)


class _TicketColumns(NamedTuple):
    id: uuid.UUID
    agency_id: uuid.UUID
    service_id: uuid.UUID
    job_seeker_id: uuid.UUID | None
    number: str
    local_day: date
    seq: int
    status: str
    priority: int
    language: str | None
    needs: list[str]
    mode: str
    channel: str
    counsellor_id: uuid.UUID | None
    preferred_counsellor_id: uuid.UUID | None
    desk: str | None
    claim_id: uuid.UUID | None
    arrived_at: datetime
    call_count: int
    called_at: datetime | None
    last_called_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    created_by: str
    created_at: datetime


class LockedTicket(_TicketColumns):
    """A ticket read under its row lock (a start's or completion's read, call next's claim): a
    plain row, not an ORM entity (a start changes it with ``writes.RowChange`` in the statement
    that claims the time), named like its table for the audit trail. Its fields are the table's
    columns, in order."""

    __slots__ = ()
    __tablename__ = WalkInTicket.__tablename__


if LockedTicket._fields != tuple(column.key for column in TICKETS.c):  # pragma: no cover - a model change
    raise RuntimeError("LockedTicket's fields must be walk_in_tickets' columns, in order")

_COLUMNS = ", ".join(f"t.{key}" for key in LockedTicket._fields)
_LOCK_TICKET = text(f"SELECT {_COLUMNS} FROM walk_in_tickets AS t WHERE t.id = :ticket_id FOR NO KEY UPDATE")  # noqa: S608
# with its service and that service's observed times (the expected duration of a start)
_LOCK_TICKET_AND_SERVICE = text(
    f"""SELECT {_COLUMNS}, sv.* FROM walk_in_tickets AS t
  LEFT JOIN LATERAL ({services_sql("t.agency_id", "t.service_id")}) AS sv ON true
 WHERE t.id = :ticket_id FOR NO KEY UPDATE OF t"""  # noqa: S608 - module constants only
)


async def lock_ticket(session: AsyncSession, ticket_id: uuid.UUID) -> LockedTicket | None:
    """The ticket, its row locked ``FOR NO KEY UPDATE`` to commit (None if there is none).

    ``FOR NO KEY UPDATE``: conflicts with a call next claiming the row (it skips the ticket while
    we hold it; we wait for its commit and then see ``called``), but not with the ``FOR KEY
    SHARE`` that an outbox row referencing the ticket takes, so a concurrent "soon" SMS never
    waits for us."""
    row = (await session.execute(_LOCK_TICKET, {"ticket_id": ticket_id})).first()
    return None if row is None else LockedTicket._make(row)


async def lock_ticket_and_service(
    session: AsyncSession, ticket_id: uuid.UUID, now: datetime
) -> tuple[LockedTicket, ServiceRows] | None:
    """:func:`lock_ticket`, with the ticket's service and its observed service times, one query."""
    params = {"ticket_id": ticket_id, **sample_params(now)}
    row = (await session.execute(_LOCK_TICKET_AND_SERVICE, params)).first()
    if row is None:
        return None
    width = len(LockedTicket._fields)
    return LockedTicket._make(row[:width]), ServiceRows.of([row[width:]])


def _complete_ticket() -> Any:
    # parameters named unlike the ticket's columns (SQLAlchemy would add those to the SET list)
    now = bindparam("at", type_=DateTime(timezone=True))
    gone, cut = releasing(bindparam("releasing", type_=Uuid()), now)
    return (
        update(TICKETS)
        .where(TICKETS.c.id == bindparam("ticket", type_=Uuid()))
        .values(
            status=bindparam("to_status", type_=String()),
            completed_at=now,
            # a deleted claim's reference goes in this UPDATE (the row's FK is checked at its end)
            claim_id=case((exists(select(gone.c.id)), null()), else_=TICKETS.c.claim_id),
        )
        .returning(TICKETS.c.id)
        .add_cte(gone, cut)
    )


_COMPLETE_TICKET = _complete_ticket()


async def complete_ticket(
    session: AsyncSession, ticket: LockedTicket, status: str, now: datetime, rows: Sequence[NewRow]
) -> None:
    """Set the (locked) ticket's ``status`` and completion time, give back the unused part of its
    claim (``calendars.releasing``) and insert ``rows`` (its audit row): one statement."""
    params = {"ticket": ticket.id, "releasing": ticket.claim_id, "to_status": status, "at": now}
    await insert_guarded(session, _COMPLETE_TICKET, params, rows)


def _claim_first_waiting() -> Any:
    """Built once, parameters bound at execution (statement construction cost more than the
    query); on the table, not the ORM entity (no ORM pre-processing of the UPDATE)."""
    t = TICKETS.c
    ids = bindparam("ranked", type_=ARRAY(Uuid()))
    now = bindparam("now", type_=t.last_called_at.type)
    pick = (
        select(t.id)
        .where(t.id == any_(ids), t.status == TicketStatus.WAITING)
        .order_by(func.array_position(ids, t.id))
        .limit(1)
        .with_for_update(skip_locked=True, key_share=True)
        .scalar_subquery()
    )
    return (
        update(TICKETS)
        .where(t.id == pick, t.status == TicketStatus.WAITING)
        .values(
            status=TicketStatus.CALLED,
            counsellor_id=bindparam("counsellor_id", type_=Uuid()),
            desk=bindparam("desk", type_=t.desk.type),
            call_count=t.call_count + 1,
            last_called_at=now,
            called_at=func.coalesce(t.called_at, now),
        )
        .returning(*TICKETS.c)
    )


_CLAIM_FIRST_WAITING = _claim_first_waiting()


async def claim_first_waiting(
    session: AsyncSession,
    ranked: Sequence[uuid.UUID],
    *,
    counsellor_id: uuid.UUID,
    desk: str | None,
    now: datetime,
) -> LockedTicket | None:
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
    row = (await session.execute(_CLAIM_FIRST_WAITING, params)).first()
    return None if row is None else LockedTicket._make(row)


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
