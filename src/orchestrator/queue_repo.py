"""Walk-in queue queries: rows ⇄ the pure queue core (:mod:`orchestrator.scheduling.queue`).

One function, :func:`load_snapshot`, builds the :class:`QueueState` the core decides on:
counsellors of the agency with their commitments of the day (live claims and absences),
today's waiting tickets, due appointments, and services with durations learned from the
service times observed in this agency. Policy parameters come from ``agencies.queue_policy``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import statistics
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, and_, cast, func, literal, select, text, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.models import Absence, Agency, Appointment, Claim, Counsellor, Service, WalkInTicket
from orchestrator.repositories import live_claims
from orchestrator.scheduling.intervals import merge
from orchestrator.scheduling.queue import (
    DeskCounsellor,
    DueAppointment,
    QueuePolicy,
    QueueState,
    ServiceInfo,
    WaitingTicket,
    order_queue,
)
from orchestrator.scheduling.types import Interval, Mode
from orchestrator.scheduling.waits import estimate_waits, observed_durations

log = logging.getLogger(__name__)

# Observed durations: this many recent samples per service, from this far back.
SAMPLES_PER_SERVICE = 100
SAMPLE_WINDOW = timedelta(days=28)
_LOCK_NAMESPACE = b"orchestrator:walk-in-queue:"


# --- policy ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """The core's :class:`QueuePolicy` plus the notification thresholds (0 disables one)."""

    policy: QueuePolicy = field(default_factory=QueuePolicy)
    notify_positions_ahead: int = 3
    notify_minutes_ahead: int = 10


_MINUTES = {
    "appointment_early_minutes": "appointment_early",
    "default_target_wait_minutes": "default_target_wait",
    "gap_slack_minutes": "gap_slack",
    "recall_min_interval_minutes": "recall_min_interval",
}


def queue_settings(raw: Mapping[str, Any] | None) -> QueueSettings:
    """Read ``agencies.queue_policy``. Keys (all optional):

    ``appointment_early_minutes``, ``default_target_wait_minutes``, ``gap_slack_minutes``,
    ``recall_min_interval_minutes`` (numbers), ``starvation_factor`` (number > 0),
    ``max_calls_before_no_show`` (int ≥ 1), ``language_is_soft``, ``honour_preferred_counsellor``
    (booleans), ``notify_positions_ahead``, ``notify_minutes_ahead`` (ints ≥ 0, 0 = off).
    A bad value is logged and ignored (the default applies): a typo must not stop the desk.
    """
    policy = QueuePolicy()
    notify_positions, notify_minutes = 3, 10
    for key, value in (raw or {}).items():
        try:
            if key in _MINUTES:
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError("must be a non-negative number of minutes")
                minutes: dict[str, Any] = {_MINUTES[key]: timedelta(minutes=value)}
                policy = replace(policy, **minutes)
            elif key == "starvation_factor":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError("must be a number")
                policy = replace(policy, starvation_factor=float(value))
            elif key == "max_calls_before_no_show":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError("must be an integer")
                policy = replace(policy, max_calls_before_no_show=value)
            elif key in ("language_is_soft", "honour_preferred_counsellor"):
                if not isinstance(value, bool):
                    raise ValueError("must be true or false")
                flag: dict[str, Any] = {key: value}
                policy = replace(policy, **flag)
            elif key in ("notify_positions_ahead", "notify_minutes_ahead"):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError("must be a non-negative integer")
                if key == "notify_positions_ahead":
                    notify_positions = value
                else:
                    notify_minutes = value
            else:
                raise ValueError("unknown key")
        except ValueError as exc:
            log.warning("ignoring queue policy value", extra={"key": key, "error": str(exc)})
    return QueueSettings(policy, notify_positions, notify_minutes)


# --- locks and days -------------------------------------------------------------------------


def queue_lock_key(agency_id: uuid.UUID) -> int:
    """Advisory-lock key of an agency's queue (hashed: never equal to a counsellor's key)."""
    digest = hashlib.blake2b(_LOCK_NAMESPACE + agency_id.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_queue(session: AsyncSession, agency_id: uuid.UUID) -> None:
    """Serialize next-work decisions of one agency until the transaction ends."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": queue_lock_key(agency_id)})


def local_day(tz: ZoneInfo, now: datetime) -> date:
    return now.astimezone(tz).date()


def day_bounds(tz: ZoneInfo, day: date) -> tuple[datetime, datetime]:
    """UTC start and end of a local day (DST-safe: midnight to next midnight, local wall clock)."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


def appointment_label(appointment: Appointment, tz: ZoneInfo) -> str:
    """What the board shows for an appointment (no personal data): "RDV 09h30"."""
    return "RDV " + appointment.starts_at.astimezone(tz).strftime("%Hh%M")


def minutes_up(delta: timedelta | None) -> int | None:
    return None if delta is None else max(0, math.ceil(delta.total_seconds() / 60))


# --- the snapshot ---------------------------------------------------------------------------


@dataclass
class Snapshot:
    """One agency's queue as the core sees it, with the rows it came from."""

    agency: Agency
    now: datetime
    tz: ZoneInfo
    day: date
    settings: QueueSettings
    state: QueueState
    tickets: dict[str, Any]  # waiting tickets as plain rows (attribute access like WalkInTicket)
    counsellors: dict[str, Counsellor]
    services: dict[str, Service]
    durations: dict[str, timedelta]
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

    def without(self, ticket_id: str) -> Snapshot:
        """The same snapshot with one ticket gone (it was just called, cancelled, …)."""
        state = replace(self.state, tickets=tuple(t for t in self.state.tickets if t.id != ticket_id))
        tickets = {k: v for k, v in self.tickets.items() if k != ticket_id}
        return replace(self, state=state, tickets=tickets, _order=None, _waits=None)

    def busy(self, counsellor_id: str, until: datetime) -> Snapshot:
        """The same snapshot with a counsellor now busy until ``until`` (for wait estimates)."""
        counsellors = tuple(
            replace(c, busy_until=until) if c.id == counsellor_id else c for c in self.state.counsellors
        )
        return replace(self, state=replace(self.state, counsellors=counsellors), _order=None, _waits=None)


async def _samples(
    session: AsyncSession, agency_id: uuid.UUID, now: datetime, service_id: uuid.UUID | None = None
) -> dict[str, list[timedelta]]:
    since = now - SAMPLE_WINDOW
    tickets = select(
        WalkInTicket.service_id.label("service_id"),
        WalkInTicket.completed_at.label("completed_at"),
        cast(func.extract("epoch", WalkInTicket.completed_at - WalkInTicket.started_at), Float).label(
            "seconds"
        ),
    ).where(
        WalkInTicket.agency_id == agency_id,
        WalkInTicket.status == "completed",
        WalkInTicket.started_at.is_not(None),
        WalkInTicket.completed_at >= since,
    )
    appointments = select(
        Appointment.service_id.label("service_id"),
        Appointment.completed_at.label("completed_at"),
        cast(func.extract("epoch", Appointment.completed_at - Appointment.started_at), Float).label(
            "seconds"
        ),
    ).where(
        Appointment.agency_id == agency_id,
        Appointment.status == "completed",
        Appointment.started_at.is_not(None),
        Appointment.completed_at >= since,
    )
    if service_id is not None:
        tickets = tickets.where(WalkInTicket.service_id == service_id)
        appointments = appointments.where(Appointment.service_id == service_id)
    both = union_all(tickets, appointments).subquery()
    ranked = select(
        both.c.service_id,
        both.c.seconds,
        func.row_number()
        .over(partition_by=both.c.service_id, order_by=both.c.completed_at.desc())
        .label("n"),
    ).subquery()
    rows = await session.execute(
        select(ranked.c.service_id, ranked.c.seconds).where(ranked.c.n <= literal(SAMPLES_PER_SERVICE))
    )
    samples: dict[str, list[timedelta]] = defaultdict(list)
    for service_id, seconds in rows:
        if seconds is not None and seconds >= 0:
            samples[str(service_id)].append(timedelta(seconds=float(seconds)))
    return samples


async def expected_duration(
    session: AsyncSession, agency_id: uuid.UUID, service_id: uuid.UUID, now: datetime
) -> timedelta:
    """Expected length of one service (observed here, the service's duration as prior)."""
    service = await session.get(Service, service_id)
    prior = timedelta(minutes=service.duration_minutes if service is not None else 15)
    samples = await _samples(session, agency_id, now, service_id=service_id)
    return observed_durations(samples, {str(service_id): prior}).get(str(service_id), prior)


def waiting_ticket(row: Any) -> WaitingTicket:
    return WaitingTicket(
        id=str(row.id),
        number=row.number,
        service_id=str(row.service_id),
        arrived_at=row.arrived_at,
        priority=row.priority,
        language=row.language,
        needs=frozenset(row.needs or ()),
        mode=Mode(row.mode),
        preferred_counsellor_id=str(row.preferred_counsellor_id) if row.preferred_counsellor_id else None,
        seq=row.seq,
        call_count=row.call_count,
        last_called_at=row.last_called_at,
    )


async def load_snapshot(session: AsyncSession, agency: Agency, now: datetime) -> Snapshot:
    """Load today's queue of ``agency`` at ``now`` (about seven queries whatever its size)."""
    tz = ZoneInfo(agency.timezone)
    day = local_day(tz, now)
    day_start, day_end = day_bounds(tz, day)
    settings = queue_settings(agency.queue_policy)

    services = {
        str(s.id): s for s in await session.scalars(select(Service).where(Service.agency_id == agency.id))
    }
    counsellors = {
        str(c.id): c
        for c in await session.scalars(
            select(Counsellor)
            .where(Counsellor.agency_id == agency.id, Counsellor.active)
            .order_by(Counsellor.id)
        )
    }
    ids = [c.id for c in counsellors.values()]

    # plain rows, not ORM objects: a queue of hundreds is loaded on every call (measured 3x faster)
    waiting = {
        str(t.id): t
        for t in await session.execute(
            select(*WalkInTicket.__table__.c).where(
                WalkInTicket.agency_id == agency.id,
                WalkInTicket.local_day == day,
                WalkInTicket.status == "waiting",
            )
        )
    }

    busy_until: dict[str, datetime] = {}

    def busy(counsellor_id: uuid.UUID | None, until: datetime) -> None:
        if counsellor_id is None or until <= now:
            return
        key = str(counsellor_id)
        busy_until[key] = max(busy_until.get(key, until), until)

    durations = observed_durations(
        await _samples(session, agency.id, now),
        {key: timedelta(minutes=s.duration_minutes) for key, s in services.items()},
    )

    # tickets being called or served keep their counsellor busy for about a service's length
    for ticket in await session.scalars(
        select(WalkInTicket).where(
            WalkInTicket.agency_id == agency.id,
            WalkInTicket.local_day == day,
            WalkInTicket.status.in_(("called", "in_service")),
        )
    ):
        began = ticket.started_at or ticket.last_called_at or now
        busy(ticket.counsellor_id, began + durations.get(str(ticket.service_id), timedelta(minutes=15)))

    due: list[DueAppointment] = []
    for appointment in await session.scalars(
        select(Appointment).where(
            Appointment.agency_id == agency.id,
            Appointment.status.in_(("confirmed", "checked_in", "in_progress")),
            Appointment.starts_at < day_end,
            Appointment.ends_at > day_start,
        )
    ):
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

    commitments: dict[str, list[Interval]] = defaultdict(list)
    if ids:
        horizon = max(day_end, now + timedelta(hours=1))
        for counsellor_id, kind, starts_at, ends_at in await session.execute(
            select(Claim.counsellor_id, Claim.kind, Claim.starts_at, Claim.ends_at).where(
                Claim.counsellor_id.in_(ids), Claim.ends_at > now, Claim.starts_at < horizon, live_claims(now)
            )
        ):
            if kind == "service":  # a walk-in being served: the counsellor is busy, not committed
                busy(counsellor_id, ends_at)
            else:
                commitments[str(counsellor_id)].append(Interval(starts_at, ends_at))
        for counsellor_id, starts_at, ends_at in await session.execute(
            select(Absence.counsellor_id, Absence.starts_at, Absence.ends_at).where(
                Absence.counsellor_id.in_(ids), Absence.ends_at > now, Absence.starts_at < horizon
            )
        ):
            commitments[str(counsellor_id)].append(Interval(starts_at, ends_at))

    desks = tuple(
        DeskCounsellor(
            id=key,
            skills=frozenset(c.skills or ()),
            languages=frozenset(c.languages or ()),
            modes=frozenset(Mode(m) for m in c.modes or ()),
            on_desk=c.on_desk,
            desk=c.desk_label,
            commitments=tuple(merge(commitments.get(key, ()))),
            busy_until=busy_until.get(key),
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
    )


# --- the board --------------------------------------------------------------------------------


BOARD_CALLS = 8


async def recent_calls(
    session: AsyncSession, snapshot: Snapshot, limit: int = BOARD_CALLS
) -> list[dict[str, Any]]:
    """The last called tickets and appointments of the day: label and desk only (public)."""
    tickets = await session.execute(
        select(WalkInTicket.number, WalkInTicket.desk, WalkInTicket.last_called_at)
        .where(
            WalkInTicket.agency_id == snapshot.agency.id,
            WalkInTicket.local_day == snapshot.day,
            WalkInTicket.last_called_at.is_not(None),
            WalkInTicket.status.in_(("called", "in_service", "completed")),
        )
        .order_by(WalkInTicket.last_called_at.desc())
        .limit(limit)
    )
    calls: list[dict[str, Any]] = [
        {
            "kind": "ticket",
            "label": number,
            "number": number,
            "desk": desk,
            "at": at.isoformat() if at else "",
        }
        for number, desk, at in tickets
    ]
    day_start, _ = day_bounds(snapshot.tz, snapshot.day)
    appointments = await session.execute(
        select(Appointment, Counsellor.desk_label)
        .join(Counsellor, and_(Counsellor.id == Appointment.counsellor_id))
        .where(
            Appointment.agency_id == snapshot.agency.id,
            Appointment.started_at >= day_start,
            Appointment.status.in_(("in_progress", "completed")),
        )
        .order_by(Appointment.started_at.desc())
        .limit(limit)
    )
    for appointment, desk in appointments:
        assert appointment.started_at is not None
        calls.append(
            {
                "kind": "appointment",
                "label": appointment_label(appointment, snapshot.tz),
                "number": None,
                "desk": desk,
                "at": appointment.started_at.isoformat(),
            }
        )
    calls.sort(key=lambda c: str(c["at"]), reverse=True)
    return calls[:limit]


def board_stats(snapshot: Snapshot) -> dict[str, Any]:
    """Public counters carried by every live event."""
    return {
        "waiting_count": snapshot.waiting_count(),
        "typical_wait_minutes": snapshot.typical_wait_minutes(),
        "counsellors_on_desk": sum(1 for c in snapshot.state.counsellors if c.on_desk),
    }
