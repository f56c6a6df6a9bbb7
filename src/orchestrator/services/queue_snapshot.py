"""Today's walk-in queue of an agency as the core sees it: :class:`Snapshot`.

The repository reads the rows (:func:`orchestrator.repositories.queue.load_queue_rows`, one
query); this module builds the core's :class:`~orchestrator.scheduling.queue.QueueState` from
them — counsellors from their ledgers, expected durations from observed service times, who is busy
until when — and keeps the rows next to it for the views and events.
"""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.models import Agency
from orchestrator.repositories.queue import (
    QueueRows,
    ServiceRows,
    appointment_label,
    load_queue_rows,
    local_day,
    minutes_up,
)
from orchestrator.repositories.queue_policy import QueueSettings, queue_settings
from orchestrator.scheduling.ledger import Ledger, LedgerRecord, build_ledgers
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
        """People waiting who can still be called: :func:`order_queue`'s length, without ranking."""
        limit = self.policy.max_calls_before_no_show
        return sum(1 for t in self.state.tickets if t.call_count < limit)

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

    def without(self, *item_ids: str) -> Snapshot:
        """The same snapshot with waiting tickets or due appointments gone (just called,
        cancelled, claimed by someone else, …)."""
        gone = set(item_ids)
        tickets = {k: v for k, v in self.tickets.items() if k not in gone}
        return replace(self, state=self.state.without(gone), tickets=tickets, _order=None, _waits=None)


@lru_cache(maxsize=2048)
def _day_ledger(record: LedgerRecord, tz: str, day: date) -> Ledger:
    """A counsellor's ledger of one day, memoized by its record (the same record object comes
    back while the counsellor's rows are unchanged: ``LedgerRows.day_pairs``)."""
    return build_ledgers([record], tz, day, day)[0]


def waiting_ticket(row: Any) -> WaitingTicket:
    """The core's ticket of a row, memoized: a queue of 300 is rebuilt on every call next and
    issue, and its tickets rarely change between two requests. A row of the decision's snapshot
    carries its version (``xmin``), a cheap key; other rows (the front desk's list, a ticket just
    issued) are keyed by their values."""
    version = getattr(row, "version", None)
    if version is None:
        return _waiting_ticket(*_fields(row))
    key = (row.id, version)
    ticket = _BY_VERSION.get(key)
    if ticket is None:
        if len(_BY_VERSION) >= MEMO_SIZE:
            _BY_VERSION.clear()
        ticket = _BY_VERSION[key] = _new_waiting_ticket(*_fields(row))
    return ticket


def _fields(row: Any) -> tuple[Any, ...]:
    return tuple(tuple(row.needs or ()) if name == "needs" else getattr(row, name) for name in _TICKET_FIELDS)


MEMO_SIZE = 16_384
_BY_VERSION: dict[tuple[Any, int], WaitingTicket] = {}
_TICKET_FIELDS = (
    "id",
    "number",
    "service_id",
    "arrived_at",
    "priority",
    "language",
    "needs",
    "mode",
    "preferred_counsellor_id",
    "seq",
    "call_count",
    "last_called_at",
)


def _new_waiting_ticket(
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


_waiting_ticket = lru_cache(maxsize=MEMO_SIZE)(_new_waiting_ticket)  # keyed by the values


def expected_duration(services: ServiceRows, service_id: uuid.UUID) -> timedelta:
    """Expected length of one service of ``services`` (observed here, its duration as prior)."""
    return _durations(services).get(str(service_id), timedelta(minutes=15))


def _durations(services: ServiceRows) -> dict[str, timedelta]:
    """Expected durations: observed service times, the nominal duration as the prior."""
    priors = {key: timedelta(minutes=s.duration_minutes) for key, s in services.rows.items()}
    return observed_durations(services.samples, priors)


async def load_snapshot(
    session: AsyncSession, agency: Agency, now: datetime, *, for_display: bool = False
) -> Snapshot:
    """Today's queue of ``agency`` at ``now`` (rows with all display columns with
    ``for_display``)."""
    tz = ZoneInfo(agency.timezone)
    day = local_day(tz, now)
    today = local_day_bounds(day, tz.key)
    rows = await load_queue_rows(
        session,
        agency.id,
        day=day,
        day_start=today.start,
        day_end=today.end,
        now=now,
        for_display=for_display,
    )
    return build_snapshot(rows, agency, now, tz, day)


def build_snapshot(rows: QueueRows, agency: Agency, now: datetime, tz: ZoneInfo, day: date) -> Snapshot:
    """The core's state of the queue from its rows."""
    today = local_day_bounds(day, tz.key)
    day_start, day_end = today.start, today.end
    settings = queue_settings(agency.queue_policy)
    services = rows.services.rows
    durations = _durations(rows.services)
    counsellors = {str(row.id): row for row, _ in rows.counsellors}
    ledgers = {record.id: _day_ledger(record, tz.key, day) for _, record in rows.counsellors}
    waiting, called = rows.waiting, rows.called
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
    for appointment in rows.appointments:
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


def board_counts(snapshot: Snapshot) -> dict[str, Any]:
    """The cheap public counters, carried by every queue event: people waiting, desks open."""
    return {
        "waiting_count": snapshot.waiting_count(),
        "counsellors_on_desk": sum(1 for c in snapshot.state.counsellors if c.on_desk),
    }


def board_stats(snapshot: Snapshot) -> dict[str, Any]:
    """Every public counter, the typical wait included (a simulation of the queue: the board's
    first snapshot, the queue view and the ``counters`` event of the refresh)."""
    return {**board_counts(snapshot), "typical_wait_minutes": snapshot.typical_wait_minutes()}
