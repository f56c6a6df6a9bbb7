"""Walk-in queue queries: the rows today's queue is made of.

:func:`load_queue_rows` reads them in four statements built once, plain row tuples (no ORM
entities), whatever the queue's size: services with their observed service times, counsellors
with their ledgers (the one loader of :mod:`orchestrator.repositories.ledgers`), today's open
tickets, and the day's appointments. The core's state is built from them by
:mod:`orchestrator.services.queue_snapshot`.

Next to it: policy parsing (:mod:`orchestrator.repositories.queue_policy`), the row locks and
conditional updates that make call next safe (:mod:`orchestrator.repositories.queue_claims`), the
display board's last calls (:mod:`orchestrator.repositories.queue_board`).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    DateTime,
    Integer,
    Select,
    Uuid,
    and_,
    bindparam,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.models import (
    Appointment,
    WalkInTicket,
)
from orchestrator.repositories.ledgers import CounsellorRow, load_ledger_records
from orchestrator.scheduling.ledger import LedgerRecord

# Observed durations: this many recent samples per service, from this far back.
SAMPLES_PER_SERVICE = 100
SAMPLE_WINDOW = timedelta(days=28)


# --- days and labels -----------------------------------------------------------------------


def local_day(tz: ZoneInfo, now: datetime) -> date:
    return now.astimezone(tz).date()


def appointment_label(appointment: Any, tz: ZoneInfo) -> str:
    """What the board shows for an appointment (no personal data): "RDV 09h30"."""
    starts_at: datetime = appointment.starts_at
    return "RDV " + starts_at.astimezone(tz).strftime("%Hh%M")


def minutes_up(delta: timedelta | None) -> int | None:
    return None if delta is None else max(0, math.ceil(delta.total_seconds() / 60))


# --- the snapshot ---------------------------------------------------------------------------

# Plain row tuples (``select(col, …)``), not ORM entities: the snapshot is loaded on every call
# next and every issue, and entity construction cost more than the queries. The statements are
# built once, with bound parameters. Tickets: the decision and the counters need the core
# columns; the front desk's list (``TicketRead``) the display ones too.
CORE_TICKET_COLUMNS = (
    WalkInTicket.id,
    WalkInTicket.service_id,
    WalkInTicket.job_seeker_id,
    WalkInTicket.number,
    WalkInTicket.seq,
    WalkInTicket.status,
    WalkInTicket.priority,
    WalkInTicket.language,
    WalkInTicket.needs,
    WalkInTicket.mode,
    WalkInTicket.counsellor_id,
    WalkInTicket.preferred_counsellor_id,
    WalkInTicket.arrived_at,
    WalkInTicket.call_count,
    WalkInTicket.last_called_at,
    WalkInTicket.started_at,
)
TICKET_COLUMNS = (
    *CORE_TICKET_COLUMNS,
    WalkInTicket.agency_id,
    WalkInTicket.local_day,
    WalkInTicket.desk,
    WalkInTicket.called_at,
    WalkInTicket.completed_at,
)
APPOINTMENT_COLUMNS = (
    Appointment.id,
    Appointment.agency_id,
    Appointment.status,
    Appointment.counsellor_id,
    Appointment.service_id,
    Appointment.starts_at,
    Appointment.ends_at,
    Appointment.checked_in_at,
    Appointment.started_at,
    Appointment.completed_at,
)


_OPEN = ("waiting", "called", "in_service")


def _todays_tickets(columns: tuple[Any, ...]) -> Select[Any]:
    return select(*columns).where(
        WalkInTicket.agency_id == bindparam("agency_id"),
        WalkInTicket.local_day == bindparam("day"),
        WalkInTicket.status.in_(_OPEN),
    )


_CORE_TICKETS = _todays_tickets(CORE_TICKET_COLUMNS)
_DISPLAY_TICKETS = _todays_tickets(TICKET_COLUMNS)
_APPOINTMENTS = select(*APPOINTMENT_COLUMNS).where(
    Appointment.agency_id == bindparam("agency_id"),
    Appointment.status.in_(("confirmed", "checked_in", "in_progress")),
    or_(
        and_(Appointment.starts_at < bindparam("day_end"), Appointment.ends_at > bindparam("day_start")),
        and_(Appointment.status == "in_progress", Appointment.started_at >= bindparam("day_start")),
    ),
)


def _latest_call_first(row: Any) -> tuple[bool, datetime]:
    # ORDER BY last_called_at DESC (PostgreSQL puts NULLs first in DESC): sort with reverse=True
    return (row.last_called_at is None, row.last_called_at or datetime.min.replace(tzinfo=UTC))


# The agency's services, each with its recent observed service times (seconds, newest first): the
# last SAMPLES_PER_SERVICE completed walk-ins and appointments of the SAMPLE_WINDOW. One query.
_SERVICES = text(
    """
SELECT s.id, s.name, s.duration_minutes, s.skill, s.target_wait_minutes, s.ticket_prefix, s.active,
       (SELECT array_agg(seconds)
          FROM (SELECT seconds FROM (
                    SELECT extract(epoch FROM completed_at - started_at)::float8 AS seconds, completed_at
                      FROM walk_in_tickets
                     WHERE agency_id = :agency_id AND service_id = s.id AND status = 'completed'
                       AND started_at IS NOT NULL AND completed_at >= :since
                    UNION ALL
                    SELECT extract(epoch FROM completed_at - started_at)::float8, completed_at
                      FROM appointments
                     WHERE agency_id = :agency_id AND service_id = s.id AND status = 'completed'
                       AND started_at IS NOT NULL AND completed_at >= :since) AS done
                 ORDER BY completed_at DESC
                 LIMIT :per_service) AS recent) AS samples
  FROM services s
 WHERE s.agency_id = :agency_id AND (CAST(:service_id AS uuid) IS NULL OR s.id = CAST(:service_id AS uuid))
"""
).bindparams(
    bindparam("agency_id", type_=Uuid),
    bindparam("service_id", type_=Uuid),
    bindparam("since", type_=DateTime(timezone=True)),
    bindparam("per_service", type_=Integer),
)


@dataclass(frozen=True)
class ServiceRows:
    """The agency's services (rows by id) and their recent observed service times."""

    rows: dict[str, Any]
    samples: dict[str, list[timedelta]]


async def load_services(
    session: AsyncSession, agency_id: uuid.UUID, now: datetime, service_id: uuid.UUID | None = None
) -> ServiceRows:
    """The agency's services (or the one ``service_id``), each with its last observed service
    times. One query."""
    params = {"agency_id": agency_id, "service_id": service_id, "since": now - SAMPLE_WINDOW}
    services = ServiceRows({}, {})
    for row in await session.execute(_SERVICES, {**params, "per_service": SAMPLES_PER_SERVICE}):
        key = str(row.id)
        services.rows[key] = row
        services.samples[key] = [timedelta(seconds=x) for x in row.samples or () if x is not None and x >= 0]
    return services


@dataclass(frozen=True)
class QueueRows:
    """Everything today's queue of an agency is made of, as plain rows (attributes named like the
    ORM's, see ``*_COLUMNS``): the services, the counsellors with their ledger records, today's
    waiting tickets, those called or in service (latest call first), and the appointments open
    today or in progress since its start."""

    services: ServiceRows
    counsellors: list[tuple[CounsellorRow, LedgerRecord]]
    waiting: dict[str, Any]
    called: list[Any]
    appointments: list[Any]


async def load_queue_rows(
    session: AsyncSession,
    agency_id: uuid.UUID,
    *,
    day: date,
    day_start: datetime,
    day_end: datetime,
    now: datetime,
    for_display: bool = False,
) -> QueueRows:
    """Today's queue of the agency: four queries whatever its size. Ticket rows carry
    ``CORE_TICKET_COLUMNS``, or all of ``TICKET_COLUMNS`` with ``for_display``. Counsellors'
    commitments run from ``now`` to the end of the day (an hour at least)."""
    services = await load_services(session, agency_id, now)
    horizon = max(day_end, now + timedelta(hours=1))
    ledgers = await load_ledger_records(
        session, agency_id=agency_id, first_day=day, last_day=day, since=now, until=horizon, now=now
    )
    waiting: dict[str, Any] = {}
    called: list[Any] = []
    tickets = _DISPLAY_TICKETS if for_display else _CORE_TICKETS
    for row in await session.execute(tickets, {"agency_id": agency_id, "day": day}):
        if row.status == "waiting":
            waiting[str(row.id)] = row
        else:
            called.append(row)
    called.sort(key=_latest_call_first, reverse=True)
    bounds = {"agency_id": agency_id, "day_start": day_start, "day_end": day_end}
    appointments = list(await session.execute(_APPOINTMENTS, bounds))
    return QueueRows(services, ledgers.pairs(), waiting, called, appointments)
