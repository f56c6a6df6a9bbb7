"""Walk-in queue queries: rows ⇄ the pure queue core (:mod:`orchestrator.scheduling.queue`).

:func:`load_snapshot` builds the :class:`QueueState` the core decides on: counsellors of the
agency with their time of the day (their ledgers, from the one loader of
:mod:`orchestrator.repositories.ledgers`), today's open tickets, due appointments, and services
with durations learned from the service times observed in this agency. Policy parameters come
from ``agencies.queue_policy``. Six statements built once, plain row tuples (no ORM entities),
whatever the queue's size.

Next to it: policy parsing (:mod:`orchestrator.repositories.queue_policy`), the row locks and conditional
updates that make call next safe (:mod:`orchestrator.repositories.queue_claims`), the display board's
queries and counters (:mod:`orchestrator.repositories.queue_board`).
"""

from __future__ import annotations

import math
import statistics
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
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
    Agency,
    Appointment,
    WalkInTicket,
)
from orchestrator.repositories.ledgers import load_ledger_records
from orchestrator.repositories.queue_policy import QueueSettings, queue_settings
from orchestrator.scheduling.ledger import build_ledgers
from orchestrator.scheduling.queue import (
    DeskCounsellor,
    DueAppointment,
    QueuePolicy,
    QueueState,
    ServiceInfo,
    WaitingTicket,
    order_queue,
)
from orchestrator.scheduling.rules import local_day_bounds
from orchestrator.scheduling.types import Mode
from orchestrator.scheduling.waits import estimate_waits, observed_durations

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


@dataclass
class Snapshot:
    """One agency's queue as the core sees it, with the rows it came from (plain rows with the
    attributes of the ORM classes, see ``*_COLUMNS``)."""

    agency: Agency
    now: datetime
    tz: ZoneInfo
    day: date
    settings: QueueSettings
    state: QueueState
    tickets: dict[str, Any]  # today's waiting tickets
    counsellors: dict[str, Any]  # active counsellors, by id
    services: dict[str, Any]
    durations: dict[str, timedelta]
    called: list[Any] = field(default_factory=list)  # today's called/in-service tickets, latest call first
    appointments: list[Any] = field(default_factory=list)  # today's open appointments by (starts_at, id)
    started_today: list[Any] = field(default_factory=list)  # in progress, started today
    _order: list[WaitingTicket] | None = None
    _waits: dict[str, timedelta | None] | None = None

    @property
    def policy(self) -> QueuePolicy:
        return self.settings.policy

    def desk(self, counsellor_id: uuid.UUID) -> DeskCounsellor | None:
        return next((c for c in self.state.counsellors if c.id == str(counsellor_id)), None)

    def order(self) -> list[WaitingTicket]:
        if self._order is None:
            self._order = order_queue(self.state, self.now, self.policy)
        return self._order

    def waits(self) -> dict[str, timedelta | None]:
        """Estimated waits (computed once per snapshot: the forward simulation is the costly part)."""
        if self._waits is None:
            self._waits = estimate_waits(self.state, self.now, self.policy, self.durations)
        return self._waits

    def positions(self) -> dict[str, int]:
        return {t.id: index + 1 for index, t in enumerate(self.order())}

    def waiting_count(self) -> int:
        return len(self.order())

    def typical_wait_minutes(self) -> int | None:
        """Median estimated wait of the people waiting now (None: nobody waiting or no desk)."""
        known = [w.total_seconds() for w in self.waits().values() if w is not None]
        return minutes_up(timedelta(seconds=statistics.median(known))) if known else None

    def current_work(self, counsellor_id: uuid.UUID) -> dict[str, Any] | None:
        """What the counsellor has in hand today: their most recently called ticket still called
        or in service, else an appointment of theirs started today and still in progress."""
        ticket = next((t for t in self.called if t.counsellor_id == counsellor_id), None)
        if ticket is not None:
            return {"kind": "ticket", "id": str(ticket.id), "number": ticket.number, "status": ticket.status}
        appointment = next((a for a in self.started_today if a.counsellor_id == counsellor_id), None)
        if appointment is not None:
            return {
                "kind": "appointment",
                "id": str(appointment.id),
                "label": appointment_label(appointment, self.tz),
                "status": appointment.status,
            }
        return None

    def with_ticket(self, row: Any) -> Snapshot:
        """The same snapshot with one more waiting ticket (just issued, not yet written)."""
        state = replace(self.state, tickets=(*self.state.tickets, waiting_ticket(row)))
        tickets = {**self.tickets, str(row.id): row}
        return replace(self, state=state, tickets=tickets, _order=None, _waits=None)

    def without(self, item_id: str) -> Snapshot:
        """The same snapshot with one waiting ticket or due appointment gone (it was just called,
        cancelled, claimed by someone else, …)."""
        state = replace(
            self.state,
            tickets=tuple(t for t in self.state.tickets if t.id != item_id),
            appointments=tuple(a for a in self.state.appointments if a.id != item_id),
        )
        tickets = {k: v for k, v in self.tickets.items() if k != item_id}
        return replace(self, state=state, tickets=tickets, _order=None, _waits=None)

    def busy(self, counsellor_id: str, until: datetime) -> Snapshot:
        """The same snapshot with a counsellor now busy until ``until`` (for wait estimates)."""
        counsellors = tuple(
            replace(c, busy_until=until) if c.id == counsellor_id else c for c in self.state.counsellors
        )
        return replace(self, state=replace(self.state, counsellors=counsellors), _order=None, _waits=None)


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


async def _services(
    session: AsyncSession, agency_id: uuid.UUID, now: datetime, service_id: uuid.UUID | None = None
) -> tuple[dict[str, Any], dict[str, timedelta]]:
    """The agency's services (rows by id) and their expected durations: observed service times,
    with the service's nominal duration as the prior."""
    params = {"agency_id": agency_id, "service_id": service_id, "since": now - SAMPLE_WINDOW}
    services: dict[str, Any] = {}
    samples: dict[str, list[timedelta]] = {}
    for row in await session.execute(_SERVICES, {**params, "per_service": SAMPLES_PER_SERVICE}):
        key = str(row.id)
        services[key] = row
        samples[key] = [timedelta(seconds=x) for x in row.samples or () if x is not None and x >= 0]
    priors = {key: timedelta(minutes=s.duration_minutes) for key, s in services.items()}
    return services, observed_durations(samples, priors)


async def expected_duration(
    session: AsyncSession, agency_id: uuid.UUID, service_id: uuid.UUID, now: datetime
) -> timedelta:
    """Expected length of one service (observed here, the service's duration as prior)."""
    _, durations = await _services(session, agency_id, now, service_id)
    return durations.get(str(service_id), timedelta(minutes=15))


def waiting_ticket(row: Any) -> WaitingTicket:
    """The core's ticket of a row (memoized by the row's values: a queue of 300 is rebuilt on
    every call next and issue, and its tickets rarely change between two requests)."""
    return _waiting_ticket(
        row.id,
        row.number,
        row.service_id,
        row.arrived_at,
        row.priority,
        row.language,
        tuple(row.needs or ()),
        row.mode,
        row.preferred_counsellor_id,
        row.seq,
        row.call_count,
        row.last_called_at,
    )


@lru_cache(maxsize=16_384)
def _waiting_ticket(
    ticket_id: uuid.UUID,
    number: str,
    service_id: uuid.UUID,
    arrived_at: datetime,
    priority: int,
    language: str | None,
    needs: tuple[str, ...],
    mode: str,
    preferred_counsellor_id: uuid.UUID | None,
    seq: int,
    call_count: int,
    last_called_at: datetime | None,
) -> WaitingTicket:
    return WaitingTicket(
        id=str(ticket_id),
        number=number,
        service_id=str(service_id),
        arrived_at=arrived_at,
        priority=priority,
        language=language,
        needs=frozenset(needs),
        mode=Mode(mode),
        preferred_counsellor_id=str(preferred_counsellor_id) if preferred_counsellor_id else None,
        seq=seq,
        call_count=call_count,
        last_called_at=last_called_at,
    )


async def load_snapshot(
    session: AsyncSession, agency: Agency, now: datetime, *, for_display: bool = False
) -> Snapshot:
    """Load today's queue of ``agency`` at ``now``: six queries whatever its size, plain rows.

    Ticket rows carry ``CORE_TICKET_COLUMNS``, or all of ``TICKET_COLUMNS`` with
    ``for_display`` (to serialize them)."""
    tz = ZoneInfo(agency.timezone)
    day = local_day(tz, now)
    today = local_day_bounds(day, tz.key)
    day_start, day_end = today.start, today.end
    settings = queue_settings(agency.queue_policy)
    services, durations = await _services(session, agency.id, now)
    # the counsellors with their time (the one ledger loader): commitments from now to day's end
    horizon = max(day_end, now + timedelta(hours=1))
    loaded = await load_ledger_records(
        session, agency_id=agency.id, first_day=day, last_day=day, since=now, until=horizon, now=now
    )
    rows = loaded.pairs()
    counsellors = {str(row.id): row for row, _ in rows}
    ledgers = {ledger.id: ledger for ledger in build_ledgers([r for _, r in rows], tz.key, day, day)}

    # one pass over today's open tickets: the waiting ones are the queue, the others occupy desks
    waiting: dict[str, Any] = {}
    called: list[Any] = []
    tickets = _DISPLAY_TICKETS if for_display else _CORE_TICKETS
    for row in await session.execute(tickets, {"agency_id": agency.id, "day": day}):
        if row.status == "waiting":
            waiting[str(row.id)] = row
        else:
            called.append(row)
    called.sort(key=_latest_call_first, reverse=True)

    busy_until: dict[str, datetime] = {}

    def busy(counsellor_id: uuid.UUID | None, until: datetime) -> None:
        if counsellor_id is None or until <= now:
            return
        key = str(counsellor_id)
        busy_until[key] = max(busy_until.get(key, until), until)

    # tickets being called or served keep their counsellor busy for about a service's length
    for ticket in called:
        began = ticket.started_at or ticket.last_called_at or now
        busy(ticket.counsellor_id, began + durations.get(str(ticket.service_id), timedelta(minutes=15)))

    appointments: list[Any] = []
    started_today: list[Any] = []
    due: list[DueAppointment] = []
    for appointment in await session.execute(
        _APPOINTMENTS, {"agency_id": agency.id, "day_start": day_start, "day_end": day_end}
    ):
        started = appointment.started_at
        if appointment.status == "in_progress" and started is not None and started >= day_start:
            started_today.append(appointment)
        if not (appointment.starts_at < day_end and appointment.ends_at > day_start):
            continue
        appointments.append(appointment)
        if appointment.status == "in_progress":
            began = appointment.started_at or now
            busy(
                appointment.counsellor_id,
                began
                + durations.get(str(appointment.service_id), appointment.ends_at - appointment.starts_at),
            )
            continue
        if str(appointment.counsellor_id) not in counsellors or str(appointment.service_id) not in services:
            continue
        due.append(
            DueAppointment(
                id=str(appointment.id),
                counsellor_id=str(appointment.counsellor_id),
                service_id=str(appointment.service_id),
                starts_at=appointment.starts_at,
                ends_at=appointment.ends_at,
                checked_in_at=appointment.checked_in_at,
            )
        )
    appointments.sort(key=lambda a: (a.starts_at, a.id))
    started_today.sort(key=lambda a: (a.starts_at, a.id))

    desks = tuple(
        DeskCounsellor.from_ledger(
            ledgers[key], now, on_desk=c.on_desk, desk=c.desk_label, busy_until=busy_until.get(key)
        )
        for key, c in counsellors.items()
    )
    infos = {
        key: ServiceInfo(
            id=key,
            skill=s.skill,
            expected_duration=durations[key],
            target_wait=timedelta(minutes=s.target_wait_minutes),
        )
        for key, s in services.items()
    }
    state = QueueState(
        tickets=tuple(waiting_ticket(t) for t in waiting.values()),
        appointments=tuple(due),
        services=infos,
        counsellors=desks,
    )
    return Snapshot(
        agency=agency,
        now=now,
        tz=tz,
        day=day,
        settings=settings,
        state=state,
        tickets=waiting,
        counsellors=counsellors,
        services=services,
        durations=durations,
        called=called,
        appointments=appointments,
        started_today=started_today,
    )
