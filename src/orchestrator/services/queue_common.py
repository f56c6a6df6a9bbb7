"""What the walk-in queue use cases share: roles, the ticket view, live events, SMS notices.

The use cases live by domain: :mod:`~orchestrator.services.tickets` (issue and act on tickets),
:mod:`~orchestrator.services.desk` (call next, desk state), :mod:`~orchestrator.services.arrivals`
(appointments in the same flow) and :mod:`~orchestrator.services.queue_view` (reading).

Concurrency, in one place (each module's docstrings say why its part is safe):

- nobody is handed out twice: a ticket is called by one conditional ``UPDATE`` whose row is
  taken with ``FOR NO KEY UPDATE SKIP LOCKED`` (``repositories.queue_claims.claim_first_waiting``);
  every other ticket action locks its ticket row (``FOR NO KEY UPDATE``) and checks its status;
- a counsellor never has two people at once: call next holds that counsellor's advisory lock
  (:func:`orchestrator.repositories.lock_counsellors`) from before its "busy?" check to commit;
- there is no agency-wide lock: concurrent callers skip each other's rows instead of queueing;
- "soon" SMS are recorded once by their outbox dedupe key; concurrent requests insert their keys
  in sorted order, so two of them wait for each other at most once, never in a cycle.

Every change is audited; live events are published to Redis after commit; SMS go through the
outbox (written in the same transaction).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select

from orchestrator import outbox
from orchestrator.auth import Role
from orchestrator.db import UnitOfWork
from orchestrator.errors import Invalid, NotFound
from orchestrator.models import Agency, Counsellor, JobSeeker, Service, WalkInTicket
from orchestrator.repositories.queue import minutes_up
from orchestrator.repositories.queue_claims import LockedTicket, recorded_dedupe_keys
from orchestrator.services.messages import ticket_text
from orchestrator.services.queue_snapshot import Snapshot, board_counts

DESK_ROLES = (Role.ADMIN, Role.MANAGER, Role.FRONT_DESK)
QUEUE_ROLES = (*DESK_ROLES, Role.COUNSELLOR)
ISSUE_ROLES = (*DESK_ROLES, Role.KIOSK)
T = TypeVar("T", Service, Counsellor)


@dataclass
class TicketView:
    ticket: Any  # a WalkInTicket, or a plain row with the same attributes
    position: int | None = None
    estimated_wait: timedelta | None = None
    has_phone: bool = False
    service_seconds: int | None = None

    @property
    def estimated_wait_minutes(self) -> int | None:
        return minutes_up(self.estimated_wait)

    @classmethod
    def in_queue(cls, ticket: Any, snapshot: Snapshot) -> TicketView:
        """The ticket with its place and estimated wait in ``snapshot``."""
        key = str(ticket.id)
        return cls(
            ticket, snapshot.positions().get(key), snapshot.waits().get(key), ticket.job_seeker_id is not None
        )


async def agency_of(uow: UnitOfWork, agency_id: uuid.UUID) -> Agency:
    agency = await uow.session.get(Agency, agency_id)
    if agency is None:
        raise NotFound(f"no agency {agency_id}", code="not_found")
    return agency


async def active_in_agency(
    uow: UnitOfWork, model: type[T], object_id: uuid.UUID, agency_id: uuid.UUID, field: str, name: str
) -> T:
    """The active ``model`` row ``object_id`` of the agency, or ``Invalid`` naming ``field``."""
    found = await uow.session.get(model, object_id)
    if found is None or found.agency_id != agency_id or not found.active:
        raise Invalid(field, f"no active {name} with this id in this agency")
    return found


def agency_tz(agency: Agency) -> ZoneInfo:
    return ZoneInfo(agency.timezone)


# --- live events ----------------------------------------------------------------------------


def event(event_type: str, snapshot: Snapshot, **fields: Any) -> dict[str, Any]:
    """An event that changes who is waiting: carries the cheap board counters of ``snapshot``
    (the typical wait follows in the ``counters`` event of the refresh)."""
    return {"type": event_type, "at": snapshot.now.isoformat(), **fields, **board_counts(snapshot)}


def publish_change(
    uow: UnitOfWork, agency_id: uuid.UUID, payload: dict[str, Any], *, notify: bool = True
) -> None:
    """Publish a queue event after commit, and have the queue re-estimated off the request path
    (``services.queue_refresh``: typical wait, and "soon" SMS unless ``notify`` is False)."""
    uow.publish(agency_id, payload)
    uow.refresh_queue(agency_id, notify=notify)


def call_event(
    event_type: str, snapshot: Snapshot, ticket: Any, counsellor_id: uuid.UUID | None
) -> dict[str, Any]:
    """A ticket called (or recalled) to a desk."""
    return event(
        event_type,
        snapshot,
        kind="ticket",
        id=str(ticket.id),
        number=ticket.number,
        label=ticket.number,
        desk=ticket.desk,
        counsellor_id=str(counsellor_id),
        call=ticket.call_count,
    )


def light_event(event_type: str, now: datetime, **fields: Any) -> dict[str, Any]:
    """An event that does not change who is waiting: no counters (clients keep the last ones)."""
    return {"type": event_type, "at": now.isoformat(), **fields}


# --- SMS notices ----------------------------------------------------------------------------


CALLED_VALID_FOR = timedelta(minutes=10)  # a "your turn" text later than this is no use
SOON_VALID_FOR = timedelta(minutes=30)


async def notify_called(uow: UnitOfWork, ticket: WalkInTicket | LockedTicket, agency: Agency) -> None:
    if ticket.job_seeker_id is None:
        return
    phone = outbox.sms_recipient(await uow.session.get(JobSeeker, ticket.job_seeker_id))
    if phone is None:
        return
    called_at = ticket.last_called_at or ticket.called_at
    await outbox.record(
        uow,
        outbox.message(
            agency_id=ticket.agency_id,
            kind="ticket.called",
            channel="sms",
            recipient=phone,
            dedupe_key=f"ticket:{ticket.id}:called:{ticket.call_count}:sms",
            ticket_id=ticket.id,
            body=ticket_text(
                "ticket.called",
                language=ticket.language,
                agency=agency.name,
                number=ticket.number,
                desk=ticket.desk,
                minutes=None,
            ),
            expires_at=called_at + CALLED_VALID_FOR if called_at else None,
            payload={"number": ticket.number, "desk": ticket.desk, "call": ticket.call_count},
        ),
    )


async def notify_soon(uow: UnitOfWork, snapshot: Snapshot) -> int:
    """ "You will be called soon" SMS for people N positions or M minutes from the front (once each).

    Already-recorded notices are filtered out with one query first (in a steady queue that is
    all of them), so the usual cost is that query. The rest are inserted in dedupe-key order:
    a concurrent request recording the same key waits for ours to commit and then does nothing
    (unique key), and the fixed order keeps two such requests from waiting on each other.
    """
    settings = snapshot.settings
    if not settings.notify_positions_ahead and not settings.notify_minutes_ahead:
        return 0
    if all(row.job_seeker_id is None for row in snapshot.tickets.values()):
        return 0
    positions, waits = snapshot.positions(), snapshot.waits()
    due: dict[uuid.UUID, tuple[Any, int, timedelta | None]] = {}
    for ticket_id, position in positions.items():
        row = snapshot.tickets[ticket_id]
        if row.job_seeker_id is None:
            continue
        wait = waits.get(ticket_id)
        near = settings.notify_positions_ahead and position <= settings.notify_positions_ahead
        soon = (
            settings.notify_minutes_ahead
            and wait is not None
            and wait <= timedelta(minutes=settings.notify_minutes_ahead)
        )
        if near or soon:
            due[row.job_seeker_id] = (row, position, wait)
    if not due:
        return 0
    keys = {f"ticket:{row.id}:soon:sms": seeker_id for seeker_id, (row, _, _) in due.items()}
    pending = sorted(set(keys) - await recorded_dedupe_keys(uow.session, keys))
    if not pending:
        return 0
    seekers = {
        seeker.id: seeker
        for seeker in await uow.session.scalars(
            select(JobSeeker).where(JobSeeker.id.in_([keys[key] for key in pending]))
        )
    }
    sent = 0
    for key in pending:
        phone = outbox.sms_recipient(seekers.get(keys[key]))
        if phone is None:
            continue
        row, position, wait = due[keys[key]]
        minutes = minutes_up(wait)
        sent += await outbox.record(
            uow,
            outbox.message(
                agency_id=snapshot.agency.id,
                kind="ticket.soon",
                channel="sms",
                recipient=phone,
                dedupe_key=key,
                ticket_id=row.id,
                body=ticket_text(
                    "ticket.soon",
                    language=row.language,
                    agency=snapshot.agency.name,
                    number=row.number,
                    desk=None,
                    minutes=minutes,
                ),
                expires_at=snapshot.now + SOON_VALID_FOR,
                payload={"number": row.number, "position": position, "estimated_wait_minutes": minutes},
            ),
        )
    return sent
