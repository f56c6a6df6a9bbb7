"""Walk-in queue queries: the rows today's queue is made of.

:func:`load_queue_rows` reads them in one statement built once, whatever the queue's size:
services with their observed service times, counsellors with their ledgers (the SQL of the one
loader, :mod:`orchestrator.repositories.ledgers`), today's open tickets, and the day's
appointments, each part aggregated into an array of rows that asyncpg decodes as typed tuples
(no ORM entities, no per-row result processing). The core's state is built from them by
:mod:`orchestrator.services.queue_snapshot`.

Next to it: policy parsing (:mod:`orchestrator.repositories.queue_policy`), the row locks and
conditional updates that make call next safe (:mod:`orchestrator.repositories.queue_claims`), the
display board's last calls (:mod:`orchestrator.repositories.queue_board`).
"""

from __future__ import annotations

import math
import uuid
from collections import namedtuple
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, DateTime, Integer, TextClause, Uuid, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.models import (
    Appointment,
    WalkInTicket,
)
from orchestrator.repositories.ledgers import (
    LEDGER_BINDS,
    LEDGER_SQL,
    CounsellorRow,
    LedgerRows,
    ledger_params,
)
from orchestrator.scheduling.ledger import LedgerRange, LedgerRecord

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


def _latest_call_first(row: Any) -> tuple[bool, datetime]:
    # ORDER BY last_called_at DESC (PostgreSQL puts NULLs first in DESC): sort with reverse=True
    return (row.last_called_at is None, row.last_called_at or datetime.min.replace(tzinfo=UTC))


def services_sql(agency: str, service: str | None = None) -> str:
    """The agency's services (or the one ``service``), each with its recent
    observed service times (seconds, newest first): the last SAMPLES_PER_SERVICE completed
    walk-ins and appointments of the SAMPLE_WINDOW. ``agency`` and ``service`` are SQL
    expressions (bound parameters, or a locked ticket's columns); only constants are passed."""
    return f"""
SELECT s.id, s.name, s.duration_minutes, s.skill, s.target_wait_minutes, s.ticket_prefix, s.active,
       (SELECT array_agg(seconds)
          FROM (SELECT seconds FROM (
                    SELECT extract(epoch FROM completed_at - started_at)::float8 AS seconds, completed_at
                      FROM walk_in_tickets
                     WHERE agency_id = {agency} AND service_id = s.id AND status = 'completed'
                       AND started_at IS NOT NULL AND completed_at >= :samples_since
                    UNION ALL
                    SELECT extract(epoch FROM completed_at - started_at)::float8, completed_at
                      FROM appointments
                     WHERE agency_id = {agency} AND service_id = s.id AND status = 'completed'
                       AND started_at IS NOT NULL AND completed_at >= :samples_since) AS done
                 ORDER BY completed_at DESC
                 LIMIT :per_service) AS recent) AS samples
  FROM services s
 WHERE s.agency_id = {agency}{f" AND s.id = {service}" if service else ""}
"""  # noqa: S608 - module constants only


_SERVICES_SQL = services_sql(":agency_id")
_SERVICE_BINDS = (
    bindparam("agency_id", type_=Uuid),
    bindparam("samples_since", type_=DateTime(timezone=True)),
    bindparam("per_service", type_=Integer),
)
ServiceRow = namedtuple(
    "ServiceRow", "id name duration_minutes skill target_wait_minutes ticket_prefix active samples"
)


@dataclass(frozen=True)
class ServiceRows:
    """The agency's services (rows by id) and their recent observed service times."""

    rows: dict[str, Any]
    samples: dict[str, list[timedelta]]

    @classmethod
    def of(cls, rows: Iterable[Sequence[Any]]) -> ServiceRows:
        services = cls({}, {})
        for values in rows:
            row = ServiceRow._make(values)
            key = str(row.id)
            services.rows[key] = row
            seconds = [float(x) for x in row.samples or () if x is not None]  # text in the snapshot
            services.samples[key] = [timedelta(seconds=x) for x in seconds if x >= 0]
        return services


def sample_params(now: datetime) -> dict[str, Any]:
    """The parameters of :func:`services_sql`'s observed service times."""
    return {"samples_since": now - SAMPLE_WINDOW, "per_service": SAMPLES_PER_SERVICE}


# The snapshot in one statement. The counsellors' ledgers are rows, as the loader returns them
# (their int8, date and time arrays are top-level columns); the services, today's open tickets
# and the appointments open today or in progress since its start come with the first row, each
# an array of whole rows that asyncpg decodes into tuples of typed values. (Inside a row asyncpg
# decodes only types it already knows: scalars and text arrays, hence ``::text[]`` there.)
def _select(columns: tuple[Any, ...], cast: dict[str, str] | None = None) -> str:
    return ", ".join(column.key + (cast or {}).get(column.key, "") for column in columns)


_OPEN_TICKETS = """FROM walk_in_tickets
                     WHERE agency_id = :agency_id AND local_day = :day
                       AND status IN ('waiting', 'called', 'in_service')"""
_NEEDS = {"needs": "::text[]"}
# every open ticket as a whole row (the front desk's list)
_ALL_TICKETS = f"""
           NULL::uuid[] AS ticket_ids,
           (SELECT array_agg(t ORDER BY t.seq)
              FROM (SELECT {_select(TICKET_COLUMNS, _NEEDS)} {_OPEN_TICKETS}) AS t) AS tickets"""  # noqa: S608
# The decision's tickets as a delta: the ids and versions of every open ticket (in queue order),
# and whole rows only of those the caller does not already hold in that version (``known``:
# parallel arrays of ids and versions). A row's version is its ``xmin``, the id of the
# transaction that wrote it: every change of a ticket makes a new one, and a reader never sees
# two versions written by one transaction. A call next then decodes the few rows that changed
# since the process's previous snapshot of the agency, not the whole queue.
_KNOWN_SQL = "SELECT * FROM unnest(CAST(:known_ids AS uuid[]), CAST(:known_versions AS bigint[]))"
_CHANGED_TICKETS = f"""
           (SELECT array_agg(t.id ORDER BY t.seq) FROM (SELECT id, seq {_OPEN_TICKETS}) AS t) AS ticket_ids,
           (SELECT array_agg(t ORDER BY t.seq)
              FROM (SELECT {_select(CORE_TICKET_COLUMNS, _NEEDS)}, xmin::text::bigint AS version
                      {_OPEN_TICKETS} AND (id, xmin::text::bigint) NOT IN ({_KNOWN_SQL})
                   ) AS t) AS tickets"""  # noqa: S608


def _snapshot(tickets: str) -> TextClause:
    # only module constants are interpolated (the SQL above, column names of the models)
    statement = f"""
WITH parts AS MATERIALIZED (
    SELECT (SELECT array_agg(ROW(sv.id, sv.name, sv.duration_minutes, sv.skill, sv.target_wait_minutes,
                                 sv.ticket_prefix, sv.active, sv.samples::text[]) ORDER BY sv.id)
              FROM ({_SERVICES_SQL}) AS sv) AS services,
{tickets},
           (SELECT array_agg(a ORDER BY a.starts_at, a.id)
              FROM (SELECT {_select(APPOINTMENT_COLUMNS)} FROM appointments
                     WHERE agency_id = :agency_id AND status IN ('confirmed', 'checked_in', 'in_progress')
                       AND ((starts_at < :day_end AND ends_at > :day_start)
                            OR (status = 'in_progress' AND started_at >= :day_start))) AS a) AS appointments
)
SELECT l.*,
       CASE WHEN l.first IS NOT FALSE THEN p.services END AS services,
       CASE WHEN l.first IS NOT FALSE THEN p.ticket_ids END AS ticket_ids,
       CASE WHEN l.first IS NOT FALSE THEN p.tickets END AS tickets,
       CASE WHEN l.first IS NOT FALSE THEN p.appointments END AS appointments
  FROM parts AS p
  LEFT JOIN (SELECT x.*, row_number() OVER (ORDER BY x.id) = 1 AS first FROM ({LEDGER_SQL}) AS x) AS l ON true
 ORDER BY l.id
"""  # noqa: S608
    binds = {b.key: b for b in (*LEDGER_BINDS, *_SERVICE_BINDS)}
    return text(statement).bindparams(
        *binds.values(),
        bindparam("day", type_=Date),
        bindparam("day_start", type_=DateTime(timezone=True)),
        bindparam("day_end", type_=DateTime(timezone=True)),
    )


_CORE_SNAPSHOT = _snapshot(_CHANGED_TICKETS)
_DISPLAY_SNAPSHOT = _snapshot(_ALL_TICKETS)
CoreTicketRow = namedtuple(  # type: ignore[misc]
    "CoreTicketRow", [*(column.key for column in CORE_TICKET_COLUMNS), "version"]
)
TicketRow = namedtuple("TicketRow", [column.key for column in TICKET_COLUMNS])  # type: ignore[misc]
AppointmentRow = namedtuple("AppointmentRow", [column.key for column in APPOINTMENT_COLUMNS])  # type: ignore[misc]


# The open tickets of each agency as this process last read them (id → row with its version):
# what the next snapshot of the agency need not read again. Replaced whole by each snapshot; a
# request keeps the dictionary it sent, so concurrent snapshots never miss a row.
_KNOWN: dict[uuid.UUID, dict[uuid.UUID, Any]] = {}


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
    """Today's queue of the agency: one query whatever its size. Ticket rows carry
    ``CORE_TICKET_COLUMNS``, or all of ``TICKET_COLUMNS`` with ``for_display``. Counsellors'
    commitments run from ``now`` to the end of the day (an hour at least)."""
    horizon = max(day_end, now + timedelta(hours=1))
    params = {
        **ledger_params(agency_id=agency_id, span=LedgerRange(day, day, now, horizon), now=now),
        **sample_params(now),
        "day": day,
        "day_start": day_start,
        "day_end": day_end,
    }
    known = {} if for_display else _KNOWN.get(agency_id, {})  # this request's own reference
    if not for_display:
        params["known_ids"], params["known_versions"] = list(known), [row.version for row in known.values()]
    statement = _DISPLAY_SNAPSHOT if for_display else _CORE_SNAPSHOT
    rows = [tuple(row) for row in await session.execute(statement, params)]
    *_, services, ticket_ids, changed, appointments = rows[0]  # the parts come with the first row
    tickets: list[Any]
    if for_display:
        tickets = [TicketRow._make(values) for values in changed or ()]
    else:  # every open ticket: a row read now, or the one held (same version) in ``known``
        fresh = {values[0]: CoreTicketRow._make(values) for values in changed or ()}
        tickets = [fresh.get(ticket_id) or known[ticket_id] for ticket_id in ticket_ids or ()]
        _KNOWN[agency_id] = {row.id: row for row in tickets}
    counsellors = [row[:-5] for row in rows if row[0] is not None]  # a ledger row, less first and parts
    waiting: dict[str, Any] = {}
    called: list[Any] = []
    row: Any
    for row in tickets:
        if row.status == "waiting":
            waiting[str(row.id)] = row
        else:
            called.append(row)
    called.sort(key=_latest_call_first, reverse=True)
    return QueueRows(
        ServiceRows.of(services or ()),
        LedgerRows(counsellors).day_pairs(),
        waiting,
        called,
        [AppointmentRow._make(values) for values in appointments or ()],
    )
